"""How long should the main job's teacher and students train, and with which loss do they learn?

    python -m benchmarks.main_job_teacher          # 14 and 16 epochs, paper and hinton, seeds 0-2
    python -m benchmarks.main_job_teacher --teacher-epochs 14 16 18 --losses hinton --seeds 0 1 2 3
    python -m benchmarks.main_job_teacher --teacher-epochs 16 --student-epochs 20 30 --losses hinton
    python -m benchmarks.main_job_teacher --quick --runs /tmp/r --out /tmp/res/teacher

The main job (`python -m kd_keras.distill`, no arguments) trains a vgg7 teacher on its
synthetic maps and distils Net-1 and separable8k from the mean of its 8 rotations/flips. For each
number of teacher epochs this trains that teacher as the main job does (same split, seed and
settings: `DistillJob`'s defaults), reads its test maps over 1 and 8 views, and distils each
student from it under each loss (`--loss`, with `DistillJob`'s alpha, beta and temperature)
once per student seed (initial weights and shuffling; the split stays the main job's) and
number of student epochs (`--student-epochs`, default the main job's), as float Keras models
on the test split. A better teacher is not always a better teacher of
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

from benchmarks import REPO, write_results
from kd_keras.distillation import teacher_logits_cached
from kd_keras.jobs import TEACHERS, DistillJob, distill_job_student
from kd_keras.rundir import versions
from kd_keras.tasks import CLASSIFY
from kd_keras.training import load_model

QUICK = {"synthetic_maps": 380, "epochs": 1}


def exact_match(model, test, views=1):
    return CLASSIFY.figures(CLASSIFY.predict(model, test.maps, views=views), test)["exact_match"]


def over_seeds(per_seed):
    return {"per_seed": per_seed, "mean": statistics.mean(per_seed.values()),
            "spread": max(per_seed.values()) - min(per_seed.values())}


def measure(job, parts, run_dir, losses, seeds, student_epochs):
    """One teacher trained as `job` says in `run_dir`, and each student distilled from it per number of
    epochs, loss and seed."""
    teacher_path = run_dir / "teacher" / "teacher.keras"
    TEACHERS[CLASSIFY.name](job, parts, run_dir / "teacher", None, 2)  # as the main job trains it
    teacher, test = load_model(teacher_path), parts["test"]
    logits = teacher_logits_cached(teacher_path, parts, run_dir / "teacher_logits.h5", views=job.teacher_views)
    students = {}
    for epochs in student_epochs:
        students[epochs] = {}
        for loss in losses:
            students[epochs][loss] = {}
            student_job = dataclasses.replace(job, loss=loss, epochs=epochs)
            for name in job.student:
                per_seed = {seed: exact_match(distill_job_student(
                    student_job, name, parts, run_dir / f"{name}-{loss}-epochs{epochs}-seed{seed}", teacher_path,
                    logits, seed=seed, resume=True, verbose=2), test) for seed in seeds}
                students[epochs][loss][name] = over_seeds(per_seed)
    return {"teacher_exact_match_one_view": exact_match(teacher, test),
            f"teacher_exact_match_{job.teacher_views}_views": exact_match(teacher, test, job.teacher_views),
            "students": students}


# The label-free losses compared, each as the table names it with the settings `DistillJob` gives it.
LOSS_TITLES = {"paper": "paper (alpha {alpha:g}, beta {beta:g})", "hinton": "hinton (T {temperature:g})"}


def loss_names(job, losses):
    return {loss: LOSS_TITLES[loss].format(**dataclasses.asdict(job)) for loss in losses}


def markdown(results):
    views, students = results["teacher_views"], results["job"]["student"]
    lines = ["# The main job's teacher: how long it trains, and how its students learn from it", "",
             f"{results['data']}; vgg7 teacher as `python -m kd_keras.distill` trains it, students distilled "
             f"from the mean of its {views} views (label-free, float, test split), one run per student seed.", "",
             f"| teacher epochs | teacher, one view | teacher, {views} views | student epochs | loss | "
             + " | ".join(f"{name} per seed | {name} mean | spread" for name in students) + " |",
             "| ---: | ---: | ---: | ---: | --- |" + " --- | ---: | ---: |" * len(students)]
    for epochs, row in results["teachers"].items():
        for student_epochs, by_loss in row["students"].items():
            for loss, by_student in by_loss.items():
                cells = []
                for name in students:
                    figures = by_student[name]
                    cells += [", ".join(f"{seed}: {value:.2%}" for seed, value in figures["per_seed"].items()),
                              f"{figures['mean']:.2%}", f"{figures['spread']:.2%}"]
                lines.append(f"| {epochs} | {row['teacher_exact_match_one_view']:.2%} | "
                             f"{row[f'teacher_exact_match_{views}_views']:.2%} | {student_epochs} | "
                             f"{results['losses'][loss]} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", f"Reproduce: `{results['command']}` ({results['seconds']:.0f} s).", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher-epochs", type=int, nargs="+", default=[14, 16])
    parser.add_argument("--student-epochs", type=int, nargs="+", default=None,
                        help="the students' epochs (default: the main job's)")
    parser.add_argument("--losses", nargs="+", choices=tuple(LOSS_TITLES), default=list(LOSS_TITLES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the students' seeds")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "main_job_teacher")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "main_job_teacher")
    parser.add_argument("--quick", action="store_true", help="380 maps, one epoch each: a smoke test")
    args = parser.parse_args(argv)
    base = DistillJob(**(QUICK if args.quick else {}))
    student_epochs = args.student_epochs or [base.epochs]
    if min(args.teacher_epochs + student_epochs) < 1:
        parser.error("--teacher-epochs and --student-epochs must be positive")
    start = time.time()
    parts = base.splits()
    teachers = {}
    for epochs in args.teacher_epochs:
        job = dataclasses.replace(base, teacher_epochs=epochs)
        print(f"teacher: {epochs} epochs; students {', '.join(base.student)} under {', '.join(args.losses)}, "
              f"seeds {args.seeds}", flush=True)
        teachers[epochs] = measure(job, parts, args.runs / f"teacher{epochs}", args.losses, args.seeds, student_epochs)
    command = "python -m benchmarks.main_job_teacher" + (" --quick" if args.quick else "") + \
        f" --teacher-epochs {' '.join(map(str, args.teacher_epochs))}" + \
        f" --student-epochs {' '.join(map(str, student_epochs))} --losses {' '.join(args.losses)}" + \
        f" --seeds {' '.join(map(str, args.seeds))}"
    results = {"command": command, "data": base.data_description(), "teacher_views": base.teacher_views,
               "losses": loss_names(base, args.losses), "job": base.arguments(), "teachers": teachers,
               "seconds": round(time.time() - start, 1), "versions": versions()}
    write_results(args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
