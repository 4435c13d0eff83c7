"""`python -m benchmarks.paper1_mixedwm38 --quick`: teacher, Paper 1's two students and their int8
conversion run end to end (380 synthetic maps, one epoch each) and land where they are told."""

import json

import pytest

from benchmarks.paper1_mixedwm38 import main, markdown

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def test_quick_run_with_an_8_view_vgg_teacher_writes_results_and_models(tmp_path):
    out, models = tmp_path / "results" / "paper1", tmp_path / "models"
    assert main(["--quick", "--teacher-arch", "vgg7", "--teacher-views", "8", "--runs", str(tmp_path / "runs"),
                 "--models", str(models), "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == "python -m benchmarks.paper1_mixedwm38 --teacher-arch vgg7 --teacher-views 8"
    assert results["teacher_job"]["arch"] == "vgg7" and results["teacher_views"] == 8
    assert results["student_job"]["student"] == ["net1", "net2"] and results["student_job"]["loss"] == "paper"
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


def test_a_missing_teacher_directory_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quick", "--teacher", str(tmp_path / "nowhere"), "--runs", str(tmp_path / "runs")])
    assert exit_info.value.code == 2
    assert f"--teacher {tmp_path / 'nowhere'}: no such run directory" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
