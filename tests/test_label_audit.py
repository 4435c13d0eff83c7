"""The label audit (`kd_keras.label_audit`, `python -m kd_keras.audit_labels`): every map read out of
fold, suspects found by confident learning, the report, and the labels never touched."""

import json
import re

import keras
import numpy as np
import pytest

from benchmarks import REPO, label_audit as label_audit_benchmark, repo_relative
from kd_keras.audit_labels import main
from kd_keras.data import (
    PATTERNS, generate_fab_maps, generate_wafer_maps, load_mixedwm38, load_wafer_maps, read_suspects, save_mixedwm38,
    save_wm811k, split_data,
)
from kd_keras.data.labels import DEFECT_ABBREVIATIONS, flags_name
from kd_keras.errors import FileFormatError
from kd_keras.fileio import write_json
from kd_keras.jobs import DistillJob, TeacherJob
from kd_keras.label_audit import HELD_OUT_FILE, audit_markdown, find_suspects, fold_of_each_map, out_of_fold_logits
from tflite.export import load_converted
from tflite.harness import fab_figures

TIER = "unit"


def confident_readings(pattern_ids, views=8, seed=0):
    """(N, views, 8) logits that read each map as `pattern_ids` says, confidently, with noise."""
    rng = np.random.default_rng(seed)
    flags = PATTERNS[pattern_ids].astype(float)
    return np.where(flags[:, None] > 0, 4.0, -4.0) + rng.normal(0, 0.5, (len(flags), views, 8))


def test_folds_deal_each_pattern_out_evenly_and_depend_on_the_seed():
    pattern_ids = np.repeat(np.arange(38), 13)
    fold = fold_of_each_map(pattern_ids, folds=4, seed=0)
    for pattern_id in range(38):
        counts = np.bincount(fold[pattern_ids == pattern_id], minlength=4)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(fold, fold_of_each_map(pattern_ids, folds=4, seed=0))
    assert not np.array_equal(fold, fold_of_each_map(pattern_ids, folds=4, seed=1))
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_of_each_map(pattern_ids, folds=1)


def test_suspects_are_the_confidently_contradicted_labels_surest_first_with_their_evidence():
    true_ids = np.arange(200) % 38
    readings = confident_readings(true_ids)
    given = PATTERNS[true_ids].copy()
    flipped = {17: 0, 60: 9, 131: 4}  # map: the label it is given instead (Normal, C+EL, ER)
    for row, wrong_id in flipped.items():
        given[row] = PATTERNS[wrong_id]
    # Map 131 is read with a quarter of the usual confidence: a doubt, but weaker than the
    # teacher's certainty elsewhere, so no suspect. Map 60 has one wrong flag, and one view agrees
    # with its label while the other seven are surer than usual.
    readings[131] *= 0.25
    readings[60, 0] = np.where(PATTERNS[9] > 0, 4.0, -4.0)
    readings[60, 1:] *= 1.5
    suspects = find_suspects(readings, given, DEFECT_ABBREVIATIONS)
    assert [s.index for s in suspects] == [17, 60]  # two wrong flags before one
    assert [s.label_probability for s in suspects] == sorted(s.label_probability for s in suspects)
    by_index = {s.index: s for s in suspects}
    assert by_index[17].given == "Normal" and by_index[17].suspected == flags_name(PATTERNS[true_ids[17]])
    assert by_index[17].views_agreeing == 8 and by_index[60].views_agreeing == 7
    assert set(by_index[60].suspect_defects) == {
        name for name, old, new in zip(DEFECT_ABBREVIATIONS, PATTERNS[9], PATTERNS[true_ids[60]]) if old != new}
    p = np.array(by_index[17].probabilities)  # given Normal: every flag absent
    assert by_index[17].label_probability == pytest.approx(np.prod(1 - p), rel=1e-2)
    assert by_index[17].label_probability < 1e-3


def test_no_suspects_where_the_reading_agrees_and_a_clear_error_for_mismatched_shapes():
    ids = np.arange(76) % 38
    assert find_suspects(confident_readings(ids), PATTERNS[ids], DEFECT_ABBREVIATIONS) == []
    with pytest.raises(ValueError, match=r"\(N, 1 or 8 views, 8\) logits"):
        find_suspects(confident_readings(ids)[:, :, :7], PATTERNS[ids], DEFECT_ABBREVIATIONS)
    with pytest.raises(ValueError, match="views"):
        find_suspects(confident_readings(ids[:10]), PATTERNS[ids], DEFECT_ABBREVIATIONS)


def untrained_model():
    return keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Flatten(), keras.layers.Dense(8)])


@pytest.mark.integration
def test_each_map_is_read_by_the_fold_that_never_trained_on_it_and_an_audit_goes_on(tmp_path):
    data = generate_wafer_maps(1520, seed=0)
    row_of = {data.maps[i].tobytes(): i for i in range(len(data))}
    assert len(row_of) == len(data)  # every map is its own: rows are known by their bytes
    trained = []

    def train(parts, fold_dir):
        rows = {name: {row_of[m.tobytes()] for m in part.maps} for name, part in parts.items()}
        trained.append((fold_dir.name, rows))
        return untrained_model()

    logits, seconds = out_of_fold_logits(data, tmp_path, train, folds=3, seed=0)
    assert logits.shape == (1520, 8, 8) and [name for name, _ in trained] == ["fold0", "fold1", "fold2"]
    fold = fold_of_each_map(data.pattern_ids, folds=3, seed=0)
    for number, (_, rows) in enumerate(trained):
        held_out = set(np.flatnonzero(fold == number).tolist())
        assert rows["val"] and not rows["train"] & rows["val"]
        assert rows["train"] | rows["val"] == set(range(1520)) - held_out
        stored = np.load(tmp_path / f"fold{number}" / HELD_OUT_FILE, allow_pickle=False)
        np.testing.assert_array_equal(stored["maps"], sorted(held_out))
    # Each view is read on its own: a model that is not rotation-invariant reads them differently.
    assert not np.allclose(logits[:, 0], logits[:, 2])
    # Run again: nothing is trained, the same readings come back.
    trained.clear()
    again, seconds_again = out_of_fold_logits(data, tmp_path, train, folds=3, seed=0)
    np.testing.assert_array_equal(again, logits)
    assert trained == [] and seconds_again == seconds and len(seconds) == 3
    # Too few maps for the teachers' validation: said, not trained without it.
    with pytest.raises(ValueError, match="too few maps for this audit"):
        out_of_fold_logits(generate_wafer_maps(380, seed=0), tmp_path / "small", train, folds=2)


def test_read_suspects_refuses_what_is_no_audit_of_this_file_naming_it(tmp_path):
    data = generate_wafer_maps(76, seed=0)
    report = tmp_path / "label_audit.json"
    given = flags_name(data.labels[3])
    write_json(report, {"maps": 76, "suspects": [{"index": 3, "given": given}]})
    np.testing.assert_array_equal(read_suspects(report, data), [3])
    for wrong, message in (({"maps": 76, "suspects": "none"}, "not a label audit"),
                           ({"maps": 75, "suspects": []}, "an audit of 75 maps, not of the 76 maps"),
                           ({"maps": 76, "suspects": [{"index": 3, "given": "Normal" if given != "Normal" else "C"}]},
                            f"suspect 3 is given .* holds {re.escape(given)}: an audit of other labels"),
                           ({"maps": 76, "suspects": [{"index": 76, "given": "C"}]}, "suspect 76 is no row of")):
        write_json(report, wrong)
        with pytest.raises(FileFormatError, match=f"label_audit.json: {message}"):
            read_suspects(report, data)


def test_dropped_suspects_leave_training_only_and_get_their_own_teacher(tmp_path):
    data = generate_wafer_maps(380, seed=0)
    whole = split_data(data, seed=0)
    dropped = split_data(data, seed=0, drop_from_train=[0, 1, 2, 3, 4])
    for name in ("val", "test"):
        np.testing.assert_array_equal(dropped[name].maps, whole[name].maps)
    left_out = len(whole["train"]) - len(dropped["train"])
    assert 0 < left_out <= 5  # those of the five rows the split deals to training
    # Through a job: the audit's suspects leave the training split, and a distillation trains its
    # own teacher on what is left, in a directory of its own.
    report = tmp_path / "label_audit.json"
    write_json(report, {"maps": 380, "suspects": [{"index": i, "given": flags_name(data.labels[i])}
                                                  for i in range(5)]})
    parts = TeacherJob(synthetic_maps=380, drop_suspects=report).splits()
    assert len(parts["train"]) == len(dropped["train"]) and len(parts["val"]) == len(whole["val"])
    job = DistillJob(synthetic_maps=380, drop_suspects=report)
    assert job.teacher_dir.name == "teacher-vgg7-synthetic380-without-suspects-seed0"
    assert job.teacher_arguments()["drop_suspects"] == report
    assert "drop_suspects" not in DistillJob(synthetic_maps=380).teacher_arguments()  # older runs still match


@pytest.mark.e2e
def test_audit_command_finds_labels_flipped_on_purpose_and_leaves_the_file_alone(tmp_path, capsys):
    data = generate_wafer_maps(1520, seed=0)
    labels = data.labels.copy()
    flipped = np.random.default_rng(1).choice(len(labels), 12, replace=False)
    labels[flipped] = PATTERNS[(data.pattern_ids[flipped] + 5) % 38]
    path = tmp_path / "maps.npz"
    save_mixedwm38(path, data.maps, labels)
    before = path.read_bytes()
    out = tmp_path / "audit"
    command = ["--data", str(path), "--out", str(out), "--folds", "2", "--epochs", "3", "--shown", "6",
               "--balance", "0.5"]
    assert main(command) == 0
    assert path.read_bytes() == before
    report = json.loads((out / "label_audit.json").read_text())
    # The teachers weigh rarer patterns as asked, and the report says so.
    assert report["settings"]["balance"] == 0.5
    assert json.loads((out / "fold1" / "training.json").read_text())["settings"]["balance"] == 0.5
    suspects = report["suspects"]
    # The teachers learned, and the labels flipped on purpose are the surest doubts: of 1,520 maps,
    # chance would put 0.1 of them among the first 12.
    assert report["out_of_fold_exact_match"] > 0.1
    assert len({s["index"] for s in suspects[:12]} & set(flipped.tolist())) >= 3
    by_index = {s["index"]: s for s in suspects}
    stored = load_mixedwm38(path)
    for s in suspects:
        assert s["given"] == flags_name(stored.labels[s["index"]]) and s["suspected"] != s["given"]
    for row in set(flipped.tolist()) & set(by_index):
        assert by_index[row]["given"] == flags_name(labels[row])
    per_split = report["suspects_per_split"]
    assert per_split["all"] == len(suspects) == sum(per_split[name] for name in ("train", "val", "test"))
    assert (out / "label_audit.md").read_text() == audit_markdown(report)
    assert (out / "label_audit.png").stat().st_size > 0
    np.testing.assert_array_equal(read_suspects(out / "label_audit.json", stored), sorted(by_index))
    assert f"{len(suspects):,} of 1,520 labels are suspect" in capsys.readouterr().out
    # Again: the folds are reused, not trained again; the same report comes back.
    trained_at = (out / "fold0" / "training.json").stat().st_mtime_ns
    assert main(command) == 0
    assert (out / "fold0" / "training.json").stat().st_mtime_ns == trained_at
    assert json.loads((out / "label_audit.json").read_text())["suspects"] == suspects


@pytest.mark.e2e
def test_audit_command_errors_name_the_problem(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "a")]) == 1
    assert "missing.npz" in capsys.readouterr().err
    path = tmp_path / "maps.npz"
    small = generate_wafer_maps(76, seed=0)
    save_mixedwm38(path, small.maps, small.labels)
    assert main(["--data", str(path), "--out", str(tmp_path / "a"), "--folds", "1"]) == 1
    assert "at least 2 folds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["--data", str(path), "--out", str(tmp_path / "a"), "--balance", "2"])
    assert refused.value.code == 2
    assert "the balancing power must be between 0 and 1, got 2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.e2e
def test_benchmark_reads_the_shipped_models_on_all_test_maps_and_on_those_not_suspected(tmp_path):
    out = tmp_path / "results" / "label_audit"
    assert label_audit_benchmark.main(["--quick", "--models", "kd-21kb", "--runs", str(tmp_path / "runs"),
                                       "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    row, audit = results["shipped_models"]["kd-21kb"], results
    assert list(row["figures"]) == ["exact_match"] and row["test_maps"] == 152
    assert row["test_maps"] - row["clean_test_maps"] == audit["suspects_per_split"]["test"]
    assert 0 <= row["figures"]["exact_match"]["all"] <= 1 and 0 <= row["figures"]["exact_match"]["clean"] <= 1
    assert audit["settings"]["balance"] == 0 and "resize" not in audit  # MixedWM38's maps: unweighted, all 52x52
    assert out.with_suffix(".md").read_text() == label_audit_benchmark.markdown(results)
    assert out.with_suffix(".png").is_file() == bool(audit["suspects"])
    data = generate_wafer_maps(1520, seed=0)  # what --quick audits: its results are an audit report of it
    assert len(read_suspects(out.with_suffix(".json"), data)) == len(audit["suspects"])

    # --audit: the same report, the models read again (here one more), no fold trained again.
    again = tmp_path / "again" / "label_audit"
    assert label_audit_benchmark.main(["--quick", "--models", "kd-21kb", "kd-248kb", "--runs", str(tmp_path / "none"),
                                       "--out", str(again), "--audit", str(out.with_suffix(".json"))]) == 0
    reread = json.loads(again.with_suffix(".json").read_text())
    assert not (tmp_path / "none").exists()
    recorded = repo_relative(out.with_suffix(".json"))  # as the other results files record paths
    assert reread["command"] == f"python -m benchmarks.label_audit --quick --audit {recorded}"
    assert reread["shipped_models"]["kd-21kb"] == row and set(reread["shipped_models"]) == {"kd-21kb", "kd-248kb"}
    unchanged = ("command", "shipped_models", "wall_seconds")
    assert {k: v for k, v in reread.items() if k not in unchanged} == {k: v for k, v in results.items()
                                                                       if k not in unchanged}


@pytest.mark.e2e
def test_benchmark_audits_fab_maps_as_their_teachers_train_and_reads_the_fab_models_on_their_figures(tmp_path):
    fab = generate_fab_maps(720, seed=0)  # 80 maps of each of WM-811K's 9 classes, on many grids
    path = tmp_path / "fab.npz"
    save_wm811k(path, list(fab.maps()), fab.classes)
    out = tmp_path / "results" / "label_audit"
    assert label_audit_benchmark.main(["--quick", "--data", str(path), "--models", "wm811k-21kb", "--runs",
                                       str(tmp_path / "runs"), "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    # Audited as WM-811K's teachers are trained: rarer classes weighed more, maps brought to 52x52 by max.
    assert results["settings"]["balance"] == label_audit_benchmark.FAB_BALANCE
    assert results["resize"] == label_audit_benchmark.FAB_RESIZE == "max"
    assert results["command"] == f"python -m benchmarks.label_audit --quick --data {repo_relative(path)}"
    # The model's figures are WM-811K's, as its own benchmark reads them, on every test map and on the rest.
    data = load_wafer_maps(path, "max")
    test = split_data(data, seed=0)["test"]
    card, int8 = load_converted(REPO / "models" / "wm811k-21kb")
    expected = fab_figures(int8, test, card.views)
    row = results["shipped_models"]["wm811k-21kb"]
    assert row["test_maps"] == len(test) == 72
    assert row["figures"]["balanced_macro_f1"]["all"] == pytest.approx(expected["balanced"]["macro_f1"])
    assert row["figures"]["accuracy"]["all"] == pytest.approx(expected["natural"]["accuracy"])
    if row["clean_test_maps"] == row["test_maps"]:
        assert row["figures"]["balanced_macro_f1"]["clean"] == row["figures"]["balanced_macro_f1"]["all"]
    markdown = out.with_suffix(".md").read_text()
    assert markdown == label_audit_benchmark.markdown(results)
    assert "balance 0.5" in markdown and "brought to 52x52 by `max`" in markdown
    assert f"| wm811k-21kb | int8 balanced macro f1 | {expected['balanced']['macro_f1']:.3f} |" in markdown
    assert len(read_suspects(out.with_suffix(".json"), data)) == len(results["suspects"])


def test_benchmark_refuses_an_audit_report_of_other_maps_naming_it(tmp_path, capsys):
    report = tmp_path / "other.json"
    report.write_text(json.dumps({"maps": 3, "suspects": []}))
    with pytest.raises(SystemExit) as exit_info:
        label_audit_benchmark.main(["--quick", "--audit", str(report), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert f"--audit: {report} is no report of this benchmark: {report}: an audit of 3 maps" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.json"]
