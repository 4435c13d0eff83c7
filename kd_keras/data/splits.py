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
import os

import numpy as np

from kd_keras.data.labels import flags_name
from kd_keras.data.layouts import load_wafer_maps
from kd_keras.data.mixedwm38 import WaferMaps
from kd_keras.errors import FileFormatError
from kd_keras.fileio import read_json
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


def read_suspects(path, data):
    """The rows of `data` that a label audit's report (`label_audit.json`, written by `python -m
    kd_keras.audit_labels`) suspects, checked to be an audit of this data: as many maps, and
    each suspect's given label the one `data` holds. (Read here, not in `kd_keras.label_audit`,
    so that splitting a file needs no TensorFlow.)"""
    report = read_json(path)
    suspects = report.get("suspects") if isinstance(report, dict) else None
    if not isinstance(suspects, list) or not all(isinstance(s, dict) and isinstance(s.get("index"), int)
                                                 and isinstance(s.get("given"), str) for s in suspects):
        raise FileFormatError(f"{path}: not a label audit (no list of suspects with their index and given label)")
    if report.get("maps") != len(data):
        raise FileFormatError(f"{path}: an audit of {report.get('maps')} maps, not of the {len(data):,} maps of "
                              f"{data.source}")
    for suspect in suspects:
        row = suspect["index"]
        if not 0 <= row < len(data):
            raise FileFormatError(f"{path}: suspect {row} is no row of {data.source} ({len(data):,} maps)")
        if suspect["given"] != flags_name(data.labels[row]):
            raise FileFormatError(f"{path}: suspect {row} is given {suspect['given']} there, but {data.source} "
                                  f"holds {flags_name(data.labels[row])}: an audit of other labels")
    return np.array(sorted(s["index"] for s in suspects), np.int64)


def split_data(data, fractions=DEFAULT_FRACTIONS, seed=0, drop_from_train=()):
    """Split a `WaferMaps` into {'train', 'val', 'test', 'test_rotated'} `WaferMaps`.

    `drop_from_train`: rows left out of the training split (e.g. `read_suspects`); validation
    and test keep every map they are dealt, so their figures stay comparable."""
    split = stratified_split(data.pattern_ids, fractions, seed)
    test = data.subset(split.test)
    return {
        "train": data.subset(np.setdiff1d(split.train, drop_from_train)),
        "val": data.subset(split.val),
        "test": test,
        "test_rotated": test.rotated(1),
    }


def data_paths(data):
    """`--data` as a tuple of paths: () for synthetic maps (None), else one path or several."""
    if data is None:
        return ()
    return (data,) if isinstance(data, (str, os.PathLike)) else tuple(data)


def load_splits(data_path=None, synthetic_maps=DEFAULT_SYNTHETIC_MAPS, seed=0, resize=DEFAULT_RESIZE,
                drop_suspects=None):
    """A run's splits (see `split_data`): of a wafer-map file in either layout (maps of other
    grids brought to 52x52 by `resize`, see `kd_keras.data.layouts`), or of `synthetic_maps`
    synthetic maps when `data_path` is None; without the training maps that the label audit
    report `drop_suspects` suspects, where given.

    `data_path` may name several files (e.g. MixedWM38's and WM-811K's, for one model that
    reads both sources): each is split on its own, as it would be alone, and the splits are
    joined file after file, so each file's test maps are those of a run on that file alone."""
    paths = data_paths(data_path)
    if drop_suspects is not None and len(paths) > 1:
        raise ValueError(f"--drop-suspects reads an audit of one file, and {len(paths)} --data files are given")
    sources = ([load_wafer_maps(path, resize) for path in paths] if paths
               else [generate_wafer_maps(synthetic_maps, seed=seed)])
    joined = {}
    for data in sources:
        dropped = () if drop_suspects is None else read_suspects(drop_suspects, data)
        parts = split_data(data, seed=seed, drop_from_train=dropped)
        empty = [name for name in ("train", "val", "test") if len(parts[name]) == 0]
        if empty:
            raise ValueError(f"{data.source}: {len(data)} maps leave the {' and '.join(empty)} split(s) empty "
                             "(each pattern is split 80/10/10); use more maps")
        for name, part in parts.items():
            joined.setdefault(name, []).append(part)
    return {name: parts[0] if len(parts) == 1 else WaferMaps.joined(parts) for name, parts in joined.items()}
