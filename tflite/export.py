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

import errno
import json
from pathlib import Path

import numpy as np

from kd_keras.data.labels import DEFECT_NAMES, PATTERN_NAMES
from kd_keras.errors import FileFormatError, ToolkitError
from kd_keras.fileio import listing, read_json, write_directory, write_text
from tflite.c_sources import RESOLVER_METHODS, check_c_identifier, model_data_cc, model_data_h, model_settings_h
from tflite.harness import VIEWS, check_views
from tflite.micro import (
    MULTILABEL, OUTPUT_KINDS, PATTERN, input_quantization, measure_arena_bytes, micro_interpreter, output_kinds,
    output_quantizations, quantize_maps,
)
from tflite.quantize import convert_int8, op_names, strip_names

BUDGETS = {"21KB": 21 * 1024, "248KB": 248 * 1024}
ARENA_MARGIN = 1.10  # the firmware's arena: the measured bytes plus 10%, rounded up to 16
OUTPUT_SHAPES = {kind: shape for shape, kind in OUTPUT_KINDS.items()}


class ConversionError(ToolkitError, ValueError):
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
    check_output_directory(out_dir)
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
    write_directory(out_dir, {
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
    card = read_card(model_dir / CARD_FILE)
    accuracy = card["accuracy"]
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


CONVERTED_FILES = ("model.tflite", "model_data.cc", "model_data.h", "model_settings.h", "model_card.json")
CARD_FILE = "model_card.json"
# What a model card must hold, and of which type, for the toolkit to read it.
CARD_FIELDS = {"name": str, "input": dict, "outputs": list, "flash_bytes": int, "arena_bytes": int,
               "tensor_arena_size": int, "ops": list, "parameters": int, "macs_per_inference": int,
               "heaviest_layers": list, "accuracy": dict}
OUTPUT_FIELDS = {"index": int, "kind": str, "shape": list, "scale": float, "zero_point": int}


def read_card(path):
    """A model card, checked: every field the toolkit reads is there, with its type.

    Raises `FileFormatError` naming the file and the first wrong field."""
    card = read_json(path)
    if not isinstance(card, dict):
        raise FileFormatError(f"{path}: not a model card (expected a JSON object)")
    _check_fields(card, CARD_FIELDS, path)
    if card.get("views", 1) not in VIEWS:
        raise FileFormatError(f"{path}: field 'views' must be one of {VIEWS}, got {card['views']!r}")
    for number, output in enumerate(card["outputs"]):
        if not isinstance(output, dict):
            raise FileFormatError(f"{path}: outputs[{number}] is not an object")
        _check_fields(output, OUTPUT_FIELDS, path, f"outputs[{number}].")
        if output["kind"] not in OUTPUT_SHAPES:
            raise FileFormatError(f"{path}: outputs[{number}].kind {output['kind']!r} is none of "
                                  f"{', '.join(OUTPUT_SHAPES)}")
    return card


def _check_fields(record, fields, path, prefix=""):
    for field, kind in fields.items():
        value = record.get(field)
        # JSON has one number type: an int is a fine float, a bool is no int.
        ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
        if not ok:
            problem = "is missing" if field not in record else f"should be {_TYPE_NAMES[kind]}, got {value!r}"
            raise FileFormatError(f"{path}: field '{prefix}{field}' {problem}")


_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", int: "an integer", float: "a number"}


def load_converted(model_dir):
    """(model card, flatbuffer bytes) of a directory written by `tflite.convert`, checked:
    the card is whole, `model.tflite` is the model it describes, and TFLite Micro can load it."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no model directory there", str(model_dir))
    if not (model_dir / CARD_FILE).is_file():
        raise FileFormatError(f"{model_dir}: no {CARD_FILE}, not a model directory; convert a model into it with "
                              "python -m tflite.convert")
    card = read_card(model_dir / CARD_FILE)
    path = model_dir / "model.tflite"
    flatbuffer = path.read_bytes()
    if len(flatbuffer) != card["flash_bytes"]:
        raise FileFormatError(f"{path} is {len(flatbuffer):,} bytes but its card says {card['flash_bytes']:,}: "
                              "truncated or replaced")
    try:
        kinds = output_kinds(flatbuffer)
        micro_interpreter(flatbuffer)
    except (RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise FileFormatError(f"{path}: not a model TFLite Micro can load ({reason})") from None
    if kinds != [output["kind"] for output in card["outputs"]]:
        raise FileFormatError(f"{path}: its outputs ({', '.join(kinds)}) are not those its card describes")
    return card, flatbuffer


def check_output_directory(out_dir):
    """Refuse, before any work, an output directory that conversion must not write into.

    Allowed: a directory that does not exist yet, an empty one, or a model directory
    written before by this toolkit (its model card says so); in the last, the files
    conversion did not write (a README, notes) are kept."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConversionError(f"{out_dir} is a file, not a directory; --out names the directory the model goes to")
    cwd = Path.cwd().resolve()
    if out_dir.resolve() in (cwd, *cwd.parents):
        raise ConversionError(f"{out_dir} is the working directory or holds it; name a directory for the model")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not (out_dir / CARD_FILE).is_file():
        raise ConversionError(f"{out_dir} is not empty and is not a model directory written by "
                              f"python -m tflite.convert (it holds {listing(out_dir)}); choose a new or empty "
                              "directory")
    read_card(out_dir / CARD_FILE)
