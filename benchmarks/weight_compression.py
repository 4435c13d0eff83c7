"""TensorFlow Lite Micro's weight compression on a shipped model: look-up tables of 4-6 bit indices.

    python -m benchmarks.weight_compression                          # models/kd-21kb, 4, 5 and 6 bits
    python -m benchmarks.weight_compression --model models/kd-248kb --bits 4

TFLite Micro can store a weight tensor as indices into a table of at most 2**bits values and
decode it at run time (the DECODE op; `tflite_micro`'s `compression` package writes such
files). A tensor must hold no more values than its table: each weight tensor is first
clustered here, per output channel (one table a channel) or per tensor (one table), by 1-D
k-means on its int8 values, after training (no clustering-aware fine-tuning: Keras 3 has none,
tensorflow-model-optimization's works on tf_keras models only).

For each way: the exact match of the clustered model (int8, TFLite Micro, the MixedWM38 dev
set's test split, the card's views), the compressed file's bytes and tensor arena, and whether
TFLite Micro computes from the compressed file what it computes from the clustered one (on
the first 100 test maps). LiteRT cannot load a file with DECODE, and the firmware is not built
with TFLite Micro's compression (USE_TFLM_COMPRESSION): neither is measured. Writes
benchmarks/results/weight_compression.{json,md}. Nothing here ships: see the results for why.
"""

import argparse
import contextlib
import copy
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import DEFAULT_DATA, REPO, repo_relative, write_results
from kd_keras.data import load_splits
from kd_keras.tasks import CLASSIFY
from tflite.export import load_converted
from tflite.micro import Int8Model

RESULTS = REPO / "benchmarks" / "results" / "weight_compression"
CHECKED_MAPS = 100
KMEANS_ROUNDS = 30


def cluster(values, count):
    """`values` (1-D int8 values as floats) with at most `count` distinct int8 values: 1-D k-means
    from evenly spaced quantiles, centres rounded to int8."""
    if len(np.unique(values)) <= count:
        return values
    centres = np.quantile(values, (np.arange(count) + 0.5) / count)
    for _ in range(KMEANS_ROUNDS):
        nearest = np.abs(values[:, None] - centres[None]).argmin(axis=1)
        centres = np.array([values[nearest == k].mean() if np.any(nearest == k) else centres[k]
                            for k in range(count)])
    centres = np.unique(np.clip(np.round(centres), -127, 127))
    return centres[np.abs(values[:, None] - centres[None]).argmin(axis=1)]


def clustered_and_compressed(flatbuffer, bits, per_channel):
    """(the int8 flatbuffer with every weight tensor clustered to 2**bits values, the same
    compressed with look-up tables: TFLite Micro's DECODE)."""
    from tensorflow.lite.tools import flatbuffer_utils
    from tflite_micro.tensorflow.lite.micro.compression import compress, spec

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    specs = []
    for index, tensor in enumerate(model.subgraphs[0].tensors):
        data = model.buffers[tensor.buffer].data
        if tensor.type != flatbuffer_utils.schema_fb.TensorType.INT8 or data is None or len(data) == 0:
            continue
        weights = np.frombuffer(bytes(data), np.int8).reshape(tensor.shape).astype(np.float64)
        axis = tensor.quantization.quantizedDimension
        if per_channel:
            channels = np.moveaxis(weights, axis, 0)
            weights = np.moveaxis(np.stack([cluster(c.ravel(), 2 ** bits).reshape(c.shape) for c in channels]), 0, axis)
            mode = spec.PerChannel(axis=axis)
        else:
            weights = cluster(weights.ravel(), 2 ** bits).reshape(weights.shape)
            mode = spec.PerTensor()
        model.buffers[tensor.buffer].data = weights.astype(np.int8).tobytes()
        specs.append(spec.Tensor(subgraph=0, tensor=index,
                                 compression=[spec.LookUpTableCompression(index_bitwidth=bits, mode=mode)]))
    clustered = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    # It warns of tensors that grew ("resulted in expansion": the table measures the file) and
    # prints which need fewer bits than asked (a channel of few values): noise here.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return clustered, bytes(compress(clustered, specs))


def micro_only(model, flatbuffer):
    """`model` (an `Int8Model`) running `flatbuffer` in TFLite Micro: LiteRT, which `Int8Model`
    reads a model's quantization from, cannot load a file with DECODE; the compressed file has
    the clustered one's input and outputs."""
    compressed = copy.copy(model)
    compressed.flatbuffer, compressed._micro = flatbuffer, None
    return compressed


def measure(card, int8, test, bits, per_channel):
    start = time.time()
    clustered, compressed = clustered_and_compressed(int8.flatbuffer, bits, per_channel)
    clustered_model = Int8Model(clustered, int8.thresholds_int8)
    compressed_model = micro_only(clustered_model, compressed)
    checked = test.maps[:CHECKED_MAPS]
    same = all(np.array_equal(a, b) for a, b in zip(clustered_model.run_micro(checked),
                                                      compressed_model.run_micro(checked)))
    exact_match = CLASSIFY.figures(clustered_model.outputs(test.maps, card.views), test)["exact_match"]
    return {"bits": bits, "tables": "per channel" if per_channel else "per tensor", "bytes": len(compressed),
            "clustered_exact_match": exact_match, "arena_bytes": compressed_model.arena_bytes(),
            "same_outputs_as_clustered": same, "seconds": round(time.time() - start, 1)}


def table(model_dir, card, int8, base_exact_match, rows, test_maps):
    lines = [f"# TFLite Micro weight compression: {repo_relative(model_dir)}", "",
             f"int8 in TFLite Micro, exact match on the {test_maps:,} test maps of {repo_relative(DEFAULT_DATA)} "
             f"({card.views} view{'s' if card.views > 1 else ''} a map). Weights clustered after training, then "
             "stored as look-up-table indices (DECODE).", "",
             "| weights | tables | bytes | tensor arena | exact match | compressed computes as clustered |",
             "| --- | --- | ---: | ---: | ---: | --- |",
             f"| int8, as shipped | - | {len(int8.flatbuffer):,} | {int8.arena_bytes():,} | "
             f"{100 * base_exact_match:.2f}% | - |"]
    for row in rows:
        lines.append(f"| {row['bits']}-bit indices | {row['tables']} | {row['bytes']:,} | {row['arena_bytes']:,} | "
                     f"{100 * row['clustered_exact_match']:.2f}% | "
                     f"{'yes' if row['same_outputs_as_clustered'] else 'NO'} (first {CHECKED_MAPS} maps) |")
    return "\n".join(lines + ["", f"Reproduce: `python -m benchmarks.weight_compression --model "
                                  f"{repo_relative(model_dir)}`."]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "kd-21kb", help="a classifier's directory")
    parser.add_argument("--bits", type=int, nargs="+", choices=range(1, 8), default=[4, 5, 6])
    args = parser.parse_args(argv)
    if not DEFAULT_DATA.is_file():
        parser.error(f"needs the real MixedWM38 dev set at {DEFAULT_DATA}")
    card, int8 = load_converted(args.model)
    if card.task is not CLASSIFY:
        parser.error(f"{args.model}: a classifier's directory, please (its accuracy is exact match)")
    test = load_splits(DEFAULT_DATA, seed=0)["test"]
    base_exact_match = CLASSIFY.figures(int8.outputs(test.maps, card.views), test)["exact_match"]
    rows = []
    for per_channel in (True, False):
        for bits in args.bits:
            print(f"{bits}-bit indices, {'per channel' if per_channel else 'per tensor'}")
            rows.append(measure(card, int8, test, bits, per_channel))
    write_results(RESULTS, {"command": "python -m benchmarks.weight_compression " + " ".join(argv or sys.argv[1:]),
                            "model": repo_relative(args.model), "test_maps": len(test), "views": card.views,
                            "shipped_bytes": len(int8.flatbuffer), "shipped_exact_match": base_exact_match,
                            "rows": rows},
                  table(args.model, card, int8, base_exact_match, rows, len(test)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
