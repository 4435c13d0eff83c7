"""The harness: run a converted model in TFLite Micro over wafer maps and check it.

A model's outputs are told apart by `tflite.micro.output_kinds`: 8 defect logits (Paper 1's
students and ours), or 38 pattern logits and a 52x52 mask (Paper 2's student).

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

import numpy as np

from kd_keras.data import dihedral_views
from kd_keras.evaluation import decode, evaluate, evaluate_segclass
from kd_keras.models import DihedralMean
from kd_keras.runs import predict_logits
from kd_keras.segclass_distillation import predict_segclass
from tflite.micro import (
    MASK, MULTILABEL, PATTERN, dequantize, output_kinds, output_quantizations, run_litert, run_micro,
)


VIEWS = (1, 8)


def check_views(views, kinds):
    """Refuse a number of views other than 1 or 8, and 8 views of a model that draws a mask."""
    if views not in VIEWS:
        raise ValueError(f"views must be 1 or 8 (every rotation/flip of the map), got {views}")
    if views > 1 and kinds != [MULTILABEL]:
        raise ValueError(f"averaging over {views} views needs a classifier with 8 defect logits; "
                         f"this model's outputs are {', '.join(kinds)}")


def micro_outputs(flatbuffer, maps, views=1):
    """{output kind: float logits} of TFLite Micro on raw die maps (its int8 outputs, dequantized).

    `views=8`: a classifier's logits averaged over the 8 rotations/flips of each map
    (`kd_keras.data.dihedral_views`): 8 inferences a map, as the firmware runs them when
    its model_settings.h says kNumViews = 8."""
    kinds = output_kinds(flatbuffer)
    check_views(views, kinds)
    per_view = [dequantized_outputs(flatbuffer, run_micro(flatbuffer, view))
                for view in (dihedral_views(maps) if views > 1 else [maps])]
    return {kind: np.mean([outputs[kind] for outputs in per_view], axis=0) for kind in kinds}


def micro_logits(flatbuffer, maps, views=1):
    """The 8 defect logits of a classifier in TFLite Micro on raw die maps (dequantized)."""
    return micro_outputs(flatbuffer, maps, views)[MULTILABEL]


def dequantized_outputs(flatbuffer, int8_outputs):
    """{output kind: float logits} of the model's int8 outputs (a list, in output order)."""
    return {kind: dequantize(values, quantization) for kind, values, quantization
            in zip(output_kinds(flatbuffer), int8_outputs, output_quantizations(flatbuffer), strict=True)}


def float_outputs(model, maps, kinds, views=1):
    """The float Keras model's logits on raw die maps, keyed like `micro_outputs`."""
    check_views(views, kinds)
    if MASK in kinds:
        pattern_logits, mask_logits = predict_segclass(model, maps)
        return {PATTERN: pattern_logits, MASK: mask_logits[..., None]}
    return {MULTILABEL: predict_logits(DihedralMean(model) if views > 1 else model, maps)}


def output_metrics(outputs, data):
    """`evaluate` (8 defect logits) or `evaluate_segclass` (patterns and masks) of `outputs` on `data`."""
    if MASK in outputs:
        return evaluate_segclass(outputs[PATTERN], data.pattern_ids, outputs[MASK][..., 0], data.masks)
    return evaluate(outputs[MULTILABEL], data.labels)


def accuracy_figures(model, flatbuffer, data, views=1):
    """Exact-match accuracy of the float model and of the int8 model in TFLite Micro on `data`.

    8 defect logits: thresholded at 0 and decoded to the nearest of the 38 patterns (as the
    firmware can), averaged over `views` rotations/flips of each map (see `micro_outputs`).
    A mask and 38 pattern logits: pattern accuracy, macro F1, mask Dice and IoU."""
    kinds = output_kinds(flatbuffer)
    figures = {"test_maps": len(data)}
    for kind, outputs in (("float", float_outputs(model, data.maps, kinds, views)),
                          ("int8", micro_outputs(flatbuffer, data.maps, views))):
        metrics = output_metrics(outputs, data)
        figures[f"{kind}_exact_match"] = metrics["exact_match"]
        if MASK in kinds:
            figures.update({f"{kind}_{name}": metrics[name] for name in ("macro_f1", "dice", "iou")})
        else:
            figures[f"{kind}_exact_match_nearest"] = evaluate(outputs[MULTILABEL], data.labels, "nearest")["exact_match"]
    return figures


def _predicted_patterns(outputs):
    """Each map's predicted pattern id, or its 8 thresholded defect flags."""
    return outputs[PATTERN].argmax(axis=1)[:, None] if PATTERN in outputs else decode(outputs[MULTILABEL])


def compare_with_references(flatbuffer, model, data):
    """TFLite Micro against LiteRT's reference kernels (bit for bit, over every output) and,
    unless `model` is None, against the float model."""
    micro, litert = run_micro(flatbuffer, data.maps), run_litert(flatbuffer, data.maps)
    differences = np.concatenate([np.abs(m.astype(int) - r.astype(int)).ravel() for m, r in zip(micro, litert)])
    kinds = output_kinds(flatbuffer)
    int8_outputs = dequantized_outputs(flatbuffer, micro)
    int8 = output_metrics(int8_outputs, data)
    report = {
        "micro_vs_litert_max_int8_difference": int(differences.max()),
        "micro_vs_litert_differing_outputs": float((differences > 0).mean()),
        "int8_exact_match": int8["exact_match"],
    }
    if MASK in kinds:
        report["int8_dice"] = int8["dice"]
    if model is None:
        return report
    reference_outputs = float_outputs(model, data.maps, kinds)
    reference = output_metrics(reference_outputs, data)
    report.update({
        "float_exact_match": reference["exact_match"],
        "int8_accuracy_drop": reference["exact_match"] - int8["exact_match"],
        "disagreement_rate": float((_predicted_patterns(int8_outputs)
                                    != _predicted_patterns(reference_outputs)).any(axis=1).mean()),
    })
    if MASK in kinds:
        report["float_dice"] = reference["dice"]
    return report
