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
# a Normal wafer (a Beta(2, 24) draw), but a steady 19-20% on wafers with a defect. The
# background is a count of dies, not a chance per die: real Scratch maps fail 20.5-21.3% of
# their dies (5th-95th percentile), tighter than independent dies could (about +-1.4%).
NORMAL_BACKGROUND_BETA = (2.0, 24.0)
DEFECT_BACKGROUND = (0.19, 0.20)
_WAFER_DIES = int(WAFER.sum())


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
    # A solid round blob at the middle, from a few dies to 8 across in radius.
    cy, cx = rng.normal(0, 1.2, 2)
    radius = rng.uniform(1.5, 8.0)
    inside = np.hypot(_DY - cy, _DX - cx) <= radius
    return inside * rng.uniform(0.92, 1.0), None


def _donut(rng):
    # A clean hole in a ring that is solid next to the hole and thins out outwards in
    # ragged spokes (how far it reaches changes with the angle, as on real donuts).
    cy, cx = rng.normal(0, 1.2, 2)
    distance = np.hypot(_DY - cy, _DX - cx)
    inner = rng.uniform(2.0, 7.5)
    solid = rng.uniform(2.5, 6.0)
    spokes = rng.uniform(0.3, 1.4, rng.integers(12, 30))
    angle = np.arctan2(_DY - cy, _DX - cx)
    fade = rng.uniform(3.0, 7.0) * spokes[((angle + np.pi) / (2 * np.pi) * len(spokes)).astype(int) % len(spokes)]
    ring = np.clip(1 - (distance - inner - solid) / fade, 0, 1) * (distance >= inner)
    return ring * rng.uniform(0.9, 1.0), distance < inner - 0.5


def _rim_band(rng):
    """The rim's dies 1.2-2.6 deep, as the real Edge-Ring and Edge-Loc bands are."""
    return WAFER_RADIUS - _RADIUS < rng.uniform(1.2, 2.6)


def _rim_gaps(rng, count, width):
    """Where `count` gaps of `width` radians, at random angles, interrupt the rim."""
    gaps = np.zeros((MAP_SIZE, MAP_SIZE), bool)
    for center in rng.uniform(-np.pi, np.pi, count):
        gaps |= _angle_gap(_ANGLE, center) < width / 2
    return gaps


def _edge_ring(rng):
    # The whole rim, now and then broken by a gap or two of up to a twelfth of the circle.
    gaps = _rim_gaps(rng, rng.integers(0, 3), rng.uniform(0.05, 0.5))
    return (_rim_band(rng) & ~gaps) * rng.uniform(0.85, 1.0), None


def _edge_loc(rng):
    # The rim band with a wide gap (a quarter to four fifths of the circle) and maybe a
    # smaller one or two: real Edge-Loc covers 20-70% of the rim, often in several arcs.
    wide = _rim_gaps(rng, 1, rng.uniform(0.25, 0.8) * 2 * np.pi)
    small = _rim_gaps(rng, rng.integers(0, 3), rng.uniform(0.1, 0.8))
    return (_rim_band(rng) & ~wide & ~small) * rng.uniform(0.85, 1.0), None


def _loc(rng):
    # A dense elliptical cluster in the outer half of the wafer (real Loc clusters peak 15-22
    # dies out), often touching the rim; never at the middle, where it would read as Center.
    distance, angle = rng.uniform(12.0, 23.0), rng.uniform(-np.pi, np.pi)
    cy, cx = distance * np.sin(angle), distance * np.cos(angle)
    a, b = rng.uniform(3.0, 9.0), rng.uniform(2.5, 6.0)
    tilt = rng.uniform(0, np.pi)
    u = (_DX - cx) * np.cos(tilt) + (_DY - cy) * np.sin(tilt)
    v = -(_DX - cx) * np.sin(tilt) + (_DY - cy) * np.cos(tilt)
    reach = (u / a) ** 2 + (v / b) ** 2
    return np.clip(1.8 - reach, 0, 1) * rng.uniform(0.85, 1.0), None


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
    # A thin curved line running in from the rim, as real scratches are: 97% touch the rim,
    # the longest run of failed dies spans 27-39 dies and adds 23-37 to the background's.
    rim_angle, slant = rng.uniform(-np.pi, np.pi), rng.choice([-1, 1]) * rng.uniform(0.3, 0.8)
    heading = rim_angle + np.pi + slant  # inwards, at a slant, bending round as the rim does
    headings = heading + np.sign(slant) / rng.uniform(30, 70) * np.arange(0, rng.uniform(26, 42), 0.3)
    ys = (WAFER_RADIUS - 0.5) * np.sin(rim_angle) + np.cumsum(np.sin(headings)) * 0.3 + WAFER_CENTER
    xs = (WAFER_RADIUS - 0.5) * np.cos(rim_angle) + np.cumsum(np.cos(headings)) * 0.3 + WAFER_CENTER
    keep = (ys >= 0) & (ys < MAP_SIZE) & (xs >= 0) & (xs < MAP_SIZE)
    density = np.zeros((MAP_SIZE, MAP_SIZE))
    density[ys[keep].astype(int), xs[keep].astype(int)] = rng.uniform(0.95, 1.0)
    return density, None


def _random(rng):
    # Worm-like blotches of failures all over the wafer (a thresholded smooth field), and
    # nothing between them: real Random maps have no scattered background failures.
    field = _smooth_noise(rng, rng.integers(2, 5))
    blotches = field > np.quantile(field, 1 - rng.uniform(0.3, 0.6))
    return blotches, ~blotches


# One drawing function per defect, in the label order of `labels.DEFECT_NAMES`. Each
# returns the failure probability of every die and, optionally, where the defect
# keeps dies good (the donut's hole).
_DEFECT_DRAWERS = (_center, _donut, _edge_loc, _edge_ring, _loc, _near_full, _scratch, _random)
assert len(_DEFECT_DRAWERS) == len(DEFECT_NAMES)


def draw_wafer_map(multihot, rng):
    """One (52, 52) uint8 map showing the defects flagged in the 8-bit `multihot` row."""
    rate = rng.beta(*NORMAL_BACKGROUND_BETA) if not any(multihot) else rng.uniform(*DEFECT_BACKGROUND)
    failed = np.zeros((MAP_SIZE, MAP_SIZE), bool)
    failed[WAFER] = rng.permutation(_WAFER_DIES) < round(rate * _WAFER_DIES)
    failure = np.zeros((MAP_SIZE, MAP_SIZE))
    kept_good = np.zeros((MAP_SIZE, MAP_SIZE), bool)
    for flag, drawer in zip(multihot, _DEFECT_DRAWERS):
        if flag:
            density, clean = drawer(rng)
            failure = np.maximum(failure, density)
            if clean is not None:
                kept_good |= clean
    failed = (failed | (rng.random((MAP_SIZE, MAP_SIZE)) < failure)) & ~kept_good
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
