"""`tf.data` input pipelines for wafer maps: batching, shuffling, rotation/flip augmentation.

The model input is the raw die map as float32 of shape (52, 52, 1) with values 0, 1, 2:
any encoding a network wants happens inside the network, so a firmware feeds exactly
what the tester produces. Defect labels do not change when a wafer is rotated or
mirrored, so augmentation draws one of the 8 symmetries of the square per map; a
target with the map's spatial shape (a segmentation mask) is transformed with it.

Example:

>>> import numpy as np
>>> maps = np.ones((10, 52, 52), np.uint8)
>>> labels = np.zeros((10, 8), np.float32)
>>> x, y = next(iter(make_dataset(maps, labels, batch_size=4, shuffle=True, augment=True)))
>>> tuple(x.shape), x.dtype.name, tuple(y.shape)
((4, 52, 52, 1), 'float32', (4, 8))

Rare label patterns can weigh more in the loss (`pattern_weights`, batches of (map, target, weight)):

>>> pattern_weights(np.array([[1, 0], [1, 0], [1, 0], [0, 0]]), 1.0).astype(float).round(3).tolist()
[0.667, 0.667, 0.667, 2.0]
"""

import numpy as np
import tensorflow as tf

from kd_keras.data.mixedwm38 import MAP_SIZE


def random_symmetry(images, seed):
    """Apply one of the 8 rotations/reflections of the square, picked by the stateless
    `seed` (shape (2,) integers), identically to each (52, 52, C) tensor in `images`."""
    draw = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=4, dtype=tf.int32)
    quarter_turns, flip = draw[0], draw[1] % 2 == 1
    turned = [tf.image.rot90(image, quarter_turns) for image in images]
    return [tf.cond(flip, lambda t=t: tf.image.flip_left_right(t), lambda t=t: t) for t in turned]


def _augment(element, seed):
    """Transform the map and every mask of one (map[, targets]) element alike."""
    flat = tf.nest.flatten(element)
    spatial = [i for i, t in enumerate(flat) if tuple(t.shape[:2]) == (MAP_SIZE, MAP_SIZE)]
    images = [tf.reshape(flat[i], (MAP_SIZE, MAP_SIZE, -1)) for i in spatial]
    for i, image in zip(spatial, random_symmetry(images, seed)):
        flat[i] = tf.reshape(image, flat[i].shape)
    return tf.nest.pack_sequence_as(element, flat)


def _to_model_input(wafer_map, *targets):
    image = tf.cast(wafer_map, tf.float32)[..., None]
    return (image, *targets) if targets else image


def balancing_power(value):
    """`pattern_weights`' power, checked: a number from 0 to 1."""
    power = float(value)
    if not 0 <= power <= 1:
        raise ValueError(f"the balancing power must be between 0 and 1, got {value}")
    return power


def pattern_weights(targets, power):
    """A loss weight per map that evens out how often each label pattern is seen.

    A map weighs its pattern's share of the maps to the power -`power`, scaled so that the
    weights average 1 (the loss keeps its scale): 0 weighs every map alike; 1 gives every
    pattern the same total weight, however rare; 0.5 (the square root) lies between. A
    pattern is a row of `targets` (a defect combination; WM-811K's classes, none included).
    """
    power = balancing_power(power)
    targets = np.asarray(targets)
    if len(targets) == 0:
        raise ValueError("no maps to weigh")
    _, pattern, counts = np.unique(targets.reshape(len(targets), -1), axis=0, return_inverse=True,
                                   return_counts=True)
    weights = counts[pattern.reshape(-1)].astype(np.float64) ** -power
    return (weights / weights.mean()).astype(np.float32)


def make_dataset(maps, targets=None, *, batch_size=128, shuffle=False, augment=False, seed=0, weights=None):
    """A `tf.data.Dataset` of (map, target) batches, or of map batches when `targets` is None.

    Args:
        maps: (N, 52, 52) die maps (any integer dtype).
        targets: an array with N rows, or a dict of them (e.g. labels and masks); arrays of
            shape (N, 52, 52[, C]) are masks, rotated and flipped together with the maps.
        batch_size: maps per batch; the last batch may be smaller.
        shuffle: reshuffle the maps every epoch (seeded).
        augment: apply a random rotation/flip to every map (seeded, new each epoch).
        seed: makes shuffling and augmentation reproducible.
        weights: a loss weight per map (e.g. `pattern_weights`): batches become (map, target,
            weight), which Keras' `fit` reads as sample weights.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != (MAP_SIZE, MAP_SIZE):
        raise ValueError(f"maps must have shape (N, {MAP_SIZE}, {MAP_SIZE}), got {maps.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if weights is not None and targets is None:
        raise ValueError("weights need targets: they weigh each map's loss")
    for name, rows in (("targets", [] if targets is None else tf.nest.flatten(targets)),
                       ("weights", [] if weights is None else [weights])):
        for row in rows:
            if len(row) != len(maps):
                raise ValueError(f"{name} have {len(row)} rows but maps has {len(maps)}")

    elements = maps if targets is None else (maps, targets) if weights is None else (maps, targets, weights)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(maps), seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(_to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
