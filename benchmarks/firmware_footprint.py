"""What the firmware a user flashes takes: each shipped model's whole Cortex-M4 image, with the
reference and the CMSIS-NN kernels, built from source and run on QEMU's emulated mps2-an386.

    python -m benchmarks.firmware_footprint                  # every shipped model, both kernel sets
    python -m benchmarks.firmware_footprint --models kd-21kb --kernels cmsis_nn
    python -m benchmarks.firmware_footprint --update-cards   # also record it in each model card and README

Per image: flash (the load sections, from the linker's map file) split into the model, TensorFlow
Lite Micro, the application and the C runtime; RAM (.data + .bss with the tensor arena, the peak
stack and the heap of a run of the demo, board/ram_report.c); instructions per inference (QEMU's
clock tied to instructions, read through the board's timer; the mean over --maps synthetic maps).
Writes benchmarks/results/firmware_footprint.json and .md. The first run builds the TensorFlow
Lite Micro libraries (firmware_stub/tflm.mk; tens of minutes on 2 cores), later runs reuse them.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from benchmarks import REPO, write_results
from kd_keras.data import generate_wafer_maps
from kd_keras.fileio import write_text
from tflite.card import CARD_FILE, ModelCard, rewrite_model_readme
from tflite.export import load_converted
from tflite.firmware import KERNELS, KERNEL_TITLES, Firmware

RESULTS = REPO / "benchmarks" / "results"
SHIPPED = sorted(p.name for p in (REPO / "models").iterdir() if p.is_dir())


def measure(model_dir, kernels, maps):
    """The card record of one model's Cortex-M4 image with one kernel set."""
    card, _ = load_converted(model_dir)
    firmware = Firmware(model_dir, "cortex-m", kernels)
    footprint = firmware.footprint(card.tensor_arena_size)
    return footprint.to_card(firmware.instructions_per_inference(maps, card.views))


def table(results):
    """A Markdown table of {model: {kernels: card record}}."""
    lines = ["| model | kernels | flash | model | TFLite Micro | application | C runtime | RAM | .data+.bss "
             "(arena) | stack | heap | instructions per inference |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model, images in results.items():
        for kernels, image in images.items():
            parts = image["flash_parts"]
            lines.append(
                f"| {model} | {KERNEL_TITLES[kernels]} | {image['flash_bytes']:,} | {parts['model']:,} | "
                f"{parts['tflite_micro']:,} | {parts['application']:,} | {parts['c_runtime']:,} | "
                f"{image['ram_bytes']:,} | {image['static_ram_bytes']:,} ({image['arena_bytes']:,}) | "
                f"{image['stack_bytes']:,} | {image['heap_bytes']:,} | "
                f"{image['instructions_per_inference'] / 1e6:.2f}M |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=SHIPPED, choices=SHIPPED, help="shipped models (models/)")
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    parser.add_argument("--maps", type=int, default=2, help="synthetic maps whose inferences are counted")
    parser.add_argument("--update-cards", action="store_true", help="record the images in each model card and README")
    parser.add_argument("--out", type=Path, default=RESULTS / "firmware_footprint.json")
    args = parser.parse_args(argv)

    start = time.time()
    maps = generate_wafer_maps(args.maps, seed=1).maps
    results = {}
    for model in args.models:
        for kernels in args.kernels:
            print(f"{model}, {KERNEL_TITLES[kernels]} ...", flush=True)
            results.setdefault(model, {})[kernels] = measure(REPO / "models" / model, kernels, maps)
        if args.update_cards:
            path = REPO / "models" / model / CARD_FILE
            card = ModelCard.read(path)
            write_text(path, dataclasses.replace(card, firmware={**(card.firmware or {}), **results[model]}).to_json())
            if (path.parent / "README.md").is_file():
                rewrite_model_readme(path.parent)  # its firmware lines are written from the card
    record = {"command": "python -m benchmarks.firmware_footprint " + " ".join(argv or sys.argv[1:]),
              "board": "QEMU mps2-an386 (Cortex-M4, -O s, newlib with semihosting)", "maps": args.maps,
              "wall_seconds": round(time.time() - start, 1), "models": results}
    write_results(args.out, record, table(results))


if __name__ == "__main__":
    main()
