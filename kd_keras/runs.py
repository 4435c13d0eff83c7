"""Run directories: the data a run uses, and what it writes next to its models.

Every run writes `config.json` (all arguments, the seed, package versions),
`metrics.json`, its `.keras` models, training curves and a confusion matrix (PNG),
and a short `report.md`.
"""

from pathlib import Path

import numpy as np

from kd_keras.data import generate_wafer_maps, load_mixedwm38, split_data
from kd_keras.data.labels import DEFECT_NAMES
from kd_keras.evaluation import evaluate, evaluate_segclass
from kd_keras.fileio import write_json, write_text

DEFAULT_SYNTHETIC_MAPS = 3800


def load_splits(data_path=None, synthetic_maps=DEFAULT_SYNTHETIC_MAPS, seed=0):
    """The run's train/val/test/test_rotated splits: of a MixedWM38 file, or of synthetic maps."""
    if data_path is None:
        data = generate_wafer_maps(synthetic_maps, seed=seed)
    else:
        data = load_mixedwm38(data_path)
    parts = split_data(data, seed=seed)
    empty = [name for name in ("train", "val", "test") if len(parts[name]) == 0]
    if empty:
        raise ValueError(f"{data.source}: {len(data)} maps leave the {' and '.join(empty)} split(s) empty "
                         "(each pattern is split 80/10/10); use more maps")
    return parts


def predict_logits(model, maps, batch_size=512, verbose=0):
    from kd_keras.data.pipeline import make_dataset

    return model.predict(make_dataset(maps, batch_size=batch_size), verbose=verbose)


def evaluate_model(model, parts, decodings=("threshold", "nearest")):
    """Metrics of `model` on the test and rotated-test splits, for each decoding."""
    results = {}
    for split in ("test", "test_rotated"):
        logits = predict_logits(model, parts[split].maps)
        results[split] = {d: evaluate(logits, parts[split].labels, d) for d in decodings}
    return results


def metrics_table(rows):
    """A Markdown table of {name: metrics} rows (test split, threshold and nearest decoding)."""
    lines = ["| model | parameters | float32 KiB | exact match | exact match (nearest) | "
             "rotated test | macro F1 | Hamming |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        test, rotated = row["metrics"]["test"], row["metrics"]["test_rotated"]
        lines.append(
            f"| {name} | {row['parameters']:,} | {row['parameters'] * 4 / 1024:.1f} | "
            f"{100 * test['threshold']['exact_match']:.2f}% | {100 * test['nearest']['exact_match']:.2f}% | "
            f"{100 * rotated['threshold']['exact_match']:.2f}% | {test['threshold']['macro_f1']:.4f} | "
            f"{100 * test['threshold']['hamming_accuracy']:.2f}% |")
    return "\n".join(lines)


def per_defect_table(metrics):
    lines = ["| defect | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in DEFECT_NAMES:
        d = metrics["per_defect"][name]
        lines.append(f"| {name} | {d['precision']:.4f} | {d['recall']:.4f} | {d['f1']:.4f} | {d['support']} |")
    return "\n".join(lines)


def write_report(run_dir, title, rows, data_description):
    """report.md: parameters, float32 size and the metrics table of each model of the run."""
    sections = [f"# {title}", "", f"Data: {data_description}. Test split; 'nearest' decodes to the "
                "nearest of the 38 patterns; the rotated test turns every test map by 90 degrees.",
                "", metrics_table(rows)]
    for name, row in rows.items():
        sections += ["", f"## {name}: per defect (test, threshold decoding)", "",
                     per_defect_table(row["metrics"]["test"]["threshold"])]
    write_text(Path(run_dir) / "report.md", "\n".join(sections) + "\n")


def report_run(run_dir, title, models, parts, data_description, extra_metrics=None):
    """Evaluate each model on the test splits and write metrics.json, report.md and plots.

    Args:
        models: {name: (model, training_dir)}; `training_dir` holds that model's history.csv.
        extra_metrics: more entries for metrics.json (e.g. the teacher's figures).
    Returns:
        {name: {"parameters": ..., "metrics": ...}}
    """
    from kd_keras.plots import plot_confusion, plot_training_curves

    run_dir = Path(run_dir)
    rows = {}
    for name, (model, training_dir) in models.items():
        metrics = evaluate_model(model, parts)
        rows[name] = {"parameters": int(model.count_params()), "metrics": metrics}
        history = Path(training_dir) / "history.csv"
        if history.is_file():
            plot_training_curves(history, Path(training_dir) / "curves.png", title=f"{name}: training")
        plot_confusion(metrics["test"]["threshold"]["confusion"], Path(training_dir) / "confusion.png",
                       title=f"{name}: test confusion (rows: true pattern)")
    write_json(run_dir / "metrics.json", {"data": data_description, "models": rows, **(extra_metrics or {})})
    write_report(run_dir, title, rows, data_description)
    return rows


def evaluate_segclass_model(model, parts):
    """`evaluation.evaluate_segclass` of a segmentation + classification model on the test
    and rotated-test splits."""
    from kd_keras.segclass_distillation import predict_segclass

    results = {}
    for split in ("test", "test_rotated"):
        pattern_logits, mask_logits = predict_segclass(model, parts[split].maps)
        results[split] = evaluate_segclass(pattern_logits, parts[split].pattern_ids, mask_logits,
                                           parts[split].masks)
    return results


def segclass_table(rows):
    """A Markdown table of {name: metrics} rows of segmentation + classification models."""
    lines = ["| model | parameters | accuracy | macro F1 | AUC (one vs rest) | Dice | IoU | pixel accuracy | "
             "rotated: accuracy | rotated: Dice |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        test, rotated = row["metrics"]["test"], row["metrics"]["test_rotated"]
        lines.append(f"| {name} | {row['parameters']:,} | {100 * test['exact_match']:.2f}% | "
                     f"{test['macro_f1']:.4f} | {test['auc_ovr']:.4f} | {test['dice']:.4f} | {test['iou']:.4f} | "
                     f"{100 * test['pixel_accuracy']:.2f}% | {100 * rotated['exact_match']:.2f}% | "
                     f"{rotated['dice']:.4f} |")
    return "\n".join(lines)


def report_segclass_run(run_dir, title, models, parts, data_description, masks_shown=6):
    """`report_run` for segmentation + classification models: metrics.json, report.md (with
    per-part parameter counts), curves.png, confusion.png, and masks.png: test maps with
    their true and predicted masks and patterns."""
    from kd_keras.data.labels import PATTERN_NAMES
    from kd_keras.models.segclass import PAPER_PART_PARAMETERS, part_parameter_counts
    from kd_keras.plots import plot_confusion, plot_masks, plot_training_curves
    from kd_keras.segclass_distillation import predict_segclass

    run_dir = Path(run_dir)
    rows = {}
    test = parts["test"]
    shown = np.random.default_rng(0).choice(len(test), min(masks_shown, len(test)), replace=False)
    for name, (model, training_dir) in models.items():
        training_dir = Path(training_dir)
        rows[name] = {"parameters": int(model.count_params()), "parts": part_parameter_counts(model),
                      "metrics": evaluate_segclass_model(model, parts)}
        history = training_dir / "history.csv"
        if history.is_file():
            plot_training_curves(history, training_dir / "curves.png", title=f"{name}: training")
        plot_confusion(rows[name]["metrics"]["test"]["confusion"], training_dir / "confusion.png",
                       title=f"{name}: test confusion (rows: true pattern)")
        pattern_logits, mask_logits = predict_segclass(model, test.maps[shown])
        captions = [f"{PATTERN_NAMES[t]} -> {PATTERN_NAMES[p]}"
                    for t, p in zip(test.pattern_ids[shown], pattern_logits.argmax(axis=1))]
        plot_masks(test.maps[shown], test.masks[shown], mask_logits > 0, captions, training_dir / "masks.png",
                   title=f"{name}: test maps (true -> predicted pattern)")
    write_json(run_dir / "metrics.json", {"data": data_description, "models": rows})
    parts_table = ["| model | encoder | decoder | classifier | total |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in [*((n, r["parts"]) for n, r in rows.items()), ("Paper 2's student", PAPER_PART_PARAMETERS)]:
        parts_table.append(f"| {name} | {row['encoder']:,} | {row['decoder']:,} | {row['classifier']:,} | "
                           f"{row['total']:,} |")
    sections = [f"# {title}", "", f"Data: {data_description}. Test split, and the same maps turned by 90 "
                "degrees; a die is in the predicted mask when its logit > 0.", "", segclass_table(rows),
                "", "Parameters per part:", "", *parts_table]
    write_text(run_dir / "report.md", "\n".join(sections) + "\n")
    return rows
