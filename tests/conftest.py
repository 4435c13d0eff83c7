"""Shared fixtures: small synthetic data, and the real dev set when it is present."""

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixedwm38_dev.npz"


@pytest.fixture(scope="session")
def real_data_path():
    """Path of the real MixedWM38 dev set; the test is skipped when this machine lacks it."""
    if not REAL_DATA.is_file():
        pytest.skip(f"real MixedWM38 data not found at {REAL_DATA} (only CI and team machines have it)")
    return REAL_DATA
