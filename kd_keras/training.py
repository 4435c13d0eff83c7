"""Training shared by the teacher and the students: metrics, callbacks, resumable `fit`.

A run directory holds everything a run makes. While training, `backup/` holds the last
finished epoch (Keras' `BackupAndRestore`: weights, optimizer, epoch), so a run killed
or interrupted with Ctrl-C continues where it stopped when started again with
`resume=True`; the best model so far is always complete on disk (written atomically).

Example:

>>> import numpy as np, tempfile, keras
>>> from kd_keras.data import generate_wafer_maps
>>> from kd_keras.data.pipeline import make_dataset
>>> from kd_keras.models import build_student
>>> data = generate_wafer_maps(76, seed=0)
>>> batches = make_dataset(data.maps, data.labels.astype("float32"), batch_size=38)
>>> model = build_student("net2", seed=0)
>>> model.compile(cosine_adamw(1e-3, total_steps=2), keras.losses.BinaryCrossentropy(from_logits=True),
...               metrics=multilabel_metrics())
>>> history = fit_resumable(model, batches, batches, tempfile.mkdtemp(), epochs=1, verbose=0)
>>> sorted(history)[:2]
['exact_match', 'hamming_accuracy']
"""

import contextlib
import json
from pathlib import Path

import keras
import numpy as np

from kd_keras.fileio import atomic_path, write_text

MONITOR = "val_exact_match"
TEACHER_FILE = "teacher.keras"


@keras.saving.register_keras_serializable(package="kd_keras")
class ExactMatch(keras.metrics.MeanMetricWrapper):
    """Share of maps whose 8 defect flags are all right (logit > 0 means present).

    This is the headline figure: equal to the 38-pattern accuracy when every
    prediction is one of the 38 patterns."""

    def __init__(self, name="exact_match", dtype=None):
        super().__init__(_exact_match, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def _exact_match(y_true, logits):
    predicted = keras.ops.cast(logits > 0, "float32")
    agree = keras.ops.cast(keras.ops.equal(predicted, keras.ops.cast(y_true, "float32")), "float32")
    return keras.ops.min(agree, axis=-1)


def multilabel_metrics():
    return [ExactMatch(), keras.metrics.BinaryAccuracy(threshold=0.0, name="hamming_accuracy")]


def cosine_adamw(learning_rate, total_steps, weight_decay=1e-4):
    """AdamW whose learning rate decays from `learning_rate` to 0 over `total_steps` (cosine).

    Decaying to zero also lets BatchNorm's moving statistics settle on the final weights."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def steps_for(num_maps, batch_size, epochs):
    return epochs * -(-num_maps // batch_size)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save `model_to_save` (default: the trained model) whenever `monitor` improves.

    Keras' ModelCheckpoint saves the model being fitted; a distiller wants only its
    student saved, and a crash mid-write must not destroy the best model, so this
    writes atomically and remembers the best value in `<path>.json` across resumes.
    A new run (`resume=False`) starts afresh: its first epoch replaces an older model."""

    def __init__(self, path, monitor=MONITOR, model_to_save=None, resume=False):
        super().__init__()
        self.path, self.monitor, self.model_to_save = Path(path), monitor, model_to_save
        self.record = Path(f"{self.path}.json")
        resumable = resume and self.record.is_file()
        self.best = json.loads(self.record.read_text())["best"] if resumable else -np.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or value <= self.best:
            return
        self.best = float(value)
        with atomic_path(self.path) as tmp:
            (self.model_to_save or self.model).save(tmp)
        write_text(self.record, json.dumps({"best": self.best, "epoch": epoch + 1, "monitor": self.monitor}))


def _trainable_batch_norms(layer):
    """BatchNormalization layers of `layer` and its sublayers, skipping frozen models (a teacher)."""
    if not layer.trainable:
        return []
    if isinstance(layer, keras.layers.BatchNormalization):
        return [layer]
    return [bn for sublayer in getattr(layer, "layers", []) for bn in _trainable_batch_norms(sublayer)]


class BatchNormRecalibration(keras.callbacks.Callback):
    """Before each validation, set BatchNorm's moving statistics to the mean over `batches`
    training batches under the current weights ("precise BN").

    Measured here: mid-training, a ResNet-18 teacher scored 54% on validation maps with
    Keras' moving averages (momentum 0.99, lagging behind weights that move fast) and 90%
    once recalibrated. Keras has no such callback."""

    def __init__(self, maps, batches=20):
        super().__init__()
        self.maps, self.batches = maps, batches

    def on_test_begin(self, logs=None):
        layers = _trainable_batch_norms(self.model)
        if not layers:
            return
        momenta = [layer.momentum for layer in layers]
        for step, batch in enumerate(self.maps.take(self.batches)):
            for layer in layers:
                layer.momentum = step / (step + 1)  # a running mean over the batches
            self.model(batch, training=True)
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def fit_resumable(model, train, val, run_dir, epochs, *, patience=None, best_path=None,
                  model_to_save=None, resume=False, batch_norm_maps=None, extra_callbacks=(),
                  verbose="auto"):
    """`model.fit` with a resumable backup, best-model saving, early stopping and a CSV log.

    Args:
        model: a compiled model reporting `exact_match`.
        train, val: `tf.data` datasets of (maps, targets).
        run_dir: where `backup/`, `history.csv` and the best model go.
        epochs: the most epochs to train.
        patience: stop after this many epochs without a better validation exact match.
        best_path: where the best model is saved (default `run_dir/best.keras`).
        model_to_save: what to save there (default `model`).
        resume: continue from `run_dir/backup` if a previous run left one.
        batch_norm_maps: a dataset of training map batches; BatchNorm statistics are
            recalibrated on it before each validation (see `BatchNormRecalibration`).
        extra_callbacks: more Keras callbacks, run after the built-in ones.
    Returns:
        The history dict of this call (with `resume`, only the epochs it ran).
    """
    run_dir = Path(run_dir)
    backup = run_dir / "backup"
    if backup.exists() and not resume:
        raise FileExistsError(f"{run_dir} holds an unfinished run; resume it or choose another directory")
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup)),  # first: later callbacks may stop the run
        BestModelCheckpoint(best_path or run_dir / "best.keras", model_to_save=model_to_save, resume=resume),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume),
    ]
    if batch_norm_maps is not None:
        callbacks.append(BatchNormRecalibration(batch_norm_maps))
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(MONITOR, patience=patience, mode="max"))
    callbacks.extend(extra_callbacks)
    run_dir.mkdir(parents=True, exist_ok=True)
    # shuffle=False: the datasets shuffle themselves (seeded); Keras would only warn.
    return model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose,
                     shuffle=False).history


def train_teacher(parts, run_dir, *, arch="resnet18", epochs=20, batch_size=128, learning_rate=2e-3,
                  augment=True, patience=None, seed=0, resume=False, strategy=None, verbose="auto"):
    """Train a teacher on labelled maps; return the best model (by validation exact match).

    Args:
        parts: splits from `runs.load_splits` ('train' and 'val' are used).
        run_dir: the run directory; the best model is saved as `teacher.keras` there.
        arch: a registered teacher architecture (`kd_keras.models.teacher_names()`).
        strategy: a `tf.distribute` strategy to build and train under (None: the default device).
    """
    from kd_keras.data.pipeline import make_dataset
    from kd_keras.models import build_teacher

    run_dir = Path(run_dir)
    train, val = parts["train"], parts["val"]
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_teacher(arch, seed=seed)
        model.compile(cosine_adamw(learning_rate, steps_for(len(train), batch_size, epochs)),
                      keras.losses.BinaryCrossentropy(from_logits=True), metrics=multilabel_metrics())
    fit_resumable(
        model,
        make_dataset(train.maps, train.labels.astype("float32"), batch_size=batch_size,
                     shuffle=True, augment=augment, seed=seed),
        make_dataset(val.maps, val.labels.astype("float32"), batch_size=batch_size),
        run_dir, epochs, patience=patience, best_path=run_dir / TEACHER_FILE, resume=resume,
        batch_norm_maps=make_dataset(train.maps, batch_size=batch_size, shuffle=True, seed=seed),
        verbose=verbose,
    )
    return load_model(run_dir / TEACHER_FILE)


def load_model(path):
    """Load a saved model in Keras' safe mode (no arbitrary code), uncompiled, for inference."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}")
    return keras.saving.load_model(path, compile=False, safe_mode=True)
