"""Decision thresholds per defect: chosen on validation maps, written into a model directory,
and read back alike by every consumer (the harness, `tflite.evaluate`, the settings header)."""

import json
import shutil

import numpy as np
import pytest

from kd_keras.data import dihedral_views, load_splits, save_mixedwm38, save_wm811k
from kd_keras.data.labels import PATTERN_NAMES, PATTERNS
from kd_keras.data.wm811k import CLASS_NAMES, classes_of_labels
from kd_keras.errors import FileFormatError
from kd_keras.evaluation import fab_class_figures, tune_thresholds
from kd_keras.inference import predict
from kd_keras.tasks import CLASSIFY, MULTILABEL
from tests.helpers import npz_of, read_sample_map
from tflite import calibrate, evaluate
from tflite.card import CARD_FILE, ModelCard, write_model_readme
from tflite.deploy import next_commands
from tflite.harness import compare_with_references
from tflite.micro import Int8Model
from tflite.thresholds import calibrate_model

TIER = "integration"  # tests marked with no tier of their own (conftest.py)


def test_tuned_thresholds_win_back_a_rare_class_read_as_none():
    # Defect 0's maps have logits near -0.5, the others' near -2: at logit 0 every one reads
    # `none`; the best threshold for class-balanced macro F1 lies between the two groups.
    labels = np.zeros((40, 8), np.uint8)
    labels[:4, 0] = 1
    logits = np.full((40, 8), -3.0)
    logits[:, 0] = np.where(labels[:, 0] == 1, -0.5, -2.0)
    balanced_f1 = lambda readings, labels: fab_class_figures(readings, labels)["balanced"]["macro_f1"]  # noqa: E731
    thresholds = tune_thresholds(logits, labels, grid=np.arange(-3, 1.01, 0.25), score=balanced_f1)
    assert -2.0 <= thresholds[0] < -0.5 and (thresholds[1:] == 0).all()
    assert balanced_f1((logits > thresholds).astype(np.uint8), labels) == 1.0
    assert balanced_f1((logits > 0).astype(np.uint8), labels) < 1.0


@pytest.fixture
def model_dir(trained_student, tmp_path):
    _, root, _ = trained_student
    directory = tmp_path / "net1"
    shutil.copytree(root / "out", directory)
    write_model_readme(directory, "Net-1 for a test.", "python make_it.py")
    return directory


def test_the_model_reads_each_defect_against_its_threshold_over_every_view(model_dir, parts):
    maps = parts["test"].maps[:20]
    flatbuffer = (model_dir / "model.tflite").read_bytes()
    thresholds = np.random.default_rng(0).integers(-40, 40, 8)
    outputs = Int8Model(flatbuffer).run_micro(maps)[0]
    readings = CLASSIFY.predicted_patterns(Int8Model(flatbuffer, thresholds).outputs(maps))
    np.testing.assert_array_equal(readings, outputs > thresholds)
    # Eight views: the firmware's rule, the sum over the views of each output less its threshold above 0.
    sums = sum(Int8Model(flatbuffer).run_micro(view)[0].astype(int) - thresholds for view in dihedral_views(maps))
    readings = CLASSIFY.predicted_patterns(Int8Model(flatbuffer, thresholds).outputs(maps, views=8))
    np.testing.assert_array_equal(readings, sums > 0)


def test_calibrate_writes_the_thresholds_everywhere_a_reader_looks(model_dir, parts, tmp_path, capsys):
    data = npz_of(tmp_path / "data.npz", parts["train"], parts["val"], parts["test"])
    flatbuffer = (model_dir / "model.tflite").read_bytes()
    assert calibrate.main([str(model_dir), "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    card = ModelCard.read(model_dir / CARD_FILE)
    thresholds = card.output(MULTILABEL).thresholds_int8
    assert len(thresholds) == 8 and f"thresholds (int8) {thresholds}" in printed
    assert "exact-match on the validation split" in printed
    assert (model_dir / "model.tflite").read_bytes() == flatbuffer  # the model itself is unchanged
    assert (f"kDetectionThresholdInt8[kNumDefects] = {{{', '.join(map(str, thresholds))}}};"
            in (model_dir / "model_settings.h").read_text())
    readme = (model_dir / "README.md").read_text()
    assert "Made by `python make_it.py`, then `python -m tflite.calibrate" in readme
    assert "its own threshold, chosen on validation maps" in readme

    # The card's test figure is what `tflite.evaluate` reads on the file's test maps, thresholds and all.
    test = load_splits(data, seed=0)["test"]
    assert evaluate.main([str(model_dir), "--data", str(npz_of(tmp_path / "test.npz", test)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["exact_match"] == card.accuracy["int8_exact_match"]
    # The demo's sample map is one the model reads right with its thresholds.
    sample, pattern = read_sample_map(model_dir)
    reading = CLASSIFY.predicted_patterns(Int8Model(flatbuffer, thresholds).outputs(sample[None], card.views))
    assert (reading[0] == PATTERNS[PATTERN_NAMES.index(pattern)]).all()

    # Chosen on validation, they read it at least as well as logit 0 did; chosen again, the same.
    report = calibrate_model(model_dir, data)
    assert report["val_after"] >= report["val_before"] and report["thresholds"] == thresholds


def fab_npz(path, parts):
    """The synthetic maps of one defect or none, as a WM-811K-layout file at `path`."""
    maps = np.concatenate([parts[name].maps for name in ("train", "val", "test")])
    labels = np.concatenate([parts[name].labels for name in ("train", "val", "test")])
    single = labels.sum(axis=1) <= 1
    save_wm811k(path, maps[single], classes_of_labels(labels[single]))
    return path


def test_calibrate_on_fab_maps_chooses_for_class_balanced_macro_f1(model_dir, parts, tmp_path, capsys):
    fab = fab_npz(tmp_path / "fab.npz", parts)
    assert calibrate.main([str(model_dir), "--data", str(fab)]) == 0
    printed = capsys.readouterr().out
    assert "balanced-macro-f1 on the validation split" in printed and ", class-balanced 0." in printed
    assert len(ModelCard.read(model_dir / CARD_FILE).output(MULTILABEL).thresholds_int8) == len(CLASS_NAMES) - 1


def test_a_model_of_two_sources_is_calibrated_for_the_mean_of_their_figures(model_dir, parts, tmp_path, capsys):
    mixed = npz_of(tmp_path / "mixed.npz", parts["train"], parts["val"], parts["test"])
    fab = fab_npz(tmp_path / "fab.npz", parts)
    assert calibrate.main([str(model_dir), "--data", str(mixed), str(fab)]) == 0
    printed = capsys.readouterr().out
    assert "the mean of mixed.npz's exact-match and fab.npz's balanced-macro-f1 on the validation splits" in printed
    assert f"{mixed}: exact-match on the validation split" in printed
    assert f"{fab}: balanced-macro-f1 on the validation split" in printed
    card = ModelCard.read(model_dir / CARD_FILE)
    thresholds = card.output(MULTILABEL).thresholds_int8
    splits = [load_splits(path, seed=0) for path in (mixed, fab)]
    assert card.accuracy["test_maps"] == sum(len(parts["test"]) for parts in splits)
    assert f"chosen on the validation split of {mixed}, {fab} (seed 0)" in card.accuracy["int8_thresholds"]
    assert f"--data {mixed} {fab}" in (model_dir / "README.md").read_text()

    # Chosen again, the same; the mean is of each file's figure, and each file's test figure is
    # what `tflite.evaluate` reads on that file's test maps.
    report = calibrate_model(model_dir, (mixed, fab))
    assert report["thresholds"] == thresholds and report["val_after"] >= report["val_before"]
    assert report["val_after"] == pytest.approx(np.mean([figures["val_after"] for figures in report["files"]]))
    assert [figures["test_maps"] for figures in report["files"]] == [len(parts["test"]) for parts in splits]
    assert report["files"][0]["test_fab_classes"] is None and report["files"][1]["test_fab_classes"]
    fab_test = npz_of(tmp_path / "fab_test.npz", splits[1]["test"])  # a MixedWM38-layout copy: exact match
    assert evaluate.main([str(model_dir), "--data", str(fab_test), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["exact_match"] == report["files"][1]["test_exact_match"]


def test_calibrate_refuses_what_it_cannot_do_and_writes_nothing(model_dir, segclass_student, small_npz, tmp_path,
                                                                capsys):
    before = {path.name: path.read_bytes() for path in model_dir.iterdir()}
    assert calibrate.main([str(model_dir), "--data", str(small_npz), "--metric", "balanced-macro-f1"]) == 1
    assert "needs a WM-811K-layout file" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in model_dir.iterdir()} == before
    _, segclass_dir = segclass_student[:2]
    assert calibrate.main([str(segclass_dir / "out"), "--data", str(small_npz)]) == 1
    assert "decision thresholds are for a classifier's defect outputs" in capsys.readouterr().err


def test_a_card_with_thresholds_of_the_wrong_length_is_refused(model_dir):
    record = json.loads((model_dir / CARD_FILE).read_text())
    record["outputs"][0]["thresholds_int8"] = [0, 1, 2]
    with pytest.raises(FileFormatError, match=r"outputs\[0\]\.thresholds_int8 should be one int8 value per defect"):
        ModelCard.from_dict(record, "model_card.json")


def test_compare_decides_the_float_model_with_the_int8_models_thresholds(trained_student, model_dir, parts):
    model, _, _ = trained_student
    flatbuffer = (model_dir / "model.tflite").read_bytes()
    scale, zero_point = Int8Model(flatbuffer).output_quantizations[0]
    thresholds = zero_point + np.array([-6, -4, -2, 0, 2, 4, 6, 8])
    test = parts["test"]
    report = compare_with_references(Int8Model(flatbuffer, thresholds), model, test)
    float_readings = predict(model, test.maps) > (thresholds - zero_point) * scale
    assert report["float_exact_match"] == (float_readings == test.labels).all(axis=1).mean()
    assert report["disagreement_rate"] < 0.1


@pytest.mark.unit
def test_a_run_on_fab_maps_is_told_to_choose_thresholds_next(tmp_path):
    fab, mixed = tmp_path / "fab.npz", tmp_path / "mixed.npz"
    save_wm811k(fab, [np.ones((20, 30), np.uint8)] * 2, ["none", "Scratch"])
    save_mixedwm38(mixed, np.ones((2, 52, 52), np.uint8), np.zeros((2, 8), np.uint8))
    rows = {"net2": {"directory": str(tmp_path / "net2")}}
    commands = next_commands(rows, {"data": fab, "seed": 0})
    assert commands[0].startswith(f"python -m tflite.calibrate {tmp_path / 'net2'} --data {fab}")
    assert not any("tflite.calibrate" in command for command in next_commands(rows, {"data": mixed, "seed": 0}))
    both = next_commands(rows, {"data": (mixed, fab), "seed": 0})  # one model of both: evaluated on each
    assert not any("tflite.calibrate" in command for command in both)
    assert [command for command in both if "tflite.evaluate" in command] == [
        f"python -m tflite.evaluate {tmp_path / 'net2'} --data {path}" for path in (mixed, fab)]
