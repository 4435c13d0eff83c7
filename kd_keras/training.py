"""Training shared by the teacher and the students: metrics, callbacks, resumable `fit`.

A training directory holds everything its training makes. `training.json` records, after
each epoch, all a run needs to go on (`RunCheckpoint`): a run killed at any instant, or
interrupted with Ctrl-C, continues from its last finished epoch when started again with
`resume=True`, and ends as it would have without the interruption. The best model so far
is always complete on disk (written atomically). One process at a time trains in a
directory (`kd_keras.rundir.locked`).

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
import errno
import itertools
import shutil
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kd_keras.data.pipeline import make_dataset, pattern_weights
from kd_keras.errors import FileFormatError, RunDirectoryError
from kd_keras.fileio import atomic_path, read_json, write_json, write_text
from kd_keras.models import build_teacher
from kd_keras.rundir import changed_settings, digest, locked
from kd_keras.tasks import CLASSIFY

MONITOR = "val_exact_match"
TEACHER_FILE = "teacher.keras"
STATE_FILE = "training.json"
CHECKPOINT_DIR = "checkpoint"
HISTORY_FILE = "history.csv"
LEGACY_BACKUP_DIR = "backup"  # where older versions (Keras' BackupAndRestore) kept an unfinished run
FIT_PASSES_PER_EPOCH = 2  # iterators Keras' `fit` makes of the training data each epoch (see `_train`)


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

    Keras' moving averages (momentum 0.99) lag behind weights that move fast: mid-training,
    a ResNet-18 teacher read validation maps far worse with them than with recalibrated
    statistics. Keras has no such callback."""

    def __init__(self, maps, batches=20):
        super().__init__()
        self.maps, self.batches = maps, batches
        self._forward = None  # the model in training mode, traced once with every momentum at 0

    def on_test_begin(self, logs=None):
        layers = _trainable_batch_norms(self.model)
        if not layers:
            return
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.momentum = 0.0  # each call leaves its batch's statistics in the moving ones
        if self._forward is None:
            # Traced, not eager: run eagerly, the 20 batches cost a vgg7 teacher 2.5 s per epoch.
            self._forward = tf.function(lambda maps: self.model(maps, training=True))
        sums = [np.zeros((2, *layer.moving_mean.shape)) for layer in layers]
        count = 0
        for batch in self.maps.take(self.batches):
            self._forward(batch)
            for total, layer in zip(sums, layers):
                total += (layer.moving_mean.numpy(), layer.moving_variance.numpy())
            count += 1
        for total, layer, momentum in zip(sums, layers, momenta):
            if count:
                layer.moving_mean.assign(total[0] / count)
                layer.moving_variance.assign(total[1] / count)
            layer.momentum = momentum


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch's end, commit the whole training state of `run_dir` at once.

    The state is the epoch, the weights with the optimizer's, the best validation value
    (the best model is saved, atomically, as `best_path` when it improves), early
    stopping's count and the history rows. It lives in `training.json`, written last and
    atomically: a kill at any instant leaves the previous epoch's state whole, and
    `history.csv` is rewritten from it. Keras' BackupAndRestore, ModelCheckpoint,
    EarlyStopping and CSVLogger each keep a part of this state in their own files, written
    at other moments and not atomically (a kill while BackupAndRestore writes leaves a
    0-byte weights file, a resumed EarlyStopping forgets its count), so resuming from them
    cannot be exact."""

    def __init__(self, run_dir, state, best_path, model_to_save=None, patience=None):
        super().__init__()
        self.run_dir, self.state, self.best_path = Path(run_dir), state, Path(best_path)
        self.model_to_save, self.patience = model_to_save, patience

    def on_train_begin(self, logs=None):
        # Restored here, as BackupAndRestore does, not before `fit`: `fit` then prepares
        # itself (and draws from the datasets) as it did when the run began.
        if self.state["weights"]:
            if not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self.run_dir / self.state["weights"])

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        state = self.state
        value = logs.get(MONITOR)
        if value is not None:
            if state["best"] is None or value > state["best"]:
                with atomic_path(self.best_path) as tmp:
                    (self.model_to_save or self.model).save(tmp)
                state.update(best=value, best_epoch=epoch + 1, wait=0)
            else:
                state["wait"] += 1
        state["history"].append({"epoch": epoch, **logs})
        previous = state["weights"]
        # A new name each epoch: a kill while it is written leaves the committed one whole.
        state["weights"] = f"{CHECKPOINT_DIR}/epoch-{epoch + 1:04d}.weights.h5"
        (self.run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
        self.model.save_weights(self.run_dir / state["weights"])
        state["epoch"] = epoch + 1
        # Stopped early as keras.callbacks.EarlyStopping decides, and committed with the epoch.
        state["stopped"] = bool(self.patience and state["wait"] >= self.patience and epoch > 0)
        write_json(self.run_dir / STATE_FILE, state)  # the commit
        write_history(self.run_dir / HISTORY_FILE, state["history"])
        if previous:
            (self.run_dir / previous).unlink(missing_ok=True)
        self.model.stop_training = state["stopped"]


def write_history(path, rows):
    """history.csv as Keras' CSVLogger writes it: epoch, then the logged values by name."""
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    lines = [",".join(["epoch", *keys])] + [",".join(str(row.get(key, "")) for key in ["epoch", *keys])
                                             for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def read_training_state(run_dir):
    """`run_dir`'s training.json, or None where no training ever started there."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    state = read_json(path)
    required = {"settings": dict, "epoch": int, "finished": bool, "stopped": bool, "history": list, "wait": int}
    wrong = [key for key, kind in required.items()
             if not isinstance(state, dict) or not isinstance(state.get(key), kind)]
    if wrong:
        raise FileFormatError(f"{path}: not a training state (field {wrong[0]!r} missing or of the wrong type); "
                              "start the run again with --overwrite")
    return state


def _start_state(run_dir, settings, best_path, *, resume, overwrite):
    """The training state to start `fit` from: new, or the committed one when resuming."""
    state = read_training_state(run_dir)
    leftovers = [name for name in (Path(best_path).name, HISTORY_FILE, LEGACY_BACKUP_DIR) if (run_dir / name).exists()]
    if state is not None and resume and not overwrite:
        changes = changed_settings(state["settings"], settings)
        if changes:
            raise RunDirectoryError(f"{run_dir} was trained with other settings: {changes}; resume it with the "
                                    "same ones, or start it again with --overwrite")
        return state
    if (state is not None or leftovers) and not overwrite:
        what = "a finished" if state and state["finished"] else "an unfinished" if state else "an older version's"
        hint = "continue it with --resume, start it again" if state else "start it again"
        raise RunDirectoryError(f"{run_dir} holds {what} training run; {hint} with --overwrite, or choose "
                                "another directory")
    for name in (STATE_FILE, CHECKPOINT_DIR, *leftovers):
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return {"settings": settings, "epoch": 0, "finished": False, "stopped": False, "best": None, "best_epoch": None,
            "wait": 0, "history": [], "weights": None}


def fit_resumable(model, train, val, run_dir, epochs, *, patience=None, best_path=None, model_to_save=None,
                  settings=None, resume=False, overwrite=False, batch_norm_maps=None, extra_callbacks=(),
                  verbose="auto"):
    """`model.fit` that a kill at any instant cannot spoil, with best-model saving and early stopping.

    Args:
        model: a compiled, built model reporting `exact_match`.
        train, val: `tf.data` datasets of (maps, targets).
        run_dir: where training.json, checkpoint/, history.csv and the best model go.
        epochs: the most epochs to train.
        patience: stop after this many epochs without a better validation exact match.
        best_path: where the best model is saved (default `run_dir/best.keras`).
        model_to_save: what to save there (default `model`).
        settings: what the result depends on ({name: value}, JSON-able), recorded; resuming
            with other settings is refused, naming them.
        resume: continue the run that `run_dir` holds, exactly where its last finished epoch
            left it (a finished run is not trained again); without it, a run found there is
            refused, unless `overwrite` starts it again.
        batch_norm_maps: a dataset of training map batches; BatchNorm statistics are
            recalibrated on it before each validation (see `BatchNormRecalibration`).
        extra_callbacks: more Keras callbacks, run after the built-in ones.
    Returns:
        The history of the whole run ({name: [value per epoch]}), resumed epochs included.
    """
    run_dir = Path(run_dir)
    best_path = Path(best_path or run_dir / "best.keras")
    settings = {"epochs": epochs, "patience": patience, **(settings or {})}
    with locked(run_dir):
        state = _start_state(run_dir, settings, best_path, resume=resume, overwrite=overwrite)
        if not state["finished"]:
            _train(model, train, val, run_dir, epochs, state, best_path, model_to_save, patience,
                   batch_norm_maps, extra_callbacks, verbose)
    rows = state["history"]
    return {key: [row[key] for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}


def _train(model, train, val, run_dir, epochs, state, best_path, model_to_save, patience, batch_norm_maps,
           extra_callbacks, verbose):
    if state["weights"]:
        print(f"resuming {run_dir} after epoch {state['epoch']}")
        # Each pass over a shuffled dataset draws its order and augmentation from the
        # dataset's seeded generator. Drawing the finished epochs' passes again makes epoch
        # k see what it would have seen without the interruption: Keras' `fit` makes two
        # iterators of the training data an epoch (3.15: as each epoch begins, and as it
        # ends), `BatchNormRecalibration` one of its maps. The kill-and-resume test checks it.
        for _ in range(FIT_PASSES_PER_EPOCH * state["epoch"]):
            iter(train)
        for _ in range(state["epoch"] if batch_norm_maps is not None else 0):
            iter(batch_norm_maps)
    for stale in (run_dir / CHECKPOINT_DIR).glob("*") if (run_dir / CHECKPOINT_DIR).is_dir() else []:
        if stale.relative_to(run_dir).as_posix() != state["weights"]:
            stale.unlink()  # written by a run killed before it committed
    write_json(run_dir / STATE_FILE, state)
    callbacks = [RunCheckpoint(run_dir, state, best_path, model_to_save, patience)]
    if batch_norm_maps is not None:
        callbacks.insert(0, BatchNormRecalibration(batch_norm_maps))
    callbacks.extend(extra_callbacks)
    if state["epoch"] < epochs and not state["stopped"]:
        # shuffle=False: the datasets shuffle themselves (seeded); Keras would only warn.
        model.fit(train, validation_data=val, epochs=epochs, initial_epoch=state["epoch"], callbacks=callbacks,
                  verbose=verbose, shuffle=False)
    state["finished"] = True
    write_json(run_dir / STATE_FILE, state)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)


def make_strategy(name):
    """None for the default device, or a MirroredStrategy over every GPU (else every logical CPU)."""
    if name == "default":
        return None
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def fit_splits(model, parts, targets, run_dir, *, epochs, batch_size, augment, seed, best_path, model_to_save=None,
               patience=None, settings=None, resume=False, overwrite=False, extra_callbacks=(), verbose="auto",
               train_weights=None):
    """`fit_resumable` on a run's splits; return the best model, loaded.

    The training maps are shuffled (and, with `augment`, rotated/flipped) each epoch with
    `targets["train"]` (and a loss weight per map, `train_weights`, where given); validation uses
    `targets["val"]`, every map weighing the same; BatchNorm statistics are
    recalibrated on training maps. `settings` (what else the result depends on) gets the
    data's digest, so resuming on other data is refused."""
    train, val = parts["train"], parts["val"]
    fit_resumable(
        model,
        make_dataset(train.maps, targets["train"], batch_size=batch_size, shuffle=True, augment=augment, seed=seed,
                     weights=train_weights),
        make_dataset(val.maps, targets["val"], batch_size=batch_size),
        run_dir, epochs, patience=patience, best_path=best_path, model_to_save=model_to_save, resume=resume,
        overwrite=overwrite, extra_callbacks=extra_callbacks, verbose=verbose,
        settings={**(settings or {}), "batch_size": batch_size, "augment": augment, "seed": seed,
                  "data": digest(train.maps, train.labels, val.maps, val.labels)},
        batch_norm_maps=make_dataset(train.maps, batch_size=batch_size, shuffle=True, seed=seed),
    )
    return load_model(best_path)


def train_teacher(parts, run_dir, *, arch="resnet18", epochs=20, batch_size=128, learning_rate=2e-3,
                  augment=True, patience=None, seed=0, resume=False, overwrite=False, strategy=None,
                  verbose="auto", balance=0.0, init=None):
    """Train a teacher on labelled maps; return the best model (by validation exact match).

    Args:
        parts: splits from `kd_keras.data.load_splits` ('train' and 'val' are used).
        run_dir: the run directory; the best model is saved as `teacher.keras` there.
        arch: a registered teacher architecture (`kd_keras.models.teacher_names()`).
        resume, overwrite: what to do with a run `run_dir` already holds (see `fit_resumable`).
        strategy: a `tf.distribute` strategy to build and train under (None: the default device).
        balance: how much rarer label patterns weigh in the loss (`kd_keras.data.pattern_weights`'s
            power: 0, the default, weighs every map alike; 0.5 the square root; 1 every pattern alike).
        init: a saved model of the same architecture to start from instead of random weights
            (pre-training, e.g. a teacher trained on WM-811K maps; see `start_from`).
    """
    run_dir = Path(run_dir)
    targets = {split: CLASSIFY.targets(parts[split]) for split in ("train", "val")}
    weights = pattern_weights(targets["train"], balance) if balance else None
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_teacher(arch, seed=seed)
        if init is not None:
            start_from(model, init)
        model.compile(cosine_adamw(learning_rate, steps_for(len(parts["train"]), batch_size, epochs)),
                      keras.losses.BinaryCrossentropy(from_logits=True), metrics=multilabel_metrics())
    # Recorded only when set, so that teachers trained before balancing existed still resume.
    settings = ({"teacher": arch, "learning_rate": learning_rate} | ({"balance": balance} if balance else {})
                | ({"init": str(init)} if init is not None else {}))
    return fit_splits(model, parts, targets, run_dir, epochs=epochs, batch_size=batch_size, augment=augment,
                      seed=seed, best_path=run_dir / TEACHER_FILE, patience=patience, resume=resume,
                      overwrite=overwrite, settings=settings, verbose=verbose, train_weights=weights)


def start_from(model, path):
    """Give `model` the weights of the model saved at `path`, which must have the same
    architecture: weight tensors of the same shapes in the same order. Raises
    `FileFormatError` naming the file and the first tensor that does not fit.

    >>> import tempfile
    >>> def net(width):
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width), keras.layers.Dense(1)])
    >>> path = Path(tempfile.mkdtemp()) / "pretrained.keras"
    >>> pretrained = net(3)
    >>> pretrained.save(path)
    >>> model = net(3)
    >>> start_from(model, path)
    >>> all(np.array_equal(a, b) for a, b in zip(model.get_weights(), pretrained.get_weights()))
    True
    >>> start_from(net(5), path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kd_keras.errors.FileFormatError: ...: its weight tensor 1 is (4, 3), this model's (4, 5)
    """
    source = load_model(path)
    ours, theirs = [tuple(w.shape) for w in model.weights], [tuple(w.shape) for w in source.weights]
    for index, (mine, its) in enumerate(itertools.zip_longest(ours, theirs)):
        if mine != its:
            raise FileFormatError(f"{path}: its weights do not fit this model's ({model.name}): its weight tensor "
                                  f"{index + 1} is {its}, this model's {mine}")
    model.set_weights(source.get_weights())


def load_model(path):
    """Load a saved model in Keras' safe mode (no arbitrary code), uncompiled, for inference.

    A file that is not a whole `.keras` archive, or that Keras refuses (code in its
    configuration, an unknown layer), raises `FileFormatError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no model file there", str(path))
    if not zipfile.is_zipfile(path):
        raise FileFormatError(f"{path}: not a complete .keras model (a .keras file is a zip archive): "
                              "truncated, or another kind of file")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, EOFError, zipfile.BadZipFile,
            zlib.error) as error:
        # Keras' own words, first sentence: its long advice (e.g. to turn safe mode off) is not ours to give.
        reason = str(error).strip().split("\n")[0].split(". ")[0]
        raise FileFormatError(f"{path}: Keras cannot load this model ({type(error).__name__}: {reason})") from None
