"""`python -m benchmarks.teacher_ceiling`: teachers trained from several seeds, their ensemble, the
validation maps they all get wrong, and thresholds tuned on validation."""

import json

import numpy as np
import pytest

from benchmarks.teacher_ceiling import exact_match, main, markdown
from kd_keras.evaluation import tune_thresholds


@pytest.mark.unit
def test_tuned_thresholds_fix_a_defect_read_too_eagerly_and_leave_the_rest_at_zero():
    labels = np.random.default_rng(0).integers(0, 2, (50, 8)).astype("float32")
    logits = np.where(labels > 0, 2.0, -2.0)
    logits[:, 2] = np.where(labels[:, 2] > 0, 2.0, 0.5)  # defect 2's absent maps sit above 0
    assert exact_match(logits, labels) < 1
    thresholds = tune_thresholds(logits, labels)
    np.testing.assert_array_equal(thresholds, [0, 0, 0.5, 0, 0, 0, 0, 0])  # the lowest that works
    assert exact_match(logits, labels, thresholds) == 1


@pytest.mark.e2e
def test_quick_run_writes_consistent_figures_table_and_gallery(tmp_path):
    out = tmp_path / "results" / "ceiling"
    assert main(["--quick", "--arch", "vgg7", "--seeds", "0", "1", "--runs", str(tmp_path / "runs"),
                 "--out", str(out)]) == 0
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
    assert "`python -m benchmarks.teacher_ceiling --arch vgg7 --seeds 0 1`" in markdown(results)
    assert out.with_suffix(".png").is_file() == (results["maps_wrong_by_every_teacher"]["val"] > 0)
    for seed in (0, 1):
        assert (tmp_path / "runs" / f"vgg7-seed{seed}" / "teacher.keras").is_file()
    # --init: every seed starts from a trained teacher's weights, and the results say which.
    pretrained = tmp_path / "runs" / "vgg7-seed0"
    assert main(["--quick", "--arch", "vgg7", "--seeds", "0", "1", "--runs", str(tmp_path / "runs-init"),
                 "--out", str(out), "--init", str(pretrained)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["init"].endswith("runs/vgg7-seed0/teacher.keras")
    assert f"--seeds 0 1 --init {results['init']}`" in out.with_suffix(".md").read_text()
    settings = json.loads((tmp_path / "runs-init" / "vgg7-seed1" / "training.json").read_text())["settings"]
    assert settings["init"] == str(pretrained / "teacher.keras")


@pytest.mark.unit
def test_a_repeated_seed_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quick", "--seeds", "3", "3", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "at least two seeds, all different; got [3, 3]" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
