"""Turn a trained Keras student into a deployable directory, atomically; read one back.

The directory holds `model.tflite` (full int8), `model_data.cc` / `model_data.h` (the C array),
`model_settings.h`, `sample_map.h` (the firmware demo's map, one the model reads right) and
`model_card.json` (`tflite.card.ModelCard`). It is written beside its
place and swapped in whole (`kd_keras.fileio.write_directory`), so a conversion that fails
(over budget, an op TFLite Micro cannot run, ...) leaves the old directory as it was. It
must be new, empty, or a model directory converted before, whose other files are kept.
The model must fit its budget's flash and tensor arena.

Example:

>>> import os, tempfile, numpy as np
>>> from kd_keras.models import build_student
>>> from tflite.budget import BUDGETS
>>> out = os.path.join(tempfile.mkdtemp(), "separable8k")
>>> card = export_model(build_student("separable8k", seed=0), out, np.ones((8, 52, 52), np.uint8),
...                     name="separable8k", budget=BUDGETS["21KB"])
>>> sorted(os.listdir(out))
['model.tflite', 'model_card.json', 'model_data.cc', 'model_data.h', 'model_settings.h', 'sample_map.h']
>>> card.flash_bytes == os.path.getsize(os.path.join(out, "model.tflite")), card.budget.name
(True, '21KB')
"""

import dataclasses
import errno
from pathlib import Path

import keras
import numpy as np

from kd_keras.data import (
    DEFAULT_RESIZE, DEFAULT_SYNTHETIC_MAPS, DIE_VALUE_NAMES, MAP_SIZE, generate_wafer_maps, load_splits,
)
from kd_keras.data.labels import DEFECT_NAMES, PATTERN_NAMES, pattern_name
from kd_keras.errors import FileFormatError
from kd_keras.fileio import listing, write_directory
from kd_keras.rundir import run_data_settings
from kd_keras.tasks import CLASSIFY, MULTILABEL, OUTPUT_SHAPES, PATTERN, check_views
from kd_keras.training import load_model
from tflite.budget import ConversionError
from tflite.c_sources import (RESOLVER_METHODS, check_c_identifier, model_data_cc, model_data_h, model_settings_h,
                              sample_map_h)
from tflite.card import CARD_FILE, InputSpec, ModelCard, OutputSpec, rewrite_model_readme
from tflite.harness import accuracy_figures
from tflite.micro import Int8Model
from tflite.quantize import convert_int8, strip_unread

ARENA_MARGIN = 1.10  # the firmware's arena: the measured bytes plus 10%, rounded up to 16
TFLITE_FILE = "model.tflite"
SAMPLE_MAP_FILE = "sample_map.h"
# The demo's sample: the first of one synthetic map of each pattern (seed 0) that the model reads
# right, trying C+L first (the one map every model's demo showed before).
SAMPLE_CANDIDATES, FIRST_SAMPLE = 38, "C+L"


def heaviest_layers(model, count=3):
    """[(layer name, parameters)] of the layers holding the most weights."""
    sizes = [(layer.name, layer.count_params()) for layer in model.layers if layer.count_params()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def macs_per_inference(model):
    """Multiply-accumulates of one inference, counted over Conv2D, DepthwiseConv2D and Dense layers."""
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


def _check_ops(ops):
    unsupported = [op for op in ops if op not in RESOLVER_METHODS]
    if unsupported:
        raise ConversionError(f"the model uses op {unsupported[0]}, which this toolkit cannot register "
                              f"in TFLite Micro (supported: {', '.join(sorted(RESOLVER_METHODS))})")


def _output_spec(index, kind, quantization):
    """The model card's description of one int8 output."""
    scale, zero_point = quantization
    # Logit 0 in int8 units: a defect is present (or a die in the mask) when its output is above it.
    threshold = int(np.clip(np.round(zero_point), -128, 127))
    spec = {"index": index, "kind": kind, "shape": list(OUTPUT_SHAPES[kind]), "dtype": "int8",
            "scale": float(scale), "zero_point": int(zero_point)}
    if kind == MULTILABEL:
        return OutputSpec(**spec, labels=list(DEFECT_NAMES), threshold_int8=threshold)
    if kind == PATTERN:  # softmax logits: the pattern is the largest output
        return OutputSpec(**spec, labels=list(PATTERN_NAMES))
    return OutputSpec(**spec, meaning="defect mask logits: a die is in the mask when its output is above "
                                      "threshold_int8", threshold_int8=threshold)


def tensor_arena_size(arena_bytes):
    """The firmware's `kTensorArenaSize` for a measured arena: `ARENA_MARGIN` more, rounded up to 16."""
    return int(-(-arena_bytes * ARENA_MARGIN // 16) * 16)


def build_card(model, int8, name, arena_bytes, resize=DEFAULT_RESIZE, **fields):
    """The model card of `model` converted to `int8` (an `Int8Model`); `resize`: how maps of other
    grids are brought to its input (`kd_keras.data.resize`); `fields`: the rest."""
    scale, zero_point = int8.input_quantization
    die_values = np.array(list(DIE_VALUE_NAMES))
    return ModelCard(
        name=name,
        input=InputSpec(shape=[1, MAP_SIZE, MAP_SIZE, 1], dtype="int8",
                        encoding={str(value): [float(value)] for value in die_values},
                        quantization={"scale": float(scale), "zero_point": int(zero_point)},
                        die_value_int8=int8.quantize(die_values).tolist(), resize=resize),
        outputs=[_output_spec(index, kind, quantization) for index, (kind, quantization)
                 in enumerate(zip(int8.kinds, int8.output_quantizations, strict=True))],
        flash_bytes=len(int8.flatbuffer),
        arena_bytes=arena_bytes,
        tensor_arena_size=tensor_arena_size(arena_bytes),
        ops=list(dict.fromkeys(int8.ops)),
        parameters=int(model.count_params()),
        macs_per_inference=macs_per_inference(model),
        heaviest_layers=[{"layer": layer, "parameters": params} for layer, params in heaviest_layers(model)],
        **fields,
    )


def demo_sample(int8, views=1):
    """(die map, pattern name, read right) of the firmware demo's sample map for `int8` (an
    `Int8Model` run in TFLite Micro over `views` rotations/flips, decoded as the demo decodes it)."""
    data = generate_wafer_maps(SAMPLE_CANDIDATES, seed=0)
    names = [pattern_name(p) for p in data.pattern_ids]
    order = sorted(range(len(names)), key=lambda i: names[i] != FIRST_SAMPLE)
    right = int8.task.reads_right(int8.outputs(data.maps, views), data)
    chosen = next((i for i in order if right[i]), order[0])
    return data.maps[chosen], names[chosen], bool(right[chosen])


def int8_flatbuffer(model, representative_maps, *, qat_epochs=0, per_channel=True):
    """`model` as the full-integer int8 `.tflite` bytes that `export_model` writes (what no
    interpreter reads stripped: `tflite.quantize.strip_unread`). For the arguments, see `export_model`."""
    if qat_epochs and not per_channel:
        raise ConversionError("per-tensor weight scales are available with post-training quantization only, not QAT")
    if qat_epochs:
        # Imported only on this path: tfmot switches tf.keras to tf_keras for the whole process.
        from tflite.qat import quantization_aware_finetune

        flatbuffer = quantization_aware_finetune(model, representative_maps, epochs=qat_epochs)
    else:
        flatbuffer = convert_int8(model, representative_maps, per_channel=per_channel)
    return strip_unread(flatbuffer)


def export_model(model, out_dir, representative_maps, *, name, budget, accuracy_fn=None, source_model=None,
                 qat_epochs=0, per_channel=True, views=1, int8=None, resize=DEFAULT_RESIZE):
    """Convert `model` to int8 and write the deployable directory `out_dir`; return its `ModelCard`.

    Args:
        representative_maps: (N, 52, 52) training maps for calibrating the quantization.
        name: the C identifier in `g_<name>_model_data`.
        budget: a `tflite.budget.Budget`: the largest `.tflite` and tensor arena allowed (the arena as
            `Budget.for_task` sets it for the model's task). Recorded in the card.
        accuracy_fn: optional `f(Int8Model) -> dict` of accuracy figures for the card.
        source_model: the float `.keras` file, recorded in the card for later comparisons.
        qat_epochs: if positive, quantization-aware fine-tuning for that many epochs on the
            representative maps (see `tflite.qat`) instead of post-training quantization.
        per_channel: one weight scale per output channel (True) or per tensor (False: a
            smaller file, see `tflite.quantize.convert_int8`); post-training only.
        views: 8 to have the firmware average a classifier's outputs over the 8
            rotations/flips of each map (8 inferences a map; `kNumViews` in model_settings.h).
            The caller's `accuracy_fn` should measure with the same views.
        int8: the `Int8Model` of `int8_flatbuffer(model, representative_maps, ...)` when the caller
            has already converted the model (to measure it before choosing `views`): not converted again.
        resize: how the maps it was trained on were brought to 52x52 (`kd_keras.data.resize`),
            recorded in the card as `input.resize` so that every consumer resizes alike.
    Raises:
        ConversionError: over the budget's flash or arena, or an op TFLite Micro cannot run.
    """
    check_c_identifier(name)
    check_output_directory(out_dir)
    if int8 is None:
        int8 = Int8Model(int8_flatbuffer(model, representative_maps, qat_epochs=qat_epochs, per_channel=per_channel))
    _check_ops(int8.ops)
    check_views(int8.task, views)
    budget = budget.for_task(int8.task.name)
    budget.check_flash(len(int8.flatbuffer), heaviest_layers(model))
    try:
        arena_bytes = int8.arena_bytes()
    except RuntimeError as error:
        raise ConversionError(f"TFLite Micro cannot run the model: {error}") from None
    budget.check_arena(arena_bytes)
    card = build_card(
        model, int8, name, arena_bytes, resize=resize, accuracy=accuracy_fn(int8) if accuracy_fn else {},
        source_model=str(source_model) if source_model else None,
        quantization=f"quantization-aware training, {qat_epochs} epochs" if qat_epochs else "post-training",
        weight_scales="per-channel" if per_channel else "per-tensor", views=views, budget=budget)
    write_directory(out_dir, {
        TFLITE_FILE: int8.flatbuffer,
        "model_data.cc": model_data_cc(name, int8.flatbuffer),
        "model_data.h": model_data_h(name, len(int8.flatbuffer)),
        "model_settings.h": model_settings_h(card),
        SAMPLE_MAP_FILE: sample_map_h(*demo_sample(int8, views)),
        CARD_FILE: card.to_json(),
    })
    return card


def load_converted(model_dir):
    """(`ModelCard`, `Int8Model`) of a directory written by `tflite.convert`, checked: the
    card is whole, `model.tflite` is the model it describes, and TFLite Micro can load it."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no model directory there", str(model_dir))
    if not (model_dir / CARD_FILE).is_file():
        raise FileFormatError(f"{model_dir}: no {CARD_FILE}, not a model directory; convert a model into it with "
                              "python -m tflite.convert")
    card = ModelCard.read(model_dir / CARD_FILE)
    path = model_dir / TFLITE_FILE
    flatbuffer = path.read_bytes()
    if len(flatbuffer) != card.flash_bytes:
        raise FileFormatError(f"{path} is {len(flatbuffer):,} bytes but its card says {card.flash_bytes:,}: "
                              "truncated or replaced")
    thresholds = card.output(MULTILABEL).thresholds_int8 if card.task is CLASSIFY else None
    try:
        int8 = Int8Model(flatbuffer, thresholds)
        int8.run_micro(np.zeros((1, MAP_SIZE, MAP_SIZE), np.uint8))
    except (RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise FileFormatError(f"{path}: not a model TFLite Micro can load ({reason})") from None
    if int8.task is not card.task:
        raise FileFormatError(f"{path}: its outputs ({', '.join(int8.kinds)}) are not those its card describes")
    return card, int8


def strip_directory(model_dir, check_maps, made_by=None):
    """Strip what no interpreter reads (`tflite.quantize.strip_unread`) from the model in a
    directory converted before the toolkit did so; return its (bytes before, bytes after).

    The model files, settings header and card (`flash_bytes`) are rewritten in one swap, and the
    README from the card. Nothing is written unless TensorFlow Lite Micro and LiteRT both give
    the same int8 outputs as before on `check_maps` (raw (N, 52, 52) maps). The card's
    `firmware` figures are those of the image before: `benchmarks.firmware_footprint
    --update-cards` measures them again. `made_by`: the command, added to the README's "Made by"."""
    card, int8 = load_converted(model_dir)
    stripped = Int8Model(strip_unread(int8.flatbuffer))
    changed = [name for name, same in int8.same_outputs(stripped, check_maps).items() if not same]
    if changed:
        raise ConversionError(f"{model_dir}: stripped, the model's outputs change (in {', '.join(changed)}); "
                              "left as it was")
    rewrite_model(model_dir, card, stripped.flatbuffer, made_by)
    return len(int8.flatbuffer), len(stripped.flatbuffer)


def rewrite_model(model_dir, card, flatbuffer, made_by=None):
    """Make `flatbuffer` the model of the converted directory `model_dir`: `model.tflite`, its C
    arrays, the settings header and `card` (with the new `flash_bytes`) in one swap, then the
    README from the card. `made_by`: the command, added to the README's "Made by"."""
    card = dataclasses.replace(card, flash_bytes=len(flatbuffer))
    write_directory(model_dir, {
        TFLITE_FILE: flatbuffer,
        "model_data.cc": model_data_cc(card.name, flatbuffer),
        "model_data.h": model_data_h(card.name, len(flatbuffer)),
        "model_settings.h": model_settings_h(card),
        CARD_FILE: card.to_json(),
    })
    if (Path(model_dir) / "README.md").is_file():
        rewrite_model_readme(model_dir, made_by)


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
    ModelCard.read(out_dir / CARD_FILE)


def find_model(path):
    """The .keras file named by `path`: itself, or the only student .keras file in that directory."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(p for p in path.glob("*.keras") if p.name != "teacher.keras")
        if len(candidates) != 1:
            raise FileNotFoundError(f"{path}: expected exactly one student .keras file, "
                                    f"found {[p.name for p in candidates] or 'none'}")
        return candidates[0]
    if path.suffix != ".keras" or not path.is_file():
        raise FileNotFoundError(f"{path}: no .keras model file there")
    return path


def convert_student(model_path, out_dir, budget, *, data=None, seed=None, name=None, qat_epochs=0,
                    per_channel=True, views=1, source_model=None, resize=None):
    """`python -m tflite.convert`: a student's `.keras` file (or its training directory) to a
    deployable directory, its accuracy measured on the test split, float and int8 in TFLite
    Micro; returns the `ModelCard`.

    The calibration and test maps are the split of `data` (a wafer-map file in either layout,
    other grids brought to 52x52 by `resize`), or, when the model comes from a run directory,
    of that run's data, seed and resize. `source_model`:
    how the card names the float model (default: its path as found from `model_path`)."""
    check_output_directory(out_dir)  # before any work: refuse a directory that is not ours to replace
    model_path = find_model(model_path)
    settings = run_data_settings(model_path)
    if data is None and settings is None:
        raise ValueError(f"{model_path} comes from no run directory: pass --data FILE.npz for calibration")
    settings = settings or {"data": None, "synthetic_maps": DEFAULT_SYNTHETIC_MAPS, "seed": 0,
                            "resize": DEFAULT_RESIZE}
    resize = resize or settings["resize"]
    parts = load_splits(data if data is not None else settings["data"], settings["synthetic_maps"],
                        settings["seed"] if seed is None else seed, resize)
    model = load_model(model_path)
    return export_model(model, out_dir, parts["train"].maps, name=name or model_path.stem, budget=budget,
                        accuracy_fn=lambda int8: accuracy_figures(model, int8, parts["test"], views),
                        source_model=source_model or model_path, qat_epochs=qat_epochs, per_channel=per_channel,
                        views=views, resize=resize)
