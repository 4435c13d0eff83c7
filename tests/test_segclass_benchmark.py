"""`python -m benchmarks.segclass_mixedwm38 --quick`: teacher, distilled and hard-loss students, int8
conversion and TFLite Micro on both test splits, end to end on 380 synthetic maps; `--stages hard`
without a teacher."""

import json


from benchmarks.segclass_mixedwm38 import main

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def run_benchmark(tmp_path, *arguments):
    return main(["--quick", "--runs", str(tmp_path / "runs"), "--models", str(tmp_path / "models"),
                 "--out", str(tmp_path / "results" / "segclass"), *arguments])


def test_quick_benchmark_writes_the_table_and_the_shipped_model(tmp_path, capsys):
    assert run_benchmark(tmp_path) == 0
    results = json.loads((tmp_path / "results" / "segclass.json").read_text())
    assert list(results["wall_seconds"]) == ["kd", "hard", "conversion and TFLite Micro"]
    rows = results["models"]
    assert set(rows) == {"teacher", "kd", "hard"} and "int8" not in rows["teacher"]
    for key in ("kd", "hard"):
        assert rows[key]["parameters"] == 51_231 and rows[key]["flash_bytes"] <= results["budget_bytes"]
        assert rows[key]["arena_bytes"] <= results["arena_target_bytes"] == 96 * 1024
        assert len(rows[key]["val_exact_match_by_epoch"]) == rows[key]["best_epoch"] == 1
        for kind in ("float", "int8"):
            for split in ("test", "test_rotated"):
                assert 0 <= rows[key][kind][split]["exact_match"] <= 1 and 0 <= rows[key][kind][split]["dice"] <= 1
    shipped = results["shipped"]
    assert rows[shipped]["val_exact_match"] == max(rows[key]["val_exact_match"] for key in ("kd", "hard"))
    card = json.loads((tmp_path / "models" / "lightwafer-segclass" / "model_card.json").read_text())
    assert card["flash_bytes"] == rows[shipped]["flash_bytes"]
    assert card["accuracy"]["int8_dice"] == rows[shipped]["int8"]["test"]["dice"]
    assert card["source_model"] == f"runs/segclass-quick/{shipped}/stridedseg/stridedseg.keras"
    for name in ("model.tflite", "model_data.cc", "model_data.h", "model_settings.h", "README.md"):
        assert (tmp_path / "models" / "lightwafer-segclass" / name).is_file(), name
    table = (tmp_path / "results" / "segclass.md").read_text()
    assert "| stridedseg, distilled (KD) | 51,231 | int8 |" in table and "| 98.5% | 0.982 |" in table
    assert "(shipped: best on validation)" in table and "tensor arena" in table
    assert (tmp_path / "runs" / "segclass-teacher-synthetic380-seed0" / "teacher.keras").is_file()

    # Run again: every finished stage is reused, and the figures come out the same.
    capsys.readouterr()
    assert run_benchmark(tmp_path) == 0
    assert capsys.readouterr().out.count("holds a finished run: nothing left to train") == 2
    rerun = json.loads((tmp_path / "results" / "segclass.json").read_text())
    assert rerun["models"]["kd"]["float"] == rows["kd"]["float"]
    assert rerun["wall_seconds"]["kd"] == rerun["wall_seconds"]["hard"] == "reused"


def test_the_hard_stage_alone_needs_no_teacher(tmp_path):
    assert run_benchmark(tmp_path, "--stages", "hard") == 0
    results = json.loads((tmp_path / "results" / "segclass.json").read_text())
    assert results["stages"] == ["hard"] and results["shipped"] == "hard" and set(results["models"]) == {"hard"}
    assert list(results["wall_seconds"]) == ["hard", "conversion and TFLite Micro"]
    assert not list((tmp_path / "runs").glob("segclass-teacher-*"))
    readme = (tmp_path / "models" / "lightwafer-segclass" / "README.md").read_text()
    assert "Trained on the hard targets" in readme and "--quick --stages hard" in readme
