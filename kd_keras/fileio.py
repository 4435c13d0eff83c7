"""Files that are complete or absent: atomic writes, a directory swapped in whole, JSON read with its name.

A kill, a full disk or a read-only folder at any instant leaves either the old artifact or
the new one, never half of one, and every failure names the file it happened to.

Example:

>>> import os, tempfile
>>> out = os.path.join(tempfile.mkdtemp(), "notes.json")
>>> write_json(out, {"done": True})
>>> read_json(out)
{'done': True}
"""

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from kd_keras.errors import FileFormatError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    An `OSError` on the way (disk full, permissions, a directory in the way) is raised
    again naming `path`, so the message says which artifact could not be written.

    Example:

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(out).read()
    'done'
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name keeps the extension: some writers (Keras' `save`) insist on it.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; artifacts are not
        os.replace(tmp, path)
    except OSError as error:
        if error.filename not in (None, str(tmp), str(path.parent)):
            raise  # about another file: its own name says which
        raise OSError(error.errno, _reason(error), str(path)) from error
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_text(path, text):
    """Write `text` to `path` through `atomic_path`: the old file stays whole until the new one is."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj):
    """Write `obj` as indented JSON to `path`, atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path):
    """The JSON object in `path`; a file that is not JSON raises `FileFormatError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not a JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise FileFormatError(f"{path}: not valid JSON ({error.msg}, line {error.lineno} column {error.colno})") \
            from None


def write_directory(directory, files):
    """Write `files` ({name: bytes or text}) into `directory` all at once, keeping its other entries.

    They are written into a temporary directory beside it, with (hard links to) whatever
    else `directory` held, which is then swapped into place by `replace_directory`: until
    that single step `directory` is untouched, and after it, it is complete. A symbolic
    link to a directory stays, and its target is replaced."""
    directory = Path(directory).resolve()
    staging = None
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        for name, content in files.items():
            (staging / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        if directory.is_dir():
            copy_entries(directory, staging, [entry.name for entry in directory.iterdir() if entry.name not in files])
        os.chmod(staging, stat.S_IMODE(directory.stat().st_mode) if directory.is_dir() else 0o777 & ~_umask())
        replace_directory(staging, directory)
    except OSError as error:
        ours = error.filename is None or Path(error.filename).is_relative_to(directory.parent) and \
            os.path.relpath(error.filename, directory.parent).startswith(f".{directory.name}.")
        if ours:  # the temporary directory, which the user never named
            raise OSError(error.errno, _reason(error), str(directory)) from error
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def listing(directory, names=None, shown=5):
    """'a, b/, c and 4 more': what a directory holds (or `names` of it), for messages."""
    directory = Path(directory)
    names = sorted(entry.name for entry in directory.iterdir()) if names is None else names
    marked = [name + ("/" if (directory / name).is_dir() else "") for name in names]
    more = f" and {len(marked) - shown} more" if len(marked) > shown else ""
    return ", ".join(marked[:shown]) + more


def replace_directory(staging, target):
    """Put the directory `staging` where `target` is, in one step: afterwards `target` holds
    what `staging` held, and `staging` holds the old `target` (or nothing, if there was none).

    On Linux this is one `renameat2(RENAME_EXCHANGE)` call: at no instant is `target`
    missing or half-written. Elsewhere it is two renames, and a failure of the second puts
    the old directory back."""
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
    os.replace(target, aside / "previous")
    try:
        os.rename(staging, target)
    except BaseException:
        os.replace(aside / "previous", target)
        aside.rmdir()
        raise
    os.replace(aside / "previous", staging)
    aside.rmdir()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first, second):
    """Swap two paths atomically with Linux's renameat2; False where the system has no such call."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # this kernel or file system cannot exchange
        return False
    raise OSError(code, os.strerror(code), str(second))


def copy_entries(source, destination, names):
    """Copy the entries `names` of directory `source` into `destination` (hard links where the
    file system allows: same bytes, no copying)."""
    for name in names:
        src, dst = Path(source) / name, Path(destination) / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(src, dst, follow_symlinks=False)


def _link_or_copy(src, dst, *, follow_symlinks=True):
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return dst
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=follow_symlinks)
    return dst


def _reason(error):
    """The words of an OSError without its file name (the caller names the file)."""
    return error.strerror or str(error)


def _umask():
    # Read where the kernel shows it: setting it to read it back would, for that instant,
    # give files that another thread creates (students train side by side) the wrong mode.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration):  # no /proc (not Linux)
        mask = os.umask(0)
        os.umask(mask)
        return mask
