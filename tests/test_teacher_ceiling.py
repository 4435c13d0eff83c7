"""`benchmarks/teacher_ceiling.py`: teachers trained from several seeds, their ensemble, the
validation maps they all get wrong, and thresholds tuned on validation."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from teacher_ceiling import exact_match, markdown, tune_thresholds  # noqa: E402


def test_tuned_thresholds_fix_a_defect_read_too_eagerly_and_leave_the_rest_at_zero():
    labels = np.random.default_rng(0).integers(0, 2, (50, 8)).astype("float32")
    logits = np.where(labels > 0, 2.0, -2.0)
    logits[:, 2] = np.where(labels[:, 2] > 0, 2.0, 0.5)  # defect 2's absent maps sit above 0
    assert exact_match(logits, labels) < 1
    thresholds = tune_thresholds(logits, labels)
    np.testing.assert_array_equal(thresholds, [0, 0, 0.5, 0, 0, 0, 0, 0])  # the lowest that works
    assert exact_match(logits, labels, thresholds) == 1


def test_quick_run_writes_consistent_figures_table_and_gallery(tmp_path):
    out = tmp_path / "results" / "ceiling"
    result = subprocess.run([sys.executable, "benchmarks/teacher_ceiling.py", "--quick", "--arch", "vgg7",
                             "--seeds", "0", "1", "--runs", tmp_path / "runs", "--out", out],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    assert list(results["teachers"]) == ["0", "1"] and list(results["wall_seconds"]) == ["teacher seed 0",
                                                                                         "teacher seed 1"]
    for split in ("val", "test"):
        wrong_by_teacher = [round(results["maps"][split] * (1 - row[f"{split}_exact_match_8_views"]))
                            for row in results["teachers"].values()]
        every, any_ = results["maps_wrong_by_every_teacher"][split], results["maps_wrong_by_any_teacher"][split]
        assert every <= min(wrong_by_teacher) <= max(wrong_by_teacher) <= any_ <= results["maps"][split]
    # Tuning starts at 0 and keeps a threshold only when validation does not get worse.
    assert results["tuned_thresholds"]["val_exact_match"] >= results["ensemble"]["val_exact_match"]
    assert list(results["tuned_thresholds"]["per_defect"]) == ["C", "D", "EL", "ER", "L", "NF", "S", "R"]
    assert out.with_suffix(".md").read_text() == markdown(results)
    assert "`python benchmarks/teacher_ceiling.py --arch vgg7 --seeds 0 1`" in markdown(results)
    assert out.with_suffix(".png").is_file() == (results["maps_wrong_by_every_teacher"]["val"] > 0)
    for seed in (0, 1):
        assert (tmp_path / "runs" / f"vgg7-seed{seed}" / "teacher.keras").is_file()


def test_a_repeated_seed_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/teacher_ceiling.py", "--quick", "--seeds", "3", "3",
                             "--out", tmp_path / "x"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "at least two seeds, all different; got [3, 3]" in result.stderr
    assert not list(tmp_path.iterdir())
