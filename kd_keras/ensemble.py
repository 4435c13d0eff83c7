"""Make one teacher of several: their 8 defect logits averaged, saved as one teacher.keras.

    python -m kd_keras.ensemble runs/teacher-a runs/teacher-b --out runs/teacher-ensemble   # synthetic maps
    python -m kd_keras.ensemble runs/vgg7-seed0 runs/vgg7-seed1 runs/vgg7-seed2 \\
        --data mixedwm38.npz --out runs/vgg7-ensemble
    python -m kd_keras.distill --data mixedwm38.npz --teacher runs/vgg7-ensemble --teacher-views 8 ...

Each teacher is a classifier's run directory (python -m kd_keras.train_teacher) or its .keras
file. The ensemble is an ordinary teacher: `python -m kd_keras.distill --teacher` takes it (with
--task segclass too), and its 8-view logits are cached as one teacher's are. It trains nothing.
Writes into the run directory: teacher.keras, config.json (the teachers, with a digest of each
file), metrics.json, report.md and confusion.png: the ensemble read on the test split of --data.
A directory holding a run is refused without --resume (a finished run with the same teachers and
data: nothing to do) or --overwrite.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_data_arguments, add_debug_argument, add_run_directory_arguments, run_command
from kd_keras.jobs import EnsembleJob, Job, run_ensemble_job


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teachers", nargs="+", type=Path, metavar="TEACHER",
                        help="two or more classifier teachers: run directories or .keras files")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    add_data_arguments(parser, Job(), trains=False)  # the data defaults every job shares
    add_run_directory_arguments(parser, "a finished run with the same teachers and data only prints its results")
    add_debug_argument(parser)
    return parser


def run(args):
    job = EnsembleJob(**{key: value for key, value in vars(args).items() if key != "debug"})
    test = run_ensemble_job(job)["metrics"]["test"]["threshold"]
    print(f"ensemble of {len(job.teachers)} teachers: exact-match accuracy {100 * test['exact_match']:.2f}% on "
          f"{test['maps']} test maps; report: {job.out / 'report.md'}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.teachers) < 2:
        parser.error(f"an ensemble needs at least 2 teachers, got {len(args.teachers)}")
    args.teachers = tuple(args.teachers)
    return run_command(run, args)


if __name__ == "__main__":
    sys.exit(main())
