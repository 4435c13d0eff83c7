"""What the training command lines share: common arguments, error handling, strategies."""

import argparse
import sys
from pathlib import Path

from kd_keras.data import WaferDataError
from kd_keras.runs import DEFAULT_SYNTHETIC_MAPS


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_common_arguments(parser, *, epochs, learning_rate, augment):
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, default=None,
                      help="MixedWM38-layout .npz (e.g. Wafer_Map_Datasets.npz); default: synthetic maps")
    data.add_argument("--synthetic-maps", type=positive_int, default=DEFAULT_SYNTHETIC_MAPS,
                      help=f"how many synthetic maps without --data (default {DEFAULT_SYNTHETIC_MAPS})")
    data.add_argument("--seed", type=int, default=0,
                      help="seed of the data split, initial weights, shuffling and augmentation (default 0)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=positive_int, default=epochs, help=f"at most (default {epochs})")
    training.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
    training.add_argument("--lr", type=float, default=learning_rate,
                          help=f"peak learning rate, cosine-decayed to 0 (default {learning_rate})")
    training.add_argument("--patience", type=positive_int, default=10,
                          help="stop after this many epochs without a better validation exact match "
                               "(default 10)")
    training.add_argument("--augment", action=argparse.BooleanOptionalAction, default=augment,
                          help="random rotations and flips of the training maps")
    training.add_argument("--resume", action="store_true",
                          help="continue an interrupted run in the same directory")
    training.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                          help="mirrored: train on all GPUs (or all logical CPUs) at once")


def data_description(args):
    if args.data is None:
        return f"{args.synthetic_maps} synthetic maps (seed {args.seed}), split 80/10/10"
    return f"{args.data}, seeded 80/10/10 split (seed {args.seed})"


def make_strategy(name):
    """None for the default device, or a MirroredStrategy over every GPU (else every logical CPU)."""
    if name == "default":
        return None
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def exit_on_errors(run, args):
    """Run `run(args)`; turn a bad input or an interruption into a message and an exit code."""
    try:
        run(args)
    except (WaferDataError, FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the best model so far is intact; run the same command with --resume "
              "to continue", file=sys.stderr)
        return 130
    return 0
