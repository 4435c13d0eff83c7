"""What the command lines share: common arguments, and the one error boundary.

Every command runs through `run_command`: an expected failure (a bad file, a refused run
directory, a full disk, ...) becomes one line on stderr naming the file and the problem,
with exit status 1 (argparse's 2 for bad arguments); `--debug` shows the traceback instead.

Example:

>>> def fails(args):
...     raise FileNotFoundError(2, "No such file or directory", "maps.npz")
>>> import argparse, contextlib, io
>>> with contextlib.redirect_stderr(io.StringIO()) as stderr:
...     status = run_command(fails, argparse.Namespace(debug=False))
>>> status, stderr.getvalue()
(1, 'error: maps.npz: No such file or directory\\n')
"""

import argparse
import os
import sys
from pathlib import Path

from kd_keras.data.resize import RESIZE_METHODS
from kd_keras.errors import ToolkitError

# Failures a user can cause and fix; anything else is a bug, and keeps its traceback.
EXPECTED_ERRORS = (ToolkitError, OSError, ValueError, MemoryError)
TRAINING_INTERRUPTED = ("interrupted: every finished epoch is saved; run the same command with --resume "
                        "to continue")


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def argument_type(parse):
    """An argparse type from a parser that raises ValueError (or FileNotFoundError, for a file the
    argument names): argparse then shows the reason, before the command does any work."""
    def parse_argument(text):
        try:
            return parse(text)
        except (ValueError, FileNotFoundError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse_argument.__name__ = parse.__name__
    return parse_argument


def add_debug_argument(parser):
    parser.add_argument("--debug", action="store_true", help="on an error, show its traceback")


def add_data_arguments(parser, defaults, trains=True):
    """The arguments that name a command's maps and their split; `defaults`: its `kd_keras.jobs` job.
    A command that trains nothing (`trains=False`) has no training maps to leave out, and its seed
    is the split's alone."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, nargs="+", default=None, metavar="NPZ",
                      help="wafer maps: a MixedWM38-layout .npz (e.g. Wafer_Map_Datasets.npz) or a WM-811K-layout "
                           "one (any die grid); several files train one model on all of them, each split on "
                           "its own; default: synthetic maps")
    data.add_argument("--resize", choices=RESIZE_METHODS, default=defaults.resize,
                      help="how maps of other grids become the model's 52x52 input, recorded in the model card "
                           f"(default {defaults.resize}; see kd_keras.data.resize)")
    if trains:
        data.add_argument("--drop-suspects", type=Path, default=None, metavar="AUDIT_JSON",
                          help="leave the training maps that a label audit suspects out of training (its "
                               "label_audit.json, from python -m kd_keras.audit_labels); validation and test keep "
                               "every map")
    data.add_argument("--synthetic-maps", type=positive_int, default=defaults.synthetic_maps,
                      help=f"how many synthetic maps without --data (default {defaults.synthetic_maps})")
    seeded = "the data split, initial weights, shuffling and augmentation" if trains else "the data split"
    data.add_argument("--seed", type=int, default=defaults.seed, help=f"seed of {seeded} (default {defaults.seed})")


def add_run_directory_arguments(parser, resume_help):
    """--resume or --overwrite: what a command does with the run its --out holds."""
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help=resume_help)
    existing.add_argument("--overwrite", action="store_true", help="remove the run that --out holds and start again")


def add_common_arguments(parser, defaults, lr_default=None):
    """The data and training arguments of a training command; `defaults`: its `kd_keras.jobs` job
    (`lr_default`: what --lr's help names as its default, where that is not `defaults.lr`)."""
    add_data_arguments(parser, defaults)
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                          help=f"at most (default {defaults.epochs})")
    training.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                          help=f"default {defaults.batch_size}")
    training.add_argument("--lr", type=float, default=defaults.lr,
                          help=f"peak learning rate, cosine-decayed to 0 (default {lr_default or defaults.lr})")
    training.add_argument("--patience", type=positive_int, default=defaults.patience,
                          help="stop after this many epochs without a better validation exact match "
                               f"(default {defaults.patience})")
    training.add_argument("--augment", action=argparse.BooleanOptionalAction, default=defaults.augment,
                          help="random rotations and flips of the training maps")
    add_run_directory_arguments(training, "continue the run in --out where it stopped (same arguments; a finished "
                                          "run only prints its results)")
    training.add_argument("--strategy", choices=("default", "mirrored"), default=defaults.strategy,
                          help="mirrored: train on all GPUs (or all logical CPUs) at once")
    add_debug_argument(parser)


def describe_error(error):
    """One line: the file and the problem."""
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        where = f"{error.filename} -> {error.filename2}" if error.filename2 else str(error.filename)
        text = f"{where}: {reason}"
    elif isinstance(error, MemoryError):
        text = f"not enough memory{f' ({error})' if str(error) else ''}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def run_command(run, args, *, interrupted="interrupted"):
    """Run `run(args)` inside the command's error boundary; return the exit status.

    `interrupted`: what to tell a user who pressed Ctrl-C (exit status 130)."""
    try:
        run(args)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output has gone (`... | head`): nothing left to say, nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except EXPECTED_ERRORS as error:
        if getattr(args, "debug", False):
            raise
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return 1
    return 0
