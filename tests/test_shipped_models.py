"""The models shipped under models/: complete, consistent, and runnable in TFLite Micro."""

import re
from pathlib import Path

import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps
from tflite.c_sources import model_settings_h, sample_map_h
from tflite.export import demo_sample, load_converted

TIER = "integration"  # tests marked with no tier of their own (conftest.py)

SHIPPED = sorted(p for p in (Path(__file__).resolve().parents[1] / "models").iterdir() if p.is_dir())


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_is_consistent(model_dir):
    card, int8 = load_converted(model_dir)  # the card whole, and the .tflite it describes
    array = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", (model_dir / "model_data.cc").read_text()))
    assert array == int8.flatbuffer
    assert f"constexpr unsigned int g_{card.name}_model_data_size = {len(array)};" in \
        (model_dir / "model_data.h").read_text()
    assert (model_dir / "model_settings.h").read_text() == model_settings_h(card)
    sample = demo_sample(int8, card.views)
    assert sample[2], "the firmware demo's sample map should be one the model reads right"
    assert (model_dir / "sample_map.h").read_text() == sample_map_h(*sample)
    assert int8.arena_bytes() == card.arena_bytes
    if card.budget is not None:  # the budget its card names, it fits
        assert card.flash_bytes <= card.budget.flash_bytes, card.budget
        assert card.budget.arena_bytes is None or card.arena_bytes <= card.budget.arena_bytes, card.budget
    maps = generate_wafer_maps(38, seed=0).maps
    micro, litert = int8.run_micro(maps), int8.run_litert(maps)
    assert len(micro) == len(litert) == len(card.outputs)
    for micro_output, litert_output in zip(micro, litert):
        assert np.abs(micro_output.astype(int) - litert_output.astype(int)).max() <= 1
    readme = (model_dir / "README.md").read_text()
    assert f"| {card.flash_bytes:,} bytes | {card.arena_bytes:,} bytes |" in readme  # written from this card
    assert not Path(card.source_model).is_absolute()
