"""A converted classifier's decision threshold per defect, chosen on validation maps in TFLite Micro.

A classifier reads a defect as present when its int8 output is above logit 0 (probability 0.5).
Where classes are very unequal, as on a fab's maps (WM-811K: 59% `none`), a model reads many of a
defect's doubtful maps as `none`: that line is where the training data's class balance put it,
not where the figure that matters is best. `calibrate_model` chooses one threshold per defect,
in whole int8 steps, on the validation split (one defect at a time:
`kd_keras.evaluation.tune_thresholds`), for the figure the user names (`METRICS`: class-balanced
macro F1 on a fab's maps by default, exact match on MixedWM38's), and writes them into the model
directory: the card's `thresholds_int8`, the settings header's `kDetectionThresholdInt8`, a
sample map the model still reads right, and the card's int8 test figures measured with them.
The model itself is unchanged; the firmware, `tflite.evaluate` and every other reader of the
card decide alike.

Example:

>>> import numpy as np
>>> from kd_keras.data import generate_wafer_maps
>>> from kd_keras.models import build_student
>>> from tflite.micro import Int8Model
>>> from tflite.quantize import convert_int8
>>> data = generate_wafer_maps(76, seed=0)
>>> int8 = Int8Model(convert_int8(build_student("net2", seed=0), data.maps))
>>> logits = int8.outputs(data.maps)[MULTILABEL]
>>> thresholds = choose_thresholds(logits, data.labels, int8.output_quantizations[0], METRICS["exact-match"])
>>> len(thresholds), all(-128 <= t <= 127 for t in thresholds)
(8, True)
"""

import dataclasses
from pathlib import Path

import numpy as np

from kd_keras.data import DEFAULT_RESIZE, WaferMaps, data_paths, file_layout, load_splits
from kd_keras.evaluation import exact_match, fab_class_figures, tune_thresholds
from kd_keras.fileio import write_directory
from kd_keras.tasks import CLASSIFY, MULTILABEL
from tflite.c_sources import model_settings_h, sample_map_h
from tflite.card import CARD_FILE, rewrite_model_readme
from tflite.export import SAMPLE_MAP_FILE, demo_sample, load_converted
from tflite.micro import Int8Model

# What a threshold can be chosen for: f((N, 8) readings, (N, 8) labels) -> a number, higher better.
METRICS = {
    "exact-match": exact_match,
    "macro-f1": lambda readings, labels: fab_class_figures(readings, labels)["natural"]["macro_f1"],
    "balanced-macro-f1": lambda readings, labels: fab_class_figures(readings, labels)["balanced"]["macro_f1"],
}
FAB_METRICS = ("macro-f1", "balanced-macro-f1")  # these read one class a map: WM-811K-layout files only
# The thresholds tried for each defect, in int8 steps from logit 0: mostly below it, where a
# defect the training maps hold rarely wins its doubtful maps back from `none`.
STEPS = np.arange(-32, 9)


def choose_thresholds(logits, labels, quantization, score):
    """The int8 threshold per defect that maximizes `score` (f(readings, labels), as `METRICS`)
    on maps whose defect logits, measured from logit 0, are `logits` (N, 8) and whose flags are
    `labels`; `quantization`: the output's (scale, zero point)."""
    scale, zero_point = quantization
    steps = tune_thresholds(logits, labels, grid=STEPS * scale, score=score) / scale
    return [int(np.clip(zero_point + np.round(step), -128, 127)) for step in steps]


def file_metric(data_path, metric=None):
    """The figure thresholds are chosen for on `data_path`'s maps: `metric`, by default
    class-balanced macro F1 on a WM-811K-layout file and exact match on a MixedWM38 one."""
    fab_maps = file_layout(data_path) == "wm811k"
    if metric in FAB_METRICS and not fab_maps:
        raise ValueError(f"--metric {metric} reads one class a map: it needs a WM-811K-layout file, and "
                         f"{data_path} is not one; use --metric exact-match")
    return metric or ("balanced-macro-f1" if fab_maps else "exact-match")


def file_slices(sizes):
    """Where each of several files' maps lie when joined one after another (`sizes` maps each)."""
    bounds = np.cumsum([0, *sizes])
    return [slice(start, end) for start, end in zip(bounds[:-1], bounds[1:])]


def mean_of_files(metrics, sizes):
    """score(readings, labels) on the maps of several files, one after another (`sizes` maps
    each): the mean over the files of each one's figure (`metrics`: its `METRICS` name).

    >>> score = mean_of_files(["exact-match", "exact-match"], [1, 3])
    >>> float(score(np.array([[1], [0], [0], [0]]), np.array([[1], [1], [0], [0]])))  # 1/1 and 2/3
    0.8333333333333333
    """
    slices = file_slices(sizes)
    return lambda readings, labels: np.mean([METRICS[metric](readings[part], labels[part])
                                             for metric, part in zip(metrics, slices)])


def file_figures(path, metric, parts, val_before, val_after, test_readings):
    """One file's figures in `calibrate_model`'s report, from its maps' readings."""
    labels = parts["test"].labels
    return {"data": str(path), "metric": metric,
            "val_before": float(METRICS[metric](val_before, parts["val"].labels)),
            "val_after": float(METRICS[metric](val_after, parts["val"].labels)),
            "test_maps": len(labels), "test_exact_match": float(exact_match(test_readings, labels)),
            "test_fab_classes": fab_class_figures(test_readings, labels) if file_layout(path) == "wm811k" else None}


def calibrate_model(model_dir, data_path, *, seed=0, metric=None, made_by=None):
    """Choose the thresholds of the classifier in `model_dir` on the validation split of
    `data_path` (seeded 80/10/10, maps resized as its card says) and write them into the directory.

    `data_path` may name several files (a model of several sources): each is split on its own, as
    training split it, and the thresholds maximize the mean of the files' figures on their
    validation maps. `metric`: the figure (`METRICS`), by default each file's own (`file_metric`).

    Returns {"metric", "thresholds", "val_before", "val_after", "accuracy", "files"}: what was
    maximized, and its value on validation with the card's thresholds before and with the new
    ones; the card's new accuracy figures (int8 in TFLite Micro on all the test maps); and per
    file {"data", "metric", "val_before", "val_after", "test_maps", "test_exact_match",
    "test_fab_classes"} (the class figures `fab_class_figures` on a fab's maps, else None).
    `made_by`: the command, added to the directory's README.md (when it has one) after the
    command that made it.
    """
    card, int8 = load_converted(model_dir)
    if card.task is not CLASSIFY:
        raise ValueError(f"{model_dir}: decision thresholds are for a classifier's defect outputs; this model's "
                         f"outputs are {', '.join(output.kind for output in card.outputs)}")
    paths = data_paths(data_path)
    metrics = [file_metric(path, metric) for path in paths]
    splits = [load_splits(path, seed=seed, resize=card.input.resize or DEFAULT_RESIZE) for path in paths]
    val, test = (WaferMaps.joined(parts[name] for parts in splits) for name in ("val", "test"))
    score = mean_of_files(metrics, [len(parts["val"]) for parts in splits])
    # One run over the validation maps: the outputs measured from logit 0, read with each set of thresholds.
    logits = Int8Model(int8.flatbuffer).outputs(val.maps, card.views)
    thresholds = choose_thresholds(logits[MULTILABEL], val.labels, int8.output_quantizations[0], score)
    calibrated = Int8Model(int8.flatbuffer, thresholds)
    readings_before, readings_after = (CLASSIFY.predicted_patterns(model.from_thresholds(logits))
                                       for model in (int8, calibrated))
    test_outputs = calibrated.outputs(test.maps, card.views)
    test_readings = CLASSIFY.predicted_patterns(test_outputs)
    val_slices, test_slices = (file_slices([len(parts[name]) for parts in splits]) for name in ("val", "test"))
    files = [file_figures(path, name, parts, readings_before[val_part], readings_after[val_part],
                          test_readings[test_part])
             for path, name, parts, val_part, test_part in zip(paths, metrics, splits, val_slices, test_slices)]
    chosen_for = metrics[0] if len(paths) == 1 else "the mean of " + " and ".join(
        f"{Path(path).name}'s {name}" for path, name in zip(paths, metrics))
    figures = CLASSIFY.figures(test_outputs, test)
    accuracy = {**card.accuracy, "test_maps": len(test), **{f"int8_{name}": value for name, value in figures.items()},
                "int8_thresholds": f"chosen on the validation split of {', '.join(map(str, paths))} (seed {seed}) "
                                   f"for {chosen_for}"}
    output = card.output(MULTILABEL)
    outputs = [dataclasses.replace(o, thresholds_int8=thresholds) if o is output else o for o in card.outputs]
    card = dataclasses.replace(card, outputs=outputs, accuracy=accuracy)
    write_directory(model_dir, {
        "model_settings.h": model_settings_h(card),
        SAMPLE_MAP_FILE: sample_map_h(*demo_sample(calibrated, card.views)),
        CARD_FILE: card.to_json(),
    })
    if made_by and (Path(model_dir) / "README.md").is_file():
        rewrite_model_readme(model_dir, made_by)
    before, after = (float(score(readings, val.labels)) for readings in (readings_before, readings_after))
    return {"metric": chosen_for, "thresholds": thresholds, "val_before": before, "val_after": after,
            "accuracy": accuracy, "files": files}
