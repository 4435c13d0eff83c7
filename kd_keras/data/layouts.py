"""Which layout a wafer-map file is in, and its maps as a model takes them (52x52).

Two layouts are read: MixedWM38's (`arr_0` maps of 52x52 and `arr_1` multi-hot labels,
`kd_keras.data.mixedwm38`) and WM-811K's (maps of any die grid, stored flat with their
`shapes`, `kd_keras.data.wm811k`). Everything that takes `--data` goes through
`load_wafer_maps`, so a fab's own maps train, calibrate and test like MixedWM38's. Maps
without labels (`--unlabelled`, which distillation learns from) go through `load_unlabelled_maps`.

Example:

>>> import os, tempfile
>>> from kd_keras.data.wm811k import save_wm811k
>>> path = os.path.join(tempfile.mkdtemp(), "fab.npz")
>>> save_wm811k(path, [[[1] * 30] * 20], ["Center"])
>>> file_layout(path), load_wafer_maps(path, "max").maps.shape
('wm811k', (1, 52, 52))
"""

import zipfile

from kd_keras.data.mixedwm38 import LABELS_KEY, MAP_SIZE, MAPS_KEY, load_mixedwm38
from kd_keras.data.resize import DEFAULT_RESIZE, RESIZE_METHODS, resize_maps
from kd_keras.data.wm811k import PIXELS_KEY, SHAPES_KEY, load_unlabelled, load_wm811k

LAYOUTS = ("mixedwm38", "wm811k")


def npz_keys(path):
    """The names of the arrays an npz file holds (empty when it is no readable zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return set()


def file_layout(path):
    """'wm811k' for a file with `pixels` and `shapes` (labelled or not), else 'mixedwm38' (whose
    loader then names whatever is wrong with the file)."""
    keys = npz_keys(path)
    return "wm811k" if {PIXELS_KEY, SHAPES_KEY} <= keys and not {MAPS_KEY, LABELS_KEY} <= keys else "mixedwm38"


def _check_resize(resize):
    if resize not in RESIZE_METHODS:
        raise ValueError(f"unknown resize method {resize!r}; choose one of {', '.join(RESIZE_METHODS)}")


def load_unlabelled_maps(path, resize=DEFAULT_RESIZE):
    """(N, 52, 52) uint8 maps of a file in either layout, labels (where it has any) not read: a
    WM-811K-layout file may hold `pixels` and `shapes` alone (`wm811k.save_unlabelled`)."""
    _check_resize(resize)
    if file_layout(path) == "wm811k":
        return resize_maps(load_unlabelled(path), MAP_SIZE, resize)
    return load_mixedwm38(path).maps


def load_wafer_maps(path, resize=DEFAULT_RESIZE):
    """The maps of a file in either layout as 52x52 `WaferMaps`, other grids brought to
    52x52 by `resize` (`kd_keras.data.resize`; MixedWM38's maps are 52x52 already)."""
    _check_resize(resize)
    if file_layout(path) == "wm811k":
        return load_wm811k(path).resized(resize)
    return load_mixedwm38(path)
