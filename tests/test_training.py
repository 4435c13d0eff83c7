import json

import keras
import numpy as np
import tensorflow as tf

from kd_keras.training import BatchNormRecalibration, BestModelCheckpoint, ExactMatch


def test_exact_match_needs_all_eight_flags():
    metric = ExactMatch()
    labels = np.array([[1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 1, 0, 0, 0]], "float32")
    logits = np.array([[2, -1, -1, -1, -1, -1, -1, -1], [-1, 2, -1, -1, -1, -1, -1, -1]], "float32")
    metric.update_state(labels, logits)
    assert float(metric.result()) == 0.5


def test_batch_norm_recalibration_sets_the_mean_over_batches():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.99)])
    batch_norm = model.layers[0]
    batch_norm.moving_mean.assign([100.0, 100.0, 100.0])  # stale statistics
    data = np.random.default_rng(0).normal([1.0, -2.0, 5.0], [1.0, 2.0, 0.5], (64, 3)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(data).batch(16)
    callback = BatchNormRecalibration(batches, batches=4)
    callback.set_model(model)
    callback.on_test_begin()
    expected_mean = data.reshape(4, 16, 3).mean(axis=1).mean(axis=0)
    np.testing.assert_allclose(batch_norm.moving_mean.numpy(), expected_mean, rtol=1e-5)
    assert batch_norm.momentum == 0.99  # restored


def test_frozen_models_are_left_alone():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    model.trainable = False
    model.layers[0].moving_mean.assign([7.0, 7.0, 7.0])
    callback = BatchNormRecalibration(tf.data.Dataset.from_tensor_slices(np.zeros((8, 3), "float32")).batch(4))
    callback.set_model(model)
    callback.on_test_begin()
    assert model.layers[0].moving_mean.numpy().tolist() == [7.0, 7.0, 7.0]


def test_best_model_checkpoint_keeps_the_best_across_a_resume_but_not_across_runs(tmp_path):
    path = tmp_path / "best.keras"

    def epoch_with(accuracy, resume):
        checkpoint = BestModelCheckpoint(path, resume=resume)
        checkpoint.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        checkpoint.on_epoch_end(0, {"val_exact_match": accuracy})
        return json.loads((tmp_path / "best.keras.json").read_text())["best"]

    assert epoch_with(0.8, resume=False) == 0.8 and path.is_file()
    assert epoch_with(0.5, resume=True) == 0.8     # resuming: a worse epoch is not saved
    assert epoch_with(0.5, resume=False) == 0.5    # a new run in the same place starts afresh
