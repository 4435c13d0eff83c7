"""Paper 2 on the real dev set: a defect mask and the pattern, from one tiny int8 model.

    python benchmarks/segclass_mixedwm38.py            # everything, from scratch (about 85 min on 2 CPU cores)
    python benchmarks/segclass_mixedwm38.py --quick    # a smoke test: 380 synthetic maps, one epoch each

It runs the toolkit's own command with the settings below, on the seeded 80/10/10 split of
`../shared/data/mixedwm38_dev.npz`: `python -m kd_keras.distill --task segclass` trains the
DeepLabV3+ teacher (runs/segclass-teacher-<data>-seed0/) and distils LightWaferSegClassNet
from it with the paper's loss, then trains the same student on the hard targets alone.
Both students are converted to int8 (248 KB budget) and run by TFLite Micro over the test
maps and the same maps turned by 90 degrees. The distilled student is shipped as
`models/lightwafer-segclass`. It writes `benchmarks/results/segclass_mixedwm38.json` (every
figure, the versions) and `.md` (the table next to the paper's Table 1).

Each stage runs `distill --resume`: a run directory that holds a finished run with the same
arguments is reused, not repeated (so is a trained teacher), and an interrupted benchmark
continues where it stopped.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_keras import distill  # noqa: E402
from kd_keras.fileio import write_json, write_text  # noqa: E402
from kd_keras.rundir import is_finished  # noqa: E402
from kd_keras.runs import load_splits  # noqa: E402
from kd_keras.training import load_model  # noqa: E402
from tflite.export import BUDGETS, export_model, write_model_readme  # noqa: E402
from tflite.harness import micro_outputs, output_metrics  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "mixedwm38_dev.npz"
STUDENT = "lightwafer"
SHIPPED = "lightwafer-segclass"
BUDGET = "248KB"
SPLITS = ("test", "test_rotated")
# The paper's defaults for the loss (T = 4, a_cls = 0.7, a_seg = 0.5, a_feat = 0.3) are distill's.
STUDENT_ARGS = ["--task", "segclass", "--student", STUDENT, "--lr", "2e-3", "--augment"]
FULL = {"teacher_epochs": 8, "epochs": 10}
QUICK = {"teacher_epochs": 1, "epochs": 1, "synthetic_maps": 380}
HARD_ONLY = ["--a-cls", "0", "--a-seg", "0", "--a-feat", "0"]
# Paper 2's Table 1 (validation Dice and accuracy, 90-degree rotated test Dice and accuracy).
PAPER_TABLE_1 = {
    "teacher": {"val_dice": 0.982, "val_accuracy": 0.985, "rotated_dice": 0.975, "rotated_accuracy": 0.978},
    "hard": {"val_dice": 0.945, "val_accuracy": 0.921, "rotated_dice": 0.910, "rotated_accuracy": 0.885},
    "kd": {"val_dice": 0.968, "val_accuracy": 0.964, "rotated_dice": 0.952, "rotated_accuracy": 0.951},
}
TITLES = {"teacher": "teacher (DeepLabV3+)", "hard": "LightWaferSegClassNet, hard loss only",
          "kd": "LightWaferSegClassNet, distilled (KD)"}


def stage_argv(data, settings, run_dir, hard_only):
    data_args = ["--data", os.path.relpath(data)] if data else ["--synthetic-maps", str(settings["synthetic_maps"])]
    return [*STUDENT_ARGS, *data_args, "--teacher-epochs", str(settings["teacher_epochs"]),
            "--epochs", str(settings["epochs"]), "--out", str(run_dir), "--resume",
            *(HARD_ONLY if hard_only else [])]


def int8_row(model_path, out_dir, parts, float_metrics, name):
    """Convert a student to int8 in `out_dir` and evaluate it in TFLite Micro on every split."""
    model = load_model(model_path)
    int8 = {}

    def card_accuracy(flatbuffer):
        # The int8 model is run once per split here; its card takes the test figures from that run.
        int8.update({split: output_metrics(micro_outputs(flatbuffer, parts[split].maps), parts[split])
                     for split in SPLITS})
        return {"test_maps": len(parts["test"]),
                **{f"{kind}_{key}": metrics["test"][key]
                   for kind, metrics in (("float", float_metrics), ("int8", int8))
                   for key in ("exact_match", "macro_f1", "dice", "iou")}}

    card = export_model(model, out_dir, parts["train"].maps, name=name, budget_bytes=BUDGETS[BUDGET],
                        accuracy_fn=card_accuracy, source_model=os.path.relpath(model_path))
    return card, int8


def summary(metrics):
    keys = ("exact_match", "macro_f1", "auc_ovr", "dice", "iou", "pixel_accuracy")
    return {split: {key: metrics[split][key] for key in keys} for split in SPLITS}


def table(rows):
    lines = ["| model | parameters | | accuracy | macro F1 | Dice | IoU | rotated: accuracy | rotated: macro F1 | "
             "rotated: Dice | rotated: IoU | paper: val accuracy | paper: val Dice | paper: rotated accuracy | "
             "paper: rotated Dice |", "| --- | ---: | --- |" + " ---: |" * 12]
    for key, row in rows.items():
        paper = PAPER_TABLE_1[key]
        paper_cells = (f"{100 * paper['val_accuracy']:.1f}% | {paper['val_dice']:.3f} | "
                       f"{100 * paper['rotated_accuracy']:.1f}% | {paper['rotated_dice']:.3f}")
        for kind in ("float", "int8"):
            if kind not in row:
                continue
            m = row[kind]
            cells = " | ".join(f"{100 * m[s]['exact_match']:.2f}% | {m[s]['macro_f1']:.4f} | {m[s]['dice']:.4f} | "
                               f"{m[s]['iou']:.4f}" for s in SPLITS)
            lines.append(f"| {TITLES[key]} | {row['parameters']:,} | {kind} | {cells} | "
                         f"{paper_cells if kind == 'float' else ' | '.join([''] * 4)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="380 synthetic maps, one epoch each: a smoke test")
    parser.add_argument("--runs", type=Path, default=REPO / "runs",
                        help="where the run directories go; the teacher's goes to runs/ beside it")
    parser.add_argument("--models", type=Path, default=REPO / "models", help="where the shipped model goes")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "segclass_mixedwm38")
    args = parser.parse_args(argv)
    args.runs, args.models, args.out, args.data = (p.resolve() for p in (args.runs, args.models, args.out, args.data))
    # distill trains (or reuses) the teacher in runs/ under the working directory: work beside --runs.
    os.chdir(args.runs.parent)
    data = None if args.quick else args.data
    settings = QUICK if args.quick else FULL
    base = args.runs / ("segclass-quick" if args.quick else "segclass-mixedwm38")

    seconds = {}
    for key, hard_only in (("kd", False), ("hard", True)):
        start = time.time()
        reused = is_finished(base / key)
        # --resume: a finished run with these arguments is reused, an interrupted one goes on.
        if distill.main(stage_argv(data, settings, base / key, hard_only)) != 0:
            return 1
        seconds[key] = "reused" if reused else round(time.time() - start)

    parts = load_splits(data, settings.get("synthetic_maps"), 0)
    kd_metrics = json.loads((base / "kd" / "metrics.json").read_text())["models"]
    hard_metrics = json.loads((base / "hard" / "metrics.json").read_text())["models"]
    (teacher_name,) = [name for name in kd_metrics if name != STUDENT]
    measured = {"teacher": kd_metrics[teacher_name], "hard": hard_metrics[STUDENT], "kd": kd_metrics[STUDENT]}
    rows = {key: {"parameters": m["parameters"], "parts": m["parts"], "float": summary(m["metrics"])}
            for key, m in measured.items()}

    start = time.time()
    cards = {}
    for key, out_dir in (("hard", base / "hard" / "int8"), ("kd", args.models / SHIPPED)):
        card, int8 = int8_row(base / key / STUDENT / f"{STUDENT}.keras", out_dir, parts,
                              measured[key]["metrics"], name="lightwafer_segclass")
        rows[key]["int8"] = summary(int8)
        rows[key].update({name: card[name] for name in ("flash_bytes", "arena_bytes", "macs_per_inference")})
        cards[key] = card
    seconds["conversion and TFLite Micro"] = round(time.time() - start)
    write_model_readme(
        args.models / SHIPPED,
        "Paper 2's LightWaferSegClassNet (62,736 parameters): from one 52x52 die map, the defect mask (which dies "
        "are failed) and which of the 38 MixedWM38 patterns it is. Distilled from our DeepLabV3+ teacher with the "
        "paper's loss on the real MixedWM38 dev set, with rotations and flips; converted to full int8 for the "
        "248 KB budget. Its tensor arena is larger than the classifiers': the decoder keeps full-resolution "
        "activations for the mask. See the main README, Paper 2.",
        "python benchmarks/segclass_mixedwm38.py" + (" --quick" if args.quick else ""))

    config = json.loads((base / "kd" / "config.json").read_text())
    write_json(args.out.with_suffix(".json"), {
        "data": args.data.name if data else f"{QUICK['synthetic_maps']} synthetic maps",
        "settings": settings, "student_args": STUDENT_ARGS, "models": rows, "paper_table_1": PAPER_TABLE_1,
        "budget_bytes": BUDGETS[BUDGET], "wall_seconds": seconds, "versions": config["versions"],
    })
    text = table(rows)
    write_text(args.out.with_suffix(".md"), text + "\n")
    print(text)
    print(f"wall time: {seconds}; wrote {args.out}.json and .md, {args.models / SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
