"""Convert a trained student to int8 TFLite and the C sources a TFLite Micro firmware compiles in.

    python -m tflite.convert runs/distill-.../net1 --out models/net1 --budget 248KB
    python -m tflite.convert net2.keras --data mixedwm38.npz --out models/net2 --budget 21KB

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
Exit status 1, with the reason, when the model is over budget or cannot run in TFLite Micro.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, argument_type, positive_int, run_command
from kd_keras.errors import FileFormatError
from kd_keras.rundir import CONFIG_FILE, read_config
from kd_keras.runs import DEFAULT_SYNTHETIC_MAPS, load_splits
from kd_keras.training import load_model
from tflite.export import check_output_directory, export_model, parse_budget
from tflite.harness import VIEWS, accuracy_figures


def find_model(path):
    """The .keras file named by `path`: itself, or the only .keras file in that directory."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(p for p in path.glob("*.keras") if p.name != "teacher.keras")
        if len(candidates) != 1:
            raise FileNotFoundError(f"{path}: expected exactly one student .keras file, "
                                    f"found {[p.name for p in candidates] or 'none'}")
        return candidates[0]
    if path.suffix != ".keras" or not path.is_file():
        raise FileNotFoundError(f"{path}: no .keras model file there")
    return path


def run_settings(model_path):
    """(data path or None, synthetic maps, seed) of the run that made `model_path`, if any."""
    for directory in (model_path.parent, model_path.parent.parent):
        path = directory / CONFIG_FILE
        if path.is_file():
            arguments = read_config(path)["arguments"]
            data = arguments.get("data")
            synthetic_maps = arguments.get("synthetic_maps", DEFAULT_SYNTHETIC_MAPS)
            seed = arguments.get("seed", 0)
            for field, value, kinds in (("data", data, (str, type(None))), ("synthetic_maps", synthetic_maps, int),
                                        ("seed", seed, int)):
                if not isinstance(value, kinds) or isinstance(value, bool):
                    raise FileFormatError(f"{path}: field 'arguments.{field}' has the wrong type ({value!r})")
            return None if data in (None, "None") else Path(data), synthetic_maps, seed
    return None


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tflite.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a .keras file or the training directory holding it")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--budget", type=argument_type(parse_budget), default=parse_budget("248KB"),
                        help="largest .tflite allowed: 21KB, 248KB or bytes (default 248KB)")
    parser.add_argument("--name", default=None, help="C identifier for g_<name>_model_data (default: the file's stem)")
    parser.add_argument("--data", type=Path, default=None, help="MixedWM38-layout .npz for calibration and accuracy")
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
    check_output_directory(args.out)  # before any work: refuse a directory that is not ours to replace
    model_path = find_model(args.model)
    settings = run_settings(model_path)
    if args.data is None and settings is None:
        raise ValueError(f"{model_path} comes from no run directory: pass --data FILE.npz for calibration")
    data, synthetic_maps, seed = settings or (None, DEFAULT_SYNTHETIC_MAPS, 0)
    if args.data is not None:
        data = args.data
    parts = load_splits(data, synthetic_maps, seed if args.seed is None else args.seed)
    model = load_model(model_path)
    name = args.name or model_path.stem
    card = export_model(model, args.out, parts["train"].maps, name=name, budget_bytes=args.budget,
                        accuracy_fn=lambda flatbuffer: accuracy_figures(model, flatbuffer, parts["test"], args.views),
                        source_model=model_path, qat_epochs=args.qat_epochs if args.qat else 0,
                        per_channel=not args.per_tensor, views=args.views)
    accuracy = card["accuracy"]
    print(f"{args.out}: {card['flash_bytes']:,} bytes of flash (budget {args.budget:,}), "
          f"tensor arena {card['arena_bytes']:,} bytes, {card['macs_per_inference']:,} MACs per inference")
    views = f", mean of {args.views} views" if args.views > 1 else ""
    print(f"exact-match accuracy on {accuracy['test_maps']} test maps{views}: float {100 * accuracy['float_exact_match']:.2f}%, "
          f"int8 in TFLite Micro {100 * accuracy['int8_exact_match']:.2f}%", end="")
    if "int8_dice" in accuracy:  # a defect mask too
        print(f"; mask Dice float {accuracy['float_dice']:.4f}, int8 {accuracy['int8_dice']:.4f}")
    else:
        print(f" ({100 * accuracy['int8_exact_match_nearest']:.2f}% decoded to the nearest pattern)")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted="interrupted: nothing was written")


if __name__ == "__main__":
    sys.exit(main())
