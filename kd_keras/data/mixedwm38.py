"""Read, validate and write wafer-map files in the public MixedWM38 npz layout.

The layout: `arr_0` holds the die maps, shape (N, 52, 52), with 0 = off-wafer,
1 = good die, 2 = failed die; `arr_1` holds the multi-hot labels, shape (N, 8), in
the order of `labels.DEFECT_NAMES`. The public `Wafer_Map_Datasets.npz` stores the
maps as int32 (412 MB for 38,015 maps) and marks a few failed dies with 3; our
compressed copy stores uint8. Both load into the same `WaferMaps`, with uint8 maps.

Example:

>>> import os, tempfile, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "two.npz")
>>> maps = np.ones((2, 52, 52), np.int32)
>>> maps[1, 26, 26] = 3  # the public file's other spelling of a failed die
>>> np.savez(path, arr_0=maps, arr_1=np.array([[0] * 8, [1, 0, 0, 0, 0, 0, 0, 0]]))
>>> data = load_mixedwm38(path)
>>> len(data), data.maps.dtype, data.maps[1, 26, 26], data.legacy_failed_dies
(2, dtype('uint8'), np.uint8(2), 1)
>>> [pattern_name(i) for i in data.pattern_ids]
['Normal', 'C']
"""

import dataclasses

import numpy as np

from kd_keras.data.labels import NUM_DEFECTS, NUM_PATTERNS, InvalidLabelError, encode_patterns, pattern_name
from kd_keras.data.npz import WaferDataError, check_integer_valued, open_archive, open_npy, read_exactly
from kd_keras.fileio import atomic_path

MAP_SIZE = 52
MAPS_KEY = "arr_0"
LABELS_KEY = "arr_1"
OFF_WAFER, GOOD_DIE, FAILED_DIE = 0, 1, 2
DIE_VALUE_NAMES = {OFF_WAFER: "off-wafer", GOOD_DIE: "good", FAILED_DIE: "failed"}
# A few maps of the public release carry 3; published code counts it as a failed die.
LEGACY_FAILED_DIE = 3

# Maps are converted to uint8 this many rows at a time, so the public int32 file is
# never held whole in memory (1024 rows of int32 are 11 MB).
_CHUNK_ROWS = 1024


@dataclasses.dataclass(frozen=True)
class WaferMaps:
    """Validated wafer maps and their labels.

    Attributes:
        maps: (N, 52, 52) uint8 die maps with values 0, 1, 2.
        labels: (N, 8) uint8 multi-hot defect labels, each one of the 38 patterns.
        source: where the maps came from (a path, or a description).
        legacy_failed_dies: how many dies the file marked 3 (now 2).
    """

    maps: np.ndarray
    labels: np.ndarray
    source: str = ""
    legacy_failed_dies: int = 0

    def __post_init__(self):
        if self.maps.shape[1:] != (MAP_SIZE, MAP_SIZE) or self.maps.ndim != 3:
            raise ValueError(f"maps must have shape (N, 52, 52), got {self.maps.shape}")
        if self.labels.shape != (len(self.maps), NUM_DEFECTS):
            raise ValueError(
                f"labels must have shape ({len(self.maps)}, {NUM_DEFECTS}), got {self.labels.shape}"
            )

    def __len__(self):
        return len(self.maps)

    @property
    def pattern_ids(self):
        """(N,) ids of the 38 patterns (see `labels.PATTERN_NAMES`)."""
        return encode_patterns(self.labels)

    @property
    def masks(self):
        """(N, 52, 52) uint8 defect masks as WaferSegClassNet defines them: failed dies."""
        return segmentation_masks(self.maps)

    def subset(self, indices):
        """The maps at `indices`, as a new `WaferMaps`."""
        return dataclasses.replace(self, maps=self.maps[indices], labels=self.labels[indices])

    @classmethod
    def joined(cls, parts):
        """The maps of several `WaferMaps`, one after another, as one."""
        parts = list(parts)
        return cls(np.concatenate([part.maps for part in parts]), np.concatenate([part.labels for part in parts]),
                   source=" + ".join(part.source for part in parts),
                   legacy_failed_dies=sum(part.legacy_failed_dies for part in parts))

    def rotated(self, quarter_turns=1):
        """The same maps rotated by 90 degrees `quarter_turns` times (labels are unchanged)."""
        rotated = np.ascontiguousarray(np.rot90(self.maps, quarter_turns, axes=(1, 2)))
        return dataclasses.replace(
            self, maps=rotated, source=f"{self.source} rotated {90 * quarter_turns} degrees"
        )


# How many of a map's rotations/reflections a model may be run on and averaged over: the map
# as it is, or all 8 (`dihedral_views`).
VIEWS = (1, 8)


def model_input(maps):
    """Raw (N, 52, 52) die maps as a model takes them: float32 (N, 52, 52, 1), values 0, 1, 2.
    (The `tf.data` pipeline does the same per batch, in TensorFlow.)"""
    return np.asarray(maps, np.float32)[..., None]


def dihedral_views(maps):
    """The 8 rotations/reflections of (N, H, W) maps, as 8 arrays: view v is the maps turned
    by 90 degrees (as `WaferMaps.rotated`) v // 2 times, then, for odd v, mirrored (columns
    reversed). The firmware's `dihedral_views.h` and `models.DihedralMean` use this order.

    >>> views = dihedral_views(np.arange(4).reshape(1, 2, 2))
    >>> [view[0].tolist() for view in views[:3]]
    [[[0, 1], [2, 3]], [[1, 0], [3, 2]], [[1, 3], [0, 2]]]
    """
    maps = np.asarray(maps)
    turned = [np.rot90(maps, quarter_turns, axes=(1, 2)) for quarter_turns in range(4)]
    return [np.ascontiguousarray(view) for turn in turned for view in (turn, turn[:, :, ::-1])]


def segmentation_masks(maps):
    """Defect masks of die maps: 1 where a die failed, as WaferSegClassNet defines them."""
    return (np.asarray(maps) == FAILED_DIE).astype(np.uint8)


def load_mixedwm38(path):
    """Load and validate a MixedWM38-layout npz file; raise `WaferDataError` on any problem."""
    required = {MAPS_KEY: "maps (N, 52, 52)", LABELS_KEY: "labels (N, 8)"}
    with open_archive(path, required) as members:
        labels = _read_labels(members)
        maps, legacy = _read_maps(members, num_maps=len(labels))
    return WaferMaps(maps, labels, source=str(path), legacy_failed_dies=legacy)


def save_mixedwm38(path, maps, labels):
    """Write maps and labels in the MixedWM38 layout (uint8 maps, int32 labels, compressed)."""
    data = WaferMaps(np.asarray(maps, np.uint8), np.asarray(labels, np.uint8))
    encode_patterns(data.labels)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **{MAPS_KEY: data.maps, LABELS_KEY: data.labels.astype(np.int32)})


def _read_labels(members):
    path = members.path
    f, shape, dtype = open_npy(members, LABELS_KEY)
    with f:
        if len(shape) != 2 or shape[1] != NUM_DEFECTS:
            raise WaferDataError(
                path, f"expected labels of shape (N, {NUM_DEFECTS}), got {shape}", key=LABELS_KEY
            )
        if shape[0] == 0:
            raise WaferDataError(path, "holds no wafer maps (N = 0)", key=LABELS_KEY)
        labels = read_exactly(f, dtype, shape[0] * shape[1], path, LABELS_KEY).reshape(shape)
    check_integer_valued(labels, dtype, path, LABELS_KEY, 0, "labels")
    try:
        encode_patterns(labels)
    except InvalidLabelError as error:
        raise WaferDataError(path, error.description, key=LABELS_KEY, row=error.row_index) from None
    return labels.astype(np.uint8)


def _read_maps(members, num_maps):
    path = members.path
    f, shape, dtype = open_npy(members, MAPS_KEY)
    with f:
        if len(shape) != 3 or shape[1:] != (MAP_SIZE, MAP_SIZE):
            raise WaferDataError(
                path, f"expected maps of shape (N, {MAP_SIZE}, {MAP_SIZE}), got {shape}", key=MAPS_KEY
            )
        if shape[0] != num_maps:
            raise WaferDataError(
                path, f"holds {shape[0]} maps but {LABELS_KEY!r} holds {num_maps} label rows",
                key=MAPS_KEY,
            )
        maps = np.empty(shape, np.uint8)
        legacy = 0
        for start in range(0, num_maps, _CHUNK_ROWS):
            rows = min(_CHUNK_ROWS, num_maps - start)
            chunk = read_exactly(f, dtype, rows * MAP_SIZE * MAP_SIZE, path, MAPS_KEY)
            chunk = chunk.reshape(rows, MAP_SIZE, MAP_SIZE)
            check_integer_valued(chunk, dtype, path, MAPS_KEY, start, "die values")
            out_of_range = ((chunk < 0) | (chunk > LEGACY_FAILED_DIE)).reshape(rows, -1)
            if out_of_range.any():
                row = int(np.argmax(out_of_range.any(axis=1)))
                y, x = np.unravel_index(np.argmax(out_of_range[row]), (MAP_SIZE, MAP_SIZE))
                raise WaferDataError(
                    path,
                    f"die ({y}, {x}) has value {chunk[row, y, x]}; expected 0 (off-wafer), "
                    f"1 (good), 2 (failed) or {LEGACY_FAILED_DIE} (failed, legacy)",
                    key=MAPS_KEY, row=start + row,
                )
            block = maps[start:start + rows]
            block[...] = chunk
            is_legacy = block == LEGACY_FAILED_DIE
            legacy += int(is_legacy.sum())
            block[is_legacy] = FAILED_DIE
    return maps, legacy


def failed_share(maps):
    """(N,) the share of each map's wafer dies (good or failed) that are failed, for maps of
    any die grid (an (N, rows, columns) array, or a list of maps of their own grids).

    Every pattern's maps carry random failed dies too: MixedWM38's Normal maps average 7.8%."""
    # A map at a time: a vectorised count over WM-811K's flat pixels would need a copy of
    # them widened to a counting dtype (500 MB for the dev set).
    return np.array([np.count_nonzero(m == FAILED_DIE) / max(np.count_nonzero(m), 1) for m in maps])


def describe(data):
    """A readable summary: map count, die-value counts and a per-pattern table (maps, their
    share of the file, and the mean share of a map's wafer dies that are failed)."""
    values = np.bincount(data.maps.ravel(), minlength=3)
    lines = [
        f"file: {data.source}",
        f"maps: {len(data)} ({MAP_SIZE}x{MAP_SIZE} dies)",
        "die values: " + ", ".join(
            f"{v} ({name}) {values[v]:,}" for v, name in DIE_VALUE_NAMES.items()
        ),
    ]
    if data.legacy_failed_dies:
        lines.append(f"legacy value {LEGACY_FAILED_DIE} counted as failed: {data.legacy_failed_dies:,} dies")
    ids = data.pattern_ids
    counts = np.bincount(ids, minlength=NUM_PATTERNS)
    lines.append(f"patterns: {np.count_nonzero(counts)} of {NUM_PATTERNS}")
    failed = failed_share(data.maps)
    lines.append(f"{'id':>3}  {'pattern':<10} {'maps':>6} {'share':>7} {'failed':>7}")
    for pattern_id in np.flatnonzero(counts):
        lines.append(
            f"{pattern_id:>3}  {pattern_name(pattern_id):<10} {counts[pattern_id]:>6} "
            f"{100 * counts[pattern_id] / len(data):>6.2f}% {100 * failed[ids == pattern_id].mean():>6.1f}%"
        )
    return "\n".join(lines)
