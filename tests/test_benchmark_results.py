"""Where a benchmark's results go: `<out>.json`, `<out>.md` (and `.png`), whether `--out` names
them with a suffix or without, and whatever dots the name holds."""

import json

import pytest

from benchmarks import results_file, write_results

TIER = "unit"


@pytest.mark.parametrize("out, suffix, expected", [
    ("results/firmware_footprint.json", ".md", "results/firmware_footprint.md"),
    ("results/first_run.json", ".json", "results/first_run.json"),
    ("results/wm811k_per_budget_balance0.5", ".json", "results/wm811k_per_budget_balance0.5.json"),
    ("results/kd_vs_hard", ".png", "results/kd_vs_hard.png"),
])
def test_a_results_file_keeps_the_name_it_was_given(out, suffix, expected, tmp_path):
    assert results_file(tmp_path / out, suffix) == tmp_path / expected


def test_results_are_written_whole_beside_their_table(tmp_path, capsys):
    write_results(tmp_path / "teacher_balance0.5", {"balance": 0.5}, "| balance |\n")
    assert json.loads((tmp_path / "teacher_balance0.5.json").read_text()) == {"balance": 0.5}
    assert (tmp_path / "teacher_balance0.5.md").read_text() == "| balance |\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["teacher_balance0.5.json", "teacher_balance0.5.md"]
    assert "| balance |" in capsys.readouterr().out
