import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps, split_data, stratified_split

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@pytest.fixture(scope="module")
def ids():
    # Uneven pattern sizes, like the real data (106 to 850 maps per pattern).
    rng = np.random.default_rng(0)
    return rng.permutation(np.repeat(np.arange(38), rng.integers(10, 90, 38)))


def test_splits_partition_the_data(ids):
    split = stratified_split(ids, seed=1)
    everything = np.concatenate([split.train, split.val, split.test])
    assert np.array_equal(np.sort(everything), np.arange(len(ids)))


def test_every_pattern_is_split_80_10_10(ids):
    split = stratified_split(ids, seed=1)
    for pattern_id in range(38):
        n = np.sum(ids == pattern_id)
        n_val, n_test = (np.sum(ids[part] == pattern_id) for part in (split.val, split.test))
        assert n_val == round(0.1 * n) and n_test == round(0.1 * n)
        assert np.sum(ids[split.train] == pattern_id) == n - n_val - n_test


def test_custom_fractions(ids):
    split = stratified_split(ids, fractions=(0.6, 0.2, 0.2), seed=1)
    assert abs(len(split.test) / len(ids) - 0.2) < 0.01


def test_same_seed_same_split_other_seed_other_split(ids):
    a, b, c = (stratified_split(ids, seed=s) for s in (7, 7, 8))
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.1, -0.1, 0.0)])
def test_bad_fractions_are_rejected(ids, fractions):
    with pytest.raises(ValueError, match="fractions must be three non-negative numbers summing to 1"):
        stratified_split(ids, fractions=fractions)


def test_split_data_adds_the_rotated_test_split():
    data = generate_wafer_maps(380, seed=0)
    parts = split_data(data, seed=0)
    assert set(parts) == {"train", "val", "test", "test_rotated"}
    test, rotated = parts["test"], parts["test_rotated"]
    assert np.array_equal(rotated.maps, np.rot90(test.maps, 1, axes=(1, 2)))
    assert np.array_equal(rotated.labels, test.labels)
    assert len(parts["train"]) + len(parts["val"]) + len(test) == len(data)
