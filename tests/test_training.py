import json

import keras
import numpy as np
import tensorflow as tf

from kd_keras.training import BatchNormRecalibration, ExactMatch, RunCheckpoint, write_history

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


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
    batched = data.reshape(4, 16, 3)
    np.testing.assert_allclose(batch_norm.moving_mean.numpy(), batched.mean(axis=1).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(batch_norm.moving_variance.numpy(), batched.var(axis=1).mean(axis=0), rtol=1e-4)
    assert batch_norm.momentum == 0.99  # restored
    batch_norm.moving_mean.assign([100.0, 100.0, 100.0])
    callback.on_test_begin()  # again, as before the next validation: the same statistics
    np.testing.assert_allclose(batch_norm.moving_mean.numpy(), batched.mean(axis=1).mean(axis=0), rtol=1e-5)


def test_frozen_models_are_left_alone():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    model.trainable = False
    model.layers[0].moving_mean.assign([7.0, 7.0, 7.0])
    callback = BatchNormRecalibration(tf.data.Dataset.from_tensor_slices(np.zeros((8, 3), "float32")).batch(4))
    callback.set_model(model)
    callback.on_test_begin()
    assert model.layers[0].moving_mean.numpy().tolist() == [7.0, 7.0, 7.0]


def test_run_checkpoint_commits_each_epoch_and_saves_only_a_better_model(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    state = {"settings": {}, "epoch": 0, "finished": False, "stopped": False, "best": None, "best_epoch": None,
             "wait": 0, "history": [], "weights": None}
    checkpoint = RunCheckpoint(tmp_path, state, tmp_path / "best.keras", patience=2)
    checkpoint.set_model(model)
    for epoch, accuracy in enumerate([0.5, 0.8, 0.7, 0.6]):
        saved = (tmp_path / "best.keras").read_bytes() if epoch else None
        checkpoint.on_epoch_end(epoch, {"val_exact_match": accuracy, "loss": 1.0 - accuracy})
        committed = json.loads((tmp_path / "training.json").read_text())
        assert committed["epoch"] == epoch + 1 and len(committed["history"]) == epoch + 1
        assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [f"epoch-{epoch + 1:04d}.weights.h5"]
        if accuracy < 0.8 and saved:
            assert (tmp_path / "best.keras").read_bytes() == saved  # a worse epoch leaves the best model alone
    assert (committed["best"], committed["best_epoch"], committed["wait"]) == (0.8, 2, 2)
    assert model.stop_training and committed["stopped"]  # two epochs without a better one: patience 2 is spent
    history = np.genfromtxt(tmp_path / "history.csv", delimiter=",", names=True)
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(history["val_exact_match"], [0.5, 0.8, 0.7, 0.6])


def test_write_history_reads_like_keras_csv_logger(tmp_path):
    rows = [{"epoch": 0, "loss": 0.5, "exact_match": 0.25}, {"epoch": 1, "loss": 0.25, "exact_match": 0.5}]
    write_history(tmp_path / "history.csv", rows)
    assert (tmp_path / "history.csv").read_text() == "epoch,exact_match,loss\n0,0.25,0.5\n1,0.5,0.25\n"
