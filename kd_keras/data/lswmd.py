"""Import the public WM-811K release (`LSWMD.pkl`) into the WM-811K npz layout.

`LSWMD.pkl` is a pandas DataFrame saved with pickle (811,457 wafers; columns `waferMap`, a 2-D
die array, and `failureType`, e.g. `[['Center']]`, or empty for the 638,507 unlabelled maps).
Unpickling runs code the file names, so it is read only when the caller says it trusts the
file (`python -m kd_keras.data import-lswmd LSWMD.pkl --trust-pickle --out wm811k.npz`), and
only with pandas installed (`pip install pandas`: an optional extra, never a requirement).
What it writes is our plain-array layout (`kd_keras.data.wm811k`), safe to share and load.

Its 638,507 unlabelled maps are what Paper 1's label-free distillation can learn from: with
`--unlabelled-out`, they are written too, in the layout without labels (`wm811k.save_unlabelled`),
for `python -m kd_keras.distill --unlabelled`.

Example (rows as the DataFrame holds them, without pandas):

>>> rows = [(np.ones((3, 4)), np.array([["Center"]])), (np.ones((2, 2)), np.array([]))]
>>> fab, unlabelled, count = fab_maps_from_rows(rows)
>>> len(fab), count, fab.shapes.tolist(), unlabelled[0].shape
(1, 1, [[3, 4]], (2, 2))
"""

import pickle  # noqa: S403  (only behind trust_pickle=True, see load_lswmd)
import sys

import numpy as np

from kd_keras.data.mixedwm38 import FAILED_DIE
from kd_keras.data.wm811k import CLASS_NAMES, FabMaps, save_unlabelled, save_wm811k
from kd_keras.errors import ToolkitError

PICKLE_WARNING = ("LSWMD.pkl is a Python pickle: loading it runs code the file names. Pass --trust-pickle only "
                  "for a file you downloaded from a source you trust")


def fab_maps_from_rows(rows, source="LSWMD.pkl", keep_unlabelled=True):
    """(`FabMaps` of the labelled rows, the maps of the rows without a label (none unless
    `keep_unlabelled`: WM-811K has 638,507 of them), how many rows had no label) from
    (waferMap, failureType) pairs; a map or label that is none of ours raises `ToolkitError`
    naming its row."""
    maps, classes, unlabelled, unlabelled_rows = [], [], [], 0
    for row, (wafer_map, failure_type) in enumerate(rows):
        die_map = np.asarray(wafer_map)
        if die_map.ndim != 2 or die_map.size == 0 or die_map.min() < 0 or die_map.max() > FAILED_DIE:
            raise ToolkitError(f"{source} row {row}: waferMap is not a 2-D map of die values 0, 1, 2 "
                               f"(shape {die_map.shape})")
        names = np.asarray(failure_type).ravel()
        if names.size == 0:
            unlabelled_rows += 1
            if keep_unlabelled:
                unlabelled.append(die_map.astype(np.uint8))
            continue
        name = str(names[0])
        if names.size != 1 or name not in CLASS_NAMES:
            raise ToolkitError(f"{source} row {row}: failureType {names.tolist()} is not one of "
                               f"{', '.join(CLASS_NAMES)}")
        maps.append(die_map.astype(np.uint8))
        classes.append(CLASS_NAMES.index(name))
    if not maps:
        raise ToolkitError(f"{source}: no labelled maps")
    return FabMaps.from_maps(maps, classes, source=source), unlabelled, unlabelled_rows


def load_lswmd(path, trust_pickle=False):
    """The rows (waferMap, failureType) of `LSWMD.pkl`; refuses unless `trust_pickle`."""
    if not trust_pickle:
        raise ToolkitError(f"{path}: {PICKLE_WARNING}")
    try:
        import pandas
    except ImportError:
        raise ToolkitError("importing LSWMD.pkl needs pandas, an optional extra: pip install pandas") from None
    # The file was written by pandas 0.x, whose index classes lived in `pandas.indexes`.
    sys.modules.setdefault("pandas.indexes", pandas.core.indexes)
    with open(path, "rb") as f:
        frame = pickle.load(f)  # noqa: S301  (the caller trusts this file: trust_pickle)
    missing = [column for column in ("waferMap", "failureType") if column not in getattr(frame, "columns", ())]
    if missing:
        raise ToolkitError(f"{path}: not the WM-811K DataFrame (no column {missing[0]!r})")
    return zip(frame["waferMap"], frame["failureType"])


def import_lswmd(path, out, trust_pickle=False, unlabelled_out=None):
    """`LSWMD.pkl` -> our WM-811K layout at `out` (the labelled maps), and the maps without a
    label at `unlabelled_out` where given; returns (`FabMaps`, how many maps had no label)."""
    fab, unlabelled, unlabelled_rows = fab_maps_from_rows(load_lswmd(path, trust_pickle), source=str(path),
                                                          keep_unlabelled=unlabelled_out is not None)
    save_wm811k(out, fab.maps(), fab.classes)
    if unlabelled:
        save_unlabelled(unlabelled_out, unlabelled)
    return fab, unlabelled_rows
