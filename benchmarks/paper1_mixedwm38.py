"""Paper 1 on the real dev set: a teacher, label-free distillation into Net-1 and Net-2.

    python -m benchmarks.paper1_mixedwm38              # the paper's ResNet-18 teacher (wall time: results .json)
    python -m benchmarks.paper1_mixedwm38 --teacher runs/teacher-mixedwm38-resnet18   # reuse a trained teacher
    python -m benchmarks.paper1_mixedwm38 --teacher-arch vgg9 --teacher-views 8 \\
        --models runs/paper1-vgg9-int8 --out benchmarks/results/paper1_mixedwm38_vgg9
    python -m benchmarks.paper1_mixedwm38 --quick --runs /tmp/r --models /tmp/m --out /tmp/res/paper1

It runs the toolkit's own jobs (`kd_keras.jobs`, as its commands do) with the settings below
(seeded 80/10/10 split of `../shared/data/mixedwm38_dev.npz`): trains the teacher
(`--teacher-arch`: Paper 1's ResNet-18, or one of ours with `kd_keras.recipes.OUR_TEACHER`'s
recipe), distils Net-1 and
Net-2 without labels from its logits (`--teacher-views 8`: averaged over the 8
rotations/flips of each map), converts both to int8 under `<models>/paper1-net1` (248 KB
budget) and `<models>/paper1-net2` (21 KB), then writes `--out`.json, .md and .png:
exact-match accuracy on the test split (float Keras models, and int8 in TFLite Micro) next
to the paper's figures, with flash and arena bytes, and a plot of accuracy against model
bytes with the papers' points. `--quick` runs it all on 380 synthetic maps, one epoch per
model: a check that it runs, whose figures mean nothing. The training jobs resume their run
directories: an interrupted benchmark goes on where it stopped, finished runs are reused.
"""

import argparse
import sys
import time
from pathlib import Path

from benchmarks import DEFAULT_DATA, REPO, repo_relative, results_file
from kd_keras.data import VIEWS
from kd_keras.fileio import write_json, write_text
from kd_keras.jobs import DistillJob, TeacherJob, run_distill_job, run_teacher_job
from kd_keras.models import teacher_names
from kd_keras.plots import plot_accuracy_vs_flash
from kd_keras.recipes import OUR_TEACHER, PAPER1_STUDENTS, PAPER1_TEACHER
from kd_keras.rundir import plain, versions
from tflite.budget import BUDGETS, PAPER1_BUDGETS
from tflite.card import write_model_readme
from tflite.export import convert_student



def teacher_job(arch, data, out, epochs=None):
    """The paper's teacher for 40 epochs, ours with its recipe; patience as long as the run: no
    early stop."""
    recipe = PAPER1_TEACHER if arch == PAPER1_TEACHER.arch else OUR_TEACHER
    epochs = epochs or recipe.epochs
    return TeacherJob(arch=arch, epochs=epochs, patience=epochs, lr=recipe.learning_rate, augment=True, out=out,
                      resume=True, **data)


def student_job(data, teacher, out, teacher_views, epochs=40):
    return DistillJob(student=("net1", "net2"), **PAPER1_STUDENTS, epochs=epochs, lr=3e-3, patience=epochs,
                      batch_size=128, teacher=teacher, teacher_views=teacher_views, out=out, resume=True, **data)


PAPER = {"teacher": 0.98, "net1": 0.9333, "net2": 0.7711}
STUDENT_BUDGET = {"net1": PAPER1_BUDGETS["248KB"], "net2": PAPER1_BUDGETS["21KB"]}
PAPER_SIZE = {"teacher": "43 MB", "net1": "248 KB", "net2": "21 KB"}
STUDENT_TITLES = {"net1": ("Net-1", "61,316"), "net2": ("Net-2", "5,556")}
# The papers' students as float32 files: (label, bytes, exact-match accuracy).
PAPER_STUDENTS = [("Net-1 (paper 1)", BUDGETS["248KB"].flash_bytes, 0.9333),
                  ("Net-2 (paper 1)", BUDGETS["21KB"].flash_bytes, 0.7711),
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
    write_text(results_file(out, ".md"), table)
    points = [{"label": name, "bytes": row["flash_bytes"], "group": "ours: int8 in TFLite Micro",
               "accuracy": row["int8_exact_match_tflite_micro"]} for name, row in rows.items() if "flash_bytes" in row]
    points += [{"label": label, "bytes": size, "accuracy": accuracy, "group": "papers: float32 file"}
               for label, size, accuracy in PAPER_STUDENTS]
    teacher = next(name for name in rows if name.startswith("teacher"))
    plot_accuracy_vs_flash(points, results_file(out, ".png"),
                           budgets={b.title: b.flash_bytes for b in BUDGETS.values()},
                           title=f"Paper 1 reproduced, {teacher}: test-split exact match against model bytes")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a trained teacher run directory (default: train one with --teacher-arch)")
    parser.add_argument("--teacher-arch", choices=teacher_names(), default=PAPER1_TEACHER.arch,
                        help=f"the teacher to train without --teacher (default {PAPER1_TEACHER.arch}, the paper's)")
    parser.add_argument("--teacher-views", type=int, choices=VIEWS, default=1,
                        help="8: distil from the teacher's logits averaged over the 8 rotations/flips (default 1)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs",
                        help="where the run directories go; the model cards name their float models relative to "
                             "the folder holding it")
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
    runs = args.runs.resolve()
    data = {"synthetic_maps": 380} if args.quick else {"data": args.data}
    command = "python -m benchmarks.paper1_mixedwm38" + "".join(
        f" {flag} {value}" for flag, value, default in (("--teacher-arch", args.teacher_arch, PAPER1_TEACHER.arch),
                                                         ("--teacher-views", args.teacher_views, 1))
        if value != default)

    seconds = {}
    start = time.time()
    teacher = args.teacher
    trained_teacher = None
    if teacher is None:
        teacher = runs / f"teacher-mixedwm38-{args.teacher_arch}"
        trained_teacher = teacher_job(args.teacher_arch, data, teacher, 1 if args.quick else None)
        run_teacher_job(trained_teacher, verbose=2)
        seconds["teacher"] = round(time.time() - start)
    run_dir = runs / ("paper1-mixedwm38" if args.teacher_views == 1 else f"paper1-mixedwm38-views{args.teacher_views}")
    start = time.time()
    students = student_job(data, teacher, run_dir, args.teacher_views, 1 if args.quick else 40)
    models = run_distill_job(students, verbose=2)
    seconds["students"] = round(time.time() - start)

    teacher_row = next(name for name in models if name.startswith("teacher"))
    cards = {}
    shipped = args.models.resolve() == (REPO / "models").resolve()
    start = time.time()
    for student, budget in STUDENT_BUDGET.items():
        out = args.models / f"paper1-{student}"
        # Relative to the runs' folder: the card should not name this machine's folders.
        cards[student] = convert_student(run_dir / student, out, budget,
                                         source_model=(run_dir / student / f"{student}.keras").relative_to(runs.parent))
        title, parameters = STUDENT_TITLES[student]
        write_model_readme(out, f"Paper 1's {title} ({parameters} parameters), distilled without labels from the "
                                f"{teacher_row} on the real MixedWM38 dev set, converted to full int8 for the "
                                f"{budget.title} budget. Not rotation-invariant (trained on maps in one "
                                "orientation): see the main README.", command)
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
                "int8_exact_match_tflite_micro": card.accuracy["int8_exact_match"],
                "flash_bytes": card.flash_bytes, "arena_bytes": card.arena_bytes,
                "macs_per_inference": card.macs_per_inference, "budget_bytes": card.budget.flash_bytes,
                # Only the shipped models can be linked from the committed table; runs/ is not committed.
                "model_dir": repo_relative(args.models / f"paper1-{name}") if shipped else None,
            })
    write_json(results_file(args.out, ".json"), {
        "data": "380 synthetic maps" if args.quick else args.data.name, "command": command,
        "teacher_job": plain(trained_teacher.arguments()) if trained_teacher else None,
        "teacher_views": args.teacher_views, "student_job": plain(students.arguments()), "teacher_run": str(teacher),
        "models": rows, "wall_seconds": seconds, "versions": versions(),
    })
    print(write_table_and_plot(rows, args.out))
    print(f"wall time: {seconds}; wrote {args.out}.json, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
