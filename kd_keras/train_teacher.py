"""Train a teacher: ResNet-18 (Paper 1's, the default) or vgg7 (as accurate here, 9x cheaper).

    python -m kd_keras.train_teacher --out runs/teacher-synthetic            # synthetic maps
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/teacher --epochs 20
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/vgg7 --arch vgg7 --lr 3e-3

Writes into the run directory: teacher.keras (best by validation exact match),
config.json, history.csv, curves.png, confusion.png, metrics.json and report.md.
Interrupted (Ctrl-C, a kill)? Run the same command with --resume: it goes on from the
last finished epoch. A directory holding a run is refused without --resume or --overwrite.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import (
    NOT_RESULT_ARGUMENTS, TRAINING_INTERRUPTED, add_common_arguments, data_description, make_strategy, run_command,
)
from kd_keras.errors import FileFormatError
from kd_keras.fileio import read_json
from kd_keras.models import teacher_names, teacher_title
from kd_keras.rundir import METRICS_FILE, is_finished, locked, open_run, write_config
from kd_keras.runs import load_splits, report_run
from kd_keras.training import train_teacher


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.train_teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--arch", choices=teacher_names(), default="resnet18",
                        help="teacher architecture (default resnet18)")
    add_common_arguments(parser, epochs=20, learning_rate=2e-3, augment=True)
    return parser


def test_figures(run_dir):
    """The teacher's test-split figures in a finished run's metrics.json."""
    path = run_dir / METRICS_FILE
    try:
        return read_json(path)["models"]["teacher"]["metrics"]["test"]["threshold"]
    except (KeyError, TypeError):
        raise FileFormatError(f"{path}: no test figures of a teacher (models.teacher.metrics.test)") from None


def run(args):
    arguments = {key: value for key, value in vars(args).items() if key not in NOT_RESULT_ARGUMENTS}
    with locked(args.out):
        mode = open_run(args.out, arguments, resume=args.resume, overwrite=args.overwrite)
        if mode == "resume" and is_finished(args.out):
            print(f"{args.out} holds a finished run: nothing left to train")
        else:
            parts = load_splits(args.data, args.synthetic_maps, args.seed)
            if mode == "new":
                write_config(args.out, arguments)
            teacher = train_teacher(parts, args.out, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                                    learning_rate=args.lr, augment=args.augment, patience=args.patience,
                                    seed=args.seed, resume=mode == "resume", strategy=make_strategy(args.strategy))
            report_run(args.out, f"{teacher_title(teacher)} teacher", {"teacher": (teacher, args.out)}, parts,
                       data_description(args))
    test = test_figures(args.out)
    print(f"teacher: exact-match accuracy {100 * test['exact_match']:.2f}% on {test['maps']} test maps; "
          f"report: {args.out / 'report.md'}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted=TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
