"""Turn a trained Keras student into a deployable directory, atomically.

The directory holds `model.tflite` (full int8), `model_data.cc` / `model_data.h` (the C array),
`model_settings.h` and `model_card.json`. It is written to a temporary directory first and
renamed into place, so a conversion that fails (over budget, an op TFLite Micro cannot
run, ...) leaves nothing behind and an existing directory untouched.

Example:

>>> import os, tempfile, numpy as np
>>> from kd_keras.models import build_student
>>> out = os.path.join(tempfile.mkdtemp(), "net2")
>>> card = export_model(build_student("net2", seed=0), out, np.ones((8, 52, 52), np.uint8),
...                     name="net2", budget_bytes=21 * 1024)
>>> sorted(os.listdir(out))
['model.tflite', 'model_card.json', 'model_data.cc', 'model_data.h', 'model_settings.h']
>>> card["flash_bytes"] == os.path.getsize(os.path.join(out, "model.tflite"))
True
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kd_keras.data.labels import DEFECT_NAMES, PATTERN_NAMES
from kd_keras.fileio import write_text
from tflite.c_sources import RESOLVER_METHODS, check_c_identifier, model_data_cc, model_data_h, model_settings_h
from tflite.harness import check_views
from tflite.micro import (
    MULTILABEL, OUTPUT_KINDS, PATTERN, input_quantization, measure_arena_bytes, output_kinds,
    output_quantizations, quantize_maps,
)
from tflite.quantize import convert_int8, op_names, strip_names

BUDGETS = {"21KB": 21 * 1024, "248KB": 248 * 1024}
ARENA_MARGIN = 1.10  # the firmware's arena: the measured bytes plus 10%, rounded up to 16
OUTPUT_SHAPES = {kind: shape for shape, kind in OUTPUT_KINDS.items()}


class ConversionError(ValueError):
    """A model that cannot be deployed as asked; the message says why."""


def parse_budget(text):
    """'21KB', '248KB' or a number of bytes -> bytes."""
    key = str(text).upper().replace(" ", "")
    if key in BUDGETS:
        return BUDGETS[key]
    if key.isdigit() and int(key) > 0:
        return int(key)
    raise ValueError(f"budget {text!r}: expected 21KB, 248KB or a positive number of bytes")


def heaviest_layers(model, count=3):
    """[(layer name, parameters)] of the layers holding the most weights."""
    sizes = [(layer.name, layer.count_params()) for layer in model.layers if layer.count_params()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def macs_per_inference(model):
    """Multiply-accumulates of one inference, counted over Conv2D, DepthwiseConv2D and Dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def check_budget(flash_bytes, budget_bytes, layers):
    """Raise `ConversionError` saying by how much and which layers weigh most, if over budget."""
    if flash_bytes > budget_bytes:
        heaviest = ", ".join(f"{layer} ({params:,} parameters)" for layer, params in layers)
        raise ConversionError(
            f"model.tflite is {flash_bytes:,} bytes, {flash_bytes - budget_bytes:,} bytes over the budget "
            f"of {budget_bytes:,}; the heaviest layers: {heaviest}")


def _check_ops(ops):
    unsupported = [op for op in ops if op not in RESOLVER_METHODS]
    if unsupported:
        raise ConversionError(f"the model uses op {unsupported[0]}, which this toolkit cannot register "
                              f"in TFLite Micro (supported: {', '.join(sorted(RESOLVER_METHODS))})")


def _output_entry(index, kind, quantization):
    """The model card's description of one int8 output."""
    scale, zero_point = quantization
    # Logit 0 in int8 units: a defect is present (or a die in the mask) when its output is above it.
    threshold = int(np.clip(np.round(zero_point), -128, 127))
    entry = {"index": index, "kind": kind, "shape": list(OUTPUT_SHAPES[kind]), "dtype": "int8",
             "scale": float(scale), "zero_point": int(zero_point)}
    if kind == MULTILABEL:
        return {**entry, "labels": list(DEFECT_NAMES), "threshold_int8": threshold}
    if kind == PATTERN:  # softmax logits: the pattern is the largest output
        return {**entry, "labels": list(PATTERN_NAMES)}
    return {**entry, "meaning": "defect mask logits: a die is in the mask when its output is above threshold_int8",
            "threshold_int8": threshold}


def build_card(model, flatbuffer, name, ops, arena_bytes, accuracy=None):
    input_scale, input_zero_point = input_quantization(flatbuffer)
    outputs = [_output_entry(index, kind, quantization) for index, (kind, quantization)
               in enumerate(zip(output_kinds(flatbuffer), output_quantizations(flatbuffer), strict=True))]
    return {
        "name": name,
        "input": {
            "shape": [1, 52, 52, 1],
            "dtype": "int8",
            "encoding": {"0": [0.0], "1": [1.0], "2": [2.0]},
            "quantization": {"scale": float(input_scale), "zero_point": int(input_zero_point)},
            "die_value_int8": quantize_maps(np.array([0, 1, 2]), (input_scale, input_zero_point)).tolist(),
        },
        "outputs": outputs,
        "flash_bytes": len(flatbuffer),
        "arena_bytes": arena_bytes,
        "tensor_arena_size": int(-(-arena_bytes * ARENA_MARGIN // 16) * 16),
        "ops": ops,
        "parameters": int(model.count_params()),
        "macs_per_inference": macs_per_inference(model),
        "heaviest_layers": [{"layer": layer, "parameters": params} for layer, params in heaviest_layers(model)],
        "accuracy": accuracy or {},
    }


def int8_flatbuffer(model, representative_maps, *, qat_epochs=0, per_channel=True):
    """`model` as the full-integer int8 `.tflite` bytes that `export_model` writes (tensor
    names stripped). For the arguments, see `export_model`."""
    if qat_epochs and not per_channel:
        raise ConversionError("per-tensor weight scales are available with post-training quantization only, not QAT")
    if qat_epochs:
        from tflite.qat import quantization_aware_finetune  # switches tf.keras to tf_keras

        flatbuffer = quantization_aware_finetune(model, representative_maps, epochs=qat_epochs)
    else:
        flatbuffer = convert_int8(model, representative_maps, per_channel=per_channel)
    return strip_names(flatbuffer)


def export_model(model, out_dir, representative_maps, *, name, budget_bytes, accuracy_fn=None,
                 source_model=None, qat_epochs=0, per_channel=True, views=1, flatbuffer=None):
    """Convert `model` to int8 and write the deployable directory `out_dir`; return its model card.

    Args:
        representative_maps: (N, 52, 52) training maps for calibrating the quantization.
        name: the C identifier in `g_<name>_model_data`.
        budget_bytes: the largest `.tflite` allowed (flash).
        accuracy_fn: optional `f(flatbuffer) -> dict` of accuracy figures for the card.
        source_model: the float `.keras` file, recorded in the card for later comparisons.
        qat_epochs: if positive, quantization-aware fine-tuning for that many epochs on the
            representative maps (see `tflite.qat`) instead of post-training quantization.
        per_channel: one weight scale per output channel (True) or per tensor (False: a
            smaller file, see `tflite.quantize.convert_int8`); post-training only.
        views: 8 to have the firmware average a classifier's outputs over the 8
            rotations/flips of each map (8 inferences a map; `kNumViews` in model_settings.h).
            The caller's `accuracy_fn` should measure with the same views.
        flatbuffer: `int8_flatbuffer(model, representative_maps, ...)` when the caller has
            already converted the model (to measure it before choosing `views`): not converted again.
    Raises:
        ConversionError: over budget, or an op TFLite Micro cannot run.
    """
    check_c_identifier(name)
    if flatbuffer is None:
        flatbuffer = int8_flatbuffer(model, representative_maps, qat_epochs=qat_epochs, per_channel=per_channel)
    ops = list(dict.fromkeys(op_names(flatbuffer)))
    _check_ops(ops)
    check_views(views, output_kinds(flatbuffer))
    check_budget(len(flatbuffer), budget_bytes, heaviest_layers(model))
    try:
        arena_bytes = measure_arena_bytes(flatbuffer)
    except RuntimeError as error:
        raise ConversionError(f"TFLite Micro cannot run the model: {error}") from None
    card = build_card(model, flatbuffer, name, ops, arena_bytes, accuracy_fn(flatbuffer) if accuracy_fn else None)
    card["source_model"] = str(source_model) if source_model else None
    card["quantization"] = f"quantization-aware training, {qat_epochs} epochs" if qat_epochs else "post-training"
    card["weight_scales"] = "per-channel" if per_channel else "per-tensor"
    card["views"] = views
    _write_directory(Path(out_dir), {
        "model.tflite": flatbuffer,
        "model_data.cc": model_data_cc(name, flatbuffer),
        "model_data.h": model_data_h(name, len(flatbuffer)),
        "model_settings.h": model_settings_h(name, card),
        "model_card.json": json.dumps(card, indent=2) + "\n",
    })
    return card


def write_model_readme(model_dir, summary, made_by):
    """Write `model_dir/README.md` for a shipped model from its card: what it is, its flash,
    arena, MACs and ops, its accuracy, its input and output, and how to build it in.

    `summary`: a paragraph on what the model is and how it was trained; `made_by`: the
    command that made the directory."""
    model_dir = Path(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    accuracy = card.get("accuracy") or {}
    lines = [
        f"# {model_dir.name}", "", summary, "",
        "| flash (model.tflite) | tensor arena (measured) | kTensorArenaSize | MACs per inference | ops |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {card['flash_bytes']:,} bytes | {card['arena_bytes']:,} bytes | {card['tensor_arena_size']:,} bytes | "
        f"{card['macs_per_inference']:,} | {', '.join(card['ops'])} |", "",
    ]
    if accuracy:
        sentence = (f"Exact-match accuracy on the {accuracy['test_maps']:,} test maps of its run's split: float "
                    f"{100 * accuracy['float_exact_match']:.2f}%, int8 in TFLite Micro "
                    f"{100 * accuracy['int8_exact_match']:.2f}% ({card['quantization']} quantization"
                    f"{', per-tensor weight scales' if card.get('weight_scales') == 'per-tensor' else ''})")
        if "int8_exact_match_nearest" in accuracy:  # cards written before nearest decoding lack it
            sentence += (f"; {100 * accuracy['int8_exact_match_nearest']:.2f}% decoded to the nearest of the 38 "
                         "patterns (`NearestPattern()` in firmware_stub/patterns.h)")
        if "int8_dice" in accuracy:
            sentence += (f"; defect-mask Dice float {accuracy['float_dice']:.4f}, int8 {accuracy['int8_dice']:.4f} "
                         f"(IoU {accuracy['float_iou']:.4f}, {accuracy['int8_iou']:.4f})")
        lines += [sentence + ".", ""]
    if card.get("views", 1) > 1:
        lines += [f"The firmware runs the model on all {card['views']} rotations/flips of each map and sums its "
                  f"outputs (`kNumViews` in model_settings.h): {card['views']} inferences, "
                  f"{card['views'] * card['macs_per_inference']:,} MACs a map; the accuracy above is measured so.", ""]
    lines += [
        f"Input: the raw 52x52 die map as int8, die values 0/1/2 -> {card['input']['die_value_int8']} "
        f"(`kDieValueInt8` in model_settings.h). {_outputs_sentence(card['outputs'])}", "",
        f"Build it into a firmware: `make -C firmware_stub check MODEL_DIR=../models/{model_dir.name}` "
        f"(see firmware_stub/README.md). Made by `{made_by}`.",
    ]
    write_text(model_dir / "README.md", "\n".join(lines) + "\n")


def _outputs_sentence(outputs):
    """What each output of a model card holds, in words."""
    said = []
    for output in outputs:
        if output["kind"] == MULTILABEL:
            said.append(f"{len(output['labels'])} int8 defect logits ({', '.join(output['labels'])}); a defect is "
                        f"present when its output exceeds {output['threshold_int8']}")
        elif output["kind"] == PATTERN:
            said.append(f"{len(output['labels'])} int8 pattern logits (the pattern is the largest; names in "
                        "`kPatternNames`, firmware_stub/patterns.h)")
        else:
            said.append(f"the 52x52 defect mask as int8 logits (a die is in the mask when its output exceeds "
                        f"{output['threshold_int8']})")
    return f"Output{'s' if len(said) > 1 else ''}: " + "; ".join(
        f"{output['index']}: {text}" if len(said) > 1 else text for output, text in zip(outputs, said)) + "."


def _write_directory(out_dir, files):
    """Write all files into a fresh temporary directory, then swap it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        for filename, content in files.items():
            (staging / filename).write_bytes(content if isinstance(content, bytes) else content.encode())
        os.chmod(staging, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old."))
            os.replace(out_dir, old / "previous")
            os.replace(staging, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
