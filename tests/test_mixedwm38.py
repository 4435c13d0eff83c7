import os
import tracemalloc

import numpy as np
import pytest

from kd_keras.data import (
    WaferDataError, decode_patterns, describe, generate_wafer_maps, load_mixedwm38,
    load_mixedwm38_cached, save_mixedwm38,
)
from kd_keras.data import cache, mixedwm38

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def public_layout(tmp_path):
    """A small file shaped like the public release: int32 maps, a few dies marked 3."""
    data = generate_wafer_maps(76, seed=3)
    maps = data.maps.astype(np.int32)
    maps[5, 26, 26] = maps[70, 30, 30] = 3
    return _write(tmp_path / "public.npz", arr_0=maps, arr_1=data.labels.astype(np.int32)), data


def test_public_layout_loads_as_uint8_with_3_counted_as_failed(public_layout, monkeypatch):
    path, data = public_layout
    monkeypatch.setattr(mixedwm38, "_CHUNK_ROWS", 16)  # several chunks, and a partial last one
    loaded = load_mixedwm38(path)
    assert loaded.maps.dtype == np.uint8 and loaded.labels.dtype == np.uint8
    assert loaded.legacy_failed_dies == 2
    expected = data.maps.copy()
    expected[5, 26, 26] = expected[70, 30, 30] = 2
    assert np.array_equal(loaded.maps, expected)
    assert np.array_equal(loaded.labels, data.labels)
    assert loaded.source == str(path)


def test_loading_never_holds_a_whole_int32_copy(tmp_path, monkeypatch):
    # The public file's 38,015 maps are 37 chunks; keep that ratio small here too.
    monkeypatch.setattr(mixedwm38, "_CHUNK_ROWS", 100)
    data = generate_wafer_maps(2000, seed=0)
    path = _write(tmp_path / "big.npz", arr_0=data.maps.astype(np.int32), arr_1=data.labels)
    int32_bytes = data.maps.size * 4
    tracemalloc.start()
    try:
        load_mixedwm38(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The uint8 result (1/4 of the int32 size) plus a chunk and its temporaries.
    assert peak < 0.5 * int32_bytes, f"peak {peak} bytes vs int32 array {int32_bytes}"


def test_uint8_compressed_round_trip(tmp_path):
    data = generate_wafer_maps(40, seed=1)
    path = tmp_path / "synthetic.npz"
    save_mixedwm38(path, data.maps, data.labels)
    with np.load(path, allow_pickle=False) as f:
        assert f["arr_0"].dtype == np.uint8 and f["arr_1"].dtype == np.int32
    loaded = load_mixedwm38(path)
    assert np.array_equal(loaded.maps, data.maps) and np.array_equal(loaded.labels, data.labels)


def test_failed_save_keeps_the_existing_file(tmp_path):
    data = generate_wafer_maps(4, seed=1)
    path = tmp_path / "keep.npz"
    save_mixedwm38(path, data.maps, data.labels)
    before = path.read_bytes()
    bad_labels = data.labels.copy()
    bad_labels[0] = [1, 1, 1, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="not one of the 38"):
        save_mixedwm38(path, data.maps, bad_labels)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.npz"]


def _good_arrays(n=4):
    data = generate_wafer_maps(n, seed=2)
    return data.maps.astype(np.int32), data.labels.astype(np.int32)


def _bad_file(tmp_path, mutate):
    maps, labels = _good_arrays()
    arrays = mutate(maps, labels)
    return _write(tmp_path / "bad.npz", **arrays)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m, lab: {"arr_0": m}, r"missing key 'arr_1' \(found \['arr_0'\]\)"),
        (lambda m, lab: {"maps": m, "labels": lab}, "missing key 'arr_0'"),
        (lambda m, lab: {"arr_0": m.reshape(4, -1), "arr_1": lab},
         r"\[arr_0\]: expected maps of shape \(N, 52, 52\), got \(4, 2704\)"),
        (lambda m, lab: {"arr_0": np.zeros((4, 52, 53), np.int32), "arr_1": lab},
         r"\[arr_0\]: expected maps of shape \(N, 52, 52\), got \(4, 52, 53\)"),
        (lambda m, lab: {"arr_0": m, "arr_1": lab[:, :7]},
         r"\[arr_1\]: expected labels of shape \(N, 8\), got \(4, 7\)"),
        (lambda m, lab: {"arr_0": m[:3], "arr_1": lab},
         r"\[arr_0\]: holds 3 maps but 'arr_1' holds 4 label rows"),
        (lambda m, lab: {"arr_0": m[:0], "arr_1": lab[:0]}, r"\[arr_1\]: holds no wafer maps"),
        (lambda m, lab: {"arr_0": np.where(np.arange(4)[:, None, None] == 2, m + 0.5, m), "arr_1": lab},
         r"\[arr_0\] row 2: die values must be integers, found 0.5"),
        (lambda m, lab: {"arr_0": m.astype(str), "arr_1": lab},
         r"\[arr_0\]: die values must be integers, got dtype <U"),
        (lambda m, lab: {"arr_0": np.where(np.arange(4)[:, None, None] == 3, 5 * (m > 0), m), "arr_1": lab},
         r"\[arr_0\] row 3: die \(1, 21\) has value 5; expected 0 \(off-wafer\)"),
        (lambda m, lab: {"arr_0": m - (np.arange(4)[:, None, None] == 1), "arr_1": lab},
         r"\[arr_0\] row 1: die \(0, 0\) has value -1"),
        (lambda m, lab: {"arr_0": m, "arr_1": np.where(np.arange(4)[:, None] == 2, 2 * lab + 2, lab)},
         r"\[arr_1\] row 2: label \[.*\] has values other than 0 and 1"),
        (lambda m, lab: {"arr_0": m, "arr_1": np.vstack([lab[:3], np.ones((1, 8), np.int32)])},
         r"\[arr_1\] row 3: label \[1, 1, 1, 1, 1, 1, 1, 1\] is not one of the 38 MixedWM38 patterns"),
        (lambda m, lab: {"arr_0": m, "arr_1": lab + 0.25},
         r"\[arr_1\] row 0: labels must be integers, found 0.25"),
    ],
    ids=["no-labels", "no-keys", "rank", "map-size", "label-width", "count-mismatch", "empty-arrays",
         "fractional-die", "string-die", "die-too-big", "die-negative", "label-not-binary",
         "label-not-a-pattern", "fractional-label"],
)
def test_validation_errors_name_file_key_and_row(tmp_path, mutate, message):
    path = _bad_file(tmp_path, mutate)
    with pytest.raises(WaferDataError, match=message) as error:
        load_mixedwm38(path)
    assert str(error.value).startswith(str(path))


def test_whole_number_floats_are_accepted(tmp_path):
    maps, labels = _good_arrays()
    path = _write(tmp_path / "floats.npz", arr_0=maps.astype(np.float32), arr_1=labels.astype(float))
    assert np.array_equal(load_mixedwm38(path).maps, maps)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(WaferDataError, match=r"empty.npz: the file is empty \(0 bytes\)"):
        load_mixedwm38(path)


def test_missing_file(tmp_path):
    with pytest.raises(WaferDataError, match="nope.npz: no such file"):
        load_mixedwm38(tmp_path / "nope.npz")


def test_not_a_zip(tmp_path):
    path = tmp_path / "maps.npz"
    path.write_text("these are not wafer maps\n")
    with pytest.raises(WaferDataError, match="maps.npz: not an npz archive"):
        load_mixedwm38(path)


def test_a_plain_npy_file_is_not_an_npz(tmp_path):
    path = tmp_path / "maps.npy"
    np.save(path, _good_arrays()[0])
    with pytest.raises(WaferDataError, match="not an npz archive"):
        load_mixedwm38(path)


def test_truncated_file(public_layout, tmp_path):
    path, _ = public_layout
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WaferDataError, match="cut.npz: not an npz archive .* or it is truncated"):
        load_mixedwm38(cut)


def test_corrupt_compressed_member(tmp_path):
    data = generate_wafer_maps(38, seed=4)
    path = tmp_path / "corrupt.npz"
    save_mixedwm38(path, data.maps, data.labels)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 3
    raw[middle:middle + 64] = bytes(64)  # zero out bytes inside arr_0's deflate stream
    path.write_bytes(bytes(raw))
    with pytest.raises(WaferDataError, match=r"corrupt.npz( \[arr_0\])?: .*(truncated or corrupt|ends early)"):
        load_mixedwm38(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    maps, labels = _good_arrays()
    path = _write(tmp_path / "objects.npz", arr_0=maps, arr_1=np.array(labels, dtype=object))
    with pytest.raises(WaferDataError, match=r"\[arr_1\]: holds Python objects"):
        load_mixedwm38(path)


def test_masks_rotation_and_subset():
    data = generate_wafer_maps(8, seed=5)
    assert np.array_equal(data.masks, (data.maps == 2).astype(np.uint8))
    turned = data.rotated(1)
    assert np.array_equal(turned.maps[3], np.rot90(data.maps[3]))
    assert np.array_equal(turned.labels, data.labels)
    part = data.subset([6, 1])
    assert np.array_equal(part.maps, data.maps[[6, 1]]) and np.array_equal(part.labels, data.labels[[6, 1]])


def test_describe_counts_dies_and_patterns(public_layout):
    path, data = public_layout
    text = describe(load_mixedwm38(path))
    assert "maps: 76 (52x52 dies)" in text
    assert "legacy value 3 counted as failed: 2 dies" in text
    assert "patterns: 38 of 38" in text
    # The last column: the mean share of a map's wafer dies that are failed (legacy 3s count as failed).
    maps = load_mixedwm38(path).maps[data.pattern_ids == 23]
    failed = 100 * np.mean([(m == 2).sum() / (m > 0).sum() for m in maps])
    assert f" 23  C+EL+S          2   2.63% {failed:>6.1f}%" in text.splitlines()
    assert text.splitlines()[5].split() == ["id", "pattern", "maps", "share", "failed"]


def test_cache_is_used_for_the_same_file_and_rebuilt_when_it_changes(public_layout, tmp_path, monkeypatch):
    path, data = public_layout
    cache_path = tmp_path / "cache" / "public.h5"
    first = load_mixedwm38_cached(path, cache_path)
    assert cache_path.is_file()

    def refuse(_):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cache, "load_mixedwm38", refuse)
    second = load_mixedwm38_cached(path, cache_path)
    assert np.array_equal(second.maps, first.maps) and second.legacy_failed_dies == 2
    monkeypatch.undo()

    other = generate_wafer_maps(10, seed=9)
    save_mixedwm38(path, other.maps, other.labels)
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock resolution
    rebuilt = load_mixedwm38_cached(path, cache_path)
    assert len(rebuilt) == 10 and np.array_equal(rebuilt.labels, decode_patterns(other.pattern_ids))
