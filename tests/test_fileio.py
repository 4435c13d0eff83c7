import os
import stat

import pytest

from kd_keras.fileio import atomic_path, write_text

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def test_success_renames_into_place_with_ordinary_permissions(tmp_path):
    out = tmp_path / "sub" / "artifact.txt"
    with atomic_path(out) as tmp:
        tmp.write_text("complete")
        assert not out.exists()
    assert out.read_text() == "complete"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(out.parent) == ["artifact.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "artifact.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["artifact.txt"]


def test_write_text_replaces_a_file_whole(tmp_path):
    out = tmp_path / "report.md"
    out.write_text("old report, longer than the new one")
    write_text(out, "new")
    assert out.read_text() == "new"
    assert os.listdir(tmp_path) == ["report.md"]


def test_write_text_that_cannot_encode_keeps_the_old_file(tmp_path):
    out = tmp_path / "report.md"
    out.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text(out, "\udcff")  # a lone surrogate: no encoding writes it
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.md"]
