"""`python -m benchmarks.best_per_budget --quick`: every stage runs end to end (on 380 synthetic maps,
one epoch each) and writes its results, run directories and shipped models where it is told."""

import json

import pytest

from benchmarks import repo_relative
from benchmarks.best_per_budget import main, markdown
from kd_keras.data import load_splits
from kd_keras.training import train_teacher

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)
STAGES = ["teacher", "teacher logits (8 views)", "questions", "size sweep", "paper 1 students", "our students",
          "conversion"]


def test_quick_benchmark_writes_results_runs_and_shipped_models(tmp_path):
    # --init: the teacher starts from a pre-trained one's weights (here one epoch on the same maps).
    pretrained = tmp_path / "pretrained"
    train_teacher(load_splits(None, 380, 0), pretrained, arch="vgg7", epochs=1, seed=1, verbose=0)
    out = tmp_path / "results" / "best"
    assert main(["--quick", "--runs", str(tmp_path / "runs"), "--models", str(tmp_path / "models"),
                 "--out", str(out), "--init", str(pretrained)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    init = str(pretrained / "teacher.keras")
    assert json.loads((tmp_path / "runs" / "teacher" / "training.json").read_text())["settings"]["init"] == init
    recorded = results["teacher"]["init"]
    assert recorded == repo_relative(init)  # as the other results files record paths
    runs = repo_relative(tmp_path / "runs")  # not the default: the command names it
    assert results["command"] == f"python -m benchmarks.best_per_budget --init {recorded} --runs {runs}"
    assert list(results["wall_seconds"]) == STAGES
    assert len(results["questions"]) == 6 and results["chosen_recipe"] in results["questions"]
    chosen = results["questions"][results["chosen_recipe"]]
    assert chosen["val_exact_match"] == max(row["val_exact_match"] for row in results["questions"].values())
    assert {row["student"] for row in results["sweep"]} == {"vgg19k", "separable8k", "vgg74k"}
    assert set(results["final"]) == {"paper1-net1", "paper1-net2", "kd-21kb", "kd-248kb"}
    for label, row in results["final"].items():
        assert row["flash_bytes"] <= row["budget_bytes"]
        assert 0 <= row["int8_test_exact_match_tflite_micro"] <= 1
        shipped = tmp_path / "models" / label
        assert shipped.is_dir() == (not label.startswith("paper1-"))  # paper 1's stay in the run directory
    for name in ("model.tflite", "model_data.cc", "model_data.h", "model_settings.h", "model_card.json", "README.md"):
        assert (tmp_path / "models" / "kd-21kb" / name).is_file(), name
    card = json.loads((tmp_path / "models" / "kd-248kb" / "model_card.json").read_text())
    assert card["flash_bytes"] == results["final"]["kd-248kb"]["flash_bytes"] and card["views"] == 1
    assert card["budget"] == {"name": "248KB", "flash_bytes": 253_952, "arena_bytes": 65_536, "accuracy_target": 0.99}
    # The 21 KB student's seed (of 3) and views (1 or 8 inferences a map) are chosen on validation.
    small = results["final"]["kd-21kb"]
    by_seed = small["int8_val_exact_match_by_seed"]
    assert set(by_seed) == {"0", "1", "2"} and by_seed[str(small["seed"])] == small["int8_val_exact_match_by_views"]
    best = max(max(by_views.values()) for by_views in by_seed.values())
    by_views = small["int8_val_exact_match_by_views"]
    assert set(by_views) == {"1", "8"} and by_views[str(small["views"])] == best
    for seed in (1, 2):
        assert (tmp_path / "runs" / f"kd-21kb-seed{seed}" / "separable8k" / "separable8k.keras").is_file()
    readme = (tmp_path / "models" / "kd-21kb" / "README.md").read_text()
    assert f"student seed {small['seed']} (the best of 3 on validation)" in readme
    assert f"vgg7 teacher, started from the weights of {recorded} (" in readme and results["command"] in readme
    large = results["final"]["kd-248kb"]  # of 2 seeds, 1 view
    assert set(large["int8_val_exact_match_by_seed"]) == {"0", "1"} and large["views"] == 1
    assert (tmp_path / "runs" / "kd-248kb-seed1" / "vgg225k" / "vgg225k.keras").is_file()
    assert json.loads((tmp_path / "models" / "kd-21kb" / "model_card.json").read_text())["views"] == small["views"]
    table = out.with_suffix(".md").read_text()
    assert f"| teacher (vgg7, started from the weights of {recorded}) |" in table and "(chosen)" in table
    assert markdown(results) == table  # the table can be rebuilt from the JSON alone
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "runs" / "teacher" / "teacher.keras").is_file()
    assert (tmp_path / "runs" / "kd-21kb" / "metrics.json").is_file()

    # --ship: the same runs (resumed, nothing trained again), one of our students shipped, the
    # other converted into its run directory as paper 1's are.
    shipped = tmp_path / "shipped"
    assert main(["--quick", "--runs", str(tmp_path / "runs"), "--models", str(shipped), "--out", str(out),
                 "--init", str(pretrained), "--ship", "kd-248kb"]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == f"python -m benchmarks.best_per_budget --init {recorded} --runs {runs} --ship kd-248kb"
    assert [path.name for path in shipped.iterdir()] == ["kd-248kb"]
    assert results["final"]["kd-21kb"]["model_dir"] is None
    assert (tmp_path / "runs" / "kd-21kb" / "int8" / "model.tflite").is_file()
    assert "| kd-21kb (separable8k) | 21KB |" in out.with_suffix(".md").read_text()
    assert results["command"] in (shipped / "kd-248kb" / "README.md").read_text()


def test_an_unknown_teacher_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quick", "--teacher", "vgg8", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "best")])
    assert exit_info.value.code == 2 and "--teacher: invalid choice: 'vgg8'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
