"""The harness: run a converted model in TFLite Micro over wafer maps and check it.

Example:

>>> import numpy as np
>>> from kd_keras.data import generate_wafer_maps
>>> from kd_keras.models import build_student
>>> from tflite.quantize import convert_int8
>>> model = build_student("net2", seed=0)
>>> maps = generate_wafer_maps(38, seed=0)
>>> flatbuffer = convert_int8(model, maps.maps)
>>> report = compare_with_references(flatbuffer, model, maps)
>>> report["micro_vs_litert_max_int8_difference"]
0
"""

import json
from pathlib import Path

import numpy as np

from kd_keras.evaluation import decode, evaluate
from kd_keras.runs import predict_logits
from tflite.micro import dequantize, output_quantizations, run_litert, run_micro


def load_converted(model_dir):
    """(model card, flatbuffer bytes) of a directory written by `tflite.convert`, checked."""
    model_dir = Path(model_dir)
    card_path = model_dir / "model_card.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"{model_dir}: no model_card.json; convert with python -m tflite.convert")
    card = json.loads(card_path.read_text())
    flatbuffer = (model_dir / "model.tflite").read_bytes()
    if len(flatbuffer) != card["flash_bytes"]:
        raise ValueError(f"{model_dir / 'model.tflite'} is {len(flatbuffer):,} bytes but its card says "
                         f"{card['flash_bytes']:,}: truncated or replaced")
    return card, flatbuffer


def micro_logits(flatbuffer, maps):
    """Float logits (dequantized int8 outputs) of TFLite Micro on raw die maps."""
    (int8_outputs,) = run_micro(flatbuffer, maps)
    (quantization,) = output_quantizations(flatbuffer)
    return dequantize(int8_outputs, quantization)


def accuracy_figures(model, flatbuffer, data):
    """Exact-match accuracy of the float model and of the int8 model in TFLite Micro on `data`,
    thresholded at 0 and decoded to the nearest of the 38 patterns (as the firmware can)."""
    figures = {"test_maps": len(data)}
    for kind, logits in (("float", predict_logits(model, data.maps)), ("int8", micro_logits(flatbuffer, data.maps))):
        figures[f"{kind}_exact_match"] = evaluate(logits, data.labels)["exact_match"]
        figures[f"{kind}_exact_match_nearest"] = evaluate(logits, data.labels, "nearest")["exact_match"]
    return figures


def compare_with_references(flatbuffer, model, data):
    """TFLite Micro against LiteRT's reference kernels (bit for bit) and against the float model."""
    (micro,) = run_micro(flatbuffer, data.maps)
    (litert,) = run_litert(flatbuffer, data.maps)
    (quantization,) = output_quantizations(flatbuffer)
    int8_logits, reference_logits = dequantize(micro, quantization), predict_logits(model, data.maps)
    int8, reference = evaluate(int8_logits, data.labels), evaluate(reference_logits, data.labels)
    return {
        "micro_vs_litert_max_int8_difference": int(np.abs(micro.astype(int) - litert.astype(int)).max()),
        "micro_vs_litert_differing_outputs": float((micro != litert).mean()),
        "float_exact_match": reference["exact_match"],
        "int8_exact_match": int8["exact_match"],
        "int8_accuracy_drop": reference["exact_match"] - int8["exact_match"],
        "disagreement_rate": float((decode(int8_logits) != decode(reference_logits)).any(axis=1).mean()),
    }
