"""The code passes its linter (ruff, configured in pyproject.toml), and what ruff does not check."""

import ast
import re
import shutil
import subprocess

from tests.helpers import REPO, require

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def test_ruff_finds_nothing():
    require("ruff")
    result = subprocess.run([shutil.which("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


PACKAGES = ("kd_keras", "tflite", "benchmarks", "tests")
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
ODD_BACKSLASHES_AT_LINE_END = re.compile(r"(?<!\\)(\\\\)*\\\n")  # "\\" before a line break is a backslash


def test_commands_in_docstrings_keep_their_line_breaks():
    # A shell line continuation in a docstring that is not raw joins the two lines in --help:
    # "... seed0         --runs ...". Spell it as a doubled backslash there.
    joined = []
    for path in sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, DOCUMENTED) and ast.get_docstring(node, clean=False) is not None:
                docstring = node.body[0].value
                text = ast.get_source_segment(source, docstring)
                if not text.lower().startswith("r") and ODD_BACKSLASHES_AT_LINE_END.search(text):
                    joined.append(f"{path.relative_to(REPO)}:{docstring.lineno}")
    assert not joined, joined
