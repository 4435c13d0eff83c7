import numpy as np
import pytest

from kd_keras.data import PATTERNS, draw_wafer_map, generate_wafer_maps, parse_pattern_name
from kd_keras.data.synthetic import (
    DEFECT_BACKGROUND, MIXEDWM38_GRID, MIXEDWM38_LOOK, WAFER, _scratch, draw_fab_map, fab_grid, generate_fab_maps,
)
from kd_keras.data.wm811k import CLASS_NAMES

TIER = "unit"  # tests marked with no tier of their own (conftest.py)

RADIUS = np.hypot(*(np.mgrid[:52, :52] - 26.0))
ANGLE = np.arctan2(*(np.mgrid[:52, :52] - 26.0))


def maps_of(name, count=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([draw_wafer_map(PATTERNS[parse_pattern_name(name)], rng) for _ in range(count)])


def failure_rate(maps, where):
    return float((maps[:, where] == 2).mean())


def test_same_seed_same_maps_other_seed_other_maps():
    a, b, c = generate_wafer_maps(76, seed=4), generate_wafer_maps(76, seed=4), generate_wafer_maps(76, seed=5)
    assert np.array_equal(a.maps, b.maps) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.maps, c.maps)


def test_all_38_patterns_evenly_and_valid_die_values():
    data = generate_wafer_maps(380, seed=0)
    assert np.bincount(data.pattern_ids, minlength=38).tolist() == [10] * 38
    assert data.maps.dtype == np.uint8 and set(np.unique(data.maps)) == {0, 1, 2}


def test_every_map_has_the_mixedwm38_outline():
    data = generate_wafer_maps(76, seed=0)
    assert ((data.maps > 0) == WAFER).all()
    assert WAFER.sum() == 2061  # the outline of 22,851 of the 27,911 real dev maps


def test_rejects_a_non_positive_count():
    with pytest.raises(ValueError, match="num_maps must be at least 1"):
        generate_wafer_maps(0)


def test_center_fails_the_middle_and_edge_ring_the_rim():
    center, ring = maps_of("C"), maps_of("ER")
    rim = WAFER & (RADIUS > 24.5)
    assert failure_rate(center, RADIUS < 2.5) > 0.85 > 0.3 > failure_rate(ring, RADIUS < 2.5)
    assert failure_rate(ring, rim) > 0.7 > 0.3 > failure_rate(center, rim)


def test_donut_has_a_clean_hole_inside_a_failed_ring():
    donut = maps_of("D")
    assert failure_rate(donut, RADIUS < 1.5) < 0.1
    assert failure_rate(donut, (RADIUS > 7) & (RADIUS < 10)) > 0.5


def sector_rates(maps, band):
    """Failure rate in 8 angular sectors of a band, per map: (maps, 8)."""
    sectors = ((ANGLE + np.pi) / (2 * np.pi) * 8).astype(int) % 8
    return np.stack([(maps[:, band & (sectors == s)] == 2).mean(axis=1) for s in range(8)], axis=1)


def test_edge_loc_leaves_a_wide_gap_in_the_rim_and_edge_ring_hardly_any():
    # As on the real dev set: Edge-Loc's band covers 20-70% of the rim, Edge-Ring's nearly all.
    band = WAFER & (RADIUS > 22)
    quiet = {name: (sector_rates(maps_of(name), band) < 0.35).mean(axis=1) for name in ("EL", "ER")}
    assert np.quantile(quiet["EL"], 0.1) >= 0.25 and np.median(quiet["EL"]) <= 0.75, quiet["EL"]
    assert np.quantile(quiet["ER"], 0.9) <= 0.125, quiet["ER"]


def test_densities_normal_random_near_full():
    normal, random, near_full = (failure_rate(maps_of(n), WAFER) for n in ("Normal", "R", "NF"))
    assert 0.03 < normal < 0.15
    assert random > 2 * normal and random < 0.7
    assert near_full > 0.7


def test_loc_and_scratch_add_localized_failures():
    background = np.mean(DEFECT_BACKGROUND) * WAFER.sum()
    for name, low, high in (("L", 30, 400), ("S", 10, 150)):
        extra = np.median((maps_of(name) == 2).sum(axis=(1, 2))) - background
        assert low < extra < high, (name, extra)


def test_mixtures_overlay_their_components():
    mixture = maps_of("C+ER")
    assert failure_rate(mixture, RADIUS < 2.5) > 0.85
    assert failure_rate(mixture, WAFER & (RADIUS > 24.5)) > 0.7


def fab_maps_of(class_name, count=60, seed=0):
    rng = np.random.default_rng(seed)
    return [draw_fab_map(CLASS_NAMES.index(class_name), rng) for _ in range(count)]


def test_fab_maps_come_in_many_grids_each_class_as_often():
    fab = generate_fab_maps(180, seed=0)
    assert np.bincount(fab.classes).tolist() == [20] * 9
    assert np.array_equal(fab.pixels, generate_fab_maps(180, seed=0).pixels)
    rows, cols = fab.shapes.T
    assert len(np.unique(fab.shapes, axis=0)) > 50 and rows.min() >= 17 and rows.max() <= 104
    assert 24 <= np.median(rows) <= 30  # as WM-811K's: most maps are small grids
    assert np.abs(np.log(rows / cols)).max() > 0.05  # some wafers are not square in dies
    for wafer_map in fab.maps():
        fill = (wafer_map > 0).mean()
        assert 0.7 < fill < 0.8 and set(np.unique(wafer_map)) <= {0, 1, 2}  # the wafer fills its grid


def test_fab_patterns_sit_where_they_do_on_any_grid():
    def rate(maps, where):  # failure rate of the dies where `where(radius as a share of the wafer's)`
        return np.mean([(m[where(fab_grid(*m.shape).radius / 25.6) & (m > 0)] == 2).mean() for m in maps])

    center, ring, none = fab_maps_of("Center"), fab_maps_of("Edge-Ring"), fab_maps_of("none")
    assert rate(center, lambda r: r < 0.08) > 0.65 > 0.3 > rate(ring, lambda r: r < 0.08)  # sparser than MixedWM38
    assert rate(ring, lambda r: r > 0.95) > 0.6 > 0.3 > rate(center, lambda r: r > 0.95)
    assert 0.1 < rate(none, lambda r: r <= 1) < 0.2  # WM-811K's none maps fail 15% of their dies (median)
    assert rate(fab_maps_of("Near-full"), lambda r: r <= 1) > 0.7
    # As on WM-811K's none maps, the outermost dies fail 2-3 times as often as the others.
    outermost = np.mean([(m[fab_grid(*m.shape).outermost] == 2).mean() for m in none])
    assert 1.8 < outermost / rate(none, lambda r: r < 0.9) < 3.5


def test_scratches_are_one_die_thin_lines_as_long_on_every_grid():
    # A scratch runs 26-42 units (34 on average) in from the rim: about that many dies of this
    # grid in a line one die thin (twice as many if it were two dies thick).
    for grid in (fab_grid(25, 25), MIXEDWM38_GRID, fab_grid(70, 70)):
        rng = np.random.default_rng(0)
        dies = np.median([(_scratch(rng, grid, MIXEDWM38_LOOK)[0] > 0).sum() for _ in range(100)])
        assert 0.8 < dies / (34 * min(grid.scale)) < 1.4, (grid.shape, dies)
