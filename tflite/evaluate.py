"""Run a converted model in TFLite Micro's interpreter over every map of a file, and check it.

    python -m tflite.evaluate models/net1 --data mixedwm38.npz
    python -m tflite.evaluate models/net1 --data mixedwm38.npz --compare --budget 248KB --json
    python -m tflite.evaluate models/kd-21kb --data wm811k.npz     # a fab's maps, any die grid

Prints exact-match accuracy, per-defect precision/recall (or, for a segmentation +
classification model, macro F1 and the mask's Dice, IoU and pixel accuracy) and the confusion
table of the int8 model as TFLite Micro runs it, with its flash bytes, arena bytes and MACs
per inference; on a WM-811K-layout file (one class a map), accuracy, macro F1 (natural and
class-balanced) and recall per class instead. --compare also runs the float Keras model
(--model, default: the one the card names) and LiteRT's reference kernels: TFLite Micro vs
LiteRT max difference (int8 units, expected 0), int8 vs float accuracy drop and disagreement
rate; where the float model is not at hand (a fresh clone ships only the int8 models), only
the LiteRT comparison is made, and it says so. --budget (default: the one the card records):
exit 1 when model.tflite or the tensor arena is over it, saying by how much (and, for the flash,
which layers weigh most). A model
converted with `--views 8` is run as its firmware runs it: on all 8 rotations/flips of each
map, its outputs summed (the --compare figures stay single-view). A classifier whose card holds
a threshold per defect (`python -m tflite.calibrate`) is read with them, the float model of
--compare too.
"""

import argparse
import json
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, argument_type, run_command
from kd_keras.data import DEFAULT_RESIZE, PATTERN_NAMES, file_layout, load_wafer_maps
from kd_keras.evaluation import fab_class_figures
from kd_keras.training import load_model
from tflite.budget import parse_budget
from tflite.export import load_converted
from tflite.firmware import firmware_lines
from tflite.harness import compare_with_references


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tflite.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a directory written by python -m tflite.convert")
    parser.add_argument("--data", type=Path, required=True,
                        help="wafer maps to run over: MixedWM38 layout, or WM-811K layout (any die grid, resized "
                             "as the card's input.resize says)")
    parser.add_argument("--compare", action="store_true", help="also run LiteRT and the float model")
    parser.add_argument("--model", type=Path, default=None, help="the float .keras model for --compare")
    parser.add_argument("--budget", type=argument_type(parse_budget), default=None,
                        help="21KB, 248KB or bytes (default: the budget the model card records)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_debug_argument(parser)
    return parser


def confusion_lines(confusion):
    """The non-empty rows of the confusion matrix as 'true -> predicted: count' lines."""
    names = list(PATTERN_NAMES) + ["(none of the 38)"]
    lines = []
    for true, row in enumerate(confusion):
        mistakes = ", ".join(f"{names[p]} {n}" for p, n in enumerate(row) if n and p != true)
        lines.append(f"{names[true]:>10}: {row[true]}/{sum(row)} right" + (f"; read as {mistakes}" if mistakes else ""))
    return lines


def fab_class_lines(figures):
    """The class table of `kd_keras.evaluation.fab_class_figures`: accuracy, macro F1, recall per class."""
    natural, balanced = figures["natural"], figures["balanced"]
    lines = [f"one class a map (WM-811K's 9): accuracy {100 * natural['accuracy']:.2f}%, macro F1 "
             f"{natural['macro_f1']:.3f}; class-balanced: accuracy {100 * balanced['accuracy']:.2f}%, macro F1 "
             f"{balanced['macro_f1']:.3f}", f"{'class':>10}  {'maps':>6}  {'recall':>7}  {'precision':>9}"]
    for name, row in natural["per_class"].items():
        if row["support"]:
            lines.append(f"{name:>10}  {row['support']:>6}  {100 * row['recall']:>6.2f}%  "
                         f"{100 * row['precision']:>8.2f}%")
    return lines


def run(args):
    card, int8 = load_converted(args.model_dir)
    data = load_wafer_maps(args.data, card.input.resize or DEFAULT_RESIZE)
    task = card.task
    outputs = int8.outputs(data.maps, card.views)
    metrics = task.evaluate(outputs, data)
    budget = args.budget or card.budget
    budget = budget and budget.for_task(task.name)
    result = {"model": str(args.model_dir), "data": str(args.data), "flash_bytes": card.flash_bytes,
              "arena_bytes": card.arena_bytes, "macs_per_inference": card.macs_per_inference, "views": card.views,
              "budget": budget and budget.to_dict(), "firmware": card.firmware, "metrics": metrics}
    fab_maps = file_layout(args.data) == "wm811k" and task.name == "classify"
    if fab_maps:  # one class a map: what a fab reports (macro F1, recall per class)
        result["fab_classes"] = fab_class_figures(task.predicted_patterns(outputs), data.labels)
    if args.compare:
        model_path = args.model or (Path(card.source_model) if card.source_model else None)
        float_model = None
        if args.model is not None or (model_path is not None and model_path.is_file()):
            float_model = load_model(model_path)
        else:
            result["float_model_missing"] = (f"the float model its card names ({model_path}) is not here"
                                             if model_path else "its card names no float model")
        result["compare"] = compare_with_references(int8, float_model, data)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.model_dir}: {card.flash_bytes:,} bytes of flash, {card.arena_bytes:,} bytes of arena, "
              f"{card.macs_per_inference:,} MACs per inference")
        for line in firmware_lines(card):
            print(line)
        summed = f", outputs summed over {card.views} rotations/flips" if card.views > 1 else ""
        print(f"TFLite Micro, int8, {metrics['maps']} maps of {args.data}{summed}: "
              f"exact-match accuracy {100 * metrics['exact_match']:.2f}%\n")
        if fab_maps:
            print("\n".join(fab_class_lines(result["fab_classes"])))
        else:
            print(task.details(metrics) + "\n")
            print("\n".join(confusion_lines(metrics["confusion"])))
        if args.compare:
            c = result["compare"]
            print(f"\nTFLite Micro vs LiteRT (reference kernels): max difference "
                  f"{c['micro_vs_litert_max_int8_difference']} int8 units, in "
                  f"{100 * c['micro_vs_litert_differing_outputs']:.3f}% of the outputs")
            if "float_model_missing" in result:
                print(f"no comparison with the float model: {result['float_model_missing']} (pass --model FILE)")
            else:
                print(f"float {100 * c['float_exact_match']:.2f}% -> int8 {100 * c['int8_exact_match']:.2f}% "
                      f"(drop {100 * c['int8_accuracy_drop']:.2f} points); int8 and float disagree on "
                      f"{100 * c['disagreement_rate']:.2f}% of maps")
            if "float_dice" in c:
                print(f"mask Dice: float {c['float_dice']:.4f} -> int8 {c['int8_dice']:.4f}")
    if budget is not None:
        budget.check_flash(card.flash_bytes, [(layer["layer"], layer["parameters"]) for layer in card.heaviest_layers])
        budget.check_arena(card.arena_bytes)
        if not args.json:
            arena = "" if budget.arena_bytes is None else f", arena {card.arena_bytes:,} of {budget.arena_bytes:,}"
            print(f"within the {budget.title} budget: flash {card.flash_bytes:,} of {budget.flash_bytes:,} "
                  f"bytes{arena}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
