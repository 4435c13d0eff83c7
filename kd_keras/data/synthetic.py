"""Synthetic wafer maps, MixedWM38-like and WM-811K-like: the toolkit's built-in data.

A MixedWM38-like map is the MixedWM38 wafer outline (a disc of radius 25.6 dies centred on the
52x52 grid: exactly the outline of most real maps) with good dies (1), background failures (2)
at a random rate, and the failed dies of its defects drawn on top. Each of the 8 defect types is
one small function with randomized position, size and density; a mixture overlays its
components, as MixedWM38's mixtures do.

A WM-811K-like map (`generate_fab_maps`) has one of WM-811K's 9 classes and a grid of its own,
as a fab's maps do: the same drawing functions place and size each pattern relative to the
wafer (`DieGrid`), with WM-811K's sizes of patterns (`Look`) and its background.

Example:

>>> data = generate_wafer_maps(76, seed=0)
>>> data.maps.shape, sorted(set(data.maps.ravel().tolist()))
((76, 52, 52), [0, 1, 2])
>>> int(np.bincount(data.pattern_ids).min())  # every one of the 38 patterns, twice
2
"""

import dataclasses
import functools

import numpy as np

from kd_keras.data.labels import DEFECT_NAMES, NUM_PATTERNS, PATTERNS
from kd_keras.data.mixedwm38 import FAILED_DIE, GOOD_DIE, MAP_SIZE, OFF_WAFER, WaferMaps
from kd_keras.data.wm811k import CLASS_LABELS, CLASS_NAMES, FabMaps

# The real outline, fitted to the dev set: dies within 25.6 of (26, 26), in die units.
WAFER_CENTER = 26.0
WAFER_RADIUS = 25.6


@dataclasses.dataclass(frozen=True)
class DieGrid:
    """Where each die of a grid lies, in MixedWM38 die units: the defect drawers place and size
    patterns in those units (a wafer radius of 25.6), so a pattern covers the same share of a
    wafer on any grid.

    Attributes:
        center, scale: die (row, column) of the wafer's middle, and dies of this grid per unit.
        dy, dx, radius, angle: each die's offset from the middle, distance and angle, in units.
        wafer: the dies on the wafer.
    """

    center: tuple
    scale: tuple
    dy: np.ndarray
    dx: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    wafer: np.ndarray

    @classmethod
    def inscribed(cls, rows, cols, center=None, semi_axes=None):
        """The elliptical wafer that fills a rows x cols grid (or the one given), as WM-811K's do:
        theirs cover 77% of the grid (median), a hair less than the inscribed ellipse's 78.5%."""
        center = ((rows - 1) / 2, (cols - 1) / 2) if center is None else center
        semi_axes = (0.985 * rows / 2, 0.985 * cols / 2) if semi_axes is None else semi_axes
        scale = (semi_axes[0] / WAFER_RADIUS, semi_axes[1] / WAFER_RADIUS)
        rows_at, cols_at = np.mgrid[:rows, :cols]
        dy, dx = (rows_at - center[0]) / scale[0], (cols_at - center[1]) / scale[1]
        radius = np.hypot(dy, dx)
        return cls(center, scale, dy, dx, radius, np.arctan2(dy, dx), radius <= WAFER_RADIUS)

    @property
    def shape(self):
        return self.radius.shape

    @functools.cached_property  # the grid is cached per shape; its maps need this once
    def outermost(self):
        """The wafer's dies next to an off-wafer die or the grid's border (4-neighbours)."""
        inside = np.pad(self.wafer, 1)
        return self.wafer & ~(inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:])

    def dies_at(self, ys, xs):
        """Grid (rows, columns) of the dies at these unit offsets from the middle that exist."""
        rows, cols = ys * self.scale[0] + self.center[0], xs * self.scale[1] + self.center[1]
        exist = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        return rows[exist].astype(int), cols[exist].astype(int)


# MixedWM38's grid: 52x52 dies, one die per unit (so its maps are what they were before grids).
MIXEDWM38_GRID = DieGrid.inscribed(MAP_SIZE, MAP_SIZE, (WAFER_CENTER, WAFER_CENTER), (WAFER_RADIUS, WAFER_RADIUS))
WAFER = MIXEDWM38_GRID.wafer

# Background failures, as measured on the real dev set: about 7% (1-15%) of the dies of
# a Normal wafer (a Beta(2, 24) draw), but a steady 19-20% on wafers with a defect. The
# background is a count of dies, not a chance per die: real Scratch maps fail 20.5-21.3% of
# their dies (5th-95th percentile), tighter than independent dies could (about +-1.4%).
NORMAL_BACKGROUND_BETA = (2.0, 24.0)
DEFECT_BACKGROUND = (0.19, 0.20)


def _angle_gap(angle, center):
    """Absolute angular distance, in radians, folded into [0, pi]."""
    return np.abs((angle - center + np.pi) % (2 * np.pi) - np.pi)


def _smooth_noise(rng, shape, scale):
    """A random field in [0, 1] with blobs about `scale` dies across (box-blurred noise)."""
    field = rng.random((shape[0] + scale, shape[1] + scale))
    for axis in (0, 1):
        summed = np.cumsum(field, axis=axis)
        length = summed.shape[axis]
        field = np.take(summed, range(scale, length), axis) - np.take(summed, range(length - scale), axis)
    return (field - field.min()) / (np.ptp(field) + 1e-9)


@dataclasses.dataclass(frozen=True)
class Look:
    """How the patterns of one source differ from another's: sizes and distances in MixedWM38 die
    units, densities as failure probabilities (ranges are drawn uniformly; the defaults are
    MixedWM38's)."""

    center_radius: tuple = (1.5, 8.0)
    center_density: tuple = (0.92, 1.0)
    donut_offset: float = 2.0  # standard deviation of its middle's distance from the wafer's, per axis
    donut_hole: tuple = (2.5, 9.0)
    donut_solid: tuple = (1.5, 4.5)  # how wide its solid part is
    donut_density: tuple = (0.8, 1.0)
    donut_hole_clean: bool = True
    edge_loc_depth: tuple = (1.2, 2.6)
    edge_loc_gap: tuple = (0.25, 0.8)  # the widest gap in its band, as a share of the circle
    loc_distance: tuple = (16.5, 21.5)
    loc_density: tuple = (0.8, 0.95)
    loc_along: tuple = (4.0, 11.0)  # the cluster's half-axis along its tilt
    loc_across: tuple = (3.0, 5.5)
    loc_tilt_spread: float | None = 0.35  # radians about the circle's direction; None: any tilt
    scratch_start: tuple | None = None  # how far out a scratch starts; None: at the rim
    scratch_density: tuple = (0.95, 1.0)


MIXEDWM38_LOOK = Look()
# WM-811K's, from its dev maps' failures by distance from the middle and from looking at them:
# Center blobs are sparser and fade out 0.2-0.45 of the radius out, donuts peak 0.3-0.5 out with
# background failures in the hole, Edge-Loc is a short deep arc (failures rise from 0.7 of the
# radius outwards), Loc clusters are sparser and lie anywhere, and scratches may start inside the
# wafer and have gaps.
WM811K_LOOK = Look(center_radius=(3.0, 11.0), center_density=(0.6, 0.95), donut_offset=1.2,
                   donut_hole=(5.0, 10.0), donut_solid=(2.5, 6.0), donut_density=(0.9, 1.0),
                   donut_hole_clean=False, edge_loc_depth=(2.0, 7.0), edge_loc_gap=(0.65, 0.92),
                   loc_distance=(4.0, 23.0), loc_density=(0.45, 0.9), loc_along=(3.0, 9.0),
                   loc_across=(2.5, 6.0), loc_tilt_spread=None, scratch_start=(8.0, 25.1),
                   scratch_density=(0.7, 1.0))


def _center(rng, grid, look):
    # A solid round blob at the middle (MixedWM38's: from a few dies to 8 across in radius).
    cy, cx = rng.normal(0, 1.2, 2)
    radius = rng.uniform(*look.center_radius)
    inside = np.hypot(grid.dy - cy, grid.dx - cx) <= radius
    return inside * rng.uniform(*look.center_density), None


def _donut(rng, grid, look):
    # A hole (MixedWM38's kept clean) in a ring that is solid next to the hole and thins out
    # outwards in ragged spokes (how far it reaches changes with the angle, as on real donuts).
    # Fitted to MixedWM38's single-defect donuts, around their failures' centroid (median, 5th-95th
    # percentile; synthetic in brackets): the densest ring of dies fails 90%, 58-100% (86%, 59-97%)
    # at 7.5 dies out, 0-10.5 (7.5, 4.5-10.5), 1.6 dies off the middle (1.1). Rings any denser or
    # thinner read as a Center with a hole, and real donuts as Donut + Loc.
    cy, cx = rng.normal(0, look.donut_offset, 2)
    distance = np.hypot(grid.dy - cy, grid.dx - cx)
    inner = rng.uniform(*look.donut_hole)
    solid = rng.uniform(*look.donut_solid)
    spokes = rng.uniform(0.3, 1.4, rng.integers(12, 30))
    angle = np.arctan2(grid.dy - cy, grid.dx - cx)
    fade = rng.uniform(3.0, 7.0) * spokes[((angle + np.pi) / (2 * np.pi) * len(spokes)).astype(int) % len(spokes)]
    ring = np.clip(1 - (distance - inner - solid) / fade, 0, 1) * (distance >= inner)
    return ring * rng.uniform(*look.donut_density), (distance < inner - 0.5) if look.donut_hole_clean else None


def _rim_band(rng, grid, depth=(1.2, 2.6)):
    """The rim's dies up to `depth` deep: 1.2-2.6, as MixedWM38's Edge-Ring and Edge-Loc bands are."""
    return WAFER_RADIUS - grid.radius < rng.uniform(*depth)


def _rim_gaps(rng, grid, count, width):
    """Where `count` gaps of `width` radians, at random angles, interrupt the rim."""
    gaps = np.zeros(grid.shape, bool)
    for center in rng.uniform(-np.pi, np.pi, count):
        gaps |= _angle_gap(grid.angle, center) < width / 2
    return gaps


def _edge_ring(rng, grid, look):
    # The whole rim, now and then broken by a gap or two of up to a twelfth of the circle.
    gaps = _rim_gaps(rng, grid, rng.integers(0, 3), rng.uniform(0.05, 0.5))
    return (_rim_band(rng, grid) & ~gaps) * rng.uniform(0.85, 1.0), None


def _edge_loc(rng, grid, look):
    # The rim band with a wide gap (MixedWM38's: a quarter to four fifths of the circle) and
    # maybe a smaller one or two: real Edge-Loc covers 20-70% of the rim, often in several arcs.
    wide = _rim_gaps(rng, grid, 1, rng.uniform(*look.edge_loc_gap) * 2 * np.pi)
    small = _rim_gaps(rng, grid, rng.integers(0, 3), rng.uniform(0.1, 0.8))
    return (_rim_band(rng, grid, look.edge_loc_depth) & ~wide & ~small) * rng.uniform(0.85, 1.0), None


def _loc(rng, grid, look):
    # An elliptical cluster; MixedWM38's lie along the circle, never at the middle, where they
    # would read as Center. Fitted to its single-defect Loc maps' densest cluster (median, 5th-95th
    # percentile; synthetic in brackets): 114 dies, 32-207 (104, 54-175), 18.8 dies out, 17.4-20.3
    # (18.9, 16.5-21.0), 1.7 times as long as wide (1.7), its long axis mostly along the circle.
    # Clusters placed and turned at random read real ones as Loc + Scratch.
    distance, angle = rng.uniform(*look.loc_distance), rng.uniform(-np.pi, np.pi)
    cy, cx = distance * np.sin(angle), distance * np.cos(angle)
    a, b = rng.uniform(*look.loc_along), rng.uniform(*look.loc_across)
    along_the_circle = angle + np.pi / 2
    tilt = (rng.uniform(0, np.pi) if look.loc_tilt_spread is None
            else along_the_circle + rng.normal(0, look.loc_tilt_spread))
    u = (grid.dx - cx) * np.cos(tilt) + (grid.dy - cy) * np.sin(tilt)
    v = -(grid.dx - cx) * np.sin(tilt) + (grid.dy - cy) * np.cos(tilt)
    reach = (u / a) ** 2 + (v / b) ** 2
    return np.clip(1.8 - reach, 0, 1) * rng.uniform(*look.loc_density), None


def _near_full(rng, grid, look):
    # Almost all dies fail; a few good patches remain, mostly towards the edge.
    density = np.full(grid.shape, rng.uniform(0.85, 1.0))
    for _ in range(rng.integers(0, 5)):
        distance, angle = rng.uniform(16, 30), rng.uniform(-np.pi, np.pi)
        radius = rng.uniform(3.0, 14.0)
        patch = np.hypot(grid.dy - distance * np.sin(angle), grid.dx - distance * np.cos(angle)) < radius
        density[patch] *= rng.uniform(0.1, 0.5)
    return density, None


def _scratch(rng, grid, look):
    # A thin curved line running inwards from the rim, as MixedWM38's scratches are (97% touch the
    # rim, the longest run of failed dies spans 27-39 dies and adds 23-37 to the background's), or
    # from `look.scratch_start` units out.
    rim_angle, slant = rng.uniform(-np.pi, np.pi), rng.choice([-1, 1]) * rng.uniform(0.3, 0.8)
    heading = rim_angle + np.pi + slant  # inwards, at a slant, bending round as the rim does
    headings = heading + np.sign(slant) / rng.uniform(30, 70) * np.arange(0, rng.uniform(26, 42), 0.3)
    start = WAFER_RADIUS - 0.5 if look.scratch_start is None else rng.uniform(*look.scratch_start)
    ys = start * np.sin(rim_angle) + np.cumsum(np.sin(headings)) * 0.3
    xs = start * np.cos(rim_angle) + np.cumsum(np.cos(headings)) * 0.3
    density = np.zeros(grid.shape)
    density[grid.dies_at(ys, xs)] = rng.uniform(*look.scratch_density)
    return density, None


def _random(rng, grid, look):
    # Worm-like blotches of failures all over the wafer (a thresholded smooth field), and
    # nothing between them: real Random maps have no scattered background failures.
    field = _smooth_noise(rng, grid.shape, max(1, round(rng.integers(2, 5) * min(grid.scale))))
    blotches = field > np.quantile(field, 1 - rng.uniform(0.3, 0.6))
    return blotches, ~blotches


# One drawing function per defect, in the label order of `labels.DEFECT_NAMES`. Each
# returns the failure probability of every die and, optionally, where the defect
# keeps dies good (the donut's hole).
_DEFECT_DRAWERS = (_center, _donut, _edge_loc, _edge_ring, _loc, _near_full, _scratch, _random)
assert len(_DEFECT_DRAWERS) == len(DEFECT_NAMES)


def _draw_map(grid, look, multihot, background_rate, rng, failure=0.0):
    """A map of `grid` with `background_rate` of its wafer's dies failed, each die failing with
    probability `failure` (a number or a field) too, and the flagged defects drawn on top."""
    wafer_dies = int(grid.wafer.sum())
    failed = np.zeros(grid.shape, bool)
    failed[grid.wafer] = rng.permutation(wafer_dies) < round(background_rate * wafer_dies)
    failure = np.zeros(grid.shape) + failure
    kept_good = np.zeros(grid.shape, bool)
    for flag, drawer in zip(multihot, _DEFECT_DRAWERS):
        if flag:
            density, clean = drawer(rng, grid, look)
            failure = np.maximum(failure, density)
            if clean is not None:
                kept_good |= clean
    failed = (failed | (rng.random(grid.shape) < failure)) & ~kept_good
    return np.where(grid.wafer, np.where(failed, FAILED_DIE, GOOD_DIE), OFF_WAFER).astype(np.uint8)


def draw_wafer_map(multihot, rng):
    """One (52, 52) uint8 map showing the defects flagged in the 8-bit `multihot` row."""
    rate = rng.beta(*NORMAL_BACKGROUND_BETA) if not any(multihot) else rng.uniform(*DEFECT_BACKGROUND)
    return _draw_map(MIXEDWM38_GRID, MIXEDWM38_LOOK, multihot, rate, rng)


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


# WM-811K-like maps, fitted to `../shared/data/wm811k_dev.npz`.
# Grids: the real maps' sides at these percentiles (most are about 27 dies across, a fifth 41 to
# 63 and more), up to 13% taller or wider than square (5th-95th percentile), the wafer filling
# the grid.
FAB_SIDE_PERCENTILES = ((0, 5, 25, 50, 75, 95, 100), (20, 25, 25, 27, 41, 63, 90))
FAB_GRID_ASPECT = (0.87, 1.15)
# Background: the larger a die, the more often it fails. Real `none` maps fail 16.5% of their dies
# (median; 10.5-22%, 10th-90th percentile) on grids under 30 dies across, 7.7% on grids 30-44 and
# 4.5% on larger ones: the rate is drawn for a grid 27 across and scaled by the die's area to the
# power 0.75 (fitted: less than in proportion to the area). Wafers with a defect fail fewer
# around it (real Scratch maps: 5% of their dies away from the scratch).
FAB_BACKGROUND_SIDE = 27
FAB_BACKGROUND_AREA_POWER = 0.75
FAB_NONE_BACKGROUND_BETA = (10.0, 70.0)
FAB_DEFECT_BACKGROUND_BETA = (1.5, 20.0)
# Real none maps fail their outermost dies 2-3 times as often as the others (27% against 9%,
# pooled), which a model must not read as Edge-Loc, and their middle ones too (20% within a tenth
# of the radius): besides the background, these dies fail with this chance, in background rates.
FAB_OUTERMOST_TIMES = (1.0, 3.5)
FAB_MIDDLE_TIMES = (0.0, 2.0)
FAB_MIDDLE_RADIUS = 0.1 * WAFER_RADIUS


@functools.lru_cache(maxsize=512)
def fab_grid(rows, cols):
    """The `DieGrid` of a WM-811K-like wafer of rows x cols dies (cached: maps share grids)."""
    return DieGrid.inscribed(rows, cols)


def draw_fab_map(class_index, rng):
    """One uint8 map of WM-811K class `class_index` (`wm811k.CLASS_NAMES`) on a random grid."""
    side = np.interp(rng.uniform(0, 100), *FAB_SIDE_PERCENTILES)
    aspect = np.sqrt(rng.uniform(*FAB_GRID_ASPECT))
    multihot = CLASS_LABELS[class_index]
    grid = fab_grid(round(side * aspect), round(side / aspect))
    die_area = FAB_BACKGROUND_SIDE ** 2 / np.prod(grid.shape)  # in dies of a grid 27 across
    background = FAB_DEFECT_BACKGROUND_BETA if multihot.any() else FAB_NONE_BACKGROUND_BETA
    rate = min(1.0, rng.beta(*background) * die_area ** FAB_BACKGROUND_AREA_POWER)
    excess = (grid.outermost * rng.uniform(*FAB_OUTERMOST_TIMES)
              + (grid.radius < FAB_MIDDLE_RADIUS) * rng.uniform(*FAB_MIDDLE_TIMES))
    return _draw_map(grid, WM811K_LOOK, multihot, rate, rng, np.minimum(1.0, rate * excess))


def generate_fab_maps(num_maps, seed=0):
    """`num_maps` WM-811K-like synthetic maps, the 9 classes in turn (as even as `num_maps` allows).

    >>> fab = generate_fab_maps(18, seed=0)
    >>> len(fab), int(np.bincount(fab.classes).min()), bool((fab.shapes != 52).any())
    (18, 2, True)
    """
    if num_maps < 1:
        raise ValueError(f"num_maps must be at least 1, got {num_maps}")
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.arange(num_maps) % len(CLASS_NAMES))
    maps = [draw_fab_map(index, rng) for index in classes]
    return FabMaps.from_maps(maps, classes, source=f"synthetic WM-811K-like (n={num_maps}, seed={seed})")
