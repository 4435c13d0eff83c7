"""The real MixedWM38 dev set (`../shared/data/mixedwm38_dev.npz`): skipped where it is absent."""

import numpy as np
import pytest

from kd_keras.data import NUM_PATTERNS, load_mixedwm38, parse_pattern_name, split_data

TIER = "integration"  # tests marked with no tier of their own (conftest.py)


@pytest.fixture(scope="module")
def real(real_data_path):
    return load_mixedwm38(real_data_path)


def test_dev_set_loads_with_all_38_patterns(real):
    assert real.maps.shape == (27911, 52, 52) and real.maps.dtype == np.uint8
    assert set(np.unique(real.maps)) == {0, 1, 2}
    counts = np.bincount(real.pattern_ids, minlength=NUM_PATTERNS)
    assert counts.sum() == 27911 and counts.min() > 0


def test_dev_set_split_is_stratified(real):
    parts = split_data(real, seed=0)
    assert sum(len(parts[p]) for p in ("train", "val", "test")) == len(real)
    full = np.bincount(real.pattern_ids, minlength=NUM_PATTERNS) / len(real)
    test = np.bincount(parts["test"].pattern_ids, minlength=NUM_PATTERNS) / len(parts["test"])
    assert np.abs(full - test).max() < 0.002


def test_synthetic_background_matches_the_real_maps(real):
    """The generator's background failure rates were measured here; keep them true."""
    from kd_keras.data.synthetic import DEFECT_BACKGROUND, WAFER

    radius = np.hypot(*(np.mgrid[:52, :52] - 26.0))
    ids = real.pattern_ids
    scratch = real.maps[ids == parse_pattern_name("S")][:200]  # few dies: the rest is background
    middle = WAFER & (radius > 12) & (radius < 20)
    assert DEFECT_BACKGROUND[0] < (scratch[:, middle] == 2).mean() < DEFECT_BACKGROUND[1] + 0.02
    assert ((real.maps > 0) == WAFER).all(axis=(1, 2)).mean() > 0.8
