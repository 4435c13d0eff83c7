"""Atomic file writes: an artifact is either complete or absent, never half-written."""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Example:

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(out).read()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the extension: some writers (Keras' `save`) insist on it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; artifacts are not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text):
    """Write `text` to `path` through `atomic_path`: the old file stays whole until the new one is."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
