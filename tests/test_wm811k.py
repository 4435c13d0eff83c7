"""Wafer maps of any die grid (the WM-811K layout): loading, validation, resizing to the
model's 52x52 input, splits, class metrics and the data command line."""

import subprocess
import sys

import numpy as np
import pytest

from kd_keras.data import (
    CLASS_NAMES, RESIZE_METHODS, WaferDataError, file_layout, generate_wafer_maps, load_splits, load_unlabelled,
    load_unlabelled_maps, load_wafer_maps, load_wm811k, resize_map, save_mixedwm38, save_unlabelled, save_wm811k,
)
from kd_keras.data.lswmd import fab_maps_from_rows, import_lswmd
from kd_keras.data.wm811k import NONE_CLASS, OTHER_READING, FabMaps, classes_of_labels, describe_wm811k
from kd_keras.errors import ToolkitError
from kd_keras.evaluation import class_report
from tests.helpers import REPO

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def _fab_file(path, count=90, seed=0):
    """`count` maps of random grids (15 to 80 dies across), classes cycling through all 9."""
    rng = np.random.default_rng(seed)
    maps = [rng.integers(0, 3, tuple(rng.integers(15, 80, 2))).astype(np.uint8) for _ in range(count)]
    classes = [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(count)]
    save_wm811k(path, maps, classes)
    return path, maps, classes


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _valid_arrays():
    return {"pixels": np.ones(12 + 6, np.uint8), "shapes": np.array([[3, 4], [2, 3]], np.int32),
            "label": np.array([0, 8], np.int16), "label_names": np.array(CLASS_NAMES)}


def test_maps_of_any_grid_round_trip(tmp_path):
    path, maps, classes = _fab_file(tmp_path / "fab.npz")
    fab = load_wm811k(path)
    assert len(fab) == 90 and fab.pixels.dtype == np.uint8
    assert all(np.array_equal(fab.map(i), maps[i]) for i in range(90))
    assert [CLASS_NAMES[c] for c in fab.classes] == classes
    # none is the Normal pattern (no flag); each type is its one MixedWM38 flag.
    is_none = fab.classes == NONE_CLASS
    assert (fab.labels[is_none] == 0).all() and (fab.labels[~is_none].sum(axis=1) == 1).all()
    assert classes_of_labels(fab.labels).tolist() == fab.classes.tolist()
    subset = fab.subset([5, 2])
    assert np.array_equal(subset.map(1), maps[2]) and subset.classes.tolist() == fab.classes[[5, 2]].tolist()


def test_label_names_are_matched_by_name_not_position(tmp_path):
    arrays = {**_valid_arrays(), "label_names": np.array(["none", "Center"]), "label": np.array([1, 0])}
    fab = load_wm811k(_write(tmp_path / "f.npz", **arrays))
    assert [CLASS_NAMES[c] for c in fab.classes] == ["Center", "none"]


@pytest.mark.parametrize("change, message", [
    ({"pixels": np.r_[np.ones(14, np.uint8), 3, np.ones(3, np.uint8)]},
     r"\[pixels\] row 1: die \(0, 2\) of map 1 has value 3; expected 0 \(off-wafer\), 1 \(good\), 2 \(failed\)"),
    ({"pixels": np.ones(17, np.uint8)}, r"\[pixels\]: expected 18 dies \(the sum of rows x columns"),
    ({"shapes": np.array([[3, 4], [0, 3]])}, r"\[shapes\] row 1: a map of 0 x 3 dies"),
    ({"shapes": np.array([[3, 4]])}, r"\[shapes\]: expected shape \(2, 2\)"),
    ({"label": np.array([0, 9])}, r"\[label\] row 1: class index 9 is not an index into the 9 label_names"),
    ({"label_names": np.array(["Center", "Blob"])}, r"\[label_names\]: unknown class 'Blob'"),
    ({"label_names": np.array(CLASS_NAMES, dtype=object)}, r"\[label_names\]: holds Python objects"),
    ({"label": np.array([], np.int16), "shapes": np.zeros((0, 2), np.int32), "pixels": np.zeros(0, np.uint8)},
     r"\[label\]: holds no wafer maps"),
])
def test_bad_files_name_the_field_and_the_map(tmp_path, change, message):
    path = _write(tmp_path / "bad.npz", **{**_valid_arrays(), **change})
    with pytest.raises(WaferDataError, match=message):
        load_wm811k(path)


def test_a_missing_key_is_named(tmp_path):
    arrays = _valid_arrays()
    del arrays["shapes"]
    with pytest.raises(WaferDataError, match=r"bad.npz: missing key 'shapes'"):
        load_wm811k(_write(tmp_path / "bad.npz", **arrays))


def test_nearest_and_max_resize_by_their_definitions():
    rng = np.random.default_rng(1)
    for rows, cols in [(27, 27), (104, 104), (15, 212), (52, 52)]:
        die_map = rng.integers(0, 3, (rows, cols)).astype(np.uint8)
        nearest, largest = (resize_map(die_map, 52, method) for method in RESIZE_METHODS)
        row_of = np.arange(52) * rows // 52
        col_of = np.arange(52) * cols // 52
        assert np.array_equal(nearest, die_map[row_of][:, col_of])
        for i, j in [(0, 0), (51, 51), (17, 40)]:  # a cell's max over the dies it covers
            r_end = max(row_of[i] + 1, (i + 1) * rows // 52)
            c_end = max(col_of[j] + 1, (j + 1) * cols // 52)
            assert largest[i, j] == die_map[row_of[i]:r_end, col_of[j]:c_end].max()
    small = rng.integers(0, 3, (27, 30)).astype(np.uint8)
    assert np.array_equal(resize_map(small, 52, "max"), resize_map(small, 52, "nearest"))  # enlarging
    big = np.ones((104, 104), np.uint8)
    big[1, 1] = 2  # not a cell's first die: nearest loses it, max keeps it
    assert (resize_map(big, 52, "nearest") == 2).sum() == 0 and resize_map(big, 52, "max")[0, 0] == 2
    with pytest.raises(ValueError, match="unknown resize method 'bilinear'; choose one of nearest, max"):
        resize_map(big, 52, "bilinear")


def test_either_layout_loads_as_52x52_maps_and_splits_by_class(tmp_path):
    path, maps, _ = _fab_file(tmp_path / "fab.npz", count=180)
    assert file_layout(path) == "wm811k"
    data = load_wafer_maps(path, "max")
    assert data.maps.shape == (180, 52, 52) and np.array_equal(data.maps[3], resize_map(maps[3], 52, "max"))
    assert "resized to 52x52: max" in data.source
    parts = load_splits(path, seed=0, resize="max")
    assert [len(parts[split]) for split in ("train", "val", "test")] == [144, 18, 18]
    assert sorted(classes_of_labels(parts["test"].labels).tolist()) == sorted(list(range(9)) * 2)
    assert file_layout(tmp_path / "missing.npz") == "mixedwm38"  # whose loader names the problem


def test_several_files_are_each_split_as_alone_and_joined_split_by_split(tmp_path):
    fab, _, _ = _fab_file(tmp_path / "fab.npz", count=180)
    mixed = tmp_path / "mixed.npz"
    synthetic = generate_wafer_maps(380, seed=1)
    save_mixedwm38(mixed, synthetic.maps, synthetic.labels)
    alone = {path: load_splits(path, seed=3, resize="max") for path in (mixed, fab)}
    both = load_splits([mixed, fab], seed=3, resize="max")
    for split in ("train", "val", "test", "test_rotated"):
        first, second = alone[mixed][split], alone[fab][split]
        assert np.array_equal(both[split].maps, np.concatenate([first.maps, second.maps]))
        assert np.array_equal(both[split].labels, np.concatenate([first.labels, second.labels]))
    assert both["test"].source == f"{alone[mixed]['test'].source} + {alone[fab]['test'].source}"
    with pytest.raises(ValueError, match="--drop-suspects reads an audit of one file, and 2 --data files"):
        load_splits([mixed, fab], drop_suspects=tmp_path / "label_audit.json")


def test_class_report_counts_a_mixture_wrong_and_balances_classes():
    assert classes_of_labels([[1, 0, 0, 0, 1, 0, 0, 0]]).tolist() == [OTHER_READING]
    true = np.array([NONE_CLASS] * 8 + [0, 0])
    everything_none = class_report(true, np.full(10, NONE_CLASS), CLASS_NAMES)
    assert everything_none["accuracy"] == 0.8 and everything_none["per_class"]["Center"]["recall"] == 0
    balanced = class_report(true, np.full(10, NONE_CLASS), CLASS_NAMES, balanced=True)
    assert balanced["accuracy"] == 0.5  # the mean recall of the two classes present
    assert balanced["macro_f1"] == pytest.approx((2 / 3) / 2)  # none: precision 1/2, recall 1; Center: 0
    mixture = class_report(true, np.r_[np.full(8, NONE_CLASS), OTHER_READING, 0], CLASS_NAMES)
    assert mixture["per_class"]["Center"]["recall"] == 0.5 and mixture["confusion"][0][OTHER_READING] == 1


@pytest.mark.e2e
def test_data_command_inspects_and_shows_fab_maps(tmp_path):
    path, _, _ = _fab_file(tmp_path / "fab.npz")
    printed = subprocess.run([sys.executable, "-m", "kd_keras.data", "inspect", str(path)], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert "maps: 90 in " in printed and "Near-full" in printed and "none" in printed
    subprocess.run([sys.executable, "-m", "kd_keras.data", "show", str(path), "--out", str(tmp_path / "s.png"),
                    "--resize", "max"], cwd=REPO, capture_output=True, check=True)
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    bad = _write(tmp_path / "bad.npz", **{**_valid_arrays(), "label": np.array([0, 12])})
    failed = subprocess.run([sys.executable, "-m", "kd_keras.data", "inspect", str(bad)], cwd=REPO,
                            capture_output=True, text=True)
    assert failed.returncode == 1 and "bad.npz [label] row 1: class index 12" in failed.stderr


def test_inspect_gives_each_class_its_mean_share_of_failed_wafer_dies():
    # Two `none` maps, 1 of 4 and 3 of 6 wafer dies failed (off-wafer dies do not count): 37.5%.
    none_a = np.array([[0, 1], [1, 1], [2, 0]])
    none_b = np.array([[2, 2, 2], [1, 1, 1]])
    near_full = np.full((3, 3), 2)
    fab = FabMaps.from_maps([none_a, near_full, none_b], [NONE_CLASS, CLASS_NAMES.index("Near-full"), NONE_CLASS])
    lines = describe_wm811k(fab).splitlines()
    assert lines[3].split() == ["class", "maps", "share", "failed"]
    assert lines[4].split() == ["none", "2", "66.67%", "37.5%"]
    assert lines[5].split() == ["Near-full", "1", "33.33%", "100.0%"]


def test_lswmd_rows_become_our_layout_and_bad_rows_are_named():
    rows = [(np.array([[0, 1], [2, 1]]), np.array([["Edge-Ring"]])), (np.ones((3, 3)), []),
            (np.ones((4, 5)), np.array([["none"]]))]
    fab, unlabelled, count = fab_maps_from_rows(rows)
    assert [m.tolist() for m in unlabelled] == [[[1] * 3] * 3] and count == 1
    assert fab_maps_from_rows(rows, keep_unlabelled=False)[1:] == ([], 1)
    assert [CLASS_NAMES[c] for c in fab.classes] == ["Edge-Ring", "none"]
    assert fab.map(0).tolist() == [[0, 1], [2, 1]] and fab.shapes.tolist() == [[2, 2], [4, 5]]
    with pytest.raises(ToolkitError, match=r"LSWMD.pkl row 1: failureType \['Blob'\] is not one of Center"):
        fab_maps_from_rows([rows[0], (np.ones((2, 2)), [["Blob"]])])
    with pytest.raises(ToolkitError, match=r"LSWMD.pkl row 0: waferMap is not a 2-D map of die values 0, 1, 2"):
        fab_maps_from_rows([(np.full((2, 2), 7), [["none"]])])
    with pytest.raises(ToolkitError, match=r"LSWMD.pkl row 1: waferMap is not a 2-D map"):  # unlabelled ones too
        fab_maps_from_rows([rows[0], (np.ones(3), [])])


def test_maps_without_labels_round_trip_and_are_refused_where_labels_are_needed(tmp_path):
    maps = [np.array([[0, 1, 2], [1, 1, 0]], np.uint8), np.full((30, 27), 2, np.uint8)]
    path = tmp_path / "unlabelled.npz"
    save_unlabelled(path, maps)
    assert [m.tolist() for m in load_unlabelled(path)] == [m.tolist() for m in maps]
    assert file_layout(path) == "wm811k" and load_unlabelled_maps(path, "max").shape == (2, 52, 52)
    with pytest.raises(WaferDataError, match=r"unlabelled.npz: missing key 'label' \(found \['pixels', 'shapes'\]\)"):
        load_wafer_maps(path)
    labelled = tmp_path / "fab.npz"
    save_wm811k(labelled, maps, ["none", "Near-full"])  # a labelled file's maps, the labels unread
    assert [m.tolist() for m in load_unlabelled(labelled)] == [m.tolist() for m in maps]
    np.savez(tmp_path / "bad.npz", pixels=np.array([1, 1, 5], np.uint8), shapes=np.array([[1, 3]]))
    with pytest.raises(WaferDataError, match=r"die \(0, 2\) of map 0 has value 5"):
        load_unlabelled(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", pixels=np.array([1, 1, 1], np.uint8), shapes=np.array([[1, 3, 1]]))
    with pytest.raises(WaferDataError, match=r"expected shape \(1, 2\), one \(rows, columns\) per map"):
        load_unlabelled(tmp_path / "bad.npz")


@pytest.mark.e2e
def test_lswmd_import_refuses_a_pickle_without_trust_pickle(tmp_path):
    pickled = tmp_path / "LSWMD.pkl"
    pickled.write_bytes(b"not loaded")
    result = subprocess.run([sys.executable, "-m", "kd_keras.data", "import-lswmd", str(pickled), "--out",
                             str(tmp_path / "out.npz")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "is a Python pickle: loading it runs code" in result.stderr
    assert "--trust-pickle" in result.stderr and not (tmp_path / "out.npz").exists()


def test_lswmd_import_with_pandas(tmp_path):
    pandas = pytest.importorskip("pandas", reason="pandas (the optional lswmd extra) is not installed")
    frame = pandas.DataFrame({"waferMap": [np.ones((30, 28), np.uint8), np.full((60, 61), 2, np.uint8)],
                              "failureType": [np.array([["Loc"]]), np.array([["Near-full"]])]})
    frame.to_pickle(tmp_path / "LSWMD.pkl")
    fab, unlabelled = import_lswmd(tmp_path / "LSWMD.pkl", tmp_path / "fab.npz", trust_pickle=True,
                                   unlabelled_out=tmp_path / "unlabelled.npz")
    loaded = load_wm811k(tmp_path / "fab.npz")
    assert unlabelled == 0 and loaded.shapes.tolist() == [[30, 28], [60, 61]]
    assert not (tmp_path / "unlabelled.npz").exists()  # nothing to write
    assert [CLASS_NAMES[c] for c in loaded.classes] == ["Loc", "Near-full"] and (loaded.map(1) == 2).all()
