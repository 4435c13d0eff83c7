"""`python -m benchmarks.main_job_teacher --quick`: teachers of two lengths and their students of two
lengths under two losses, measured."""

import json

from benchmarks.main_job_teacher import main

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def test_quick_run_writes_each_teacher_and_its_students_per_length_and_loss(tmp_path):
    out = tmp_path / "results" / "teacher"
    argv = ["--quick", "--teacher-epochs", "1", "2", "--student-epochs", "1", "2", "--seeds", "0", "1",
            "--runs", str(tmp_path / "runs"), "--out", str(out)]
    assert main(argv) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == \
        "python -m benchmarks.main_job_teacher --quick --teacher-epochs 1 2 --student-epochs 1 2 " \
        "--losses paper hinton --seeds 0 1"
    assert results["teacher_views"] == 8 and results["job"]["synthetic_maps"] == 380
    assert results["losses"] == {"paper": "paper (alpha 0.5, beta 0.5)", "hinton": "hinton (T 4)"}
    assert list(results["teachers"]) == ["1", "2"]
    for row in results["teachers"].values():
        assert 0 <= row["teacher_exact_match_8_views"] <= 1
        assert list(row["students"]) == ["1", "2"]
        for by_loss in row["students"].values():
            assert list(by_loss) == ["paper", "hinton"]
            for by_student in by_loss.values():
                assert list(by_student) == ["net1", "separable8k"]
                for figures in by_student.values():
                    per_seed = figures["per_seed"]
                    assert list(per_seed) == ["0", "1"] and all(0 <= value <= 1 for value in per_seed.values())
                    assert figures["mean"] == sum(per_seed.values()) / 2
                    assert figures["spread"] == max(per_seed.values()) - min(per_seed.values())
    trained = tmp_path / "runs" / "teacher2" / "separable8k-hinton-epochs2-seed1"
    assert (trained / "separable8k.keras").is_file()
    assert json.loads((trained / "training.json").read_text()
                      )["settings"]["epochs"] == 2
    table = out.with_suffix(".md").read_text()
    assert "| 2 | hinton (T 4) |" in table and "| 1 | paper (alpha 0.5, beta 0.5) |" in table
    assert "Reproduce: `python -m benchmarks.main_job_teacher --quick" in table
    # A second run reuses what the first trained and finds the same figures.
    assert main(argv) == 0
    assert json.loads(out.with_suffix(".json").read_text())["teachers"] == results["teachers"]
