"""Models that read a real fab's wafers: trained on WM-811K alone, one per flash budget, shipped
as `models/wm811k-21kb` and `models/wm811k-248kb`.

    python -m benchmarks.wm811k_per_budget           # resumable: run it again to continue
    python -m benchmarks.wm811k_per_budget --quick --fab-data fab.npz --runs /tmp/r --models /tmp/m

On the seeded 80/10/10 split of `../shared/data/wm811k_dev.npz` (stratified by class; maps
brought to 52x52 by `--resize`, default max):
1. teacher: our MixedWM38 teacher recipe (`kd_keras.recipes.OUR_TEACHER`: vgg7, 20 epochs,
   rotations/flips);
2. students, with the recipe `benchmarks.best_per_budget` chose on MixedWM38 (label-free,
   Hinton T=4, from the teacher's logits averaged over 8 rotations/flips, rotations/flips):
   `separable8k` for 21 KB (40 epochs) and `vgg225k` for 248 KB (10 epochs);
3. int8 conversion (`python -m tflite.convert`); for the 21 KB student, whether the firmware
   runs one view of a map or all 8 is chosen on validation (macro F1 of its class readings,
   class-balanced, in TFLite Micro); then each model's decision threshold per defect, on the
   same maps for the same figure (`python -m tflite.calibrate`, `tflite.thresholds`).
Each stage is a run directory under `--runs` (default runs/wm811k/): rerunning resumes an
unfinished one and reuses a finished one. `python -m benchmarks.wm811k_cross_domain` then reads
every shipped model on both sources. Writes `benchmarks/results/wm811k_per_budget.{json,md}`.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

from benchmarks import DEFAULT_FAB_DATA, REPO, repo_relative
from kd_keras.data import RESIZE_METHODS, load_splits
from kd_keras.fileio import write_json, write_text
from kd_keras.jobs import DistillJob, TeacherJob, run_distill_job, run_teacher_job
from kd_keras.recipes import OUR_TEACHER
from kd_keras.rundir import plain, versions
from kd_keras.training import TEACHER_FILE, load_model, read_training_state
from tflite.budget import BUDGETS
from tflite.card import CARD_FILE, ModelCard, write_model_readme
from tflite.export import convert_student, int8_flatbuffer
from tflite.harness import fab_figures
from tflite.micro import Int8Model
from tflite.thresholds import calibrate_model

SEED = 0
RECIPE = {"loss": "hinton", "temperature": 4.0, "teacher_views": 8, "augment": True, "batch_size": 128, "lr": 3e-3}


class FabStudent(NamedTuple):
    label: str  # the shipped directory under models/
    student: str
    budget: str
    epochs: int
    views: tuple  # view counts chosen among on validation


STUDENTS = (FabStudent("wm811k-21kb", "separable8k", "21KB", 40, (1, 8)),
            FabStudent("wm811k-248kb", "vgg225k", "248KB", 10, (1,)))


def markdown(results):
    lines = ["| model | student | parameters | flash | arena | views | val macro F1, balanced: logit 0 | "
             "with thresholds | test accuracy | test macro F1 | test macro F1, balanced |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in results["models"].items():
        test = row["test"]
        lines.append(f"| {label} | {row['student']} | {row['parameters']:,} | {row['flash_bytes']:,} | "
                     f"{row['arena_bytes']:,} | {row['views']} | {row['val_macro_f1_balanced']:.3f} | "
                     f"{row['val_macro_f1_balanced_thresholds']:.3f} | "
                     f"{100 * test['natural']['accuracy']:.2f}% | {test['natural']['macro_f1']:.3f} | "
                     f"{test['balanced']['macro_f1']:.3f} |")
    teacher = results["teacher"]
    lines += ["", f"Teacher ({OUR_TEACHER.arch}, float): test exact match {100 * teacher['test_exact_match']:.2f}% "
              f"(validation {100 * teacher['val_exact_match']:.2f}%). Students: int8 in TFLite Micro on the "
              f"{results['test_maps']:,} test maps. Command: `{results['command']}`; wall time "
              f"{results['wall_seconds']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fab-data", type=Path, default=DEFAULT_FAB_DATA, help="WM-811K-layout npz")
    parser.add_argument("--resize", choices=RESIZE_METHODS, default="max")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "wm811k")
    parser.add_argument("--models", type=Path, default=REPO / "models", help="where the two models go")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "wm811k_per_budget")
    parser.add_argument("--quick", action="store_true", help="one epoch per stage: a check that it runs")
    args = parser.parse_args(argv)
    if not args.fab_data.is_file():
        parser.error(f"no WM-811K-layout file at {args.fab_data}")
    # Paths as the command line would give them, relative to here: the runs record them.
    data, runs = Path(os.path.relpath(args.fab_data)), Path(os.path.relpath(args.runs))
    common = {"data": data, "resize": args.resize, "seed": SEED, "resume": True}
    seconds, start = {}, time.time()
    teacher = TeacherJob(arch=OUR_TEACHER.arch, lr=OUR_TEACHER.learning_rate,
                         epochs=1 if args.quick else OUR_TEACHER.epochs, out=runs / "teacher-vgg7", **common)
    teacher_row = run_teacher_job(teacher, verbose=2)
    seconds["teacher"] = round(time.time() - start)
    parts = load_splits(data, seed=SEED, resize=args.resize)
    results = {"data": repo_relative(args.fab_data), "resize": args.resize, "seed": SEED,
               "test_maps": len(parts["test"]), "teacher_job": plain(teacher.arguments()),
               "teacher": {"parameters": teacher_row["parameters"],
                           "test_exact_match": teacher_row["metrics"]["test"]["threshold"]["exact_match"],
                           "val_exact_match": read_training_state(teacher.out)["best"]},
               "models": {}}
    for final in STUDENTS:
        start = time.time()
        run_dir = runs / f"students-{final.budget.lower()}"
        job = DistillJob(student=(final.student,), teacher=teacher.out / TEACHER_FILE, out=run_dir,
                         epochs=1 if args.quick else final.epochs, **RECIPE, **common)
        row = run_distill_job(job, verbose=2)[final.student]
        out = args.models / final.label
        source = run_dir / final.student / f"{final.student}.keras"
        # Views chosen on validation (class-balanced macro F1 in TFLite Micro), then one conversion with them.
        int8 = Int8Model(int8_flatbuffer(load_model(source), parts["train"].maps))
        scores = {views: fab_figures(int8, parts["val"], views)["balanced"]["macro_f1"] for views in final.views}
        views = max(scores, key=scores.get)
        convert_student(run_dir / final.student, out, BUDGETS[final.budget], views=views, source_model=source)
        # Calibrating also measures the shipped model, thresholds and all, on the test split.
        calibration = calibrate_model(out, data, seed=SEED)
        card = ModelCard.read(out / CARD_FILE)
        write_model_readme(out, f"Our int8 student for real fab maps at the {BUDGETS[final.budget].title} budget: "
                           f"{final.student} ({row['parameters']:,} parameters), distilled without labels from a "
                           f"{OUR_TEACHER.arch} teacher (Hinton T=4; teacher logits averaged over 8 views; "
                           f"rotations/flips), {job.epochs} epochs, on the real WM-811K dev set, maps brought to "
                           f"52x52 by `{args.resize}`, with a decision threshold per defect chosen on the "
                           "validation maps for class-balanced macro F1 (`python -m tflite.calibrate`). Its test maps "
                           "have one class each (8 types or none): the card's exact match is the share of maps whose "
                           "class it reads right.",
                           "python -m benchmarks.wm811k_per_budget")
        test = calibration["test_fab_classes"]
        results["models"][final.label] = {
            "student": final.student, "parameters": row["parameters"], "epochs": job.epochs,
            "run_dir": repo_relative(run_dir), "model_dir": repo_relative(out), "flash_bytes": card.flash_bytes,
            "arena_bytes": card.arena_bytes, "views": views, "val_macro_f1_balanced_by_views": scores,
            "val_macro_f1_balanced": scores[views], "thresholds_int8": calibration["thresholds"],
            "val_macro_f1_balanced_thresholds": calibration["val_after"], "test": test,
            "card_accuracy": card.accuracy}
        seconds[final.label] = round(time.time() - start)
    results.update(command="python -m benchmarks.wm811k_per_budget" + (" --quick" if args.quick else ""),
                   recipe=RECIPE, wall_seconds=seconds, versions=versions())
    write_json(args.out.with_suffix(".json"), results)
    write_text(args.out.with_suffix(".md"), markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
