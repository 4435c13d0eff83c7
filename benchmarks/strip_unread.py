"""What stripping what no interpreter reads saves each shipped model (`tflite.quantize.strip_unread`).

    python -m benchmarks.strip_unread            # measure: bytes before and after, outputs compared
    python -m benchmarks.strip_unread --update   # also rewrite models/* stripped (tflite.export.strip_directory)

Models converted before `strip_unread` kept every bias's per-channel scales and zero points.
For each model under models/: its flatbuffer's bytes before and after, the tensor arena
TensorFlow Lite Micro measures for each, and whether TFLite Micro and LiteRT give the same int8
outputs on --maps real test maps (the MixedWM38 dev set's; synthetic maps where it is absent).
Writes benchmarks/results/strip_unread.{json,md}. After --update, measure the firmware images
again: `python -m benchmarks.firmware_footprint --update-cards`. On models already stripped it
finds nothing to save; to see the saving again, `git checkout 7518522 -- models` first.
"""

import argparse
import sys

from benchmarks import DEFAULT_DATA, REPO, repo_relative, write_results
from kd_keras.data import generate_wafer_maps, load_splits
from tflite.export import load_converted, strip_directory
from tflite.micro import Int8Model
from tflite.quantize import strip_unread

RESULTS = REPO / "benchmarks" / "results" / "strip_unread"
SHIPPED = sorted(p.name for p in (REPO / "models").iterdir() if p.is_dir())
COMMAND = "python -m benchmarks.strip_unread --update"


def check_maps(count):
    """(maps, where they come from): test maps of the real dev set, or synthetic ones without it."""
    if DEFAULT_DATA.is_file():
        return load_splits(DEFAULT_DATA, seed=0)["test"].maps[:count], f"{repo_relative(DEFAULT_DATA)}, test split"
    return generate_wafer_maps(count, seed=1).maps, "synthetic maps (seed 1)"


def measure(model_dir, maps):
    """One model's row: bytes and arena before and after stripping, and whether outputs agree."""
    _, int8 = load_converted(model_dir)
    stripped = Int8Model(strip_unread(int8.flatbuffer))
    return {"bytes_before": len(int8.flatbuffer), "bytes_after": len(stripped.flatbuffer),
            "arena_before": int8.arena_bytes(), "arena_after": stripped.arena_bytes(),
            "same_outputs": int8.same_outputs(stripped, maps)}


def table(rows, maps_from, count):
    lines = ["# Stripping what no interpreter reads", "",
             f"Each shipped model's flatbuffer before and after `tflite.quantize.strip_unread`; outputs compared "
             f"on {count} maps ({maps_from}), int8, in TensorFlow Lite Micro and in LiteRT.", "",
             "| model | bytes before | bytes after | saved | arena before | arena after | same outputs: TFLM, LiteRT |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, row in rows.items():
        saved = row["bytes_before"] - row["bytes_after"]
        lines.append(f"| {name} | {row['bytes_before']:,} | {row['bytes_after']:,} | {saved:,} "
                     f"({100 * saved / row['bytes_before']:.1f}%) | {row['arena_before']:,} | {row['arena_after']:,} | "
                     f"{', '.join('yes' if same else 'NO' for same in row['same_outputs'].values())} |")
    return "\n".join(lines + ["", "Reproduce: `python -m benchmarks.strip_unread` (on models converted before "
                                  "strip_unread: `git checkout 7518522 -- models` first)."]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=SHIPPED, default=SHIPPED)
    parser.add_argument("--maps", type=int, default=200, help="maps whose outputs are compared (default 200)")
    parser.add_argument("--update", action="store_true", help="rewrite each model directory stripped")
    args = parser.parse_args(argv)
    maps, maps_from = check_maps(args.maps)
    rows = {}
    for name in args.models:
        print(f"{name}: stripping and comparing outputs on {len(maps)} maps")
        rows[name] = measure(REPO / "models" / name, maps)
        if args.update and rows[name]["bytes_after"] < rows[name]["bytes_before"]:
            strip_directory(REPO / "models" / name, maps, made_by=COMMAND)
    write_results(RESULTS, {"command": "python -m benchmarks.strip_unread" + (" --update" if args.update else ""),
                            "maps": len(maps), "maps_from": maps_from, "models": rows},
                  table(rows, maps_from, len(maps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
