"""Each command as a user runs it: its own process, from the repository root (the other tests
call the same `main` functions in the test process)."""

import json
import subprocess
import sys

import numpy as np

from kd_keras.data import CLASS_NAMES, save_wm811k
from tests.helpers import REPO

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


# What TensorFlow would print that the toolkit silences where it starts (kd_keras/__init__.py,
# tflite/quantize.py): a screen of these hid the first run's own output.
FRAMEWORK_NOISE = ("triggered tf.function retracing", "Statistics for quantized inputs")


def run(module, *args):
    result = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [noise for noise in FRAMEWORK_NOISE if noise in result.stderr], result.stderr[-3000:]
    return result.stdout


def test_the_commands_run_one_after_another(small_npz, stand_in_teacher, tmp_path):
    assert "maps: 342 (52x52 dies)" in run("kd_keras.data", "inspect", small_npz)
    assert "teacher: exact-match accuracy" in run("kd_keras.train_teacher", "--synthetic-maps", 380, "--epochs", 1,
                                                  "--arch", "vgg7", "--out", tmp_path / "teacher")
    printed = run("kd_keras.distill", "--synthetic-maps", 380, "--teacher", stand_in_teacher, "--student", "net2",
                  "--epochs", 1, "--out", tmp_path / "run")
    assert "| net2 | 5,556 |" in printed and f"run directory: {tmp_path / 'run'}" in printed
    # The main job ends deployed: the student converted for the budget it fits, measured in
    # TFLite Micro, with the commands that come next.
    deployed = tmp_path / "run" / "models" / "net2"
    assert "| net2 | " in printed.split("# Deployment")[1] and f"{deployed} (248KB)" in printed
    assert f"python -m tflite.evaluate {deployed} --data new_maps.npz" in printed
    assert f"check MODEL_DIR={deployed}" in printed
    assert sorted(p.name for p in deployed.iterdir()) == ["model.tflite", "model_card.json", "model_data.cc",
                                                          "model_data.h", "model_settings.h", "sample_map.h"]
    # Net-2's flash fits 21 KB, its tensor arena not that budget's 16 KB: refused, nothing written.
    refused = subprocess.run([sys.executable, "-m", "tflite.convert", str(tmp_path / "run" / "net2"), "--out",
                              str(tmp_path / "net2"), "--budget", "21KB"], cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 1 and "bytes over the 21 KB budget's 16,384" in refused.stderr
    assert not (tmp_path / "net2").exists()
    printed = run("tflite.convert", tmp_path / "run" / "net2", "--out", tmp_path / "net2", "--budget", "21504")
    assert "bytes of flash (budget 21,504), tensor arena" in printed
    report = json.loads(run("tflite.evaluate", tmp_path / "net2", "--data", small_npz, "--json"))
    assert report["metrics"]["maps"] == 342 and report["budget"]["name"] == "21,504 bytes"


def test_fab_maps_of_other_grids_go_through_the_chain_with_their_resize(stand_in_teacher, tmp_path):
    rng = np.random.default_rng(0)
    grids = rng.integers(15, 90, (180, 2))
    save_wm811k(tmp_path / "fab.npz", [rng.integers(0, 3, tuple(grid)) for grid in grids],
                [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(180)])
    assert "maps: 180 in " in run("kd_keras.data", "inspect", tmp_path / "fab.npz")
    run("kd_keras.distill", "--data", tmp_path / "fab.npz", "--resize", "max", "--teacher", stand_in_teacher,
        "--student", "net2", "--epochs", 1, "--out", tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["arguments"]["resize"] == "max"
    run("tflite.convert", tmp_path / "run" / "net2", "--out", tmp_path / "net2", "--budget", "248KB")
    card = json.loads((tmp_path / "net2" / "model_card.json").read_text())
    assert card["input"]["resize"] == "max" and card["accuracy"]["test_maps"] == 18
    assert "#define WAFER_RESIZE_METHOD kResizeMax" in (tmp_path / "net2" / "model_settings.h").read_text()
    printed = run("tflite.evaluate", tmp_path / "net2", "--data", tmp_path / "fab.npz")
    assert "one class a map (WM-811K's 9): accuracy" in printed and "Near-full" in printed
