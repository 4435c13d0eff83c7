"""Reading `.npz` wafer-map files safely: one array at a time, headers checked before any
data is decompressed, nothing unpickled, and every problem named by file, key and row.

Both layouts (`kd_keras.data.mixedwm38` and `kd_keras.data.wm811k`) read through here.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
>>> np.savez(path, x=np.arange(3, dtype=np.int16))
>>> with open_archive(path, required={"x": "three numbers"}) as members:
...     f, shape, dtype = open_npy(members, "x")
...     with f:
...         read_exactly(f, dtype, 3, path, "x").tolist()
[0, 1, 2]
>>> open_archive(path, required={"y": "the maps"}).__enter__()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kd_keras.data.npz.WaferDataError: ...a.npz: missing key 'y' (found ['x']); expected 'y' = the maps
"""

import contextlib
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from kd_keras.errors import FileFormatError


class WaferDataError(FileFormatError):
    """A wafer-map file that cannot be used, with the file, key and row that are wrong."""

    def __init__(self, path, message, key=None, row=None):
        where = str(path)
        if key is not None:
            where += f" [{key}]"
        if row is not None:
            where += f" row {row}"
        super().__init__(f"{where}: {message}")


class Members(dict):
    """{key: member name} of an open npz archive; `.archive` and `.path` say where they are."""

    def __init__(self, archive, path):
        super().__init__((name.removesuffix(".npy"), name) for name in archive.namelist())
        self.archive, self.path = archive, path


@contextlib.contextmanager
def open_archive(path, required):
    """Open an npz file and yield its `Members`; `required` is {key: what it should hold},
    checked up front. Zip-level failures while reading become `WaferDataError`s."""
    path = Path(path)
    if path.is_dir():
        raise WaferDataError(path, "is a directory, not an .npz file")
    if not path.is_file():
        raise WaferDataError(path, "no such file")
    if path.stat().st_size == 0:
        raise WaferDataError(path, "the file is empty (0 bytes)")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise WaferDataError(
            path, "not an npz archive (expected a zip file from numpy.savez), or it is truncated"
        ) from None
    with archive:
        members = Members(archive, path)
        missing = [key for key in required if key not in members]
        if missing:
            raise WaferDataError(
                path, f"missing key {missing[0]!r} (found {sorted(members) or 'none'}); expected "
                + ", ".join(f"{key!r} = {what}" for key, what in required.items()))
        try:
            yield members
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise WaferDataError(path, f"the archive is truncated or corrupt ({error})") from None
        except RuntimeError as error:  # zipfile's word for an encrypted member
            raise WaferDataError(path, f"cannot read the archive: {error}") from None
        except NotImplementedError as error:
            raise WaferDataError(path, f"cannot read the archive: {error} (numpy.savez writes plain or "
                                 "deflate-compressed members)") from None


def open_npy(members, key):
    """Open one array of the archive; return (file, shape, dtype) after checking the header."""
    path = members.path
    f = members.archive.open(members[key])
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read_header(f)
    except ValueError as error:
        f.close()
        raise WaferDataError(path, f"not a valid .npy array ({error})", key=key) from None
    if dtype.hasobject:
        f.close()
        raise WaferDataError(path, "holds Python objects, which are never unpickled", key=key)
    if fortran_order:
        f.close()
        raise WaferDataError(path, "is Fortran-ordered; re-save it C-ordered", key=key)
    _check_size(members.archive.getinfo(members[key]).file_size - f.tell(), shape, dtype, path, key, f)
    return f, shape, dtype


def _check_size(stored_bytes, shape, dtype, path, key, f):
    """Refuse, before decompressing it, an array larger than its member holds or than memory."""
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > stored_bytes:
        f.close()
        raise WaferDataError(path, f"declares an array of shape {shape} ({declared:,} bytes) but holds "
                             f"{max(stored_bytes, 0):,} bytes: the file is truncated or forged", key=key)
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None
    if memory and declared > memory:
        f.close()
        raise WaferDataError(path, f"declares an array of {declared / 2**30:,.1f} GiB, more than this machine's "
                             f"{memory / 2**30:,.1f} GiB of memory", key=key)


def read_exactly(f, dtype, count, path, key):
    """`count` values of `dtype` from `f`, or a `WaferDataError` if the array ends early."""
    nbytes = count * dtype.itemsize
    buffer = f.read(nbytes)
    if len(buffer) != nbytes:
        raise WaferDataError(path, "the array ends early: the file is truncated", key=key)
    return np.frombuffer(buffer, dtype)


def read_array(members, key, ndim, what):
    """A whole (small) array of `ndim` dimensions, header checked first."""
    f, shape, dtype = open_npy(members, key)
    with f:
        if len(shape) != ndim:
            raise WaferDataError(members.path, f"expected {what}, got shape {shape}", key=key)
        return read_exactly(f, dtype, int(np.prod(shape)), members.path, key).reshape(shape)


def check_integer_valued(values, dtype, path, key, first_row, what):
    """Raise if `values` (rows from `first_row` on) are not whole numbers."""
    if dtype.kind in "iub":
        return
    if dtype.kind != "f":
        raise WaferDataError(path, f"{what} must be integers, got dtype {dtype}", key=key)
    bad_rows = ~(values == np.round(values)).reshape(len(values), -1).all(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        value = values[row][values[row] != np.round(values[row])].flat[0]
        raise WaferDataError(
            path, f"{what} must be integers, found {value}", key=key, row=first_row + row
        )
