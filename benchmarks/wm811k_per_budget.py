"""Models that read a real fab's wafers: trained on WM-811K alone, one per flash budget, shipped
as `models/wm811k-21kb` and `models/wm811k-248kb`.

    python -m benchmarks.wm811k_per_budget --teacher-balance 0.5   # the shipped models; resumable: run it again
    python -m benchmarks.wm811k_per_budget --models /tmp/m          # the unweighted teacher's, shipped before
    python -m benchmarks.wm811k_per_budget --with-mixedwm38 --budgets 248KB   # one model for both sources
    python -m benchmarks.wm811k_per_budget --teacher runs/teacher-ensemble      # students of a teacher made elsewhere
    python -m benchmarks.wm811k_per_budget --quick --fab-data fab.npz --runs /tmp/r --models /tmp/m

On the seeded 80/10/10 split of `../shared/data/wm811k_dev.npz` (stratified by class; maps
brought to 52x52 by `--resize`, default max):
1. teacher: our MixedWM38 teacher recipe (`kd_keras.recipes.OUR_TEACHER`: vgg7, 20 epochs,
   rotations/flips; `--teacher-balance P` weighs rare classes more, see
   `benchmarks.wm811k_teacher_balance`); or `--teacher`, a classifier trained elsewhere on these
   maps (e.g. `python -m kd_keras.ensemble` of `benchmarks.wm811k_teacher_balance`'s seeds);
2. students, with the recipe `benchmarks.best_per_budget` chose on MixedWM38 (label-free,
   Hinton T=4, from the teacher's logits averaged over 8 rotations/flips, rotations/flips):
   `separable8k` for 21 KB (40 epochs) and `vgg225k` for 248 KB (10 epochs);
3. int8 conversion (`python -m tflite.convert`); for the 21 KB student, whether the firmware
   runs one view of a map or all 8 is chosen on validation (macro F1 of its class readings,
   class-balanced, in TFLite Micro); then each model's decision threshold per defect, on the
   same maps for the same figure (`python -m tflite.calibrate`, `tflite.thresholds`).
With `--with-mixedwm38` the teacher and students train on MixedWM38's maps (`--data`) and the
fab's together, each file split as it is alone (so each source's test maps are those of its own
models), and ship as `models/both-21kb` and `models/both-248kb`, read at logit 0: thresholds
chosen for one source's figure would move the other's. Views are chosen on the fab's validation
maps, and each model is measured on both sources' test splits.
Each stage is a run directory under `--runs` (default runs/wm811k/, or runs/both/; with
`--teacher-balance P`, runs/wm811k-balance<P>/ or runs/both-balance<P>/; with `--teacher T`,
runs/wm811k-<T's name>/): rerunning
resumes an unfinished one and reuses a finished one. `python -m benchmarks.wm811k_cross_domain` then reads
every shipped model on both sources. Writes `benchmarks/results/wm811k_per_budget.{json,md}`
(`wm811k_per_budget_both`, and `_balance<P>` with `--teacher-balance P`, `_<T's name>` with `--teacher T`).
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

from benchmarks import DEFAULT_DATA, DEFAULT_FAB_DATA, REPO, repo_relative, results_file, write_results
from kd_keras.cli import argument_type
from kd_keras.data import RESIZE_METHODS, data_paths, load_splits
from kd_keras.data.pipeline import balancing_power
from kd_keras.evaluation import fab_class_figures
from kd_keras.fileio import read_json
from kd_keras.jobs import DistillJob, TeacherJob, run_distill_job, run_teacher_job, teacher_file, teacher_name
from kd_keras.models import teacher_title
from kd_keras.recipes import OUR_TEACHER
from kd_keras.tasks import CLASSIFY
from kd_keras.rundir import digest, plain, versions
from kd_keras.training import TEACHER_FILE, load_model, read_training_state
from tflite.budget import BUDGETS
from tflite.card import CARD_FILE, ModelCard, write_model_readme
from tflite.export import convert_student, int8_flatbuffer, load_converted
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
             "with thresholds | test macro F1, balanced: logit 0 | test accuracy | test macro F1 | "
             "test macro F1, balanced | MixedWM38 test exact match |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in results["models"].items():
        test, calibrated, mixed = row["test"], row["val_macro_f1_balanced_thresholds"], row.get("mixedwm38_test")
        test_logit_0 = row.get("test_logit_0")  # not in results from before it was measured
        lines.append(f"| {label} | {row['student']} | {row['parameters']:,} | {row['flash_bytes']:,} | "
                     f"{row['arena_bytes']:,} | {row['views']} | {row['val_macro_f1_balanced']:.3f} | "
                     + ("- | " if calibrated is None else f"{calibrated:.3f} | ")
                     + ("- | " if test_logit_0 is None else f"{test_logit_0['balanced']['macro_f1']:.3f} | ")
                     + f"{100 * test['natural']['accuracy']:.2f}% | {test['natural']['macro_f1']:.3f} | "
                     f"{test['balanced']['macro_f1']:.3f} | "
                     + ("- |" if mixed is None else f"{100 * mixed['exact_match']:.2f}% |"))
    teacher, by_source = results["teacher"], results.get("teacher_by_source")
    if by_source:
        fab, mixed = by_source["wm811k_test"], by_source.get("mixedwm38_test_exact_match")
        lines += ["", f"The teacher (float, its logits averaged over {by_source['views']} views) on the WM-811K test "
                  f"maps: accuracy {100 * fab['natural']['accuracy']:.2f}%, macro F1 {fab['natural']['macro_f1']:.3f}"
                  f" ({fab['balanced']['macro_f1']:.3f} class-balanced)"
                  + ("" if mixed is None else f"; MixedWM38 test exact match {100 * mixed:.2f}%") + "."]
    title = teacher.get("title", OUR_TEACHER.arch)
    lines += ["", f"Data: {' + '.join(results['training_data'])}. Teacher ({title}, float): test exact "
              f"match {100 * teacher['test_exact_match']:.2f}% (validation {100 * teacher['val_exact_match']:.2f}%), "
              f"on all its test maps. Students: int8 in TFLite Micro on the {results['test_maps']:,} WM-811K test "
              f"maps. Command: `{results['command']}`; wall time {results['wall_seconds']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fab-data", type=Path, default=DEFAULT_FAB_DATA, help="WM-811K-layout npz")
    parser.add_argument("--with-mixedwm38", action="store_true",
                        help="train on --data's MixedWM38 maps too: one model per budget for both sources")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="MixedWM38-layout npz, read with --with-mixedwm38")
    parser.add_argument("--budgets", nargs="+", choices=[final.budget for final in STUDENTS],
                        default=[final.budget for final in STUDENTS],
                        help="the students to train (default all); the results file keeps the others' rows")
    parser.add_argument("--resize", choices=RESIZE_METHODS, default="max")
    parser.add_argument("--teacher-balance", type=argument_type(balancing_power), default=0.0, metavar="P",
                        help="weigh rare classes more in the teacher's loss (python -m kd_keras.train_teacher "
                             "--balance; default 0, every map alike); its runs default to runs/wm811k-balance<P>, "
                             "or runs/both-balance<P>")
    parser.add_argument("--teacher", type=argument_type(teacher_file), default=None, metavar="TEACHER",
                        help="distil from this classifier (a run directory or .keras file, e.g. python -m "
                             "kd_keras.ensemble's) instead of training one; its runs default to "
                             "runs/wm811k-<its name>")
    parser.add_argument("--runs", type=Path, default=None, help="default runs/wm811k, or runs/both")
    parser.add_argument("--models", type=Path, default=REPO / "models", help="where the models go")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file, no suffix (default benchmarks/results/wm811k_per_budget[_both]"
                             "[_balance<P> or _<--teacher's name>])")
    parser.add_argument("--quick", action="store_true", help="one epoch per stage: a check that it runs")
    args = parser.parse_args(argv)
    both = args.with_mixedwm38
    if args.teacher is not None and args.teacher_balance:
        parser.error("--teacher-balance weighs the loss of a teacher trained here; --teacher gives one")
    for path, layout in ((args.fab_data, "WM-811K"), *([(args.data, "MixedWM38")] if both else [])):
        if not path.is_file():
            parser.error(f"no {layout}-layout file at {path}")
    # A weighted or given teacher gets run directories and results of its own: the unweighted one's would
    # refuse it.
    variant = (teacher_name(args.teacher) if args.teacher else
               f"balance{args.teacher_balance:g}" if args.teacher_balance else None)
    runs = args.runs or REPO / "runs" / "-".join(filter(None, ("both" if both else "wm811k", variant)))
    out = args.out or REPO / "benchmarks" / "results" / "_".join(
        filter(None, ("wm811k_per_budget", "both" if both else None, variant)))
    # Paths as the command line would give them, relative to here: the runs record them.
    fab_data, runs = Path(os.path.relpath(args.fab_data)), Path(os.path.relpath(runs))
    data = (Path(os.path.relpath(args.data)), fab_data) if both else fab_data
    common = {"data": data, "resize": args.resize, "seed": SEED, "resume": True}
    seconds, start = {}, time.time()
    parts = load_splits(fab_data, seed=SEED, resize=args.resize)  # the fab's maps: views, thresholds, figures
    if args.teacher is None:
        teacher = TeacherJob(arch=OUR_TEACHER.arch, lr=OUR_TEACHER.learning_rate, balance=args.teacher_balance,
                             epochs=1 if args.quick else OUR_TEACHER.epochs, out=runs / "teacher-vgg7", **common)
        teacher_row = run_teacher_job(teacher, verbose=2)
        teacher_path, teacher_record = teacher.out / TEACHER_FILE, {
            "title": OUR_TEACHER.arch, "parameters": teacher_row["parameters"],
            "test_exact_match": teacher_row["metrics"]["test"]["threshold"]["exact_match"],
            "val_exact_match": read_training_state(teacher.out)["best"]}
        teacher_job = plain(teacher.arguments())
    else:
        teacher_path, teacher_record = args.teacher, given_teacher_figures(args.teacher, parts)
        teacher_job = {"teacher": repo_relative(args.teacher), "teacher_digest": digest(args.teacher.read_bytes())}
    seconds["teacher"] = round(time.time() - start)
    mixed_test = load_splits(args.data, seed=SEED)["test"] if both else None
    results = {"data": repo_relative(args.fab_data),
               "training_data": [repo_relative(path) for path in data_paths(data)], "resize": args.resize,
               "seed": SEED, "test_maps": len(parts["test"]), "teacher_job": teacher_job, "teacher": teacher_record,
               "teacher_by_source": teacher_by_source(teacher_path, parts["test"], mixed_test),
               "models": {}}
    if results_file(out, ".json").is_file() and set(args.budgets) != {final.budget for final in STUDENTS}:
        results["models"] = read_json(results_file(out, ".json"))["models"]  # rows measured before
    for final in (final for final in STUDENTS if final.budget in args.budgets):
        start = time.time()
        label = final.label.replace("wm811k", "both") if both else final.label
        run_dir = runs / f"students-{final.budget.lower()}"
        job = DistillJob(student=(final.student,), teacher=teacher_path, out=run_dir,
                         epochs=1 if args.quick else final.epochs, **RECIPE, **common)
        row = run_distill_job(job, verbose=2)[final.student]
        out_dir = args.models / label
        source = run_dir / final.student / f"{final.student}.keras"
        # Views chosen on validation (class-balanced macro F1 in TFLite Micro), then one conversion with them.
        int8 = Int8Model(int8_flatbuffer(load_model(source), parts["train"].maps))
        scores = {views: fab_figures(int8, parts["val"], views)["balanced"]["macro_f1"] for views in final.views}
        views = max(scores, key=scores.get)
        convert_student(run_dir / final.student, out_dir, BUDGETS[final.budget], views=views, source_model=source)
        _, converted = load_converted(out_dir)  # no thresholds yet: each defect present above logit 0
        test_logit_0 = fab_figures(converted, parts["test"], views)
        if both:  # shipped at logit 0, read on each source's test maps
            thresholds, val_calibrated, test = None, None, test_logit_0
            mixed = converted.task.figures(converted.outputs(mixed_test.maps, views), mixed_test)
        else:  # calibrating also measures the shipped model, thresholds and all, on the test split
            calibration, mixed = calibrate_model(out_dir, fab_data, seed=SEED), None
            thresholds, val_calibrated = calibration["thresholds"], calibration["val_after"]
            test = calibration["files"][0]["test_fab_classes"]
        card, state = ModelCard.read(out_dir / CARD_FILE), read_training_state(run_dir / final.student)
        write_model_readme(out_dir, model_readme(final, row, state, args.resize, both,
                                                 teacher_description(teacher_record, args.teacher_balance)),
                           "python -m benchmarks.wm811k_per_budget" + (" --with-mixedwm38" if both else "")
                           + (f" --teacher-balance {args.teacher_balance:g}" if args.teacher_balance else "")
                           + (f" --teacher {repo_relative(args.teacher)}" if args.teacher else ""))
        results["models"][label] = {
            "student": final.student, "parameters": row["parameters"], "epochs": job.epochs,
            "epochs_trained": state["epoch"], "best_epoch": state["best_epoch"],
            "run_dir": repo_relative(run_dir), "model_dir": repo_relative(out_dir), "flash_bytes": card.flash_bytes,
            "arena_bytes": card.arena_bytes, "views": views, "val_macro_f1_balanced_by_views": scores,
            "val_macro_f1_balanced": scores[views], "thresholds_int8": thresholds,
            "val_macro_f1_balanced_thresholds": val_calibrated, "test": test,
            "test_logit_0": test_logit_0,
            "mixedwm38_test": None if mixed is None else {"maps": len(mixed_test), "exact_match": mixed["exact_match"]},
            "card_accuracy": card.accuracy}
        seconds[label] = round(time.time() - start)
    command = "python -m benchmarks.wm811k_per_budget " + " ".join(argv if argv is not None else sys.argv[1:])
    results.update(command=command.strip(), recipe=RECIPE, wall_seconds=seconds, versions=versions())
    write_results(out, results, markdown(results))
    return 0


def given_teacher_figures(path, parts):
    """A given teacher's row of the results: its title, size and exact match (float, one view) on the
    fab's validation and test maps."""
    model = load_model(path)
    return {"title": teacher_title(model), "parameters": model.count_params(),
            **{f"{split}_exact_match": CLASSIFY.evaluate(CLASSIFY.predict(model, parts[split].maps), parts[split])[
                "exact_match"] for split in ("val", "test")}}


def teacher_description(teacher, teacher_balance=0.0):
    """'a vgg7 teacher', with its balance where rare classes weighed more; 'an ensemble of 2 teachers'."""
    title = teacher.get("title", OUR_TEACHER.arch)  # results from before titles were recorded: ours
    weighed = f" trained with rare classes weighed more (balance {teacher_balance:g})" if teacher_balance else ""
    return f"{'an' if title[0] in 'aeiou' else 'a'} {title}{'' if 'teacher' in title else ' teacher'}{weighed}"


def teacher_by_source(teacher_path, fab_test, mixed_test, views=RECIPE["teacher_views"]):
    """The float teacher on each source's test maps, read as its students learn from it (its
    logits averaged over `views` rotations/flips, each defect present above logit 0)."""
    model = load_model(teacher_path)
    readings = CLASSIFY.predicted_patterns(CLASSIFY.predict(model, fab_test.maps, views))
    figures = {"views": views, "wm811k_test": fab_class_figures(readings, fab_test.labels)}
    if mixed_test is not None:
        outputs = CLASSIFY.predict(model, mixed_test.maps, views)
        figures["mixedwm38_test_exact_match"] = CLASSIFY.figures(outputs, mixed_test)["exact_match"]
    return figures


def model_readme(final, row, state, resize, both, teacher):
    """What the shipped model's README says it is; `state`: its training's (`read_training_state`)."""
    epochs = state["settings"]["epochs"]
    schedule = (f"{epochs} epochs" if state["epoch"] == epochs else
                f"{state['epoch']} of {epochs} epochs (stopped: no better validation exact match for "
                f"{state['wait']} epochs)")
    schedule += f", the weights of epoch {state['best_epoch']} (best validation exact match)"
    trained_on = ("MixedWM38's dev set and the real WM-811K dev set together (each split on its own)" if both
                  else "the real WM-811K dev set")
    decision = ("read at logit 0 (thresholds chosen for both sources' figures cost more than they win: see the "
                "repository's README)" if both else
                "with a decision threshold per defect chosen on the validation maps for class-balanced macro F1 "
                "(`python -m tflite.calibrate`)")
    return (f"Our int8 student for real fab maps at the {BUDGETS[final.budget].title} budget: {final.student} "
            f"({row['parameters']:,} parameters), distilled without labels from {teacher} "
            f"(Hinton T=4; teacher logits averaged over 8 views; rotations/flips), {schedule}, on {trained_on}, "
            f"maps brought to 52x52 by `{resize}`, {decision}. WM-811K's test maps have one class each (8 types "
            "or none): on them, exact match is the share of maps whose class it reads right.")


if __name__ == "__main__":
    sys.exit(main())
