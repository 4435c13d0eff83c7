"""The toolkit's expected failures: each message names the file (or argument) and the problem.

The command lines turn these, and `OSError`s, into one line and exit status 1
(`kd_keras.cli.run_command`); anything else is a bug and keeps its traceback.
"""


class ToolkitError(Exception):
    """An expected failure; its message alone tells the user what is wrong and where."""


class FileFormatError(ToolkitError, ValueError):
    """A file that exists but cannot be used: not JSON, a card or config with missing or
    mistyped fields, a corrupt `.keras` or `.tflite`, ..."""


class RunDirectoryError(ToolkitError):
    """A run directory that cannot be used as asked: in use, holding another run, or resumed
    with other settings."""
