"""What maps without labels add: a teacher taught on the few maps a fab has labelled, and its
21 KB student distilled on those maps alone or on every map, the others' labels unread.

    python -m benchmarks.unlabelled_maps                 # resumable: run it again to continue
    python -m benchmarks.unlabelled_maps --quick --fab-data fab.npz --runs /tmp/r --out /tmp/res/u

A fab has far more maps than labels (WM-811K's public release labels 172,950 of its 811,457
maps, 21%), and Paper 1's distillation reads no label: a student can learn from the teacher on
every map. Our dev file holds labelled maps only, so the labels of most of its training maps are
hidden here. On the seeded 80/10/10 split of `../shared/data/wm811k_dev.npz` (maps brought to
52x52 by `max`):

1. labelled maps: a stratified `--labelled` share of the training split (default 0.21, as
   WM-811K's release); the rest of the training split are the maps without labels;
2. teacher: our teacher recipe (`kd_keras.recipes.OUR_TEACHER`: vgg7, 20 epochs,
   rotations/flips), on the labelled maps alone;
3. students: the 21 KB recipe of `benchmarks.wm811k_per_budget` (`separable8k`, 40 epochs,
   label-free Hinton T=4 from the teacher's logits averaged over 8 rotations/flips,
   rotations/flips), distilled from that teacher on the labelled maps alone, and on every
   training map: the same teacher, the same validation maps, only the maps it learns on differ;
4. each student as int8 in TFLite Micro (calibrated on its own training maps), one view, at
   logit 0, on the test split: accuracy, macro F1 and class-balanced macro F1 over the 9
   classes, recall per class. The teacher is read as the students learn from it (float, 8 views).

Every training stage is a run directory under `--runs` (default runs/unlabelled/): rerunning
resumes an unfinished one and reuses a finished one. Writes
`benchmarks/results/unlabelled_maps.{json,md}`.
"""

import argparse
import sys
import time
from pathlib import Path

from benchmarks import DEFAULT_FAB_DATA, REPO, repo_relative, write_results
from benchmarks.wm811k_per_budget import RECIPE, STUDENTS
from kd_keras.data import CLASS_NAMES, load_splits, stratified_split
from kd_keras.distillation import teacher_logits_cached
from kd_keras.evaluation import fab_class_figures
from kd_keras.jobs import DistillJob, TeacherJob, distill_job_student
from kd_keras.recipes import OUR_TEACHER
from kd_keras.rundir import locked, versions
from kd_keras.tasks import CLASSIFY
from kd_keras.training import TEACHER_FILE, load_model, read_training_state, train_teacher
from tflite.export import int8_flatbuffer
from tflite.harness import fab_figures
from tflite.micro import Int8Model

SEED = 0
RESIZE = "max"
STUDENT = next(final for final in STUDENTS if final.budget == "21KB")
LABELLED_SHARE = 0.21  # WM-811K's public release: 172,950 labelled maps of 811,457


def labelled_part(train, share, seed=SEED):
    """A stratified `share` of the training maps: those whose labels a teacher may read."""
    # stratified_split deals each class's maps out by fractions; its "val" part is the share.
    return train.subset(stratified_split(train.pattern_ids, (1 - share, share, 0), seed).val)


def markdown(results):
    """The results as a table, with recall per class."""
    rows = results["models"]
    lines = [
        "| model | learns from | maps it learns on | test accuracy | test macro F1 | test macro F1, balanced | "
        + " | ".join(CLASS_NAMES) + " |",
        "| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in CLASS_NAMES) + " |",
    ]
    for name, row in rows.items():
        natural, balanced = row["test"]["natural"], row["test"]["balanced"]
        recall = " | ".join(f"{100 * natural['per_class'][c]['recall']:.1f}%" for c in CLASS_NAMES)
        lines.append(f"| {name} | {row['learns_from']} | {row['training_maps']:,} | "
                     f"{100 * natural['accuracy']:.2f}% | {natural['macro_f1']:.3f} | {balanced['macro_f1']:.3f} | "
                     f"{recall} |")
    return "\n".join([
        "# What maps without labels add", "",
        f"{results['labelled_maps']:,} of the {results['training_maps']:,} training maps of {results['data']} "
        f"labelled ({100 * results['labelled_share']:.0f}%); test: {results['test_maps']:,} maps. Students: "
        f"{STUDENT.student}, int8 in TFLite Micro, one view, logit 0; the teacher float, 8 views.", "",
        *lines, "",
        f"Command: `{results['command']}`; wall time (s): "
        + ", ".join(f"{stage} {seconds}" for stage, seconds in results["wall_seconds"].items()) + ".", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fab-data", type=Path, default=DEFAULT_FAB_DATA, help="WM-811K-layout npz")
    parser.add_argument("--labelled", type=float, default=LABELLED_SHARE,
                        help=f"share of the training maps whose labels the teacher reads (default {LABELLED_SHARE})")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "unlabelled")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "unlabelled_maps",
                        help="results file, no suffix")
    parser.add_argument("--quick", action="store_true", help="one epoch per stage: a check that it runs")
    args = parser.parse_args(argv)
    if not args.fab_data.is_file():
        parser.error(f"no WM-811K-layout file at {args.fab_data}")
    if not 0 < args.labelled < 1:
        parser.error(f"--labelled {args.labelled}: a share between 0 and 1")
    parts = load_splits(args.fab_data, seed=SEED, resize=RESIZE)
    labelled = {**parts, "train": labelled_part(parts["train"], args.labelled)}
    seconds, start = {}, time.time()
    teacher_dir = args.runs / "teacher-labelled"
    # The teacher and students of wm811k_per_budget, as its jobs define them, on other maps.
    teacher = TeacherJob(arch=OUR_TEACHER.arch, lr=OUR_TEACHER.learning_rate, seed=SEED,
                         epochs=1 if args.quick else OUR_TEACHER.epochs)
    job = DistillJob(student=(STUDENT.student,), out=args.runs, seed=SEED,
                     epochs=1 if args.quick else STUDENT.epochs, **RECIPE)
    with locked(teacher_dir):
        train_teacher(labelled, teacher_dir, arch=teacher.arch, epochs=teacher.epochs, batch_size=teacher.batch_size,
                      learning_rate=teacher.lr, augment=teacher.augment, patience=teacher.patience, seed=SEED,
                      resume=True, verbose=2)
    teacher_path = teacher_dir / TEACHER_FILE
    seconds["teacher"] = round(time.time() - start)
    teacher_outputs = CLASSIFY.predict(load_model(teacher_path), parts["test"].maps, job.teacher_views)
    results = {"data": repo_relative(args.fab_data), "resize": RESIZE, "seed": SEED,
               "labelled_share": args.labelled, "labelled_maps": len(labelled["train"]),
               "training_maps": len(parts["train"]), "test_maps": len(parts["test"]), "models": {
                   "teacher (vgg7, float, 8 views)": {
                       "learns_from": "labels", "training_maps": len(labelled["train"]),
                       "test": fab_class_figures(CLASSIFY.predicted_patterns(teacher_outputs), parts["test"].labels),
                       "best_epoch": read_training_state(teacher_dir)["best_epoch"]}}}
    for name, splits, learns_from in (("labelled maps only", labelled, "the teacher, on the labelled maps"),
                                      ("every map", parts, "the teacher, on every training map")):
        start = time.time()
        run_dir = args.runs / f"{STUDENT.student}-{'labelled' if splits is labelled else 'all'}"
        with locked(run_dir):
            logits = teacher_logits_cached(teacher_path, splits, run_dir / "teacher_cache.h5",
                                           views=job.teacher_views)
            student = distill_job_student(job, STUDENT.student, splits, run_dir / STUDENT.student, teacher_path,
                                          logits, resume=True, verbose=2)
        int8 = Int8Model(int8_flatbuffer(student, splits["train"].maps))
        state = read_training_state(run_dir / STUDENT.student)
        results["models"][f"{STUDENT.student}, {name}"] = {
            "learns_from": learns_from, "training_maps": len(splits["train"]),
            "test": fab_figures(int8, parts["test"]), "epochs_trained": state["epoch"],
            "best_epoch": state["best_epoch"]}
        seconds[name] = round(time.time() - start)
    command = "python -m benchmarks.unlabelled_maps " + " ".join(argv if argv is not None else sys.argv[1:])
    results.update(command=command.strip(), student=STUDENT.student, recipe=RECIPE, wall_seconds=seconds,
                   versions=versions())
    write_results(args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
