"""The `python -m kd_keras.data` command line, in this process (tests/test_cli_smoke.py runs it as a user does)."""

import subprocess

import numpy as np
import pytest

from kd_keras.data import __main__ as data_cli
from kd_keras.data import load_mixedwm38, load_wm811k, save_unlabelled

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@pytest.fixture
def run_cli(capsys):
    """`python -m kd_keras.data ARGS` run here: a CompletedProcess (returncode, stdout, stderr)."""
    def run(*args):
        try:
            status = data_cli.main([str(arg) for arg in args])
        except SystemExit as exit_info:  # argparse
            status = exit_info.code
        return subprocess.CompletedProcess(args, status, *capsys.readouterr())
    return run


def test_synth_then_inspect_then_show(run_cli, tmp_path):
    out = tmp_path / "synthetic.npz"
    result = run_cli("synth", "--n", 76, "--seed", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "wrote 76 synthetic maps (seed 2, mixedwm38 layout)" in result.stdout
    data = load_mixedwm38(out)
    assert len(data) == 76 and np.bincount(data.pattern_ids).tolist() == [2] * 38

    result = run_cli("inspect", out)
    assert result.returncode == 0, result.stderr
    assert "maps: 76 (52x52 dies)" in result.stdout
    assert "patterns: 38 of 38" in result.stdout
    assert result.stdout.count("   2   2.63%") == 38

    grid = tmp_path / "grid.png"
    result = run_cli("show", out, "--out", grid, "--per-pattern", 2)
    assert result.returncode == 0, result.stderr
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and grid.stat().st_size > 10_000

    # The same maps with synthetic ones beside each pattern's: twice the maps a panel, half the
    # panels a row, so as wide and taller.
    both = tmp_path / "both.png"
    result = run_cli("show", out, "--out", both, "--per-pattern", 2, "--beside-synthetic")
    assert result.returncode == 0, result.stderr
    assert png_size(both)[0] == png_size(grid)[0] and png_size(both)[1] > png_size(grid)[1]


def png_size(path):
    """(width, height) of a PNG, from its header."""
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_synth_wm811k_layout_then_inspect_then_show_beside_synthetic(run_cli, tmp_path):
    out = tmp_path / "fab.npz"
    result = run_cli("synth", "--layout", "wm811k", "--n", 27, "--seed", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "wrote 27 synthetic maps (seed 1, wm811k layout)" in result.stdout
    fab = load_wm811k(out)
    assert np.bincount(fab.classes).tolist() == [3] * 9 and len(np.unique(fab.shapes, axis=0)) > 5

    result = run_cli("inspect", out)
    assert result.returncode == 0, result.stderr
    assert "maps: 27 in" in result.stdout and "none" in result.stdout
    save_unlabelled(tmp_path / "unlabelled.npz", fab.maps())
    result = run_cli("inspect", tmp_path / "unlabelled.npz")
    assert result.returncode == 0, result.stderr
    assert "maps without labels: 27 in" in result.stdout and "none" not in result.stdout

    grid, both = tmp_path / "grid.png", tmp_path / "both.png"
    assert run_cli("show", out, "--out", grid, "--per-pattern", 2).returncode == 0
    result = run_cli("show", out, "--out", both, "--per-pattern", 2, "--beside-synthetic")
    assert result.returncode == 0, result.stderr
    assert png_size(both)[0] == png_size(grid)[0] and png_size(both)[1] > png_size(grid)[1]


def test_synth_is_deterministic(run_cli, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for path in (a, b):
        assert run_cli("synth", "--n", 38, "--seed", 7, "--out", path).returncode == 0
    assert np.array_equal(load_mixedwm38(a).maps, load_mixedwm38(b).maps)


def test_inspect_bad_file_exits_non_zero_with_the_reason(run_cli, tmp_path):
    bad = tmp_path / "bad.npz"
    labels = np.zeros((2, 8), np.int32)
    labels[1] = 1
    np.savez(bad, arr_0=np.ones((2, 52, 52), np.int32), arr_1=labels)
    result = run_cli("inspect", bad)
    assert result.returncode == 1
    assert f"error: {bad} [arr_1] row 1: label [1, 1, 1, 1, 1, 1, 1, 1] is not one of the 38" in result.stderr


def test_show_of_a_bad_file_writes_nothing(run_cli, tmp_path):
    bad, grid = tmp_path / "bad.npz", tmp_path / "grid.png"
    bad.write_text("not a zip")
    result = run_cli("show", bad, "--out", grid)
    assert result.returncode == 1 and "not an npz archive" in result.stderr
    assert not grid.exists()


@pytest.mark.parametrize("args, message", [
    (("synth", "--n", "0", "--out", "x.npz"), "must be a positive integer, got 0"),
    (("synth", "--n", "10"), "the following arguments are required: --out"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2_with_usage(run_cli, args, message):
    result = run_cli(*args)
    assert result.returncode == 2 and message in result.stderr
