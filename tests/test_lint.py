"""The code passes its linter (ruff, configured in pyproject.toml)."""

import shutil
import subprocess


from tests.helpers import REPO, require

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def test_ruff_finds_nothing():
    require("ruff")
    result = subprocess.run([shutil.which("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
