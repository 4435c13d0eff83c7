"""Run directories: one process at a time, what a run was started with, and never clobbering one.

A training command owns its `--out` directory. Before any work it takes the directory's
lock (a second process is refused, naming the holder's pid) and checks what is there:

- nothing (or an empty directory): a new run;
- a run (its `config.json`): refused, unless `--resume` continues it (with the same
  arguments: changed ones are named and refused) or `--overwrite` starts it again;
- anything else: refused, naming what is there. Nothing is deleted that a run did not write.

Example:

>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> with locked(out):
...     open_run(out, {"seed": 0})
...     write_config(out, {"seed": 0})
'new'
>>> with locked(out):
...     open_run(out, {"seed": 1}, resume=True)
Traceback (most recent call last):
...
kd_keras.errors.RunDirectoryError: ... was started with other arguments: seed 0 -> 1; ...
"""

import contextlib
import datetime
import fcntl
import hashlib
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

from kd_keras.data import DEFAULT_RESIZE, DEFAULT_SYNTHETIC_MAPS
from kd_keras.errors import FileFormatError, RunDirectoryError
from kd_keras.fileio import listing, read_json, write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"

# This process's locks: {directory: [file descriptor, depth]}, so that a function that
# locks its training directory can run inside a command that locked the same one.
_held = {}


@contextlib.contextmanager
def locked(directory):
    """Hold `directory`'s lock (creating the directory) for the block.

    Another process holding it makes this raise `RunDirectoryError` with its pid. The lock
    is the kernel's (`flock`): it ends with the process, even one killed by kill -9."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunDirectoryError(f"{directory} is in use by another run (pid {holder}); wait for it to end, "
                                "or choose another directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # releases the lock; the file stays, its pid is overwritten by the next holder


def entries(directory):
    """The names in `directory` other than its lock file (none if it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(entry.name for entry in directory.iterdir() if entry.name != LOCK_FILE)


def open_run(directory, arguments, *, resume=False, overwrite=False, ignored=()):
    """Check `directory` before a run uses it; return 'new' or 'resume'.

    Call it holding `locked(directory)`. A run found there is refused unless `resume`
    (and its `config.json` arguments equal `arguments`, but for those in `ignored`) or
    `overwrite` (the directory is emptied, its lock kept). A directory that holds other
    files is always refused."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunDirectoryError(f"{directory} is a file, not a run directory")
    if not entries(directory):
        if resume:
            print(f"nothing to resume in {directory}: starting the run")
        return "new"
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirectoryError(f"{directory} is not empty and holds no run "
                                f"({listing(directory, entries(directory))}); choose a new or empty directory")
    if overwrite:
        for name in entries(directory):
            path = directory / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        print(f"--overwrite: removed the run that was in {directory}")
        return "new"
    if not resume:
        what = "a finished run" if is_finished(directory) else "an unfinished run"
        raise RunDirectoryError(f"{directory} holds {what}; continue it with --resume, start it again with "
                                "--overwrite, or choose another directory")
    changes = changed_settings(read_config(config_path)["arguments"], arguments, ignored)
    if changes:
        raise RunDirectoryError(f"{directory} was started with other arguments: {changes}; resume it with the "
                                "same ones, or start it again with --overwrite")
    return "resume"


def is_finished(directory):
    """Whether a run directory holds a finished run (its metrics are written last)."""
    return (Path(directory) / METRICS_FILE).is_file()


def changed_settings(stored, wanted, ignored=()):
    """'name old -> new, ...' for the settings that differ (a key one side lacks counts), or ''."""
    stored, wanted = plain(stored), plain(wanted)
    missing = object()
    changes = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key, missing), wanted.get(key, missing)
        if key not in ignored and old != new:
            old, new = ("(not set)" if value is missing else value for value in (old, new))
            changes.append(f"{key} {old} -> {new}")
    return ", ".join(changes)


def plain(settings):
    """Settings as JSON holds them: paths as strings, tuples as lists."""
    def value_of(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (tuple, list)):
            return [value_of(v) for v in value]
        return value
    return {key: value_of(value) for key, value in settings.items()}


def versions():
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def write_config(run_dir, arguments):
    """config.json: the arguments, the command line, when, and the package versions."""
    write_json(Path(run_dir) / CONFIG_FILE, {
        "arguments": plain(arguments),
        "command": " ".join(sys.argv),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
    })


def read_config(path):
    """A run's config.json, checked: a dict with an "arguments" dict."""
    config = read_json(path)
    if not isinstance(config, dict) or not isinstance(config.get("arguments"), dict):
        raise FileFormatError(f"{path}: not a run configuration (expected an object with an \"arguments\" object)")
    return config


def run_data_settings(model_path):
    """{"data", "synthetic_maps", "seed", "resize"} of the run that made a model file (the
    config.json in its directory or the one above), or None for a model made elsewhere."""
    model_path = Path(model_path)
    for directory in (model_path.parent, model_path.parent.parent):
        path = directory / CONFIG_FILE
        if path.is_file():
            arguments = read_config(path)["arguments"]
            settings = {"data": arguments.get("data"), "synthetic_maps": arguments.get("synthetic_maps",
                                                                                   DEFAULT_SYNTHETIC_MAPS),
                        "seed": arguments.get("seed", 0), "resize": arguments.get("resize", DEFAULT_RESIZE)}
            for field, kinds in (("data", (str, list, type(None))), ("synthetic_maps", int), ("seed", int),
                                 ("resize", str)):
                value = settings[field]
                if (not isinstance(value, kinds) or isinstance(value, bool)
                        or isinstance(value, list) and not all(isinstance(v, str) for v in value)):
                    raise FileFormatError(f"{path}: field 'arguments.{field}' has the wrong type ({value!r})")
            data = settings["data"]  # one file, several (a list), or synthetic maps
            data = (None if data in (None, "None") else Path(data) if isinstance(data, str)
                    else tuple(map(Path, data)))
            return {**settings, "data": data}
    return None


def digest(*items):
    """A short hash of arrays (or bytes): names the data or model a run trained on, in its settings."""
    sha = hashlib.sha256()
    for item in items:
        sha.update(item if isinstance(item, bytes) else np.ascontiguousarray(item).data)
    return sha.hexdigest()[:16]
