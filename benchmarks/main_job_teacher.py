"""How long should the main job's teacher train? Its own figure, and what its students learn.

    python -m benchmarks.main_job_teacher                      # 14 and 16 epochs, Net-1 seeds 0-2
    python -m benchmarks.main_job_teacher --teacher-epochs 14 16 18 --seeds 0 1 2 3
    python -m benchmarks.main_job_teacher --quick --runs /tmp/r --out /tmp/res/teacher

The main job (`python -m kd_keras.distill`, no arguments) trains a vgg7 teacher on its
synthetic maps and distils Net-1 from the mean of its 8 rotations/flips. For each number of
teacher epochs this trains that teacher as the main job does (same split, seed and settings:
`DistillJob`'s defaults), reads its test maps over 1 and 8 views, and distils Net-1 from it
once per student seed (initial weights and shuffling; the split stays the main job's), as
float Keras models on the test split. A better teacher is not always a better teacher of
students, and one student seed cannot tell them apart.

Writes `benchmarks/results/main_job_teacher.{json,md}`. Teachers and students are kept in
`--runs` and resumed: an interrupted run goes on, a finished one is reused. `--quick`: 380
maps, one epoch each; its figures mean nothing.
"""

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

from benchmarks import REPO
from kd_keras.distillation import distill_student, teacher_logits_cached
from kd_keras.fileio import write_json, write_text
from kd_keras.jobs import TEACHERS, DistillJob
from kd_keras.rundir import versions
from kd_keras.tasks import CLASSIFY
from kd_keras.training import load_model

STUDENT = "net1"
QUICK = {"synthetic_maps": 380, "epochs": 1}


def exact_match(model, test, views=1):
    return CLASSIFY.figures(CLASSIFY.predict(model, test.maps, views=views), test)["exact_match"]


def measure(job, parts, run_dir, seeds):
    """One teacher trained as `job` says in `run_dir`, and Net-1 distilled from it per seed."""
    teacher_path = run_dir / "teacher" / "teacher.keras"
    TEACHERS[CLASSIFY.name](job, parts, run_dir / "teacher", None, 2)  # as the main job trains it
    teacher, test = load_model(teacher_path), parts["test"]
    logits = teacher_logits_cached(teacher_path, parts, run_dir / "teacher_logits.h5", views=job.teacher_views)
    students = {}
    for seed in seeds:
        student = distill_student(
            STUDENT, parts, run_dir / f"{STUDENT}-seed{seed}", teacher_path, logits, loss=job.loss, alpha=job.alpha,
            beta=job.beta, temperature=job.temperature, epochs=job.epochs, batch_size=job.batch_size,
            learning_rate=job.lr, augment=job.augment, teacher_views=job.teacher_views, patience=job.patience,
            seed=seed, resume=True, verbose=2)
        students[seed] = exact_match(student, test)
    return {"teacher_exact_match_one_view": exact_match(teacher, test),
            f"teacher_exact_match_{job.teacher_views}_views": exact_match(teacher, test, job.teacher_views),
            f"{STUDENT}_exact_match": students,
            f"{STUDENT}_mean": statistics.mean(students.values()),
            f"{STUDENT}_spread": max(students.values()) - min(students.values())}


def markdown(results):
    views = results["teacher_views"]
    lines = ["# The main job's teacher: how long it trains", "",
             f"{results['data']}; vgg7 teacher as `python -m kd_keras.distill` trains it, {STUDENT} distilled "
             f"from the mean of its {views} views (float, test split), one run per student seed.", "",
             f"| teacher epochs | teacher, one view | teacher, {views} views | {STUDENT} per seed | {STUDENT} mean "
             "| spread |", "| ---: | ---: | ---: | --- | ---: | ---: |"]
    for epochs, row in results["teachers"].items():
        per_seed = ", ".join(f"{seed}: {value:.2%}" for seed, value in row[f"{STUDENT}_exact_match"].items())
        lines.append(f"| {epochs} | {row['teacher_exact_match_one_view']:.2%} | "
                     f"{row[f'teacher_exact_match_{views}_views']:.2%} | {per_seed} | "
                     f"{row[f'{STUDENT}_mean']:.2%} | {row[f'{STUDENT}_spread']:.2%} |")
    return "\n".join([*lines, "", f"Reproduce: `{results['command']}` ({results['seconds']:.0f} s).", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher-epochs", type=int, nargs="+", default=[14, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Net-1's seeds")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "main_job_teacher")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "main_job_teacher")
    parser.add_argument("--quick", action="store_true", help="380 maps, one epoch each: a smoke test")
    args = parser.parse_args(argv)
    if min(args.teacher_epochs) < 1:
        parser.error("--teacher-epochs must be positive")
    start = time.time()
    base = DistillJob(**(QUICK if args.quick else {}))
    parts = base.splits()
    teachers = {}
    for epochs in args.teacher_epochs:
        job = dataclasses.replace(base, teacher_epochs=epochs)
        print(f"teacher: {epochs} epochs; {STUDENT} seeds {args.seeds}", flush=True)
        teachers[epochs] = measure(job, parts, args.runs / f"teacher{epochs}", args.seeds)
    command = "python -m benchmarks.main_job_teacher" + (" --quick" if args.quick else "") + \
        f" --teacher-epochs {' '.join(map(str, args.teacher_epochs))} --seeds {' '.join(map(str, args.seeds))}"
    results = {"command": command, "data": base.data_description(), "teacher_views": base.teacher_views,
               "job": base.arguments(), "teachers": teachers, "seconds": round(time.time() - start, 1),
               "versions": versions()}
    write_json(args.out.with_suffix(".json"), results)
    write_text(args.out.with_suffix(".md"), markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
