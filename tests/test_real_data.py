"""The real dev sets (`../shared/data/mixedwm38_dev.npz`, `wm811k_dev.npz`): skipped where absent."""

import numpy as np
import pytest

from kd_keras.data import (
    CLASS_NAMES, NUM_PATTERNS, load_mixedwm38, load_splits, load_wm811k, parse_pattern_name, split_data,
)
from kd_keras.data.wm811k import classes_of_labels

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


def test_background_is_a_count_of_dies_in_real_and_synthetic_maps(real):
    """Real Scratch maps fail a nearly fixed share of their dies: the 5th-95th percentile spread
    is 0.9 points where dies failing independently would spread 3; the generator draws a count."""
    from kd_keras.data import generate_wafer_maps
    from kd_keras.data.synthetic import WAFER

    scratch = parse_pattern_name("S")
    synthetic = generate_wafer_maps(3800, seed=0)
    spreads, medians = [], []
    for data in (real, synthetic):
        rates = (data.maps[data.pattern_ids == scratch][:, WAFER] == 2).mean(axis=1)
        spreads.append(np.quantile(rates, 0.95) - np.quantile(rates, 0.05))
        medians.append(np.median(rates))
    assert spreads[0] < 0.012 and spreads[1] < 0.018, spreads  # independent dies: about 0.03
    assert abs(medians[0] - medians[1]) < 0.005, medians


def donut_rings(data):
    """(density, radius) of the densest ring of dies (1.5 dies wide) around each single-defect
    donut's failures near the middle: where its ring is, and how solid."""
    yy, xx = np.mgrid[:52, :52] - 25.5
    rings = []
    for failed in data.maps[data.pattern_ids == parse_pattern_name("D")] == 2:
        near = failed & (np.hypot(yy, xx) < 20)
        radius = np.hypot(yy - yy[near].mean(), xx - xx[near].mean())
        profile = [failed[(radius >= r) & (radius < r + 1.5)].mean() for r in np.arange(0, 22, 1.5)]
        rings.append((max(profile), 1.5 * int(np.argmax(profile))))
    return np.array(rings)


def test_synthetic_donuts_match_the_real_ones(real):
    """The donut's ring was fitted here (kd_keras.data.synthetic._donut); keep it true. Rings
    denser than real ones read as a Center with a hole, and real donuts as Donut + Loc."""
    from kd_keras.data import generate_wafer_maps

    real_rings, synthetic_rings = donut_rings(real), donut_rings(generate_wafer_maps(7600, seed=5))
    assert abs(np.median(real_rings[:, 0]) - np.median(synthetic_rings[:, 0])) < 0.07
    assert np.median(real_rings[:, 1]) == np.median(synthetic_rings[:, 1]) == 7.5
    assert np.quantile(synthetic_rings[:, 0], 0.1) < 0.75  # some rings are sparse, as real ones are


def loc_clusters(data):
    """(distance from the middle, |cosine| between its long axis and the radius) of the dies in
    a dense 5x5 neighbourhood (over 60% failed: background never is) of each single-defect Loc map."""
    yy, xx = np.mgrid[:52, :52] - 25.5
    clusters = []
    for failed in data.maps[data.pattern_ids == parse_pattern_name("L")] == 2:
        dense = np.zeros((52, 52), bool)
        dense[2:-2, 2:-2] = np.lib.stride_tricks.sliding_window_view(failed, (5, 5)).mean(axis=(2, 3)) > 0.6
        if dense.sum() < 3:
            continue
        middle = np.array([yy[dense].mean(), xx[dense].mean()])
        long_axis = np.linalg.eigh(np.cov(np.stack([yy[dense], xx[dense]])))[1][:, 1]
        clusters.append((np.hypot(*middle), abs(long_axis @ middle) / np.hypot(*middle)))
    return np.array(clusters)


def test_synthetic_loc_clusters_match_the_real_ones(real):
    """The Loc cluster was fitted here (kd_keras.data.synthetic._loc); keep it true. Real clusters
    lie about 19 dies out, long along the circle: ones turned at random read real Loc as Loc + Scratch."""
    from kd_keras.data import generate_wafer_maps

    real_clusters, synthetic_clusters = loc_clusters(real), loc_clusters(generate_wafer_maps(3800, seed=5))
    assert abs(np.median(real_clusters[:, 0]) - np.median(synthetic_clusters[:, 0])) < 1.0
    assert np.median(real_clusters[:, 1]) < 0.35 and np.median(synthetic_clusters[:, 1]) < 0.35


def test_fab_dev_set_loads_with_its_documented_classes_and_grids(real_fab_data_path):
    fab = load_wm811k(real_fab_data_path)
    counts = dict(zip(CLASS_NAMES, np.bincount(fab.classes, minlength=9).tolist()))
    assert counts == {"Center": 2853, "Donut": 382, "Edge-Loc": 3403, "Edge-Ring": 6404, "Loc": 2378,
                      "Near-full": 97, "Random": 565, "Scratch": 773, "none": 24454}
    assert fab.shapes.min() == 15 and fab.shapes.max() == 212 and len(np.unique(fab.shapes, axis=0)) == 319
    parts = load_splits(real_fab_data_path, seed=0, resize="max")
    assert parts["test"].maps.shape[1:] == (52, 52) and len(parts["test"]) == 4129
    test_counts = np.bincount(classes_of_labels(parts["test"].labels), minlength=9)
    assert test_counts.min() >= 10  # even Near-full (97 maps) is in the test split


def test_wm811k_like_maps_match_the_real_fab_maps(real_fab_data_path):
    """The WM-811K-like generator's grids and `none` background were measured here; keep them true:
    the median side, the share of failed dies on small and on large grids (large dies fail more
    often), and how much more often the outermost dies fail."""
    from kd_keras.data.synthetic import generate_fab_maps

    def figures(fab):
        nones = np.flatnonzero(fab.classes == CLASS_NAMES.index("none"))[:2000]
        failed, outermost_times = [], []
        for wafer_map in (fab.map(i) for i in nones):
            wafer = np.pad(wafer_map > 0, 1)  # outermost: a die with an off-wafer 4-neighbour
            inner = wafer[1:-1, 1:-1] & wafer[:-2, 1:-1] & wafer[2:, 1:-1] & wafer[1:-1, :-2] & wafer[1:-1, 2:]
            edge = (wafer_map > 0) & ~inner
            failed.append((wafer_map[wafer_map > 0] == 2).mean())
            outermost_times.append((wafer_map[edge] == 2).mean() / max((wafer_map[inner] == 2).mean(), 1e-3))
        small = fab.shapes[nones, 0] < 30
        failed = np.array(failed)
        return (np.median(fab.shapes[:, 0]), np.median(failed[small]), np.median(failed[~small]),
                np.median(outermost_times))

    real, synthetic = figures(load_wm811k(real_fab_data_path)), figures(generate_fab_maps(4500, seed=0))
    # Measured: real 27 dies, 16.5% and 6.3%, 2.4 times; synthetic 28, 16.6% and 6.7%, 2.9 times.
    assert abs(real[0] - synthetic[0]) <= 2, (real, synthetic)
    assert 0.14 < real[1] < 0.19 and 0.14 < synthetic[1] < 0.19, (real, synthetic)
    assert real[2] < 0.5 * real[1] and synthetic[2] < 0.5 * synthetic[1], (real, synthetic)
    assert 1.8 < real[3] < 3.5 and 1.8 < synthetic[3] < 3.5, (real, synthetic)
