"""Bringing a die map of any grid to the model's 52x52 input, the one way everything does it.

A model card records its method (`input.resize`), and the firmware's `resize_map.h` does the
same in C, so Python, TFLite Micro and a board see the same 52x52 map. Output row i takes
source rows floor(i*H/S) .. floor((i+1)*H/S) - 1 (at least the first), columns alike:

- `nearest`: the first of those dies.
- `max`: the largest die value among them, so a cell is a failed die when any source die in
  it failed (a shrunk map loses no failure), else good when any die is on the wafer. When
  enlarging, each cell covers one source die and `max` equals `nearest`.

Example:

>>> die_map = np.array([[0, 1, 1, 0], [1, 1, 2, 1], [1, 1, 1, 1], [0, 1, 1, 0]], np.uint8)
>>> resize_map(die_map, 2, "nearest").tolist(), resize_map(die_map, 2, "max").tolist()
([[0, 1], [1, 1]], [[1, 2], [1, 1]])
>>> resize_map(die_map[1:], 6, "max").tolist()[0]
[1, 1, 1, 2, 2, 1]
"""

import numpy as np

RESIZE_METHODS = ("nearest", "max")
DEFAULT_RESIZE = "nearest"


def source_starts(source, size):
    """The first source index of each of `size` output cells: floor(i * source / size)."""
    return np.arange(size, dtype=np.int64) * source // size


def resize_map(die_map, size, method=DEFAULT_RESIZE):
    """(H, W) die map -> (size, size) uint8 map by `method` (see the module docstring)."""
    die_map = np.asarray(die_map, np.uint8)
    if die_map.ndim != 2 or min(die_map.shape) < 1:
        raise ValueError(f"a die map must be a non-empty 2-D array, got shape {die_map.shape}")
    rows, cols = (source_starts(extent, size) for extent in die_map.shape)
    if method == "nearest":
        return die_map[np.ix_(rows, cols)]
    if method == "max":
        # reduceat takes the maximum from each start to the next; where two starts coincide
        # (enlarging) it takes the single die at the start: exactly the definition above.
        return np.maximum.reduceat(np.maximum.reduceat(die_map, rows, axis=0), cols, axis=1)
    raise ValueError(f"unknown resize method {method!r}; choose one of {', '.join(RESIZE_METHODS)}")


def resize_maps(die_maps, size, method=DEFAULT_RESIZE):
    """A sequence of die maps of any grids -> (N, size, size) uint8."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"unknown resize method {method!r}; choose one of {', '.join(RESIZE_METHODS)}")
    out = np.empty((len(die_maps), size, size), np.uint8)
    for index, die_map in enumerate(die_maps):
        out[index] = resize_map(die_map, size, method)
    return out
