import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps
from kd_keras.data.pipeline import make_dataset, pattern_weights

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@pytest.fixture(scope="module")
def data():
    return generate_wafer_maps(76, seed=0)


def symmetries(image):
    turns = [np.rot90(image, k) for k in range(4)]
    return turns + [np.fliplr(t) for t in turns]


def test_batches_have_model_shapes_and_dtypes(data):
    batches = list(make_dataset(data.maps, data.labels, batch_size=32))
    assert [tuple(x.shape) for x, _ in batches] == [(32, 52, 52, 1), (32, 52, 52, 1), (12, 52, 52, 1)]
    x, y = batches[0]
    assert x.dtype.name == "float32" and y.shape == (32, 8)
    assert np.array_equal(x.numpy()[..., 0], data.maps[:32])  # raw die values, in order


def test_maps_alone_for_inference(data):
    x = next(iter(make_dataset(data.maps, batch_size=8)))
    assert tuple(x.shape) == (8, 52, 52, 1)


def test_shuffle_is_seeded_and_changes_each_epoch(data):
    def first_labels(dataset):
        return next(iter(dataset))[1].numpy()

    a = make_dataset(data.maps, np.arange(76), batch_size=76, shuffle=True, seed=1)
    b = make_dataset(data.maps, np.arange(76), batch_size=76, shuffle=True, seed=1)
    epoch1, epoch2 = first_labels(a), first_labels(a)
    assert np.array_equal(epoch1, first_labels(b))
    assert sorted(epoch1) == list(range(76)) and not np.array_equal(epoch1, epoch2)


def test_augmentation_is_a_symmetry_and_moves_masks_with_maps(data):
    dataset = make_dataset(data.maps, {"labels": data.labels, "masks": data.masks},
                           batch_size=76, augment=True, seed=3)
    x, y = next(iter(dataset))
    x, masks = x.numpy()[..., 0], y["masks"].numpy()
    assert np.array_equal(y["labels"].numpy(), data.labels)  # labels do not move
    assert np.array_equal(masks, (x == 2).astype(np.uint8))   # masks move with their maps
    assert all(any(np.array_equal(s, x[i]) for s in symmetries(data.maps[i])) for i in range(76))
    assert sum(not np.array_equal(x[i], data.maps[i]) for i in range(76)) > 50  # most maps moved


def test_augmentation_is_reproducible_and_new_each_epoch(data):
    def maps_of(dataset):
        return next(iter(dataset)).numpy()

    a = make_dataset(data.maps, batch_size=76, augment=True, seed=5)
    b = make_dataset(data.maps, batch_size=76, augment=True, seed=5)
    first = maps_of(a)
    assert np.array_equal(first, maps_of(b))
    assert not np.array_equal(first, maps_of(a))


def test_pattern_weights_even_out_the_label_patterns():
    # WM-811K-like: 6 maps of none (all zero), 3 of one defect, 1 of another.
    targets = np.array([[0, 0]] * 6 + [[1, 0]] * 3 + [[0, 1]])
    assert np.array_equal(pattern_weights(targets, 0.0), np.ones(10))
    whole = pattern_weights(targets, 1.0)
    assert whole.mean() == pytest.approx(1) and whole.dtype == np.float32
    assert [whole[:6].sum(), whole[6:9].sum(), whole[9]] == pytest.approx([10 / 3] * 3)  # each pattern alike
    root = pattern_weights(targets, 0.5)
    assert root[9] / root[0] == pytest.approx(np.sqrt(6)) and root[6] / root[0] == pytest.approx(np.sqrt(2))
    with pytest.raises(ValueError, match="the balancing power must be between 0 and 1, got 1.5"):
        pattern_weights(targets, 1.5)


def test_weights_travel_with_their_maps_through_shuffling_and_augmentation(data):
    # Each map's weight is its index: after shuffling and a rotation/flip, the weight still names it.
    x, y, w = next(iter(make_dataset(data.maps, data.labels, batch_size=76, shuffle=True, augment=True, seed=2,
                                     weights=np.arange(76, dtype=np.float32))))
    order = w.numpy().astype(int)
    assert sorted(order) == list(range(76)) and not np.array_equal(order, np.arange(76))
    assert np.array_equal(y.numpy(), data.labels[order])
    assert all(any(np.array_equal(s, x.numpy()[i, ..., 0]) for s in symmetries(data.maps[j]))
               for i, j in enumerate(order))


@pytest.mark.parametrize("maps, targets, weights, message", [
    (np.zeros((4, 52, 50)), None, None, r"maps must have shape \(N, 52, 52\)"),
    (np.zeros((4, 52, 52)), np.zeros((3, 8)), None, "targets have 3 rows but maps has 4"),
    (np.zeros((4, 52, 52)), np.zeros((4, 8)), np.ones(5), "weights have 5 rows but maps has 4"),
    (np.zeros((4, 52, 52)), None, np.ones(4), "weights need targets"),
])
def test_bad_inputs_are_rejected(maps, targets, weights, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(maps, targets, weights=weights)
