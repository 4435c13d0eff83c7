"""Each command as a user runs it: its own process, from the repository root (the other tests
call the same `main` functions in the test process)."""

import json
import subprocess
import sys


from tests.helpers import REPO

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def run(module, *args):
    result = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_commands_run_one_after_another(small_npz, stand_in_teacher, tmp_path):
    assert "maps: 342 (52x52 dies)" in run("kd_keras.data", "inspect", small_npz)
    assert "teacher: exact-match accuracy" in run("kd_keras.train_teacher", "--synthetic-maps", 380, "--epochs", 1,
                                                  "--arch", "vgg7", "--out", tmp_path / "teacher")
    printed = run("kd_keras.distill", "--synthetic-maps", 380, "--teacher", stand_in_teacher, "--student", "net2",
                  "--epochs", 1, "--out", tmp_path / "run")
    assert "| net2 | 5,556 |" in printed and f"run directory: {tmp_path / 'run'}" in printed
    printed = run("tflite.convert", tmp_path / "run" / "net2", "--out", tmp_path / "net2", "--budget", "21KB")
    assert "bytes of flash (budget 21,504)" in printed
    report = json.loads(run("tflite.evaluate", tmp_path / "net2", "--data", small_npz, "--json"))
    assert report["metrics"]["maps"] == 342 and report["budget"]["name"] == "21KB"
