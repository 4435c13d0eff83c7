"""`benchmarks/paper1_mixedwm38.py --quick`: teacher, Paper 1's two students and their int8
conversion run end to end (380 synthetic maps, one epoch each) and land where they are told."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from paper1_mixedwm38 import markdown  # noqa: E402


def run_benchmark(*args):
    return subprocess.run([sys.executable, "benchmarks/paper1_mixedwm38.py", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)


def test_quick_run_with_an_8_view_vgg_teacher_writes_results_and_models(tmp_path):
    out, models = tmp_path / "results" / "paper1", tmp_path / "models"
    result = run_benchmark("--quick", "--teacher-arch", "vgg7", "--teacher-views", "8", "--runs", tmp_path / "runs",
                           "--models", models, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == "python benchmarks/paper1_mixedwm38.py --teacher-arch vgg7 --teacher-views 8"
    assert results["teacher_args"][:2] == ["--arch", "vgg7"] and results["teacher_views"] == 8
    assert list(results["models"]) == ["teacher (vgg7, mean of 8 views)", "net1", "net2"]
    teacher = results["models"]["teacher (vgg7, mean of 8 views)"]
    assert teacher["paper_accuracy"] == 0.98 and "flash_bytes" not in teacher
    for name, budget in (("net1", 253_952), ("net2", 21_504)):
        row = results["models"][name]
        assert row["budget_bytes"] == budget and row["flash_bytes"] <= budget
        card = json.loads((models / f"paper1-{name}" / "model_card.json").read_text())
        assert card["flash_bytes"] == row["flash_bytes"]
        assert card["accuracy"]["int8_exact_match"] == row["int8_exact_match_tflite_micro"]
        assert "from the teacher (vgg7, mean of 8 views)" in (models / f"paper1-{name}" / "README.md").read_text()
    table = out.with_suffix(".md").read_text()
    assert table == markdown(results["models"])
    # Models outside the shipped models/ are not linked: the committed table would point nowhere.
    assert table.count("\n| net1 | ") == 2 and "| teacher (vgg7, mean of 8 views) | " in table
    assert out.with_suffix(".png").is_file()
    assert (tmp_path / "runs" / "teacher-mixedwm38-vgg7" / "teacher.keras").is_file()
    assert (tmp_path / "runs" / "paper1-mixedwm38-views8" / "teacher_cache.h5").is_file()


def test_a_missing_teacher_directory_is_refused_before_any_work(tmp_path):
    result = run_benchmark("--quick", "--teacher", tmp_path / "nowhere", "--runs", tmp_path / "runs")
    assert result.returncode == 2
    assert f"--teacher {tmp_path / 'nowhere'}: no such run directory" in result.stderr
    assert not (tmp_path / "runs").exists()
