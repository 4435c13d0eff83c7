"""Small helpers the test modules share (fixtures live in conftest.py)."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kd_keras.data import save_mixedwm38

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"
CHANCE = 1 / 38  # the synthetic patterns are balanced


def npz_of(path, *splits):
    """A MixedWM38-layout file holding these splits' maps: data for the command lines."""
    save_mixedwm38(path, np.concatenate([split.maps for split in splits]),
                   np.concatenate([split.labels for split in splits]))
    return path


def require(*tools):
    """Skip where a tool is missing, saying how to install it; in CI, fail: .ci/run installs them."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing and not IN_CI:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install g++ gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi); CI installs them")
    assert not missing, f"CI must have {missing}: .ci/run installs them"


def read_sample_map(model_dir):
    """(die map, pattern name) of a model directory's sample_map.h."""
    header = (Path(model_dir) / "sample_map.h").read_text()
    pattern = re.search(r'kSampleMapPattern = "([^"]+)"', header).group(1)
    dies = [int(v) for v in re.findall(r"\d+", header.split("= {", 1)[1].split("}")[0])]
    return np.array(dies, np.uint8).reshape(52, 52), pattern
