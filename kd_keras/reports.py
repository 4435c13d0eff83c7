"""What a run writes next to its models: metrics.json, report.md and the pictures.

`report_run` scores each model of a run on the test split and on the same maps turned by
90 degrees, for its task (`kd_keras.tasks`), and writes:

- `metrics.json`: every figure of every model (the run is finished once it is written);
- `report.md`: the task's table, then its details (per-defect figures, or parameters per part);
- in each model's training directory: `curves.png` (from its history.csv), `confusion.png`,
  and for a model that draws a mask, `masks.png` (test maps with their true and predicted masks).
"""

from pathlib import Path

from kd_keras.fileio import write_json, write_text
from kd_keras.plots import plot_confusion, plot_training_curves
from kd_keras.rundir import METRICS_FILE
from kd_keras.tasks import SPLITS


def evaluate_model(task, model, parts, views=1):
    """{split: the task's metrics} of a float model on the test and rotated-test splits."""
    return {split: task.run_metrics(task.predict(model, parts[split].maps, views), parts[split]) for split in SPLITS}


def report_run(run_dir, title, models, parts, data_description, task, extra_metrics=None):
    """Evaluate each model and write the run's metrics.json, report.md and pictures.

    Args:
        models: {name: (model, training_dir)}; `training_dir` holds that model's history.csv
            and gets its pictures.
        task: the models' `kd_keras.tasks` task.
        extra_metrics: more entries for metrics.json.
    Returns:
        {name: {"parameters": ..., "metrics": {split: ...}}} (and whatever else the task's rows hold).
    """
    run_dir = Path(run_dir)
    rows = {}
    for name, (model, training_dir) in models.items():
        training_dir = Path(training_dir)
        rows[name] = task.report_row(model, evaluate_model(task, model, parts))
        if (training_dir / "history.csv").is_file():
            plot_training_curves(training_dir / "history.csv", training_dir / "curves.png", title=f"{name}: training")
        plot_confusion(task.confusion(rows[name]["metrics"]["test"]), training_dir / "confusion.png",
                       title=f"{name}: test confusion (rows: true pattern)")
        task.plot_examples(model, parts["test"], training_dir, name)
    write_json(run_dir / METRICS_FILE, {"data": data_description, "models": rows, **(extra_metrics or {})})
    sections = [f"# {title}", "", f"Data: {data_description}. {task.report_note}", "", task.table(rows),
                *task.detail_tables(rows)]
    write_text(run_dir / "report.md", "\n".join(sections) + "\n")
    return rows
