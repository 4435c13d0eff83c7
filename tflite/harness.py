"""The harness: a converted model in TFLite Micro against LiteRT and against its float original.

What is measured depends on the model's task (`kd_keras.tasks`, told by its outputs): exact
match for 8 defect logits, pattern accuracy and mask Dice for a segmentation + classification
model.

Example:

>>> import numpy as np
>>> from kd_keras.data import generate_wafer_maps
>>> from kd_keras.models import build_student
>>> from tflite.micro import Int8Model
>>> from tflite.quantize import convert_int8
>>> model = build_student("net2", seed=0)
>>> maps = generate_wafer_maps(38, seed=0)
>>> report = compare_with_references(Int8Model(convert_int8(model, maps.maps)), model, maps)
>>> report["micro_vs_litert_max_int8_difference"]
0
"""

import numpy as np

from kd_keras.evaluation import fab_class_figures


def accuracy_figures(model, int8, data, views=1):
    """The model card's accuracy figures: the float Keras model's and the `Int8Model`'s in
    TFLite Micro on `data`, each averaged over `views` rotations/flips of each map."""
    task = int8.task
    figures = {"test_maps": len(data)}
    for kind, outputs in (("float", task.predict(model, data.maps, views)), ("int8", int8.outputs(data.maps, views))):
        figures.update({f"{kind}_{name}": value for name, value in task.figures(outputs, data).items()})
    return figures


def fab_figures(int8, data, views=1):
    """`kd_keras.evaluation.fab_class_figures` of an `Int8Model` in TFLite Micro on `data` (maps
    with one WM-811K class each), its outputs summed over `views` rotations/flips."""
    return fab_class_figures(int8.task.predicted_patterns(int8.outputs(data.maps, views)), data.labels)


def compare_with_references(int8, model, data):
    """TFLite Micro against LiteRT's reference kernels (bit for bit, over every output) and,
    unless `model` is None, against the float model."""
    micro, litert = int8.run_micro(data.maps), int8.run_litert(data.maps)
    differences = np.concatenate([np.abs(m.astype(int) - r.astype(int)).ravel() for m, r in zip(micro, litert)])
    task = int8.task
    int8_outputs = int8.dequantized(micro)
    int8_figures = task.figures(int8_outputs, data)
    report = {
        "micro_vs_litert_max_int8_difference": int(differences.max()),
        "micro_vs_litert_differing_outputs": float((differences > 0).mean()),
        **{f"int8_{name}": value for name, value in int8_figures.items()},
    }
    if model is None:
        return report
    float_outputs = int8.from_thresholds(task.predict(model, data.maps))  # decided as the int8 model decides
    float_figures = task.figures(float_outputs, data)
    report.update({
        **{f"float_{name}": value for name, value in float_figures.items()},
        "int8_accuracy_drop": float_figures["exact_match"] - int8_figures["exact_match"],
        "disagreement_rate": float((task.predicted_patterns(int8_outputs)
                                    != task.predicted_patterns(float_outputs)).any(axis=1).mean()),
    })
    return report
