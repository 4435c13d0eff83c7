"""Seeded train/validation/test splits, stratified by the 38 patterns (a WM-811K file's 9 classes
are 9 of them).

Each pattern is divided in the same proportions, so a rare pattern (Near-full has 106
maps in the dev set) still appears in every split. The paper-2 "rotated test" variant
is the test split with every map turned by 90 degrees.

Example:

>>> ids = np.repeat(np.arange(38), 20)
>>> split = stratified_split(ids, seed=0)
>>> len(split.train), len(split.val), len(split.test)
(608, 76, 76)
"""

import dataclasses

import numpy as np

from kd_keras.data.layouts import load_wafer_maps
from kd_keras.data.resize import DEFAULT_RESIZE
from kd_keras.data.synthetic import generate_wafer_maps

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SYNTHETIC_MAPS = 3800


@dataclasses.dataclass(frozen=True)
class Split:
    """Sorted, disjoint index arrays into one data set."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratified_split(pattern_ids, fractions=DEFAULT_FRACTIONS, seed=0):
    """Split indices so that each pattern is divided train/val/test by `fractions`.

    Per pattern, round(n * val) maps go to validation and round(n * test) to test,
    the rest to training; the draw depends only on `seed` and `pattern_ids`.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    pattern_ids = np.asarray(pattern_ids)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for pattern_id in np.unique(pattern_ids):
        members = rng.permutation(np.flatnonzero(pattern_ids == pattern_id))
        n_val = int(round(len(members) * fractions[1]))
        n_test = int(round(len(members) * fractions[2]))
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val:n_val + n_test])
        parts["train"].append(members[n_val + n_test:])
    return Split(**{name: np.sort(np.concatenate(p)) for name, p in parts.items()})


def split_data(data, fractions=DEFAULT_FRACTIONS, seed=0):
    """Split a `WaferMaps` into {'train', 'val', 'test', 'test_rotated'} `WaferMaps`."""
    split = stratified_split(data.pattern_ids, fractions, seed)
    test = data.subset(split.test)
    return {
        "train": data.subset(split.train),
        "val": data.subset(split.val),
        "test": test,
        "test_rotated": test.rotated(1),
    }


def load_splits(data_path=None, synthetic_maps=DEFAULT_SYNTHETIC_MAPS, seed=0, resize=DEFAULT_RESIZE):
    """A run's splits (see `split_data`): of a wafer-map file in either layout (maps of other
    grids brought to 52x52 by `resize`, see `kd_keras.data.layouts`), or of `synthetic_maps`
    synthetic maps when `data_path` is None."""
    data = (generate_wafer_maps(synthetic_maps, seed=seed) if data_path is None
            else load_wafer_maps(data_path, resize))
    parts = split_data(data, seed=seed)
    empty = [name for name in ("train", "val", "test") if len(parts[name]) == 0]
    if empty:
        raise ValueError(f"{data.source}: {len(data)} maps leave the {' and '.join(empty)} split(s) empty "
                         "(each pattern is split 80/10/10); use more maps")
    return parts
