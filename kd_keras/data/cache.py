"""An HDF5 cache (h5py) for preprocessed arrays, keyed by the file they were made from.

Validating the public MixedWM38 file means streaming 412 MB of int32; the cache keeps
the validated uint8 arrays (75 MB for 27,911 maps, gzip-compressed on disk) so later
runs read them in a second. A cache made from an older version of the source file
(different size or modification time) is rebuilt, never used.

Example:

>>> import os, tempfile, numpy as np
>>> tmp = tempfile.mkdtemp()
>>> write_arrays(os.path.join(tmp, "c.h5"), {"x": np.arange(3)}, {"note": "demo"})
>>> arrays, attrs = read_arrays(os.path.join(tmp, "c.h5"))
>>> arrays["x"], attrs["note"]
(array([0, 1, 2]), 'demo')
"""

from pathlib import Path

import h5py
import numpy as np

from kd_keras.data.mixedwm38 import LABELS_KEY, MAPS_KEY, WaferMaps, load_mixedwm38
from kd_keras.fileio import atomic_path


def write_arrays(path, arrays, attrs=None):
    """Write named arrays (and string/number attributes) to an HDF5 file, atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, array in arrays.items():
            f.create_dataset(name, data=np.asarray(array), compression="gzip", compression_opts=1)
        f.attrs.update(attrs or {})


def read_arrays(path):
    """Read every dataset and attribute of an HDF5 file written by `write_arrays`."""
    with h5py.File(path, "r") as f:
        arrays = {name: f[name][()] for name in f}
        attrs = {name: _plain(value) for name, value in f.attrs.items()}
    return arrays, attrs


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _source_stamp(path):
    stat = Path(path).stat()
    return {"source": str(Path(path).resolve()), "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns}


def load_mixedwm38_cached(path, cache_path):
    """`load_mixedwm38`, reading from `cache_path` when it was made from this very file."""
    stamp = _source_stamp(path)
    if Path(cache_path).is_file():
        arrays, attrs = read_arrays(cache_path)
        if all(attrs.get(k) == v for k, v in stamp.items()):
            return WaferMaps(arrays[MAPS_KEY], arrays[LABELS_KEY], source=str(path),
                             legacy_failed_dies=attrs["legacy_failed_dies"])
    data = load_mixedwm38(path)
    write_arrays(cache_path, {MAPS_KEY: data.maps, LABELS_KEY: data.labels},
                 {**stamp, "legacy_failed_dies": data.legacy_failed_dies})
    return data
