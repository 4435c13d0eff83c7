"""Packed int4 weights on a shipped classifier: which layers bear them, the bytes they save, and
whether TFLite Micro, LiteRT and the Cortex-M4 firmware run them.

    python -m benchmarks.int4_weights                            # models/kd-21kb, with its firmware
    python -m benchmarks.int4_weights --model models/kd-248kb --no-firmware
    python -m benchmarks.int4_weights --tolerance 0.2            # validation points a plan may cost

TFLite Micro (its reference kernels and CMSIS-NN's s4 ones) and LiteRT read CONV_2D and
DEPTHWISE_CONV_2D weights stored as 4-bit values, two a byte (`tflite.quantize.int4_weights`).
Each weight layer is requantized from its int8 weights after training (no fine-tuning) on its
own, to see which layers bear 4 bits (exact match on the validation split, the card's views).
Then layers are added, those that cost least on their own first, while validation stays within
--tolerance points of the int8 model: the plan chosen on validation. For that plan and for all
layers at once: bytes, the tensor arena TFLite Micro measures, test exact match, and whether
the packed file computes what the same 4-bit values stored as int8 compute (TFLite Micro and
LiteRT, the first 100 test maps). With the firmware (the default), the chosen plan is written
as a model directory (runs/int4-weights/<model>-int4) and built for the Cortex-M4 with the
reference and the CMSIS-NN kernels beside the int8 model: flash, RAM, instructions per
inference, and whether its outputs equal the Python interpreter's. Writes
benchmarks/results/int4_weights_<model>.{json,md}. Nothing here ships.
"""

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import DEFAULT_DATA, REPO, repo_relative, write_results
from kd_keras.data import generate_wafer_maps, load_splits
from kd_keras.fileio import write_directory
from kd_keras.tasks import CLASSIFY
from tflite.export import load_converted, rewrite_model, tensor_arena_size
from tflite.firmware import KERNEL_TITLES, KERNELS, Firmware, FirmwareError, replay_inputs
from tflite.micro import Int8Model
from tflite.quantize import int4_layers, int4_weights

RESULTS = REPO / "benchmarks" / "results"
RUNS = REPO / "runs" / "int4-weights"
CHECKED_MAPS = 100
REPLAYED_MAPS = 5  # the reference kernels run about 30 times slower on the board than CMSIS-NN's
TIMED_MAPS = 3


def exact_match(int8, split, views):
    return CLASSIFY.figures(int8.outputs(split.maps, views), split)["exact_match"]


def choose_plan(alone, cumulative_fn, floor):
    """(layers in the order tried, [validation exact match as each is added], the plan): layers
    are added best on their own first (`alone`: {operator: exact match}); the plan is the longest
    run of them, from the first, along which exact match never falls below `floor`."""
    order = sorted(alone, key=lambda operator: -alone[operator])
    curve, plan = [], []
    for count in range(1, len(order) + 1):
        curve.append(cumulative_fn(order[:count]))
        if curve[-1] >= floor and len(plan) == count - 1:
            plan = order[:count]
    return order, curve, plan


def measure_plan(int8, operators, test, views):
    packed = Int8Model(int4_weights(int8.flatbuffer, operators), int8.thresholds_int8)
    unpacked = Int8Model(int4_weights(int8.flatbuffer, operators, pack=False), int8.thresholds_int8)
    return packed, {"operators": list(operators), "bytes": len(packed.flatbuffer), "arena_bytes": packed.arena_bytes(),
                    "test_exact_match": exact_match(packed, test, views),
                    "packed_computes_as_unpacked": packed.same_outputs(unpacked, test.maps[:CHECKED_MAPS])}


def arena_used(firmware):
    """Tensor-arena bytes the demo's interpreter used on the board, as it prints them: with the
    CMSIS-NN kernels, int4 layers need no arena to unpack into, which the Python interpreter's
    reference kernels (the card's arena) do."""
    match = re.search(r"arena used: (\d+) of \d+ bytes", firmware.demo())
    if match is None:
        raise FirmwareError(f"the demo of {firmware.model_dir} did not report its arena")
    return int(match.group(1))


def firmware_figures(model_dir, card, int8, maps):
    """{kernels: the Cortex-M4 image's figures} of a model directory, its replayed outputs checked
    against the Python TFLite Micro interpreter's."""
    expected = int8.run_micro(replay_inputs(maps, card.views))
    figures = {}
    for kernels in KERNELS:
        firmware = Firmware(model_dir, "cortex-m", kernels)
        printed = firmware.replay(maps, card.views, [o.shape[1:] for o in expected])
        footprint = firmware.footprint(card.tensor_arena_size)
        figures[kernels] = {**footprint.to_card(firmware.instructions_per_inference(maps[:TIMED_MAPS], card.views)),
                            "arena_used_bytes": arena_used(firmware),
                            "same_outputs_as_python": all(np.array_equal(a, b)
                                                          for a, b in zip(expected, printed, strict=True))}
    return figures


def write_int4_directory(model_dir, card, packed, operators):
    """A copy of `model_dir` holding the int4 model (runs/int4-weights/<name>-int4); its path.
    Each step swaps in a whole directory: first the copy, then the int4 model in it."""
    out = RUNS / f"{Path(model_dir).resolve().name}-int4"
    write_directory(out, {path.name: path.read_bytes() for path in Path(model_dir).iterdir() if path.is_file()})
    arena = packed.arena_bytes()
    card = dataclasses.replace(card, arena_bytes=arena, tensor_arena_size=tensor_arena_size(arena),
                               quantization=f"{card.quantization}; int4 weights in operators "
                                            f"{', '.join(map(str, operators))} (benchmarks.int4_weights)")
    rewrite_model(out, card, packed.flatbuffer)
    return out


def table(results):
    model, views = results["model"], results["views"]
    layers = {row["operator"]: row for row in results["layers"]}
    lines = [f"# Packed int4 weights: {model}", "",
             f"int8 activations, 4-bit weights requantized from the int8 ones after training; exact match in "
             f"TFLite Micro ({views} view{'s' if views > 1 else ''} a map) on the validation and test splits of "
             f"{results['data']} (seed 0).", "",
             "Each layer alone (operators in execution order):", "",
             "| operator | op | weights | validation, this layer int4 | validation, this and the layers above |",
             "| ---: | --- | ---: | ---: | ---: |",
             f"| - | int8, as shipped | - | {100 * results['int8']['val_exact_match']:.2f}% | - |"]
    for operator, cumulative in zip(results["order"], results["curve"]):
        row = layers[operator]
        lines.append(f"| {operator} | {row['op']} | {row['weights']:,} | {100 * row['val_exact_match']:.2f}% | "
                     f"{100 * cumulative:.2f}% |")
    lines += ["", f"The plan chosen on validation (within {results['tolerance']} points of int8): operators "
              f"{', '.join(map(str, results['plan']['operators'])) or 'none'}.", "",
              "| weights | bytes | tensor arena | test exact match | packed computes as unpacked |",
              "| --- | ---: | ---: | ---: | --- |",
              f"| int8, as shipped | {results['int8']['bytes']:,} | {results['int8']['arena_bytes']:,} | "
              f"{100 * results['int8']['test_exact_match']:.2f}% | - |"]
    for title, row in (("int4, the chosen plan", results["plan"]), ("int4, every layer", results["every_layer"])):
        same = ", ".join(f"{name}: {'yes' if value else 'NO'}"
                         for name, value in row["packed_computes_as_unpacked"].items())
        lines.append(f"| {title} | {row['bytes']:,} | {row['arena_bytes']:,} | {100 * row['test_exact_match']:.2f}% | "
                     f"{same} |")
    if results.get("firmware"):
        lines += ["", "The Cortex-M4 image (mps2-an386, QEMU):", "",
                  "| model | kernels | flash | RAM | kTensorArenaSize (from the card) | arena used on the board | "
                  "instructions per inference | outputs equal Python's |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for title, images in results["firmware"].items():
            for kernels, image in images.items():
                lines.append(f"| {title} | {KERNEL_TITLES[kernels]} | {image['flash_bytes']:,} | "
                             f"{image['ram_bytes']:,} | {image['arena_bytes']:,} | {image['arena_used_bytes']:,} | "
                             f"{image['instructions_per_inference'] / 1e6:.2f}M | "
                             f"{'yes' if image['same_outputs_as_python'] else 'NO'} ({REPLAYED_MAPS} maps) |")
    return "\n".join(lines + ["", f"Reproduce: `{results['command']}`."]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "kd-21kb", help="a classifier's directory")
    parser.add_argument("--tolerance", type=float, default=0.2,
                        help="validation exact-match points the chosen plan may lose against int8 (default 0.2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the MixedWM38 file whose splits judge it")
    parser.add_argument("--out", type=Path, help="results path without suffix (.json and .md; default "
                        "benchmarks/results/int4_weights_<model directory's name>)")
    parser.add_argument("--firmware", action=argparse.BooleanOptionalAction, default=True,
                        help="build and run the Cortex-M4 images too (default: yes)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"needs the real MixedWM38 dev set at {args.data}")
    card, int8 = load_converted(args.model)
    if card.task is not CLASSIFY:
        parser.error(f"{args.model}: a classifier's directory, please (its accuracy is exact match)")
    start = time.time()
    splits = load_splits(args.data, seed=0)
    val, test, views = splits["val"], splits["test"], card.views

    def val_exact_match(operators):
        return exact_match(Int8Model(int4_weights(int8.flatbuffer, operators), int8.thresholds_int8), val, views)

    base_val = exact_match(int8, val, views)
    layers = []
    for operator, op, weights in int4_layers(int8.flatbuffer):
        print(f"operator {operator} ({op}, {weights:,} weights) alone as int4")
        layers.append({"operator": operator, "op": op, "weights": weights,
                       "val_exact_match": val_exact_match([operator])})
    order, curve, plan = choose_plan({row["operator"]: row["val_exact_match"] for row in layers}, val_exact_match,
                                     base_val - args.tolerance / 100)
    chosen, plan_row = measure_plan(int8, plan, test, views)
    _, every_row = measure_plan(int8, order, test, views)
    results = {"command": " ".join(["python -m benchmarks.int4_weights", *(sys.argv[1:] if argv is None else argv)]),
               "model": repo_relative(args.model), "data": repo_relative(args.data), "views": views,
               "tolerance": args.tolerance,
               "int8": {"bytes": len(int8.flatbuffer), "arena_bytes": int8.arena_bytes(), "val_exact_match": base_val,
                        "test_exact_match": exact_match(int8, test, views)},
               "layers": layers, "order": order, "curve": curve, "plan": plan_row, "every_layer": every_row}
    if args.firmware and plan:
        maps = generate_wafer_maps(REPLAYED_MAPS, seed=0).maps
        int4_dir = write_int4_directory(args.model, card, chosen, plan)
        int4_card, _ = load_converted(int4_dir)
        print("building the Cortex-M4 images (the first build of TensorFlow Lite Micro takes tens of minutes)")
        results["int4_directory"] = repo_relative(int4_dir)
        results["firmware"] = {"int8, as shipped": firmware_figures(args.model, card, int8, maps),
                               "int4, the chosen plan": firmware_figures(int4_dir, int4_card, chosen, maps)}
    results["seconds"] = round(time.time() - start)
    write_results(args.out or RESULTS / f"int4_weights_{Path(args.model).resolve().name}", results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
