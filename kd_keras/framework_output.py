"""What TensorFlow prints that is not the toolkit's, kept off the screen where it is printed.

Imported by `kd_keras/__init__.py`, so before TensorFlow is:

- `TF_CPP_MIN_LOG_LEVEL=3`: TensorFlow's C++ start-up chatter (CPU features, oneDNN notes)
  keeps only FATAL lines; a real error reaches Python as an exception anyway.
- Python's "triggered tf.function retracing" warning is dropped (`_OneTracePerModel`).
- The lines no setting reaches are matched one by one and dropped from the C-level stderr
  of the call that prints them (`c_stderr_without`): the CUDA probe that `import tensorflow`
  logs through Abseil before any log level is read (TF_CPP_MIN_LOG_LEVEL, GLOG_minloglevel
  and CUDA_VISIBLE_DEVICES leave it; the tensorflow-cpu wheel lacks it, but tf-keras, which
  tensorflow-model-optimization needs, requires the full tensorflow); on CPUs where oneDNN's
  kernels are on by default (AVX-512 VNNI, AMX), the note saying so, which the same import
  logs twice the same way (TF_ENABLE_ONEDNN_OPTS=1 leaves it too); and the converter's
  `fully_quantize: ...` line, written without any logger. Every other line is written back.

`TF_CPP_MIN_LOG_LEVEL=0` in the environment shows everything again.

Example, as `tflite.quantize` converts a model:

    with c_stderr_without(CONVERTER_LINES):
        flatbuffer = converter.convert()
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHOW_EVERYTHING = os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"

# What `import tensorflow` prints on a machine without CUDA (once per library that probes it), and on
# a CPU where oneDNN's kernels are on by default.
TENSORFLOW_IMPORT_LINES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"I\d{4} [\d:.]+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. You may see slightly different numerical "
    r"results due to floating-point round-off errors from different computation orders\. To turn them off, set the "
    r"environment variable `TF_ENABLE_ONEDNN_OPTS=0`\.",
)
# What the TFLite converter prints each time it quantizes a model.
CONVERTER_LINES = (
    r"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+",
)


@contextlib.contextmanager
def captured_c_stderr():
    """Point file descriptor 2 at a temporary file while the block runs (C++ libraries print
    to the descriptor, not to `sys.stderr`). Yields a namespace whose `text` holds what was
    written once the block has ended; the descriptor is restored however it ends."""
    output = types.SimpleNamespace(text="")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield output
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            output.text = captured.read().decode(errors="replace")


@contextlib.contextmanager
def c_stderr_without(patterns):
    """Run the block with its C-level stderr captured, then write back every line that no
    regular expression of `patterns` matches whole (all of it with TF_CPP_MIN_LOG_LEVEL=0),
    however the block ends."""
    unwanted = re.compile("|".join(f"(?:{pattern})" for pattern in patterns))
    output = None
    try:
        with captured_c_stderr() as output:
            yield
    finally:
        if output is not None:
            _write_back(output.text, unwanted)


def _write_back(text, unwanted):
    kept = [line for line in text.splitlines(keepends=True)
            if SHOW_EVERYTHING or not unwanted.fullmatch(line.rstrip("\r\n"))]
    if kept:
        os.write(2, "".join(kept).encode())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports the `tensorflow` package, the first time anything does, with
    `TENSORFLOW_IMPORT_LINES` dropped from what it prints. A finder, not an import at start-up:
    commands that never need TensorFlow (`kd_keras.data inspect`) do not pay its 4 s."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderWithout(spec.loader, TENSORFLOW_IMPORT_LINES)
        return spec


class _LoaderWithout:
    """A loader that runs another's `exec_module` inside `c_stderr_without(patterns)` and is
    that loader in every other respect."""

    def __init__(self, loader, patterns):
        self.loader, self.patterns = loader, patterns

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with c_stderr_without(self.patterns):
            self.loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _OneTracePerModel(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning, a false alarm here.

    TensorFlow counts the traces of a function by its code object, and every Keras model's
    train and predict step share one code object: a job that trains or evaluates several
    models (a teacher, its students, each on the test and the rotated test maps) traces each
    model's step once, and TensorFlow reads those as one function retraced in a loop."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_OneTracePerModel())
if "tensorflow" not in sys.modules and not SHOW_EVERYTHING:
    sys.meta_path.insert(0, _QuietTensorFlowImport())
