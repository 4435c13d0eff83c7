"""`python -m benchmarks.wm811k_per_budget --quick`, `benchmarks.wm811k_cross_domain` and
`benchmarks.unlabelled_maps` on a small WM-811K-layout file: models for both budgets trained,
converted with their resize and judged on both sources; students of a teacher taught on a share
of the maps; `benchmarks.wm811k_teacher_balance`'s teachers read class by class, and trained
without a label audit's suspects."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import repo_relative, unlabelled_maps, wm811k_cross_domain, wm811k_per_budget, wm811k_teacher_balance
from kd_keras.data import CLASS_NAMES, load_splits, load_wafer_maps, save_wm811k, stratified_split
from kd_keras.data.labels import flags_name
from kd_keras.fileio import write_json
from kd_keras.jobs import teacher_name

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


@pytest.fixture
def fab(tmp_path):
    """180 random maps of many grids, 20 of each WM-811K class, in a WM-811K-layout file."""
    rng = np.random.default_rng(0)
    path = tmp_path / "fab.npz"
    save_wm811k(path, [rng.integers(0, 3, tuple(grid)) for grid in rng.integers(15, 90, (180, 2))],
                [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(180)])
    return path


def test_fab_models_are_trained_shipped_and_read_on_both_sources(small_npz, fab, tmp_path, capsys):
    models, out = tmp_path / "models", tmp_path / "results" / "fab_balance0.5"
    assert wm811k_per_budget.main(["--quick", "--fab-data", str(fab), "--runs", str(tmp_path / "runs"),
                                   "--models", str(models), "--out", str(out)]) == 0
    results = json.loads((tmp_path / "results" / "fab_balance0.5.json").read_text())  # the dot is not a suffix
    assert list(results["models"]) == ["wm811k-21kb", "wm811k-248kb"] and results["test_maps"] == 18
    assert "mixedwm38_test_exact_match" not in results["teacher_by_source"]
    for label, budget in (("wm811k-21kb", 21_504), ("wm811k-248kb", 253_952)):
        row = results["models"][label]
        card = json.loads((models / label / "model_card.json").read_text())
        assert card["input"]["resize"] == "max" and card["flash_bytes"] == row["flash_bytes"] <= budget
        assert card["views"] == row["views"] and set(row["val_macro_f1_balanced_by_views"]) <= {"1", "8"}
        assert sum(c["support"] for c in row["test"]["natural"]["per_class"].values()) == 18
        assert row["test_logit_0"]["natural"]["maps"] == 18  # the same maps, read before calibrating
        assert "maps brought to 52x52 by `max`" in (models / label / "README.md").read_text()
    assert (tmp_path / "results" / "fab_balance0.5.md").read_text() == wm811k_per_budget.markdown(results)

    # Students of a teacher made elsewhere (here, that run's): its runs and results are named after it.
    teacher = tmp_path / "runs" / "teacher-vgg7"
    argv = ["--quick", "--fab-data", str(fab), "--budgets", "21KB", "--models", str(models), "--teacher", str(teacher)]
    with pytest.raises(SystemExit):
        wm811k_per_budget.main([*argv, "--teacher-balance", "0.5"])
    assert "--teacher gives one" in capsys.readouterr().err
    given = tmp_path / "results" / "given"
    assert wm811k_per_budget.main([*argv, "--runs", str(tmp_path / "given-runs"), "--out", str(given)]) == 0
    results = json.loads(given.with_suffix(".json").read_text())
    assert results["teacher_job"]["teacher"].endswith("teacher-vgg7/teacher.keras")
    assert results["teacher"]["title"] == "vgg7" and 0 <= results["teacher"]["test_exact_match"] <= 1
    assert not (tmp_path / "given-runs" / "teacher-vgg7").exists()  # no teacher trained
    assert "--teacher" in (models / "wm811k-21kb" / "README.md").read_text()
    assert [teacher_name(path) for path in (teacher, teacher / "teacher.keras")] == ["teacher-vgg7"] * 2

    # One model for both sources: trained on the MixedWM38 file and the fab's, read on each.
    both = tmp_path / "results" / "both"
    assert wm811k_per_budget.main(["--quick", "--with-mixedwm38", "--data", str(small_npz), "--budgets", "21KB",
                                   "--fab-data", str(fab), "--runs", str(tmp_path / "both-runs"),
                                   "--models", str(models), "--out", str(both)]) == 0
    results = json.loads(both.with_suffix(".json").read_text())
    mixed_test_maps = len(load_splits(small_npz)["test"])
    assert list(results["models"]) == ["both-21kb"] and len(results["training_data"]) == 2
    teacher = results["teacher_by_source"]  # the teacher read on each source's test maps
    assert 0 <= teacher["mixedwm38_test_exact_match"] <= 1 and teacher["wm811k_test"]["natural"]["maps"] == 18
    row, card = results["models"]["both-21kb"], json.loads((models / "both-21kb" / "model_card.json").read_text())
    assert row["thresholds_int8"] is None and card["accuracy"]["test_maps"] == 18 + mixed_test_maps
    assert row["test_logit_0"] == row["test"]  # shipped at logit 0
    assert row["mixedwm38_test"]["maps"] == mixed_test_maps and 0 <= row["mixedwm38_test"]["exact_match"] <= 1
    assert sum(c["support"] for c in row["test"]["natural"]["per_class"].values()) == 18
    readme = (models / "both-21kb" / "README.md").read_text()
    assert "MixedWM38's dev set and the real WM-811K dev set together" in readme

    cross = tmp_path / "results" / "cross"
    assert wm811k_cross_domain.main(["--no-shipped", "--model", str(models / "wm811k-21kb"), "WM-811K",
                                     "--fab-data", str(fab), "--data", str(small_npz), "--out", str(cross)]) == 0
    crossed = json.loads(cross.with_suffix(".json").read_text())["models"]["wm811k-21kb"]
    assert crossed["trained_on"] == "WM-811K" and crossed["card_resize"] == "max"
    assert set(crossed["by_resize"]) == {"nearest", "max"} and 0 <= crossed["mixedwm38_test_exact_match"] <= 1
    assert "| wm811k-21kb | WM-811K |" in cross.with_suffix(".md").read_text()


def test_students_learn_from_a_teacher_of_the_labelled_share_on_those_maps_or_every_map(fab, tmp_path):
    out = tmp_path / "results" / "unlabelled"
    argv = ["--quick", "--labelled", "0.5", "--fab-data", str(fab), "--runs", str(tmp_path / "runs"), "--out", str(out)]
    assert unlabelled_maps.main(argv) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    train = load_splits(fab, resize="max")["train"]
    assert results["training_maps"] == len(train) == 144 and results["labelled_maps"] == 72  # 8 of each class's 16
    rows = results["models"]
    assert list(rows) == ["teacher (vgg7, float, 8 views)", "separable8k, labelled maps only", "separable8k, every map"]
    assert [row["training_maps"] for row in rows.values()] == [72, 72, 144]
    assert all(row["test"]["natural"]["maps"] == 18 for row in rows.values())
    assert out.with_suffix(".md").read_text() == unlabelled_maps.markdown(results)
    # Run again: every stage is reused, and the figures are the same.
    assert unlabelled_maps.main(argv) == 0
    assert json.loads(out.with_suffix(".json").read_text())["models"] == rows
    with pytest.raises(SystemExit):
        unlabelled_maps.main([*argv, "--labelled", "1"])


def test_teachers_with_rare_classes_weighed_more_are_read_class_by_class(fab, tmp_path, capsys):
    out, runs = tmp_path / "results" / "balance", tmp_path / "runs"
    arguments = ["--quick", "--fab-data", str(fab), "--runs", str(runs), "--out", str(out), "--balance", "0", "1",
                 "--seeds", "0", "1"]
    assert wm811k_teacher_balance.main(arguments) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == "python -m benchmarks.wm811k_teacher_balance --quick --balance 0 1 --seeds 0 1"
    assert list(results["teachers"]) == [f"balance {p}, seed {s}" for p in (0, 1) for s in (0, 1)]
    assert list(results["ensembles"]) == ["balance 0, ensemble of seeds 0, 1", "balance 1, ensemble of seeds 0, 1"]
    for row in [*results["teachers"].values(), *results["ensembles"].values()]:
        assert set(row["figures"]) == {"val_views1", "val_views8", "test_views1", "test_views8"}
        test = row["figures"]["test_views8"]
        assert test["natural"]["maps"] == 18 and 0 <= test["balanced"]["macro_f1"] <= 1
        assert sum(c["support"] for c in test["natural"]["per_class"].values()) == 18
    for power in ("0", "1"):
        seeds = [row["figures"]["test_views8"]["balanced"]["macro_f1"] for row in results["teachers"].values()
                 if f"{row['balance']:g}" == power]
        spread = results["seed_spread"][power]
        assert (spread["min"], spread["max"]) == (min(seeds), max(seeds)) and spread["mean"] == pytest.approx(
            sum(seeds) / 2)
    for row in results["teachers"].values():
        config = json.loads((runs / f"vgg7-balance{row['balance']:g}-seed{row['seed']}" / "config.json").read_text())
        assert config["arguments"].get("balance", 0.0) == row["balance"] and config["arguments"]["resize"] == "max"
        assert config["arguments"]["seed"] == row["seed"]
    assert out.with_suffix(".md").read_text() == wm811k_teacher_balance.markdown(results)
    assert "| 1 | 0 | 1 |" in out.with_suffix(".md").read_text()
    assert "| 1 | ensemble of 0, 1 | - |" in out.with_suffix(".md").read_text()

    capsys.readouterr()  # run again: both teachers are reused, not trained
    assert wm811k_teacher_balance.main(arguments) == 0
    assert "Epoch" not in capsys.readouterr().out

    # Another recipe: more epochs, from another teacher's weights, in run directories of its own.
    start = runs / "vgg7-balance0-seed0"
    assert wm811k_teacher_balance.main([*arguments[:7], "--balance", "0", "--epochs", "3", "--init", str(start)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    start = start / "teacher.keras"  # what the run records of it
    assert results["command"].endswith(f"--quick --balance 0 --epochs 3 --init {repo_relative(start)}")
    run = runs / "vgg7-balance0-seed0-epochs3-init-vgg7-balance0-seed0"
    assert results["teachers"]["balance 0, seed 0"]["run"] == repo_relative(run)
    assert json.loads((run / "config.json").read_text())["arguments"]["init"] == str(start)
    assert "starting from the weights of" in out.with_suffix(".md").read_text()


def test_teachers_trained_without_an_audits_suspects_are_read_on_all_and_on_the_unsuspected_test_maps(fab, tmp_path,
                                                                                                       capsys):
    data = load_wafer_maps(fab, "max")
    split = stratified_split(data.pattern_ids, seed=0)
    suspects = [*split.train[:5], *split.test[:3]]
    audit = tmp_path / "audit.json"  # what python -m kd_keras.audit_labels writes, as far as it is read
    write_json(audit, {"maps": len(data), "suspects": [{"index": int(row), "given": flags_name(data.labels[row])}
                                                       for row in suspects]})
    out, runs = tmp_path / "results" / "balance", tmp_path / "runs"
    arguments = ["--quick", "--fab-data", str(fab), "--runs", str(runs), "--out", str(out), "--balance", "0.5",
                 "--without-suspects", str(audit)]
    assert wm811k_teacher_balance.main(arguments) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["command"] == ("python -m benchmarks.wm811k_teacher_balance --quick --balance 0.5 "
                                  f"--without-suspects {repo_relative(audit)}")
    assert list(results["teachers"]) == ["balance 0.5, seed 0", "balance 0.5, seed 0, without suspects"]
    assert (results["test_maps"], results["clean_test_maps"], results["suspects_in_training"]) == (18, 15, 5)
    for row in results["teachers"].values():
        assert row["figures"]["test_views8"]["natural"]["maps"] == 18
        assert row["figures"]["test_clean_views8"]["natural"]["maps"] == 15
        assert row["figures"]["val_views8"]["natural"]["maps"] == 18  # validation keeps every map it is dealt
    configs = {row["without_suspects"]: json.loads((runs / Path(row["run"]).name / "config.json").read_text())
               ["arguments"] for row in results["teachers"].values()}
    assert configs[False].get("drop_suspects") is None  # left out of the record, as before it existed
    assert Path(configs[True]["drop_suspects"]).resolve() == audit.resolve()
    markdown = out.with_suffix(".md").read_text()
    assert markdown == wm811k_teacher_balance.markdown(results)
    assert "| 0.5 | 0 | without suspects |" in markdown and "| 0.5 | 0 | all |" in markdown
    assert "the 15 test maps the audit does not suspect (of 18)" in markdown

    # An audit of other maps is refused, naming it, before anything is trained.
    other = tmp_path / "other.json"
    write_json(other, {"maps": 3, "suspects": []})
    with pytest.raises(SystemExit) as refused:
        wm811k_teacher_balance.main(["--quick", "--fab-data", str(fab), "--runs", str(tmp_path / "none"),
                                     "--without-suspects", str(other)])
    assert refused.value.code == 2
    assert f"--without-suspects: {other}: an audit of 3 maps" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_balancing_power_outside_0_to_1_is_refused_before_any_work(fab, tmp_path, capsys):
    with pytest.raises(SystemExit):
        wm811k_teacher_balance.main(["--fab-data", str(fab), "--runs", str(tmp_path / "runs"), "--balance", "2"])
    assert "argument --balance: the balancing power must be between 0 and 1, got 2" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.unit
def test_an_ensemble_of_teachers_reads_the_mean_of_their_logits():
    first = {"val_views1": {"logits": np.array([[2.0, -1.0], [0.0, 4.0]])}}
    second = {"val_views1": {"logits": np.array([[-4.0, -1.0], [1.0, 0.0]])}}
    mean = wm811k_teacher_balance.ensemble_outputs([first, second])["val_views1"]["logits"]
    np.testing.assert_array_equal(mean, [[-1.0, -1.0], [0.5, 2.0]])


@pytest.mark.unit
def test_a_fab_model_readme_says_which_teacher_it_learnt_from():
    final, row = wm811k_per_budget.STUDENTS[0], {"parameters": 8_784}
    state = {"settings": {"epochs": 40}, "epoch": 40, "best_epoch": 31, "wait": 9}
    ours, ensemble = {"title": "vgg7"}, {"title": "ensemble of 2 teachers"}
    plain, balanced, of_ensemble = (
        wm811k_per_budget.model_readme(final, row, state, "max", False, wm811k_per_budget.teacher_description(
            teacher, balance)) for teacher, balance in ((ours, 0.0), (ours, 0.5), (ensemble, 0.0)))
    assert "weighed" not in plain and "from a vgg7 teacher (Hinton T=4;" in plain
    assert "from a vgg7 teacher trained with rare classes weighed more (balance 0.5) (Hinton T=4;" in balanced
    assert "from an ensemble of 2 teachers (Hinton T=4;" in of_ensemble
