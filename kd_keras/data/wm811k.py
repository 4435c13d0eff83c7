"""Read, validate and write wafer maps of any die grid in the WM-811K layout.

WM-811K (Wu, Jang and Chen, 2015) holds real production wafers of a fab, each in the grid of its
die. The layout stores them flat, as `../shared/data/wm811k_dev.npz` does:

| key | shape | meaning |
| --- | --- | --- |
| `pixels` | (total dies,) | every map's dies, row-major, one map after another: 0 off-wafer, 1 good, 2 failed |
| `shapes` | (N, 2) | rows and columns of each map |
| `label` | (N,) | index into `label_names` |
| `label_names` | (K,) | strings among `CLASS_NAMES`, in any order |

A file of maps without labels (most of a fab's maps; `save_unlabelled`, `load_unlabelled`) holds
`pixels` and `shapes` only: distillation learns from them without reading a label.

Each map has one of 9 classes: the 8 MixedWM38 defect types, or `none`. As a MixedWM38 label it
is that one defect flag, or all zeros for `none` (the Normal pattern), so one model reads both
sources. `FabMaps.resized` brings every map to the model's 52x52 input (`kd_keras.data.resize`).

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "fab.npz")
>>> save_wm811k(path, [np.ones((3, 4), np.uint8), np.full((30, 27), 2, np.uint8)], ["none", "Near-full"])
>>> fab = load_wm811k(path)
>>> len(fab), fab.shapes.tolist(), [CLASS_NAMES[c] for c in fab.classes]
(2, [[3, 4], [30, 27]], ['none', 'Near-full'])
>>> fab.labels.tolist()[1], fab.resized("max").maps.shape
([0, 0, 0, 0, 0, 1, 0, 0], (2, 52, 52))
"""

import dataclasses
import functools

import numpy as np

from kd_keras.data.labels import DEFECT_NAMES, NUM_DEFECTS, encode_patterns
from kd_keras.data.mixedwm38 import DIE_VALUE_NAMES, FAILED_DIE, MAP_SIZE, WaferMaps, failed_share
from kd_keras.data.npz import WaferDataError, open_archive, open_npy, read_array, read_exactly
from kd_keras.data.resize import DEFAULT_RESIZE, resize_maps
from kd_keras.fileio import atomic_path

PIXELS_KEY, SHAPES_KEY, LABEL_KEY, LABEL_NAMES_KEY = "pixels", "shapes", "label", "label_names"
# WM-811K's classes in its own order; `none` is a map without a pattern (failures may be scattered).
CLASS_NAMES = ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch", "none")
NONE_CLASS = CLASS_NAMES.index("none")
# Class -> its 8-flag MixedWM38 label (`labels.DEFECT_NAMES` order); `none` -> all zeros.
CLASS_LABELS = np.array([[name == defect for defect in DEFECT_NAMES] for name in CLASS_NAMES], np.uint8)
MAX_GRID = 4096  # rows or columns; WM-811K's largest map is 212 dies across
OTHER_READING = len(CLASS_NAMES)  # `classes_of_labels` of a reading that is no single class


def classes_of_labels(multihot):
    """(N, 8) multi-hot labels or readings -> (N,) class indices: `none` for no defect, the
    defect's class for one, `OTHER_READING` for a mixture (never right on a WM-811K map).

    >>> classes_of_labels([[0] * 8, [0, 0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0]]).tolist()
    [8, 3, 9]
    """
    multihot = np.asarray(multihot).astype(bool)
    single = np.array([CLASS_NAMES.index(name) for name in DEFECT_NAMES])[multihot.argmax(axis=1)]
    counts = multihot.sum(axis=1)
    return np.where(counts == 0, NONE_CLASS, np.where(counts == 1, single, OTHER_READING))


def unpack_maps(pixels, shapes):
    """Flat `pixels` -> one (rows, columns) array per row of `shapes`, in order."""
    offsets = np.concatenate([[0], np.cumsum(np.asarray(shapes).prod(axis=1))])
    return [pixels[offsets[i]:offsets[i + 1]].reshape(shapes[i]) for i in range(len(shapes))]


@dataclasses.dataclass(frozen=True)
class FabMaps:
    """Validated die maps of any grids with one class each.

    Attributes:
        pixels: (total dies,) uint8 die values 0, 1, 2 of all maps, one after another.
        shapes: (N, 2) int64 rows and columns of each map.
        classes: (N,) int64 indices into `CLASS_NAMES`.
        source: where the maps came from.
    """

    pixels: np.ndarray
    shapes: np.ndarray
    classes: np.ndarray
    source: str = ""

    def __post_init__(self):
        if self.shapes.shape != (len(self.classes), 2):
            raise ValueError(f"shapes must be ({len(self.classes)}, 2), got {self.shapes.shape}")
        if int(self.shapes.prod(axis=1).sum()) != len(self.pixels):
            raise ValueError("the shapes do not add up to the number of pixels")

    @classmethod
    def from_maps(cls, maps, classes, source=""):
        """Pack (rows, columns) die maps and their class indices into one `FabMaps`."""
        return cls(np.concatenate([np.asarray(m, np.uint8).ravel() for m in maps]),
                   np.array([np.shape(m) for m in maps], np.int64), np.asarray(classes, np.int64), source)

    def __len__(self):
        return len(self.classes)

    @functools.cached_property
    def offsets(self):
        """(N + 1,) where each map's dies start in `pixels` (and where the last one ends)."""
        return np.concatenate([[0], np.cumsum(self.shapes.prod(axis=1))])

    def map(self, index):
        """Map `index` as a (rows, columns) uint8 array."""
        start = int(self.offsets[index])
        rows, cols = (int(n) for n in self.shapes[index])
        return self.pixels[start:start + rows * cols].reshape(rows, cols)

    def maps(self):
        """Every map, in order, as (rows, columns) arrays."""
        return unpack_maps(self.pixels, self.shapes)

    @property
    def labels(self):
        """(N, 8) uint8 MixedWM38 labels: the class's defect flag, all zeros for `none`."""
        return CLASS_LABELS[self.classes]

    @property
    def pattern_ids(self):
        """(N,) ids of the 38 MixedWM38 patterns (Normal or one of the 8 single types)."""
        return encode_patterns(self.labels)

    def subset(self, indices):
        """The maps at `indices`, as a new `FabMaps`."""
        indices = np.asarray(indices, np.int64)
        offsets = self.offsets
        pixels = [self.pixels[offsets[i]:offsets[i + 1]] for i in indices]
        return dataclasses.replace(self, pixels=np.concatenate(pixels) if pixels else self.pixels[:0],
                                   shapes=self.shapes[indices], classes=self.classes[indices])

    def resized(self, method=DEFAULT_RESIZE, size=MAP_SIZE):
        """Every map brought to (size, size) by `method`, as `WaferMaps` with MixedWM38 labels."""
        return WaferMaps(resize_maps(self.maps(), size, method), self.labels,
                         source=f"{self.source} (resized to {size}x{size}: {method})")


def load_wm811k(path):
    """Load and validate a WM-811K-layout npz file; raise `WaferDataError` naming the map and field."""
    required = {PIXELS_KEY: "all dies, flat", SHAPES_KEY: "(N, 2) rows, columns", LABEL_KEY: "(N,) class index",
                LABEL_NAMES_KEY: "class names"}
    with open_archive(path, required) as members:
        class_of_name = _read_label_names(members)
        classes = _read_classes(members, class_of_name)
        shapes = _read_shapes(members, len(classes))
        pixels = _read_pixels(members, shapes)
    return FabMaps(pixels, shapes, classes, source=str(path))


def load_unlabelled(path):
    """The die maps (a list of (rows, columns) uint8 arrays) of a WM-811K-layout file, its labels
    (if it has any) not read; raise `WaferDataError` naming the map and field."""
    return unpack_maps(*_read_unlabelled(path))


def _read_unlabelled(path):
    """(pixels, shapes) of a WM-811K-layout file, validated, its labels not read."""
    required = {PIXELS_KEY: "all dies, flat", SHAPES_KEY: "(N, 2) rows, columns"}
    with open_archive(path, required) as members:
        shapes = _read_shapes(members)
        if len(shapes) == 0:
            raise WaferDataError(members.path, "holds no wafer maps (N = 0)", key=SHAPES_KEY)
        return _read_pixels(members, shapes), shapes


def save_unlabelled(path, maps):
    """Write die maps of any grids without labels: `pixels` and `shapes` only."""
    maps = [np.asarray(m, np.uint8) for m in maps]
    if not maps:
        raise ValueError("need at least one map")
    pixels, shapes = np.concatenate([m.ravel() for m in maps]), np.array([m.shape for m in maps], np.int32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **{PIXELS_KEY: pixels, SHAPES_KEY: shapes})


def save_wm811k(path, maps, classes):
    """Write die maps of any grids and their classes (names or indices into `CLASS_NAMES`)."""
    classes = np.array([CLASS_NAMES.index(c) if isinstance(c, str) else int(c) for c in classes], np.int16)
    maps = list(maps)
    if len(maps) != len(classes) or not maps:
        raise ValueError(f"need one class per map and at least one map, got {len(maps)} and {len(classes)}")
    fab = FabMaps.from_maps(maps, classes)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **{PIXELS_KEY: fab.pixels, SHAPES_KEY: fab.shapes.astype(np.int32),
                                  LABEL_KEY: classes, LABEL_NAMES_KEY: np.array(CLASS_NAMES)})


def _read_label_names(members):
    """{index in the file's label_names: index in CLASS_NAMES}."""
    names = read_array(members, LABEL_NAMES_KEY, 1, "a list of class names")
    if names.dtype.kind != "U":
        raise WaferDataError(members.path, f"class names must be strings, got dtype {names.dtype}",
                             key=LABEL_NAMES_KEY)
    unknown = [str(name) for name in names if name not in CLASS_NAMES]
    if unknown:
        raise WaferDataError(members.path, f"unknown class {unknown[0]!r}; expected names among "
                             f"{', '.join(CLASS_NAMES)}", key=LABEL_NAMES_KEY)
    return np.array([CLASS_NAMES.index(str(name)) for name in names], np.int64)


def _read_classes(members, class_of_name):
    label = read_array(members, LABEL_KEY, 1, "one class index per map, shape (N,)")
    if label.dtype.kind not in "iu":
        raise WaferDataError(members.path, f"class indices must be integers, got dtype {label.dtype}", key=LABEL_KEY)
    if len(label) == 0:
        raise WaferDataError(members.path, "holds no wafer maps (N = 0)", key=LABEL_KEY)
    bad = (label < 0) | (label >= len(class_of_name))
    if bad.any():
        row = int(np.argmax(bad))
        raise WaferDataError(members.path, f"class index {label[row]} is not an index into the "
                             f"{len(class_of_name)} label_names", key=LABEL_KEY, row=row)
    return class_of_name[label.astype(np.int64)]


def _read_shapes(members, num_maps=None):
    """`num_maps`: as many as the labels; None: as many as the file holds."""
    shapes = read_array(members, SHAPES_KEY, 2, "(N, 2) rows and columns")
    expected = (len(shapes) if num_maps is None else num_maps, 2)
    if shapes.shape != expected:
        per = "per map" if num_maps is None else "per label"
        raise WaferDataError(members.path, f"expected shape {expected}, one (rows, columns) {per}, "
                             f"got {shapes.shape}", key=SHAPES_KEY)
    if shapes.dtype.kind not in "iu":
        raise WaferDataError(members.path, f"rows and columns must be integers, got dtype {shapes.dtype}",
                             key=SHAPES_KEY)
    bad = ((shapes < 1) | (shapes > MAX_GRID)).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise WaferDataError(members.path, f"a map of {shapes[row, 0]} x {shapes[row, 1]} dies; rows and "
                             f"columns must be 1 to {MAX_GRID}", key=SHAPES_KEY, row=row)
    return shapes.astype(np.int64)


def _read_pixels(members, shapes):
    f, shape, dtype = open_npy(members, PIXELS_KEY)
    with f:
        expected = int(shapes.prod(axis=1).sum())
        if shape != (expected,):
            raise WaferDataError(members.path, f"expected {expected:,} dies (the sum of rows x columns over "
                                 f"the shapes), got an array of shape {shape}", key=PIXELS_KEY)
        if dtype.kind not in "iu":
            raise WaferDataError(members.path, f"die values must be integers, got dtype {dtype}", key=PIXELS_KEY)
        pixels = read_exactly(f, dtype, expected, members.path, PIXELS_KEY)
    bad = (pixels < 0) | (pixels > FAILED_DIE)
    if bad.any():
        position = int(np.argmax(bad))
        offsets = np.concatenate([[0], np.cumsum(shapes.prod(axis=1))])
        row = int(np.searchsorted(offsets, position, side="right") - 1)
        y, x = divmod(position - int(offsets[row]), int(shapes[row, 1]))
        raise WaferDataError(members.path, f"die ({y}, {x}) of map {row} has value {pixels[position]}; expected "
                             + ", ".join(f"{v} ({name})" for v, name in DIE_VALUE_NAMES.items()),
                             key=PIXELS_KEY, row=row)
    return pixels.astype(np.uint8)


def _describe_grids(source, shapes, pixels, what="maps"):
    rows, cols = shapes[:, 0], shapes[:, 1]
    values = np.bincount(pixels, minlength=3)
    return [
        f"file: {source}",
        f"{what}: {len(shapes)} in {len(np.unique(shapes, axis=0))} die grids: rows {rows.min()} to {rows.max()} "
        f"(median {np.median(rows):g}), columns {cols.min()} to {cols.max()} (median {np.median(cols):g}); "
        f"{np.mean((rows < MAP_SIZE) & (cols < MAP_SIZE)):.0%} smaller than {MAP_SIZE}x{MAP_SIZE}",
        "die values: " + ", ".join(f"{v} ({name}) {values[v]:,}" for v, name in DIE_VALUE_NAMES.items()),
    ]


def describe_unlabelled(path):
    """A readable summary of a file of maps without labels (`save_unlabelled`): grids and die values."""
    pixels, shapes = _read_unlabelled(path)
    return "\n".join(_describe_grids(path, shapes, pixels, "maps without labels"))


def describe_wm811k(fab):
    """A readable summary: maps, grids, die values and the classes (maps, their share of the
    file, and the mean share of a map's wafer dies that are failed)."""
    counts = np.bincount(fab.classes, minlength=len(CLASS_NAMES))
    lines = [*_describe_grids(fab.source, fab.shapes, fab.pixels),
             f"{'class':<10} {'maps':>6} {'share':>7} {'failed':>7}"]
    failed = failed_share(fab.maps())
    for index in np.argsort(-counts, kind="stable"):
        if counts[index]:
            lines.append(f"{CLASS_NAMES[index]:<10} {counts[index]:>6} {100 * counts[index] / len(fab):>6.2f}% "
                         f"{100 * failed[fab.classes == index].mean():>6.1f}%")
    return "\n".join(lines)


assert CLASS_LABELS.sum() == NUM_DEFECTS  # every defect type is one class, `none` is the ninth
