"""`python -m benchmarks.main_job_teacher --quick`: teachers of two lengths and their students, measured."""

import json

from benchmarks.main_job_teacher import main

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def test_quick_run_writes_each_teacher_and_its_students(tmp_path):
    out = tmp_path / "results" / "teacher"
    argv = ["--quick", "--teacher-epochs", "1", "2", "--seeds", "0", "1", "--runs", str(tmp_path / "runs"),
            "--out", str(out)]
    assert main(argv) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == "python -m benchmarks.main_job_teacher --quick --teacher-epochs 1 2 --seeds 0 1"
    assert results["teacher_views"] == 8 and results["job"]["synthetic_maps"] == 380
    assert list(results["teachers"]) == ["1", "2"]
    for row in results["teachers"].values():
        per_seed = row["net1_exact_match"]
        assert list(per_seed) == ["0", "1"] and all(0 <= value <= 1 for value in per_seed.values())
        assert row["net1_mean"] == sum(per_seed.values()) / 2
        assert 0 <= row["teacher_exact_match_8_views"] <= 1
    assert (tmp_path / "runs" / "teacher2" / "net1-seed1" / "net1.keras").is_file()
    table = out.with_suffix(".md").read_text()
    assert "| 2 |" in table and "Reproduce: `python -m benchmarks.main_job_teacher --quick" in table
    # A second run reuses what the first trained and finds the same figures.
    assert main(argv) == 0
    assert json.loads(out.with_suffix(".json").read_text())["teachers"] == results["teachers"]
