"""Arguments the benchmarks share: each refuses a bad one before it trains or writes anything."""

import pytest

from benchmarks import best_per_budget, segclass_kd_vs_hard, teacher_ceiling

TIER = "unit"


@pytest.mark.parametrize("command", [best_per_budget, segclass_kd_vs_hard, teacher_ceiling],
                         ids=lambda module: module.__name__)
@pytest.mark.parametrize("given", ["nowhere", "nowhere/teacher.keras"])
def test_a_missing_init_teacher_is_refused_naming_the_file(command, given, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--quick", "--init", str(tmp_path / given), "--runs", str(tmp_path / "runs"),
                      "--out", str(tmp_path / "results" / "x")])
    assert exit_info.value.code == 2
    assert f"argument --init: no teacher model at {tmp_path / given}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
