"""Run directories: the data a run uses, and what it writes next to its models.

Every run writes `config.json` (all arguments, the seed, package versions),
`metrics.json`, its `.keras` models, training curves and a confusion matrix (PNG),
and a short `report.md`.
"""

import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np

from kd_keras.data import generate_wafer_maps, load_mixedwm38, split_data
from kd_keras.data.labels import DEFECT_NAMES
from kd_keras.evaluation import evaluate
from kd_keras.fileio import atomic_path

DEFAULT_SYNTHETIC_MAPS = 3800


def write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def versions():
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def write_config(run_dir, arguments):
    """config.json: the arguments, the command line, when, and the package versions."""
    write_json(Path(run_dir) / "config.json", {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()},
        "command": " ".join(sys.argv),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
    })


def load_splits(data_path=None, synthetic_maps=DEFAULT_SYNTHETIC_MAPS, seed=0):
    """The run's train/val/test/test_rotated splits: of a MixedWM38 file, or of synthetic maps."""
    if data_path is None:
        data = generate_wafer_maps(synthetic_maps, seed=seed)
    else:
        data = load_mixedwm38(data_path)
    return split_data(data, seed=seed)


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
    with atomic_path(Path(run_dir) / "report.md") as tmp:
        tmp.write_text("\n".join(sections) + "\n")


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
