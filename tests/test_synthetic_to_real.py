"""The synthetic maps must be realistic enough to matter: a CNN trained on them alone
classifies real maps well above chance. A small run of `benchmarks/synthetic_to_real.py`
(the full run's figure is in the README)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cnn_trained_on_synthetic_maps_classifies_real_maps_above_chance(real_data_path, tmp_path):
    out = tmp_path / "synthetic_to_real.json"
    subprocess.run(
        [sys.executable, "benchmarks/synthetic_to_real.py", "--data", real_data_path,
         "--train-maps", "7600", "--epochs", "12", "--real-maps", "2000", "--out", out],
        cwd=REPO, check=True, capture_output=True, timeout=600,
    )
    results = json.loads(out.read_text())
    assert results["real_maps"] == 2000
    assert results["exact_match_accuracy"] > 3 * results["chance_exact_match"], results
    assert len(results["per_pattern_accuracy"]) == 38
