"""The model card: what a deployed model is, in `model_card.json`, read once and checked.

A `ModelCard` is written by `tflite.export.export_model` next to the `.tflite` it describes
and read by everything downstream (`tflite.evaluate`, the settings header, the shipped
models' READMEs). Reading checks every field the toolkit uses, and names the first one that
is missing or of the wrong type.

Example:

>>> card = ModelCard.from_dict(_EXAMPLE)
>>> card.task.name, card.views, card.budget.name
('classify', 8, '21KB')
>>> ModelCard.from_dict({**_EXAMPLE, "flash_bytes": "big"}, "model_card.json")
Traceback (most recent call last):
...
kd_keras.errors.FileFormatError: model_card.json: field 'flash_bytes' should be an integer, got 'big'
"""

import dataclasses
import json
import re
import typing
from pathlib import Path

from kd_keras.errors import FileFormatError
from kd_keras.fileio import read_json, write_text
from kd_keras.tasks import MASK, MULTILABEL, OUTPUT_SHAPES, PATTERN, task_for_kinds
from tflite.budget import BUDGETS, Budget
from tflite.firmware import firmware_lines

CARD_FILE = "model_card.json"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The int8 input: one raw die map, and the int8 value of each die value (0, 1, 2).

    `resize`: how a map of another die grid becomes the input (`kd_keras.data.resize`: the
    firmware's `resize_map.h` does the same); cards written before it was recorded have none,
    which means `nearest`."""

    shape: list
    dtype: str
    encoding: dict
    quantization: dict
    die_value_int8: list
    resize: str | None = None


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One int8 output: what it holds (`kd_keras.tasks` kind), its shape and quantization."""

    index: int
    kind: str
    shape: list
    dtype: str
    scale: float
    zero_point: int
    labels: list | None = None
    meaning: str | None = None
    threshold_int8: int | None = None
    # A classifier's decision threshold per defect, chosen on validation maps by
    # `python -m tflite.calibrate`; absent: `threshold_int8` (logit 0) for every defect.
    thresholds_int8: list | None = None

    def defect_thresholds_int8(self):
        """Each label's int8 threshold: its output (summed over views, less this) above 0 means present."""
        if self.thresholds_int8 is not None:
            return list(self.thresholds_int8)
        default = self.zero_point if self.threshold_int8 is None else self.threshold_int8
        return [default] * self.shape[-1]


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """Everything known about a deployed model; `to_dict()` is its model_card.json."""

    name: str
    input: InputSpec
    outputs: list
    flash_bytes: int
    arena_bytes: int
    tensor_arena_size: int
    ops: list
    parameters: int
    macs_per_inference: int
    heaviest_layers: list
    accuracy: dict
    source_model: str | None = None
    quantization: str | None = None
    weight_scales: str | None = None
    views: int = 1  # cards written before views existed are single-view
    budget: Budget | None = None  # cards written before budgets were recorded have none
    # The Cortex-M4 firmware image measured whole, per kernel set ({"reference": {...},
    # "cmsis_nn": {...}}: `tflite.firmware.ImageFootprint.to_card`); written by
    # `python -m benchmarks.firmware_footprint --update-cards`, absent before it ran.
    firmware: dict | None = None

    @property
    def task(self):
        return task_for_kinds([output.kind for output in self.outputs])

    @classmethod
    def read(cls, path):
        """The card in `path`, checked (`FileFormatError` names the file and the field)."""
        return cls.from_dict(read_json(path), path)

    @classmethod
    def from_dict(cls, record, path="model card"):
        if not isinstance(record, dict):
            raise FileFormatError(f"{path}: not a model card (expected a JSON object)")
        fields = _checked(cls, record, path)
        fields["input"] = InputSpec(**_checked(InputSpec, record["input"], path, "input."))
        outputs = []
        for number, output in enumerate(record["outputs"]):
            output = OutputSpec(**_checked(OutputSpec, output, path, f"outputs[{number}]."))
            if output.kind not in OUTPUT_SHAPES:
                raise FileFormatError(f"{path}: outputs[{number}].kind {output.kind!r} is none of "
                                      f"{', '.join(OUTPUT_SHAPES)}")
            thresholds = output.thresholds_int8
            if thresholds is not None and (output.kind != MULTILABEL or len(thresholds) != output.shape[-1] or not all(
                    isinstance(t, int) and not isinstance(t, bool) and -128 <= t <= 127 for t in thresholds)):
                raise FileFormatError(f"{path}: outputs[{number}].thresholds_int8 should be one int8 value per "
                                      f"defect of a {MULTILABEL} output, got {thresholds!r}")
            outputs.append(output)
        fields["outputs"] = outputs
        if fields.get("budget") is not None:
            fields["budget"] = Budget(**_checked(Budget, record["budget"], path, "budget."))
        card = cls(**fields)
        try:
            task = card.task
        except ValueError as error:
            raise FileFormatError(f"{path}: {error}") from None
        if card.views not in task.views:
            raise FileFormatError(f"{path}: field 'views' must be one of {task.views} for its outputs, "
                                  f"got {card.views!r}")
        return card

    def to_dict(self):
        """The JSON object of model_card.json: fields in order, unset optional ones left out."""
        record = dataclasses.asdict(self)
        record["input"] = {key: value for key, value in record["input"].items() if value is not None}
        record["outputs"] = [{key: value for key, value in output.items() if value is not None}
                             for output in record["outputs"]]
        return {key: value for key, value in record.items() if value is not None}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def output(self, kind):
        return next(output for output in self.outputs if output.kind == kind)


_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", int: "an integer", float: "a number"}


def _checked(kind, record, path, prefix=""):
    """The fields of dataclass `kind` in `record`, each checked against its annotation."""
    if not isinstance(record, dict):
        raise FileFormatError(f"{path}: field '{prefix.rstrip('.')}' should be an object, got {record!r}")
    fields = {}
    for field in dataclasses.fields(kind):
        wanted = _plain_type(field.type)
        if field.name not in record:
            if field.default is dataclasses.MISSING:
                raise FileFormatError(f"{path}: field '{prefix}{field.name}' is missing")
            continue
        value = record[field.name]
        optional = field.default is None
        if value is None and optional:
            fields[field.name] = None
            continue
        # JSON has one number type: an int is a fine float; a bool is no int.
        ok = isinstance(value, (int, float) if wanted is float else wanted) and not isinstance(value, bool)
        if not ok:
            raise FileFormatError(f"{path}: field '{prefix}{field.name}' should be {_TYPE_NAMES[wanted]}, "
                                  f"got {value!r}")
        fields[field.name] = value
    return fields


def _plain_type(annotation):
    """str for `str | None`; dict for a dataclass (a nested object)."""
    if dataclasses.is_dataclass(annotation):
        return dict
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if arguments:
        return _plain_type(arguments[0])
    return annotation


# The docstring's example: the smallest card there is.
_EXAMPLE = {
    "name": "net2", "flash_bytes": 8496, "arena_bytes": 22496, "tensor_arena_size": 24752, "ops": ["CONV_2D"],
    "parameters": 5556, "macs_per_inference": 734688, "heaviest_layers": [], "accuracy": {}, "views": 8,
    "input": {"shape": [1, 52, 52, 1], "dtype": "int8", "encoding": {}, "quantization": {}, "die_value_int8": []},
    "outputs": [{"index": 0, "kind": MULTILABEL, "shape": [1, 8], "dtype": "int8", "scale": 0.25,
                 "zero_point": -17}],
    "budget": BUDGETS["21KB"].to_dict(),
}


def write_model_readme(model_dir, summary, made_by):
    """Write `model_dir/README.md` for a shipped model from its card: what it is, its flash,
    arena, MACs and ops, its accuracy, its input and output, and how to build it in.

    `summary`: a paragraph on what the model is and how it was trained; `made_by`: the
    command that made the directory."""
    model_dir = Path(model_dir)
    card = ModelCard.read(model_dir / CARD_FILE)
    accuracy = card.accuracy
    lines = [
        f"# {model_dir.name}", "", summary, "",
        "| flash (model.tflite) | tensor arena (measured) | kTensorArenaSize | MACs per inference | ops |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {card.flash_bytes:,} bytes | {card.arena_bytes:,} bytes | {card.tensor_arena_size:,} bytes | "
        f"{card.macs_per_inference:,} | {', '.join(card.ops)} |", "",
    ]
    if accuracy:
        float_figure = (f"float {100 * accuracy['float_exact_match']:.2f}%, " if "float_exact_match" in accuracy
                        else "")
        lines += [f"Exact-match accuracy on the {accuracy['test_maps']:,} test maps of its run's split: {float_figure}"
                  f"int8 in TFLite Micro {100 * accuracy['int8_exact_match']:.2f}%"
                  f"{' with its decision thresholds' if 'int8_thresholds' in accuracy else ''} "
                  f"({card.quantization} quantization"
                  f"{', per-tensor weight scales' if card.weight_scales == 'per-tensor' else ''})"
                  f"{card.task.card_sentence(accuracy)}.", ""]
    if card.views > 1:
        lines += [f"The firmware runs the model on all {card.views} rotations/flips of each map and sums its "
                  f"outputs (`kNumViews` in model_settings.h): {card.views} inferences, "
                  f"{card.views * card.macs_per_inference:,} MACs a map; the accuracy above is measured so.", ""]
    resize = (f" A map of another die grid is brought to 52x52 first by `{card.input.resize}` (the card's "
              "`input.resize`: `kd_keras.data.resize`, `ResizeMap()` in firmware_stub/resize_map.h)."
              if card.input.resize else "")
    lines += [
        f"Input: the raw 52x52 die map as int8, die values 0/1/2 -> {card.input.die_value_int8} "
        f"(`kDieValueInt8` in model_settings.h).{resize} {outputs_sentence(card.outputs)}", "",
        f"Build it into a firmware and run it on an emulated Cortex-M4: `make -C firmware_stub cortex-m "
        f"MODEL_DIR=../models/{model_dir.name} KERNELS=cmsis_nn` (see firmware_stub/README.md). Made by `{made_by}`.",
    ]
    if card.firmware:
        lines += ["", "Measured by `python -m benchmarks.firmware_footprint`:", "",
                  *(f"- {line}" for line in firmware_lines(card))]
    write_text(model_dir / "README.md", "\n".join(lines) + "\n")


def _defect_logits_words(output):
    if output.thresholds_int8 is None:
        rule = f"its output exceeds {output.threshold_int8}"
    else:
        chosen = ", ".join(f"{name} {value}" for name, value in zip(output.labels, output.thresholds_int8))
        rule = (f"its output exceeds its own threshold, chosen on validation maps (`kDetectionThresholdInt8`: "
                f"{chosen}; logit 0 is {output.zero_point})")
    return f"{len(output.labels)} int8 defect logits ({', '.join(output.labels)}); a defect is present when {rule}"


def rewrite_model_readme(model_dir, then=None):
    """Rewrite `model_dir/README.md` (written by `write_model_readme`) from its card as it is
    now, keeping its summary and the command that made it, followed by `then`, the command
    that changed the card (if any)."""
    model_dir = Path(model_dir)
    text = (model_dir / "README.md").read_text()
    made_by = re.search(r"Made by `(.*)`\.", text)
    if made_by is None:
        raise FileFormatError(f"{model_dir / 'README.md'}: not a README written by this toolkit (no 'Made by')")
    made_by = made_by.group(1)
    if then and then not in made_by:
        made_by += f"`, then `{then}"
    write_model_readme(model_dir, text.split("\n\n")[1], made_by)


# What an output of each kind holds, in words (`OutputSpec` -> text).
_OUTPUT_WORDS = {
    MULTILABEL: _defect_logits_words,
    PATTERN: lambda output: (f"{len(output.labels)} int8 pattern logits (the pattern is the largest; names in "
                             "`kPatternNames`, firmware_stub/patterns.h)"),
    MASK: lambda output: ("the 52x52 defect mask as int8 logits (a die is in the mask when its output exceeds "
                          f"{output.threshold_int8})"),
}


def outputs_sentence(outputs):
    """What each output of a model card holds, in words."""
    said = [_OUTPUT_WORDS[output.kind](output) for output in outputs]
    return f"Output{'s' if len(said) > 1 else ''}: " + "; ".join(
        f"{output.index}: {text}" if len(said) > 1 else text for output, text in zip(outputs, said)) + "."
