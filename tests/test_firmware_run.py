"""The firmware stub built with TensorFlow Lite Micro from source and run: natively, and on the
emulated Cortex-M4 board with the reference and CMSIS-NN kernels. Its int8 outputs must equal
the Python TFLite Micro interpreter's, byte for byte, and its demo must read its sample map
right, for every shipped model.

Each library variant is built once (cached in firmware_stub/build/tflm/) and every model links
against it."""

import dataclasses
import functools
import shutil

import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps, load_mixedwm38, resize_maps
from kd_keras.data.labels import DEFECT_NAMES, PATTERN_NAMES, PATTERNS
from tests.conftest import REAL_DATA
from tests.helpers import REPO, read_sample_map, require
from tflite.c_sources import model_settings_h
from tflite.card import CARD_FILE, ModelCard
from tflite.export import load_converted
from tflite.firmware import Firmware, FirmwareError, replay_inputs

TIER = "firmware"  # tests marked with no tier of their own (conftest.py)
SHIPPED = sorted(p for p in (REPO / "models").iterdir() if p.is_dir())
# Maps replayed per target and kernel set. Every map runs every op of the model, so a few dozen
# maps (times each model's views) compare as many kernel paths as 200 did; the replays were most of
# the suite's time on CI's 2 cores (200 and 20 maps: 2-2.5 minutes a 248 KB model). TFLite Micro's
# reference kernels execute 16 to 29 times more instructions than CMSIS-NN's
# (benchmarks/results/firmware_footprint.md; kd-248kb 1.9G an inference): the emulated board runs 5.
REPLAYED_MAPS = {("host", "reference"): 50, ("cortex-m", "reference"): 5, ("cortex-m", "cmsis_nn"): 50}


@pytest.fixture(scope="module")
def maps():
    """The maps of the largest replay: real dev-set maps where the dev set is here, else synthetic ones."""
    count = max(REPLAYED_MAPS.values())
    data = load_mixedwm38(REAL_DATA) if REAL_DATA.is_file() else generate_wafer_maps(count, seed=1)
    chosen = np.random.default_rng(0).choice(len(data.maps), count, replace=False)
    return data.maps[np.sort(chosen)]


def tools_for(target):
    require("make", "g++", *(("arm-none-eabi-g++", "qemu-system-arm") if target == "cortex-m" else ()))


@pytest.fixture(scope="module")
def python_outputs(maps):
    """model_dir -> (card, the Python TFLite Micro interpreter's int8 outputs on every view of
    `maps`, map-major): computed once a model, shared by the three builds."""
    @functools.cache
    def outputs(model_dir):
        card, int8 = load_converted(model_dir)
        return card, int8.run_micro(replay_inputs(maps, card.views))
    return outputs


@pytest.mark.parametrize("target,kernels", REPLAYED_MAPS, ids=lambda v: v)
@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_firmware_outputs_equal_the_python_interpreter(model_dir, target, kernels, maps, python_outputs):
    tools_for(target)
    card, expected = python_outputs(model_dir)
    count = REPLAYED_MAPS[target, kernels]
    printed = Firmware(model_dir, target, kernels).replay(maps[:count], card.views, [o.shape[1:] for o in expected])
    for want, got in zip(expected, printed, strict=True):
        want = want[:count * card.views]
        assert got.shape == want.shape
        assert np.array_equal(got, want), (f"{np.mean(got != want):.4%} of outputs differ, by at most "
                                           f"{np.abs(got.astype(int) - want).max()}")


@pytest.mark.parametrize("target,kernels,method", [("host", "reference", "nearest"), ("host", "reference", "max"),
                                                   ("cortex-m", "cmsis_nn", "max")], ids=lambda v: v)
def test_the_firmware_resizes_maps_of_other_grids_as_python_does(target, kernels, method, tmp_path):
    tools_for(target)
    # kd-21kb as `python -m tflite.convert` would write it for a model whose card names `method`.
    model_dir = tmp_path / f"kd-21kb-{method}"
    shutil.copytree(REPO / "models" / "kd-21kb", model_dir)
    card = ModelCard.read(model_dir / CARD_FILE)
    card = dataclasses.replace(card, input=dataclasses.replace(card.input, resize=method))
    (model_dir / CARD_FILE).write_text(card.to_json())
    (model_dir / "model_settings.h").write_text(model_settings_h(card))
    # Grids WM-811K has (its median 27 x 27, its largest 212 x 204), thin ones and 52 x 52 itself.
    rng = np.random.default_rng(2)
    grids = [(27, 27), (212, 204), (15, 60), (52, 52), (104, 30), (41, 39)]
    fab_maps = [rng.choice(3, (rows, cols), p=[0.2, 0.7, 0.1]).astype(np.uint8) for rows, cols in grids]
    resized = resize_maps(fab_maps, 52, method)
    _, int8 = load_converted(model_dir)
    (expected,) = int8.run_micro(replay_inputs(resized, card.views))
    (printed,) = Firmware(model_dir, target, kernels).replay(fab_maps, card.views, [expected.shape[1:]])
    assert np.array_equal(printed, expected)


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_the_demo_reads_its_sample_map_right(model_dir):
    tools_for("host")
    card, _ = load_converted(model_dir)
    _, pattern = read_sample_map(model_dir)
    printed = Firmware(model_dir).demo()
    assert f"wafer map of pattern {pattern};" in printed
    if card.task.name == "segclass":
        assert f"predicted pattern: {pattern}\n" in printed
    else:
        defects = [name for name, present in zip(DEFECT_NAMES, PATTERNS[PATTERN_NAMES.index(pattern)]) if present]
        views = f"{card.views} view{'s' if card.views > 1 else ''}"
        assert f"detected defects ({views}): {' '.join(defects) or 'none (Normal)'}\n" in printed
        assert f"nearest pattern: {pattern}\n" in printed


def test_a_missing_source_is_named_not_a_wall_of_make_output(tmp_path):
    tools_for("host")
    firmware = Firmware(REPO / "models" / "kd-21kb", build_dir=tmp_path)
    with pytest.raises(FirmwareError, match=r"TensorFlow Lite Micro's sources are not at /nowhere/tflite-micro"):
        firmware.make("host", extra=["THIRD_PARTY=/nowhere"])


def test_a_missing_cross_compiler_is_named(tmp_path):
    tools_for("host")
    firmware = Firmware(REPO / "models" / "kd-21kb", "cortex-m", build_dir=tmp_path)
    with pytest.raises(FirmwareError, match=r"no-such-arm-g\+\+ not found: apt-get install gcc-arm-none-eabi"):
        firmware.make("cortex-m", extra=["ARM_CXX=no-such-arm-g++"])
