"""Synthetic MixedWM38-like wafer maps: the toolkit's built-in data.

Every map is the MixedWM38 wafer outline (a disc of radius 25.6 dies centred on the
52x52 grid: exactly the outline of most real maps) with good dies (1), background
failures (2) at a random rate, and the failed dies of its defects drawn on top. Each
of the 8 defect types is one small function with randomized position, size and
density; a mixture overlays its components, as MixedWM38's mixtures do.

Example:

>>> data = generate_wafer_maps(76, seed=0)
>>> data.maps.shape, sorted(set(data.maps.ravel().tolist()))
((76, 52, 52), [0, 1, 2])
>>> int(np.bincount(data.pattern_ids).min())  # every one of the 38 patterns, twice
2
"""

import numpy as np

from kd_keras.data.labels import DEFECT_NAMES, NUM_PATTERNS, PATTERNS
from kd_keras.data.mixedwm38 import FAILED_DIE, GOOD_DIE, MAP_SIZE, OFF_WAFER, WaferMaps

# The real outline, fitted to the dev set: dies within 25.6 of (26, 26), in die units.
WAFER_CENTER = 26.0
WAFER_RADIUS = 25.6

_DY, _DX = np.mgrid[:MAP_SIZE, :MAP_SIZE] - WAFER_CENTER
_RADIUS = np.hypot(_DY, _DX)
_ANGLE = np.arctan2(_DY, _DX)
WAFER = _RADIUS <= WAFER_RADIUS

# Background failures, as measured on the real dev set: about 7% (1-15%) of the dies of
# a Normal wafer (a Beta(2, 24) draw), but a steady 17-22% on wafers with a defect.
NORMAL_BACKGROUND_BETA = (2.0, 24.0)
DEFECT_BACKGROUND = (0.17, 0.22)


def _angle_gap(angle, center):
    """Absolute angular distance, in radians, folded into [0, pi]."""
    return np.abs((angle - center + np.pi) % (2 * np.pi) - np.pi)


def _smooth_noise(rng, scale):
    """A random field in [0, 1] with blobs about `scale` dies across (box-blurred noise)."""
    field = rng.random((MAP_SIZE + scale, MAP_SIZE + scale))
    for axis in (0, 1):
        summed = np.cumsum(field, axis=axis)
        length = summed.shape[axis]
        field = np.take(summed, range(scale, length), axis) - np.take(summed, range(length - scale), axis)
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def _center(rng):
    cy, cx = rng.normal(0, 2.0, 2)
    radius = rng.uniform(4.0, 10.0)
    inside = np.hypot(_DY - cy, _DX - cx) <= radius
    return inside * rng.uniform(0.75, 1.0), None


def _donut(rng):
    cy, cx = rng.normal(0, 1.5, 2)
    distance = np.hypot(_DY - cy, _DX - cx)
    inner = rng.uniform(3.0, 8.0)
    outer = inner + rng.uniform(4.0, 9.0)
    ring = (distance >= inner) & (distance <= outer)
    return ring * rng.uniform(0.75, 1.0), distance < inner - 0.5  # a clean hole


def _edge_ring(rng):
    width = rng.uniform(0.8, 2.6)
    return (_RADIUS > WAFER_RADIUS - width) * rng.uniform(0.85, 1.0), None


def _edge_loc(rng):
    center = rng.uniform(-np.pi, np.pi)
    # A thin band along a third to most of the rim, thickest in its middle.
    half_span = rng.uniform(1.0, 2.6)
    depth = rng.uniform(1.0, 3.0)
    taper = 1 - (_angle_gap(_ANGLE, center) / half_span) ** 2
    band = WAFER_RADIUS - _RADIUS < depth * np.clip(taper, 0, 1)
    return band * rng.uniform(0.8, 1.0), None


def _loc(rng):
    # An elliptical cluster somewhere inside the wafer, densest in its middle.
    distance, angle = rng.uniform(11.0, 22.0), rng.uniform(-np.pi, np.pi)
    cy, cx = distance * np.sin(angle), distance * np.cos(angle)
    a, b = rng.uniform(4.0, 12.0), rng.uniform(2.5, 7.0)
    tilt = rng.uniform(0, np.pi)
    u = (_DX - cx) * np.cos(tilt) + (_DY - cy) * np.sin(tilt)
    v = -(_DX - cx) * np.sin(tilt) + (_DY - cy) * np.cos(tilt)
    reach = (u / a) ** 2 + (v / b) ** 2
    return np.clip(1.6 - reach, 0, 1) * rng.uniform(0.75, 1.0), None


def _near_full(rng):
    # Almost all dies fail; a few good patches remain, mostly towards the edge.
    density = np.full((MAP_SIZE, MAP_SIZE), rng.uniform(0.85, 1.0))
    for _ in range(rng.integers(0, 5)):
        distance, angle = rng.uniform(16, 30), rng.uniform(-np.pi, np.pi)
        radius = rng.uniform(3.0, 14.0)
        patch = np.hypot(_DY - distance * np.sin(angle), _DX - distance * np.cos(angle)) < radius
        density[patch] *= rng.uniform(0.1, 0.5)
    return density, None


def _scratch(rng):
    # One or two long, thin, slightly curved lines: points along an arc of a big circle.
    density = np.zeros((MAP_SIZE, MAP_SIZE))
    for _ in range(1 + (rng.random() < 0.3)):
        start = rng.uniform(-20, 20, 2)
        heading = rng.uniform(-np.pi, np.pi)
        curvature = rng.uniform(-1, 1) / rng.uniform(15, 60)
        length = rng.uniform(18, 55)
        steps = np.arange(0, length, 0.3)
        headings = heading + curvature * steps
        ys = start[0] + np.cumsum(np.sin(headings)) * 0.3 + WAFER_CENTER
        xs = start[1] + np.cumsum(np.cos(headings)) * 0.3 + WAFER_CENTER
        keep = (ys >= 0) & (ys < MAP_SIZE) & (xs >= 0) & (xs < MAP_SIZE)
        density[ys[keep].astype(int), xs[keep].astype(int)] = rng.uniform(0.8, 1.0)
    return density, None


def _random(rng):
    # Heavy failures in worm-like blotches all over the wafer: a thresholded smooth field.
    field = _smooth_noise(rng, rng.integers(3, 6))
    return field > np.quantile(field, 1 - rng.uniform(0.2, 0.5)), None


# One drawing function per defect, in the label order of `labels.DEFECT_NAMES`. Each
# returns the failure probability of every die and, optionally, where the defect
# keeps dies good (the donut's hole).
_DEFECT_DRAWERS = (_center, _donut, _edge_loc, _edge_ring, _loc, _near_full, _scratch, _random)
assert len(_DEFECT_DRAWERS) == len(DEFECT_NAMES)


def draw_wafer_map(multihot, rng):
    """One (52, 52) uint8 map showing the defects flagged in the 8-bit `multihot` row."""
    background = rng.beta(*NORMAL_BACKGROUND_BETA) if not any(multihot) else rng.uniform(*DEFECT_BACKGROUND)
    failure = np.full((MAP_SIZE, MAP_SIZE), background)
    kept_good = np.zeros((MAP_SIZE, MAP_SIZE), bool)
    for flag, drawer in zip(multihot, _DEFECT_DRAWERS):
        if flag:
            density, clean = drawer(rng)
            failure = np.maximum(failure, density)
            if clean is not None:
                kept_good |= clean
    failed = (rng.random((MAP_SIZE, MAP_SIZE)) < failure) & ~kept_good
    wafer_map = np.where(WAFER, np.where(failed, FAILED_DIE, GOOD_DIE), OFF_WAFER)
    return wafer_map.astype(np.uint8)


def generate_wafer_maps(num_maps, seed=0):
    """`num_maps` synthetic maps, the 38 patterns in turn (as even as `num_maps` allows), shuffled.

    The same `num_maps` and `seed` always give the same maps.
    """
    if num_maps < 1:
        raise ValueError(f"num_maps must be at least 1, got {num_maps}")
    rng = np.random.default_rng(seed)
    labels = PATTERNS[rng.permutation(np.arange(num_maps) % NUM_PATTERNS)]
    maps = np.stack([draw_wafer_map(row, rng) for row in labels])
    return WaferMaps(maps, labels, source=f"synthetic (n={num_maps}, seed={seed})")
