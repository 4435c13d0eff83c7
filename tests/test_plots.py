"""Every plotting function writes a real, non-empty PNG, and rejects input it cannot draw."""

import numpy as np
import pytest

from kd_keras import plots
from kd_keras.data import NUM_PATTERNS, PATTERN_NAMES, generate_wafer_maps

TIER = "unit"  # tests marked with no tier of their own (conftest.py)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    return generate_wafer_maps(76, seed=0)


def assert_png(path):
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 5000, (path, len(content))
    assert not list(path.parent.glob(".*")), "a temporary file was left behind"


def test_pattern_grid(data, tmp_path):
    plots.plot_pattern_grid(data.maps, data.pattern_ids, tmp_path / "grid.png", maps_per_pattern=2)
    assert_png(tmp_path / "grid.png")


def test_pattern_counts(data, tmp_path):
    plots.plot_pattern_counts(data.pattern_ids, tmp_path / "counts.png")
    assert_png(tmp_path / "counts.png")


def test_training_curves(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,exact_match,loss,val_exact_match,val_loss\n0,0.2,1.0,0.1,1.1\n1,0.5,0.6,0.4,0.7\n")
    plots.plot_training_curves(tmp_path / "history.csv", tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")


def test_validation_curves(tmp_path):
    plots.plot_validation_curves({"hard": {"seed 0": [0.5, 0.7, 0.8], "seed 1": [0.4, 0.7, 0.9]},
                                  "kd": {"seed 0": [0.6, 0.75]}}, tmp_path / "val.png")
    assert_png(tmp_path / "val.png")
    with pytest.raises(ValueError, match="at least one epoch"):
        plots.plot_validation_curves({"hard": {"seed 0": []}}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_confusion(tmp_path):
    confusion = np.eye(NUM_PATTERNS, NUM_PATTERNS + 1, dtype=int) * 5
    confusion[3, NUM_PATTERNS] = 2
    plots.plot_confusion(confusion, tmp_path / "confusion.png")
    assert_png(tmp_path / "confusion.png")


def test_accuracy_vs_flash(tmp_path):
    points = [{"label": "net2", "bytes": 9_944, "accuracy": 0.48, "group": "ours, int8"},
              {"label": "Net-2", "bytes": 21 * 1024, "accuracy": 0.7711, "group": "paper, float32"}]
    plots.plot_accuracy_vs_flash(points, tmp_path / "flash.png", budgets={"21 KB": 21 * 1024})
    assert_png(tmp_path / "flash.png")
    with pytest.raises(ValueError, match="no points"):
        plots.plot_accuracy_vs_flash([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_per_pattern_accuracy(tmp_path):
    per_pattern = {"net1": {name: 0.9 for name in PATTERN_NAMES}, "net2": {"Normal": 0.5, "C+EL": 0.25}}
    plots.plot_per_pattern_accuracy(per_pattern, tmp_path / "patterns.png")
    assert_png(tmp_path / "patterns.png")
    with pytest.raises(ValueError, match="no models"):
        plots.plot_per_pattern_accuracy({}, tmp_path / "none.png")


def test_mistakes(data, tmp_path):
    wrong = data.labels[:5].copy()
    wrong[:, 0] ^= 1
    plots.plot_mistakes(data.maps[:5], data.labels[:5], wrong, tmp_path / "mistakes.png", columns=3)
    assert_png(tmp_path / "mistakes.png")
    with pytest.raises(ValueError, match="got 5, 5 and 4"):
        plots.plot_mistakes(data.maps[:5], data.labels[:5], wrong[:4], tmp_path / "bad.png")
