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


def make_dataset(maps, targets=None, *, batch_size=128, shuffle=False, augment=False, seed=0):
    """A `tf.data.Dataset` of (map, target) batches, or of map batches when `targets` is None.

    Args:
        maps: (N, 52, 52) die maps (any integer dtype).
        targets: an array with N rows, or a dict of them (e.g. labels and masks); arrays of
            shape (N, 52, 52[, C]) are masks, rotated and flipped together with the maps.
        batch_size: maps per batch; the last batch may be smaller.
        shuffle: reshuffle the maps every epoch (seeded).
        augment: apply a random rotation/flip to every map (seeded, new each epoch).
        seed: makes shuffling and augmentation reproducible.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != (MAP_SIZE, MAP_SIZE):
        raise ValueError(f"maps must have shape (N, {MAP_SIZE}, {MAP_SIZE}), got {maps.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for target in [] if targets is None else tf.nest.flatten(targets):
        if len(target) != len(maps):
            raise ValueError(f"targets have {len(target)} rows but maps has {len(maps)}")

    dataset = tf.data.Dataset.from_tensor_slices(maps if targets is None else (maps, targets))
    if shuffle:
        dataset = dataset.shuffle(len(maps), seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(_to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
