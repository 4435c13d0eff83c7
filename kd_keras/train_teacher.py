"""Train a teacher: ResNet-18 (Paper 1's, the default) or vgg7 (as accurate here, 9x cheaper).

    python -m kd_keras.train_teacher --out runs/teacher-synthetic            # synthetic maps
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/teacher --epochs 20
    python -m kd_keras.train_teacher --data mixedwm38.npz --out runs/vgg7 --arch vgg7 --lr 3e-3

Writes into the run directory: teacher.keras (best by validation exact match),
config.json, history.csv, curves.png, confusion.png, metrics.json and report.md.
Interrupted (Ctrl-C, a kill)? Run the same command with --resume.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_common_arguments, data_description, exit_on_errors, make_strategy
from kd_keras.models import teacher_names, teacher_title
from kd_keras.runs import load_splits, report_run, write_config
from kd_keras.training import train_teacher


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.train_teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--arch", choices=teacher_names(), default="resnet18",
                        help="teacher architecture (default resnet18)")
    add_common_arguments(parser, epochs=20, learning_rate=2e-3, augment=True)
    return parser


def run(args):
    parts = load_splits(args.data, args.synthetic_maps, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_config(args.out, vars(args))
    teacher = train_teacher(parts, args.out, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                            learning_rate=args.lr, augment=args.augment, patience=args.patience,
                            seed=args.seed, resume=args.resume, strategy=make_strategy(args.strategy))
    rows = report_run(args.out, f"{teacher_title(teacher)} teacher", {"teacher": (teacher, args.out)}, parts,
                      data_description(args))
    test = rows["teacher"]["metrics"]["test"]["threshold"]
    print(f"teacher: exact-match accuracy {100 * test['exact_match']:.2f}% on {test['maps']} test maps; "
          f"report: {args.out / 'report.md'}")


def main(argv=None):
    return exit_on_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
