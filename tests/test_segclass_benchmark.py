"""`python -m benchmarks.segclass_mixedwm38 --quick`: teacher, distilled and hard-loss students, int8
conversion and TFLite Micro on both test splits, end to end on 380 synthetic maps."""

import json


from benchmarks.segclass_mixedwm38 import main

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def run_benchmark(tmp_path):
    return main(["--quick", "--runs", str(tmp_path / "runs"), "--models", str(tmp_path / "models"),
                 "--out", str(tmp_path / "results" / "segclass")])


def test_quick_benchmark_writes_the_table_and_the_shipped_model(tmp_path, capsys):
    assert run_benchmark(tmp_path) == 0
    results = json.loads((tmp_path / "results" / "segclass.json").read_text())
    assert list(results["wall_seconds"]) == ["kd", "hard", "conversion and TFLite Micro"]
    rows = results["models"]
    assert set(rows) == {"teacher", "kd", "hard"} and "int8" not in rows["teacher"]
    for key in ("kd", "hard"):
        assert rows[key]["parameters"] == 62_736 and rows[key]["flash_bytes"] <= results["budget_bytes"]
        for kind in ("float", "int8"):
            for split in ("test", "test_rotated"):
                assert 0 <= rows[key][kind][split]["exact_match"] <= 1 and 0 <= rows[key][kind][split]["dice"] <= 1
    shipped = tmp_path / "models" / "lightwafer-segclass"
    card = json.loads((shipped / "model_card.json").read_text())
    assert card["flash_bytes"] == rows["kd"]["flash_bytes"]
    assert card["accuracy"]["int8_dice"] == rows["kd"]["int8"]["test"]["dice"]
    assert card["source_model"] == "runs/segclass-quick/kd/lightwafer/lightwafer.keras"
    for name in ("model.tflite", "model_data.cc", "model_data.h", "model_settings.h", "README.md"):
        assert (shipped / name).is_file(), name
    table = (tmp_path / "results" / "segclass.md").read_text()
    assert "| LightWaferSegClassNet, distilled (KD) | 62,736 | int8 |" in table and "| 98.5% | 0.982 |" in table
    assert (tmp_path / "runs" / "segclass-teacher-synthetic380-seed0" / "teacher.keras").is_file()

    # Run again: every finished stage is reused, and the figures come out the same.
    capsys.readouterr()
    assert run_benchmark(tmp_path) == 0
    assert capsys.readouterr().out.count("holds a finished run: nothing left to train") == 2
    rerun = json.loads((tmp_path / "results" / "segclass.json").read_text())
    assert rerun["models"]["kd"]["float"] == rows["kd"]["float"]
    assert rerun["wall_seconds"]["kd"] == rerun["wall_seconds"]["hard"] == "reused"
