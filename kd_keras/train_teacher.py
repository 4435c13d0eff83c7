"""Train a teacher: ResNet-18 (Paper 1's, the default) or vgg7 (as accurate here, 9x cheaper).

    python -m kd_keras.train_teacher --out runs/teacher-synthetic            # synthetic maps
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/teacher --epochs 20
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/vgg7 --arch vgg7 --lr 3e-3
    python -m kd_keras.train_teacher --data wm811k.npz --out runs/wm811k --arch vgg7 --balance 0.5
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/vgg7-from-wm811k --arch vgg7 --init runs/wm811k

`--balance` weighs rare classes more in the loss (WM-811K's: 24,454 maps of none against 97 of
Near-full). `--init` starts from a trained teacher's weights (same --arch) instead of random ones:
pre-training on other maps. Writes into the run directory: teacher.keras (best by validation exact match),
config.json, history.csv, curves.png, confusion.png, metrics.json and report.md.
Interrupted (Ctrl-C, a kill)? Run the same command with --resume: it goes on from the
last finished epoch. A directory holding a run is refused without --resume or --overwrite.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import TRAINING_INTERRUPTED, add_common_arguments, argument_type, run_command
from kd_keras.data.pipeline import balancing_power
from kd_keras.jobs import TeacherJob, run_teacher_job
from kd_keras.models import teacher_names

DEFAULT = TeacherJob()


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.train_teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--arch", choices=teacher_names(), default=DEFAULT.arch,
                        help=f"teacher architecture (default {DEFAULT.arch})")
    add_common_arguments(parser, DEFAULT)
    parser.add_argument("--balance", type=argument_type(balancing_power), default=DEFAULT.balance, metavar="POWER",
                        help="weigh each training map by its label pattern's share to the power -POWER: 0 (the "
                             "default) weighs maps alike, 1 every class alike, 0.5 between")
    parser.add_argument("--init", type=Path, default=None, metavar="TEACHER",
                        help="start from this teacher's weights (its run directory or .keras file, the same --arch) "
                             "instead of random ones: pre-training, e.g. on WM-811K maps")
    return parser


def run(args):
    job = TeacherJob(**{key: value for key, value in vars(args).items() if key != "debug"})
    test = run_teacher_job(job)["metrics"]["test"]["threshold"]
    print(f"teacher: exact-match accuracy {100 * test['exact_match']:.2f}% on {test['maps']} test maps; "
          f"report: {job.out / 'report.md'}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted=TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
