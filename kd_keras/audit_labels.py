"""Audit a file's labels: which maps are probably labelled wrong, and what they look like.

    python -m kd_keras.audit_labels --data mixedwm38.npz --out runs/label-audit
    python -m kd_keras.audit_labels --data mixedwm38.npz --out runs/quick-audit --folds 2 --epochs 1
    python -m kd_keras.audit_labels --data wm811k.npz --resize max --balance 0.5 --out runs/wm811k-audit

Trains one teacher per fold (`--folds`, each on the other folds' maps) and reads every map
with the teacher that never saw it; a label that reading contradicts confidently is a suspect
(see `kd_keras.label_audit`). Writes into --out: one run directory per fold (`fold0`, ...), and
label_audit.json (every suspect: its row in the file, given and suspected label, the
evidence), label_audit.md (tables) and label_audit.png (the surest suspects, drawn).
Interrupted? Run the same command again: finished folds are reused, an unfinished one goes on.
The file's labels are never changed.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, argument_type, positive_int, run_command
from kd_keras.data import DEFAULT_RESIZE, RESIZE_METHODS, load_wafer_maps
from kd_keras.data.pipeline import balancing_power
from kd_keras.label_audit import AuditSettings, audit_labels, write_audit
from kd_keras.models import teacher_names

DEFAULT = AuditSettings()
REPORT_NAME = "label_audit"


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.audit_labels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="labelled wafer maps: a MixedWM38-layout or WM-811K-layout .npz")
    parser.add_argument("--out", type=Path, required=True, help="the audit's directory")
    parser.add_argument("--resize", choices=RESIZE_METHODS, default=DEFAULT_RESIZE,
                        help=f"how maps of other grids become 52x52 (default {DEFAULT_RESIZE})")
    parser.add_argument("--folds", type=positive_int, default=DEFAULT.folds,
                        help=f"teachers, each reading the maps the others train on (default {DEFAULT.folds})")
    parser.add_argument("--arch", choices=teacher_names(), default=DEFAULT.arch,
                        help=f"the teachers' architecture (default {DEFAULT.arch})")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULT.epochs,
                        help=f"per teacher (default {DEFAULT.epochs})")
    parser.add_argument("--lr", type=float, default=DEFAULT.learning_rate,
                        help=f"peak learning rate, cosine-decayed to 0 (default {DEFAULT.learning_rate})")
    parser.add_argument("--balance", type=argument_type(balancing_power), default=DEFAULT.balance, metavar="POWER",
                        help="how much rarer label patterns weigh in the teachers' loss, 0 to 1, as train_teacher's "
                             f"(default {DEFAULT.balance:g}; WM-811K's teachers read its rare classes best at 0.5)")
    parser.add_argument("--seed", type=int, default=DEFAULT.seed,
                        help="seed of the folds and the teachers' training (default 0)")
    parser.add_argument("--split-seed", type=int, default=DEFAULT.split_seed,
                        help="the training commands' --seed: each suspect is placed in its train/val/test split "
                             "(default 0)")
    parser.add_argument("--shown", type=int, default=30, help="suspects drawn in label_audit.png (default 30)")
    add_debug_argument(parser)
    return parser


def run(args):
    settings = AuditSettings(folds=args.folds, arch=args.arch, epochs=args.epochs, learning_rate=args.lr,
                             seed=args.seed, split_seed=args.split_seed, balance=args.balance)
    data = load_wafer_maps(args.data, args.resize)
    report = audit_labels(data, args.out, settings, verbose=2)
    write_audit(args.out / REPORT_NAME, report, data, shown=args.shown)
    per_split = report["suspects_per_split"]
    print(f"{per_split['all']:,} of {report['maps']:,} labels are suspect (test split: {per_split.get('test', 0):,}); "
          f"out-of-fold exact match {100 * report['out_of_fold_exact_match']:.2f}%; report: "
          f"{args.out / REPORT_NAME}.md")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv),
                       interrupted="interrupted: every finished epoch is saved; run the same command to continue")


if __name__ == "__main__":
    sys.exit(main())
