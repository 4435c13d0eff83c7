"""Run int8 models in TensorFlow Lite Micro's interpreter (and LiteRT's), measure the arena.

Example:

>>> import numpy as np
>>> from kd_keras.models import build_student
>>> from tflite.quantize import convert_int8
>>> flatbuffer = convert_int8(build_student("net2", seed=0), np.ones((4, 52, 52), np.uint8))
>>> quantize_maps(np.array([[[0, 1, 2]]]), input_quantization(flatbuffer)).tolist()
[[[-128, -1, 126]]]
>>> arena = measure_arena_bytes(flatbuffer)
>>> 10_000 < arena < 64_000
True
"""

import os
import re
import sys
import tempfile

import numpy as np

from kd_keras.data.labels import NUM_DEFECTS, NUM_PATTERNS
from tflite.quantize import litert_interpreter

# Arena for measuring: generous, then the recording allocator reports what was used.
MEASURE_ARENA_BYTES = 4 * 1024 * 1024
# What an int8 output holds, told by its shape: the 8 defect logits of a classifier (Paper 1),
# or the 38 pattern logits and the 52x52 mask logits of a segmentation + classification model
# (Paper 2).
MULTILABEL, PATTERN, MASK = "multilabel_logits", "pattern_logits", "mask_logits"
OUTPUT_KINDS = {(1, NUM_DEFECTS): MULTILABEL, (1, NUM_PATTERNS): PATTERN, (1, 52, 52, 1): MASK}


def micro_interpreter(flatbuffer, arena_size=MEASURE_ARENA_BYTES):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(bytes(flatbuffer), arena_size=arena_size)


def input_quantization(flatbuffer):
    """(scale, zero point) of the model's int8 input."""
    details = litert_interpreter(flatbuffer).get_input_details()[0]
    return details["quantization"]


def output_quantizations(flatbuffer):
    """[(scale, zero point)] of each int8 output, in output order."""
    return [d["quantization"] for d in litert_interpreter(flatbuffer).get_output_details()]


def output_kinds(flatbuffer):
    """The kind of each output (an `OUTPUT_KINDS` value), in output order."""
    kinds = []
    for detail in litert_interpreter(flatbuffer).get_output_details():
        shape = tuple(int(n) for n in detail["shape"])
        if shape not in OUTPUT_KINDS:
            raise ValueError(f"model output {len(kinds)} has shape {shape}; this toolkit deploys outputs of "
                             f"shape {', '.join(map(str, OUTPUT_KINDS))}")
        kinds.append(OUTPUT_KINDS[shape])
    return kinds


def quantize_maps(maps, quantization):
    """Raw die maps (0/1/2) -> int8 model input, exactly as a firmware must do it."""
    scale, zero_point = quantization
    return np.clip(np.round(np.asarray(maps, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def run_micro(flatbuffer, maps):
    """int8 outputs of TFLite Micro for each map: a list (one per output) of (N, ...) arrays."""
    interpreter = micro_interpreter(flatbuffer)
    inputs = quantize_maps(maps, input_quantization(flatbuffer))[..., None]
    outputs = [[] for _ in output_quantizations(flatbuffer)]
    for wafer_map in inputs:
        interpreter.set_input(wafer_map[None], 0)
        interpreter.invoke()
        for index, collected in enumerate(outputs):
            collected.append(interpreter.get_output(index)[0].copy())
    return [np.stack(o) for o in outputs]


def run_litert(flatbuffer, maps):
    """int8 outputs of LiteRT with reference kernels, same layout as `run_micro`."""
    interpreter = litert_interpreter(flatbuffer)
    inputs = quantize_maps(maps, input_quantization(flatbuffer))[..., None]
    index = interpreter.get_input_details()[0]["index"]
    outputs = [[] for _ in interpreter.get_output_details()]
    for wafer_map in inputs:
        interpreter.set_tensor(index, wafer_map[None])
        interpreter.invoke()
        for collected, detail in zip(outputs, interpreter.get_output_details()):
            collected.append(interpreter.get_tensor(detail["index"])[0].copy())
    return [np.stack(o) for o in outputs]


def dequantize(values, quantization):
    scale, zero_point = quantization
    return (np.asarray(values, np.float64) - zero_point) * scale


def measure_arena_bytes(flatbuffer):
    """Tensor-arena bytes TFLite Micro's recording allocator used for this model.

    The interpreter prints its allocations to the C-level stderr only, so file
    descriptor 2 is pointed at a temporary file while it prints."""
    interpreter = micro_interpreter(flatbuffer)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        report = captured.read().decode(errors="replace")
    match = re.search(r"Arena allocation total (\d+) bytes", report)
    if match is None:
        raise RuntimeError(f"TFLite Micro printed no arena total:\n{report}")
    return int(match.group(1))
