"""The models shipped under models/: complete, consistent, and runnable in TFLite Micro."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps
from tflite.c_sources import model_settings_h
from tflite.micro import measure_arena_bytes, run_litert, run_micro

SHIPPED = sorted(p for p in (Path(__file__).resolve().parents[1] / "models").iterdir() if p.is_dir())


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_is_consistent(model_dir):
    card = json.loads((model_dir / "model_card.json").read_text())
    flatbuffer = (model_dir / "model.tflite").read_bytes()
    assert card["flash_bytes"] == len(flatbuffer)
    array = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", (model_dir / "model_data.cc").read_text()))
    assert array == flatbuffer
    name = card["name"]
    assert f"constexpr unsigned int g_{name}_model_data_size = {len(flatbuffer)};" in \
        (model_dir / "model_data.h").read_text()
    assert (model_dir / "model_settings.h").read_text() == model_settings_h(name, card)
    assert measure_arena_bytes(flatbuffer) == card["arena_bytes"]
    maps = generate_wafer_maps(38, seed=0).maps
    micro, litert = run_micro(flatbuffer, maps), run_litert(flatbuffer, maps)
    assert len(micro) == len(litert) == len(card["outputs"])
    for micro_output, litert_output in zip(micro, litert):
        assert np.abs(micro_output.astype(int) - litert_output.astype(int)).max() <= 1
    readme = (model_dir / "README.md").read_text()
    assert f"| {card['flash_bytes']:,} bytes | {card['arena_bytes']:,} bytes |" in readme  # written from this card
    assert not Path(card["source_model"]).is_absolute()
