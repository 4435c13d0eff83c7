"""Paper 1 on the real dev set: ResNet-18 teacher, label-free distillation into Net-1 and Net-2.

    python benchmarks/paper1_mixedwm38.py                          # trains the teacher too (~1.5 h on 2 cores)
    python benchmarks/paper1_mixedwm38.py --teacher runs/teacher-mixedwm38   # reuse a trained teacher

It runs the toolkit's own commands with the settings below (seeded 80/10/10 split of
`../shared/data/mixedwm38_dev.npz`): trains the teacher, distils Net-1 and Net-2 without
labels, converts both to int8 under `models/paper1-net1` (248 KB budget) and
`models/paper1-net2` (21 KB), then writes `benchmarks/results/paper1_mixedwm38.json`,
`.md` and `.png`: exact-match accuracy on the test split (float Keras models, and int8 in
TFLite Micro) next to the paper's figures, with flash and arena bytes, and a plot of
accuracy against model bytes with the papers' points.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_keras import distill, train_teacher  # noqa: E402
from kd_keras.plots import plot_accuracy_vs_flash  # noqa: E402
from kd_keras.runs import write_json  # noqa: E402
from tflite import convert  # noqa: E402
from tflite.export import BUDGETS, write_model_readme  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "mixedwm38_dev.npz"
TEACHER_ARGS = ["--epochs", "40", "--patience", "40", "--lr", "2e-3", "--augment"]
STUDENT_ARGS = ["--student", "net1", "net2", "--loss", "paper", "--alpha", "0.5", "--beta", "0.5",
                "--epochs", "40", "--lr", "3e-3", "--patience", "40"]
PAPER = {"teacher (ResNet-18)": 0.98, "net1": 0.9333, "net2": 0.7711}
STUDENT_BUDGET = {"net1": "248KB", "net2": "21KB"}  # tflite.export.BUDGETS names
PAPER_SIZE = {"teacher (ResNet-18)": "43 MB", "net1": "248 KB", "net2": "21 KB"}
STUDENT_SUMMARY = {
    student: f"Paper 1's {title} ({parameters} parameters), distilled without labels from the ResNet-18 teacher "
             f"on the real MixedWM38 dev set, converted to full int8 for the {budget} budget. Not rotation-invariant "
             "(trained on maps in one orientation): see the main README."
    for student, title, parameters, budget in (("net1", "Net-1", "61,316", "248 KB"), ("net2", "Net-2", "5,556", "21 KB"))
}
# The papers' students as float32 files: (label, bytes, exact-match accuracy).
PAPER_STUDENTS = [("Net-1 (paper 1)", BUDGETS["248KB"], 0.9333), ("Net-2 (paper 1)", BUDGETS["21KB"], 0.7711),
                  ("LightWaferSegClassNet (paper 2)", 260 * 1024, 0.9790)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--teacher", type=Path, default=None, help="a trained teacher run directory")
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="where the run directories go")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "paper1_mixedwm38")
    args = parser.parse_args(argv)

    seconds = {}
    start = time.time()
    teacher = args.teacher
    if teacher is None:
        teacher = args.runs / "teacher-mixedwm38"
        if train_teacher.main(["--data", str(args.data), "--out", str(teacher), *TEACHER_ARGS]) != 0:
            return 1
        seconds["teacher"] = round(time.time() - start)
    run_dir = args.runs / "paper1-mixedwm38"
    start = time.time()
    if distill.main(["--data", str(args.data), "--teacher", str(teacher), "--out", str(run_dir),
                     *STUDENT_ARGS]) != 0:
        return 1
    seconds["students"] = round(time.time() - start)

    cards = {}
    start = time.time()
    for student, budget in STUDENT_BUDGET.items():
        out = REPO / "models" / f"paper1-{student}"
        # A relative path: the card names its source model, and should not name this machine's folders.
        if convert.main([os.path.relpath(run_dir / student), "--out", str(out), "--budget", budget]) != 0:
            return 1
        write_model_readme(out, STUDENT_SUMMARY[student], "python benchmarks/paper1_mixedwm38.py")
        cards[student] = json.loads((out / "model_card.json").read_text())
    seconds["conversion"] = round(time.time() - start)

    models = json.loads((run_dir / "metrics.json").read_text())["models"]
    rows = {}
    for name, row in models.items():
        test = row["metrics"]["test"]
        rows[name] = {
            "parameters": row["parameters"],
            "float32_bytes": 4 * row["parameters"],
            "exact_match": test["threshold"]["exact_match"],
            "exact_match_nearest": test["nearest"]["exact_match"],
            "exact_match_rotated": row["metrics"]["test_rotated"]["threshold"]["exact_match"],
            "macro_f1": test["threshold"]["macro_f1"],
            "paper_accuracy": PAPER.get(name),
        }
        if name in cards:
            card = cards[name]
            rows[name].update({
                "int8_exact_match_tflite_micro": card["accuracy"]["int8_exact_match"],
                "flash_bytes": card["flash_bytes"], "arena_bytes": card["arena_bytes"],
                "macs_per_inference": card["macs_per_inference"], "budget_bytes": BUDGETS[STUDENT_BUDGET[name]],
            })
    table = ["| model | parameters | float32 KiB | paper size | exact match | nearest-pattern decoding | "
             "rotated test | macro F1 | paper |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        table.append(f"| {name} | {r['parameters']:,} | {r['float32_bytes'] / 1024:.1f} | {PAPER_SIZE.get(name, '')} | "
                     f"{100 * r['exact_match']:.2f}% | {100 * r['exact_match_nearest']:.2f}% | "
                     f"{100 * r['exact_match_rotated']:.2f}% | {r['macro_f1']:.4f} | "
                     f"{100 * r['paper_accuracy']:.2f}% |")
    table += ["", "| student | int8 flash bytes | budget | tensor arena bytes | MACs per inference | "
              "int8 exact match (TFLite Micro) | float exact match |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in cards:
        r = rows[name]
        table.append(f"| [{name}](../../models/paper1-{name}) | {r['flash_bytes']:,} | {r['budget_bytes']:,} | "
                     f"{r['arena_bytes']:,} | {r['macs_per_inference']:,} | "
                     f"{100 * r['int8_exact_match_tflite_micro']:.2f}% | {100 * r['exact_match']:.2f}% |")
    config = json.loads((run_dir / "config.json").read_text())
    write_json(args.out.with_suffix(".json"), {
        "data": str(args.data.name), "teacher_args": TEACHER_ARGS, "student_args": STUDENT_ARGS,
        "teacher_run": str(teacher), "models": rows, "wall_seconds": seconds, "versions": config["versions"],
    })
    args.out.with_suffix(".md").write_text("\n".join(table) + "\n")
    points = [{"label": name, "bytes": rows[name]["flash_bytes"], "group": "ours: int8 in TFLite Micro",
               "accuracy": rows[name]["int8_exact_match_tflite_micro"]} for name in cards]
    points += [{"label": label, "bytes": size, "accuracy": accuracy, "group": "papers: float32 file"}
               for label, size, accuracy in PAPER_STUDENTS]
    plot_accuracy_vs_flash(points, args.out.with_suffix(".png"), budgets=BUDGETS,
                           title="Paper 1 reproduced: test-split exact match against model bytes")
    print("\n".join(table))
    print(f"wall time: {seconds}; wrote {args.out}.json, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
