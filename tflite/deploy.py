"""The main job's last stage: each student of a run converted for the budget it fits, measured as deployed.

`python -m kd_keras.distill` ends here: every student it trained is converted to full int8
into `<run>/models/<student>/` (the directory `python -m tflite.convert` writes: model.tflite,
the C array, model_settings.h, sample_map.h, model_card.json), for the smallest budget of
`tflite.budget.BUDGETS` whose flash and tensor arena it fits (the arena as `Budget.for_task` sets
it for the run's task; else the smallest whose flash it fits, without its arena limit: the table
shows the arena over), and run in TFLite Micro on the run's test split.
`deployment_table` shows each model against every budget and `next_commands` what to type
next; both go to `<run>/deployment.md`, the figures to `<run>/deployment.json`.

A student whose directory is already there (a resumed run) is read back, not converted again:
conversion is deterministic and each directory is written whole.

Example:

>>> from tflite.budget import BUDGETS
>>> fit_text(BUDGETS["21KB"], flash_bytes=19_128, arena_bytes=16_112, accuracy=0.9713)
'fits; 97.13% (target 97%)'
>>> fit_text(BUDGETS["21KB"], flash_bytes=61_000, arena_bytes=20_000, accuracy=0.9)
'no: flash +39,496 B, arena +3,616 B'
"""

from pathlib import Path

import keras

from kd_keras.data import data_paths, file_layout, load_splits
from kd_keras.fileio import write_json, write_text
from kd_keras.rundir import run_data_settings
from kd_keras.training import load_model
from tflite.budget import BUDGETS
from tflite.card import CARD_FILE
from tflite.export import export_model, find_model, int8_flatbuffer, load_converted
from tflite.harness import accuracy_figures
from tflite.micro import Int8Model

MODELS_DIR = "models"
DEPLOYMENT_REPORT = "deployment.md"
FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware_stub"


def fit_text(budget, *, flash_bytes, arena_bytes, accuracy):
    """How a model fits `budget`: 'fits; <accuracy> (target ...)' or what is over, by how much."""
    over = [f"{what} +{used - limit:,} B" for what, used, limit in (("flash", flash_bytes, budget.flash_bytes),
                                                                    ("arena", arena_bytes, budget.arena_bytes))
            if limit is not None and used > limit]
    if over:
        return "no: " + ", ".join(over)
    target = f" (target {budget.accuracy_target:.0%})" if budget.accuracy_target else ""
    return f"fits; {100 * accuracy:.2f}%{target}"


def task_budgets(task_name):
    """`BUDGETS` as they hold a model of the task `task_name`, smallest first."""
    return sorted((budget.for_task(task_name) for budget in BUDGETS.values()), key=lambda budget: budget.flash_bytes)


def choose_budget(flash_bytes, arena_bytes, task_name="classify"):
    """The smallest budget whose flash and arena hold a model of the task `task_name`, else the
    smallest whose flash does (`Budget.flash_only`), else None."""
    budgets = task_budgets(task_name)
    whole = [b for b in budgets if flash_bytes <= b.flash_bytes and arena_bytes <= (b.arena_bytes or arena_bytes)]
    flash_only = [b.flash_only() for b in budgets if flash_bytes <= b.flash_bytes]
    return (whole or flash_only or [None])[0]


def deploy_student(model_path, out_dir, parts, resize):
    """Convert one student into `out_dir` for the budget it fits; its deployment row.

    Returns {"directory", "task", "flash_bytes", "arena_bytes", "budget", "float_exact_match",
    "int8_exact_match"}; "directory" and "budget" are None when it fits no budget's flash
    (nothing is written then)."""
    if (Path(out_dir) / CARD_FILE).is_file():
        card, _ = load_converted(out_dir)
        return _row(out_dir, card.task.name, card.flash_bytes, card.arena_bytes, card.budget, card.accuracy)
    model = load_model(model_path)
    int8 = Int8Model(int8_flatbuffer(model, parts["train"].maps))
    arena_bytes = int8.arena_bytes()
    budget = choose_budget(len(int8.flatbuffer), arena_bytes, int8.task.name)
    if budget is None:
        accuracy = accuracy_figures(model, int8, parts["test"])
        return _row(None, int8.task.name, len(int8.flatbuffer), arena_bytes, None, accuracy)
    card = export_model(model, out_dir, parts["train"].maps, name=Path(model_path).stem, budget=budget,
                        accuracy_fn=lambda converted: accuracy_figures(model, converted, parts["test"]),
                        source_model=model_path, int8=int8, resize=resize)
    return _row(out_dir, card.task.name, card.flash_bytes, card.arena_bytes, budget, card.accuracy)


def _row(directory, task_name, flash_bytes, arena_bytes, budget, accuracy):
    return {"directory": directory and str(directory), "task": task_name, "flash_bytes": flash_bytes,
            "arena_bytes": arena_bytes, "budget": budget and budget.name,
            **{key: accuracy[key] for key in ("float_exact_match", "int8_exact_match", "test_maps")}}


def deploy_run(run_dir, students):
    """Convert the `students` (names) of the distillation run in `run_dir`; {name: deployment row}.

    Calibration and test maps are the run's own split (its config.json). Writes
    `<run>/deployment.json` and `<run>/deployment.md` (the table and the next commands)."""
    run_dir = Path(run_dir)
    model_paths = {name: find_model(run_dir / name) for name in students}
    settings = run_data_settings(next(iter(model_paths.values())))
    parts = load_splits(settings["data"], settings["synthetic_maps"], settings["seed"], settings["resize"])
    progress = keras.utils.Progbar(len(students), unit_name="model")
    rows = {}
    for number, (name, model_path) in enumerate(model_paths.items(), start=1):
        rows[name] = deploy_student(model_path, run_dir / MODELS_DIR / name, parts, settings["resize"])
        progress.update(number, finalize=False)
    progress.update(len(students), finalize=True)
    data = "synthetic" if settings["data"] is None else " + ".join(map(str, data_paths(settings["data"])))
    write_json(run_dir / "deployment.json", {"test_maps": len(parts["test"]), "models": rows})
    write_text(run_dir / DEPLOYMENT_REPORT, "\n".join([
        "# Deployment", "", f"int8, in TFLite Micro, on the run's {len(parts['test'])} test maps ({data}).", "",
        deployment_table(rows), "", "Next:", "", "```", *next_commands(rows, settings), "```", ""]))
    return rows


def deployment_table(rows):
    """A Markdown table: each deployed model's accuracy, flash and arena, and how it fits every budget
    (as the budgets hold a model of the rows' task: a run's students share its task)."""
    budgets = task_budgets(next(iter(rows.values()))["task"])
    header = ["model", "int8 exact match (TFLite Micro)", "float", "flash", "tensor arena",
              *(f"{b.title} ({b.flash_bytes:,} B flash, {b.arena_bytes:,} B arena)" for b in budgets), "written to"]
    lines = ["| " + " | ".join(header) + " |", "| --- | ---: | ---: | ---: | ---: |" + " --- |" * (len(budgets) + 1)]
    for name, row in rows.items():
        fits = [fit_text(b, flash_bytes=row["flash_bytes"], arena_bytes=row["arena_bytes"],
                         accuracy=row["int8_exact_match"]) for b in budgets]
        written = f"{row['directory']} ({row['budget']})" if row["directory"] else "nothing: over every budget"
        lines.append(f"| {name} | {100 * row['int8_exact_match']:.2f}% | {100 * row['float_exact_match']:.2f}% | "
                     f"{row['flash_bytes']:,} B | {row['arena_bytes']:,} B | " + " | ".join(fits) + f" | {written} |")
    return "\n".join(lines)


def next_commands(rows, settings):
    """The commands a user types next with the first deployed model: measure it on maps it has
    not seen, compile it for a Cortex-M4, build and run the firmware."""
    deployed = [row["directory"] for row in rows.values() if row["directory"]]
    if not deployed:
        return ["# no model fits a budget: choose smaller students (--student)"]
    model_dir = Path(deployed[0]).resolve()
    if settings["data"] is None:
        maps = ["new_maps.npz"]
        commands = [f"python -m kd_keras.data synth --n 380 --seed {settings['seed'] + 1} --out {maps[0]}"
                    "   # maps this run never saw"]
    else:
        maps, commands = data_paths(settings["data"]), []
        # Classes very unequal: thresholds chosen for them (tflite.thresholds). Not for a model of
        # several sources: chosen for the mean of both sources' figures, they cost
        # models/both-248kb more on MixedWM38's test maps than they won on WM-811K's (benchmarks/README.md).
        if len(maps) == 1 and file_layout(maps[0]) == "wm811k":
            commands = [f"python -m tflite.calibrate {model_dir} --data {maps[0]}   # a threshold per defect"]
    make = f"make -C {FIRMWARE_DIR}"
    return commands + [f"python -m tflite.evaluate {model_dir} --data {path}" for path in maps] + [
        f"{make} check MODEL_DIR={model_dir}   # compile it for a Cortex-M4; prints its flash",
        f"{make} host MODEL_DIR={model_dir}    # build TFLite Micro (once, ~12 min) and run the firmware",
        f"{make} cortex-m MODEL_DIR={model_dir}   # the same on an emulated Cortex-M4 (QEMU)",
    ]
