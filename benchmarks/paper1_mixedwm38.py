"""Paper 1 on the real dev set: a teacher, label-free distillation into Net-1 and Net-2.

    python benchmarks/paper1_mixedwm38.py              # the paper's ResNet-18 teacher (~1.5 h on 2 cores)
    python benchmarks/paper1_mixedwm38.py --teacher runs/teacher-mixedwm38-resnet18   # reuse a trained teacher
    python benchmarks/paper1_mixedwm38.py --teacher-arch vgg9 --teacher-views 8 \
        --models runs/paper1-vgg9-int8 --out benchmarks/results/paper1_mixedwm38_vgg9
    python benchmarks/paper1_mixedwm38.py --quick --runs /tmp/r --models /tmp/m --out /tmp/res/paper1

It runs the toolkit's own commands with the settings below (seeded 80/10/10 split of
`../shared/data/mixedwm38_dev.npz`): trains the teacher (`--teacher-arch`: Paper 1's
ResNet-18, or one of ours with the recipe of `best_per_budget.py`), distils Net-1 and
Net-2 without labels from its logits (`--teacher-views 8`: averaged over the 8
rotations/flips of each map), converts both to int8 under `<models>/paper1-net1` (248 KB
budget) and `<models>/paper1-net2` (21 KB), then writes `--out`.json, .md and .png:
exact-match accuracy on the test split (float Keras models, and int8 in TFLite Micro) next
to the paper's figures, with flash and arena bytes, and a plot of accuracy against model
bytes with the papers' points. `--quick` runs it all on 380 synthetic maps, one epoch per
model: a check that it runs, whose figures mean nothing. The training commands run with
`--resume`: an interrupted benchmark goes on where it stopped, finished runs are reused.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from best_per_budget import TEACHER as OUR_TEACHER_RECIPE  # noqa: E402
from kd_keras import distill, train_teacher  # noqa: E402
from kd_keras.distillation import TEACHER_VIEWS  # noqa: E402
from kd_keras.fileio import write_json, write_text  # noqa: E402
from kd_keras.models import teacher_names  # noqa: E402
from kd_keras.plots import plot_accuracy_vs_flash  # noqa: E402
from tflite import convert  # noqa: E402
from tflite.export import BUDGETS, write_model_readme  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "mixedwm38_dev.npz"
PAPER_TEACHER = "resnet18"


def teacher_args(arch, epochs=None):
    """train_teacher's settings: the paper's teacher for 40 epochs, ours with best_per_budget's recipe.
    Patience as long as the run: no early stop, as in best_per_budget."""
    epochs = epochs or (40 if arch == PAPER_TEACHER else OUR_TEACHER_RECIPE["epochs"])
    learning_rate = 2e-3 if arch == PAPER_TEACHER else OUR_TEACHER_RECIPE["learning_rate"]
    return ["--arch", arch, "--epochs", str(epochs), "--patience", str(epochs), "--lr", str(learning_rate),
            "--augment"]


def student_args(epochs=40):
    return ["--student", "net1", "net2", "--loss", "paper", "--alpha", "0.5", "--beta", "0.5",
            "--epochs", str(epochs), "--lr", "3e-3", "--patience", str(epochs)]


PAPER = {"teacher": 0.98, "net1": 0.9333, "net2": 0.7711}
STUDENT_BUDGET = {"net1": "248KB", "net2": "21KB"}  # tflite.export.BUDGETS names
PAPER_SIZE = {"teacher": "43 MB", "net1": "248 KB", "net2": "21 KB"}
STUDENT_TITLES = {"net1": ("Net-1", "61,316", "248 KB"), "net2": ("Net-2", "5,556", "21 KB")}
# The papers' students as float32 files: (label, bytes, exact-match accuracy).
PAPER_STUDENTS = [("Net-1 (paper 1)", BUDGETS["248KB"], 0.9333), ("Net-2 (paper 1)", BUDGETS["21KB"], 0.7711),
                  ("LightWaferSegClassNet (paper 2)", 260 * 1024, 0.9790)]


def markdown(rows):
    """The results' two tables: every model in float, then the students as int8."""
    lines = ["| model | parameters | float32 KiB | paper size | exact match | nearest-pattern decoding | "
             "rotated test | macro F1 | paper |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['parameters']:,} | {r['float32_bytes'] / 1024:.1f} | {r['paper_size']} | "
                     f"{100 * r['exact_match']:.2f}% | {100 * r['exact_match_nearest']:.2f}% | "
                     f"{100 * r['exact_match_rotated']:.2f}% | {r['macro_f1']:.4f} | "
                     f"{100 * r['paper_accuracy']:.2f}% |")
    lines += ["", "| student | int8 flash bytes | budget | tensor arena bytes | MACs per inference | "
              "int8 exact match (TFLite Micro) | float exact match |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        if "flash_bytes" in r:
            label = f"[{name}](../../{r['model_dir']})" if r["model_dir"] else name
            lines.append(f"| {label} | {r['flash_bytes']:,} | {r['budget_bytes']:,} | "
                         f"{r['arena_bytes']:,} | {r['macs_per_inference']:,} | "
                         f"{100 * r['int8_exact_match_tflite_micro']:.2f}% | {100 * r['exact_match']:.2f}% |")
    return "\n".join(lines) + "\n"


def write_table_and_plot(rows, out):
    """Write `out`.md and `out`.png from the results' rows; returns the Markdown."""
    table = markdown(rows)
    write_text(out.with_suffix(".md"), table)
    points = [{"label": name, "bytes": row["flash_bytes"], "group": "ours: int8 in TFLite Micro",
               "accuracy": row["int8_exact_match_tflite_micro"]} for name, row in rows.items() if "flash_bytes" in row]
    points += [{"label": label, "bytes": size, "accuracy": accuracy, "group": "papers: float32 file"}
               for label, size, accuracy in PAPER_STUDENTS]
    teacher = next(name for name in rows if name.startswith("teacher"))
    plot_accuracy_vs_flash(points, out.with_suffix(".png"), budgets=BUDGETS,
                           title=f"Paper 1 reproduced, {teacher}: test-split exact match against model bytes")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a trained teacher run directory (default: train one with --teacher-arch)")
    parser.add_argument("--teacher-arch", choices=teacher_names(), default=PAPER_TEACHER,
                        help=f"the teacher to train without --teacher (default {PAPER_TEACHER}, the paper's)")
    parser.add_argument("--teacher-views", type=int, choices=TEACHER_VIEWS, default=1,
                        help="8: distil from the teacher's logits averaged over the 8 rotations/flips (default 1)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="where the run directories go")
    parser.add_argument("--models", type=Path, default=REPO / "models",
                        help="where paper1-net1 and paper1-net2 go (default models/: the shipped ones)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "paper1_mixedwm38",
                        help="results path without suffix (.json, .md, .png are written)")
    parser.add_argument("--quick", action="store_true", help="380 synthetic maps, 1 epoch per model")
    args = parser.parse_args(argv)
    if args.teacher is not None and not args.teacher.is_dir():
        parser.error(f"--teacher {args.teacher}: no such run directory")
    if not args.quick and not args.data.is_file():
        parser.error(f"no dev set at {args.data}")
    data_args = ["--synthetic-maps", "380"] if args.quick else ["--data", str(args.data)]
    command = "python benchmarks/paper1_mixedwm38.py" + "".join(
        f" {flag} {value}" for flag, value, default in (("--teacher-arch", args.teacher_arch, PAPER_TEACHER),
                                                         ("--teacher-views", args.teacher_views, 1))
        if value != default)

    seconds = {}
    start = time.time()
    teacher = args.teacher
    if teacher is None:
        teacher = args.runs / f"teacher-mixedwm38-{args.teacher_arch}"
        if train_teacher.main([*data_args, "--out", str(teacher), "--resume",
                               *teacher_args(args.teacher_arch, 1 if args.quick else None)]) != 0:
            return 1
        seconds["teacher"] = round(time.time() - start)
    run_dir = args.runs / ("paper1-mixedwm38" if args.teacher_views == 1 else
                           f"paper1-mixedwm38-views{args.teacher_views}")
    start = time.time()
    if distill.main([*data_args, "--teacher", str(teacher), "--out", str(run_dir), "--resume",
                     "--teacher-views", str(args.teacher_views), *student_args(1 if args.quick else 40)]) != 0:
        return 1
    seconds["students"] = round(time.time() - start)

    models = json.loads((run_dir / "metrics.json").read_text())["models"]
    teacher_row = next(name for name in models if name.startswith("teacher"))
    cards = {}
    shipped = args.models.resolve() == (REPO / "models").resolve()
    start = time.time()
    for student, budget in STUDENT_BUDGET.items():
        out = args.models / f"paper1-{student}"
        # A relative path: the card names its source model, and should not name this machine's folders.
        if convert.main([os.path.relpath(run_dir / student), "--out", str(out), "--budget", budget]) != 0:
            return 1
        title, parameters, budget_text = STUDENT_TITLES[student]
        write_model_readme(out, f"Paper 1's {title} ({parameters} parameters), distilled without labels from the "
                                f"{teacher_row} on the real MixedWM38 dev set, converted to full int8 for the "
                                f"{budget_text} budget. Not rotation-invariant (trained on maps in one "
                                "orientation): see the main README.", command)
        cards[student] = json.loads((out / "model_card.json").read_text())
    seconds["conversion"] = round(time.time() - start)

    rows = {}
    for name, row in models.items():
        paper_name = "teacher" if name == teacher_row else name
        test = row["metrics"]["test"]
        rows[name] = {
            "parameters": row["parameters"],
            "float32_bytes": 4 * row["parameters"],
            "exact_match": test["threshold"]["exact_match"],
            "exact_match_nearest": test["nearest"]["exact_match"],
            "exact_match_rotated": row["metrics"]["test_rotated"]["threshold"]["exact_match"],
            "macro_f1": test["threshold"]["macro_f1"],
            "paper_accuracy": PAPER[paper_name], "paper_size": PAPER_SIZE[paper_name],
        }
        if name in cards:
            card = cards[name]
            rows[name].update({
                "int8_exact_match_tflite_micro": card["accuracy"]["int8_exact_match"],
                "flash_bytes": card["flash_bytes"], "arena_bytes": card["arena_bytes"],
                "macs_per_inference": card["macs_per_inference"], "budget_bytes": BUDGETS[STUDENT_BUDGET[name]],
                # Only the shipped models can be linked from the committed table; runs/ is not committed.
                "model_dir": os.path.relpath(args.models / f"paper1-{name}", REPO) if shipped else None,
            })
    config = json.loads((run_dir / "config.json").read_text())
    write_json(args.out.with_suffix(".json"), {
        "data": "380 synthetic maps" if args.quick else args.data.name, "command": command,
        "teacher_args": None if args.teacher else teacher_args(args.teacher_arch),
        "teacher_views": args.teacher_views, "student_args": student_args(), "teacher_run": str(teacher),
        "models": rows, "wall_seconds": seconds, "versions": config["versions"],
    })
    print(write_table_and_plot(rows, args.out))
    print(f"wall time: {seconds}; wrote {args.out}.json, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
