"""Convert a trained student to int8 TFLite and the C sources a TFLite Micro firmware compiles in.

    python -m tflite.convert runs/distill-.../net1 --out models/net1 --budget 248KB
    python -m tflite.convert separable8k.keras --data mixedwm38.npz --out models/separable8k --budget 21KB

MODEL is a `.keras` file or a student's training directory (the one holding it): a
classifier (8 defect logits) or a segmentation + classification student (`--task segclass`:
38 pattern logits and a 52x52 defect mask, both int8 outputs). The
representative maps for calibration come from the training split of `--data`, or of the
run's own data (its config.json) when MODEL comes from a run. The output directory gets
model.tflite, model_data.cc/.h, model_settings.h and model_card.json, all or nothing: it must
be new, empty, or a model directory converted before, whose other files (a README, notes)
are kept; anything else is refused before any work. `--per-tensor`
shrinks the file (one weight scale per tensor, not per channel); `--views 8` has the
firmware average a classifier over the 8 rotations/flips of each map.
A named budget holds the model to its flash and its tensor arena (16 KB for 21KB, 64 KB for
248KB; 96 KB for a segmentation + classification model); a budget in bytes, to its flash alone.
Exit status 1, with the reason, when the model is over budget or cannot run in TFLite Micro.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, argument_type, positive_int, run_command
from kd_keras.data import RESIZE_METHODS, VIEWS
from tflite.budget import BUDGETS, parse_budget
from tflite.export import convert_student


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tflite.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a .keras file or the training directory holding it")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--budget", type=argument_type(parse_budget), default=BUDGETS["248KB"],
                        help="21KB or 248KB (flash and tensor arena), or bytes (flash only) (default 248KB)")
    parser.add_argument("--name", default=None, help="C identifier for g_<name>_model_data (default: the file's stem)")
    parser.add_argument("--data", type=Path, nargs="+", default=None, metavar="NPZ",
                        help="wafer maps (MixedWM38 or WM-811K layout, one file or several) for calibration and "
                             "accuracy (default: the training run's)")
    parser.add_argument("--resize", choices=RESIZE_METHODS, default=None,
                        help="how maps of other grids become the 52x52 input (default: the run's, else nearest); "
                             "recorded in the card")
    parser.add_argument("--seed", type=int, default=None, help="split seed with --data (default: the run's, else 0)")
    parser.add_argument("--qat", action="store_true",
                        help="quantization-aware fine-tuning (tensorflow-model-optimization) on the "
                             "calibration maps instead of plain post-training quantization")
    parser.add_argument("--qat-epochs", type=positive_int, default=3, help="epochs of QAT fine-tuning (default 3)")
    parser.add_argument("--views", type=int, choices=VIEWS, default=1,
                        help="8: the firmware runs a classifier on all 8 rotations/flips of each map and "
                             "sums its outputs (8 inferences a map, no more flash); accuracy is measured so")
    parser.add_argument("--per-tensor", action="store_true",
                        help="one scale per weight tensor instead of per output channel: saves 24 bytes "
                             "of flash a channel, at some accuracy (post-training quantization only)")
    add_debug_argument(parser)
    return parser


def run(args):
    card = convert_student(args.model, args.out, args.budget, data=args.data, seed=args.seed, name=args.name,
                           qat_epochs=args.qat_epochs if args.qat else 0, per_channel=not args.per_tensor,
                           views=args.views, resize=args.resize)
    accuracy, budget = card.accuracy, card.budget  # the budget as it holds this model's task
    arena_budget = "" if budget.arena_bytes is None else f" (budget {budget.arena_bytes:,})"
    print(f"{args.out}: {card.flash_bytes:,} bytes of flash (budget {budget.flash_bytes:,}), "
          f"tensor arena {card.arena_bytes:,} bytes{arena_budget}, {card.macs_per_inference:,} MACs per inference")
    views = f", mean of {card.views} views" if card.views > 1 else ""
    print(f"exact-match accuracy on {accuracy['test_maps']} test maps{views}: "
          f"float {100 * accuracy['float_exact_match']:.2f}%, int8 in TFLite Micro "
          f"{100 * accuracy['int8_exact_match']:.2f}%{card.task.summary(accuracy)}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted="interrupted: nothing was written")


if __name__ == "__main__":
    sys.exit(main())
