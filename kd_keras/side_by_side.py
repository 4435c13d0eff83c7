"""Students trained at the same time, in threads of one process, behind one progress bar.

On 2 CPU cores one tiny student leaves the second core mostly idle: its layers are too
small to split across cores. Net-1 and Net-2, the main job's students before separable8k (30
epochs on 3,040 synthetic maps), took 142 s one after the other and 126 s side by side.

Each student gets exactly the weights it gets when trained alone (`tests/test_distill_training.py`):

- the students are built one at a time, and all before any of them trains: building seeds
  the process (`keras.utils.set_random_seed`), which also resets TensorFlow's random
  kernels. Done while another student trained, it changed that student's weights from
  run to run (measured);
- what each then runs (its model, optimizer and seeded datasets) is its own.

A failure in one student stops the others at their next batch, then is raised; Ctrl-C
stops every student at its last finished epoch, as it stops one trained alone; kill -9
ends them all at once (they are one process).

Example:

>>> def train(name, before_training, extra_callbacks):
...     before_training()  # built: the next student may be built
...     return f"{name} trained"
>>> from functools import partial
>>> train_side_by_side({name: SideBySide(3, partial(train, name)) for name in ("net1", "net2")}, verbose=0)
{'net1': 'net1 trained', 'net2': 'net2 trained'}
"""

import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable

import keras


class Stopped(Exception):
    """Raised inside a student's training when another one failed or Ctrl-C was pressed."""


@dataclasses.dataclass(frozen=True)
class SideBySide:
    """One training to run beside others: at most `epochs` epochs of
    `train(before_training=..., extra_callbacks=...)`, which builds its model, calls
    `before_training()` once built and before its first batch, trains with the extra Keras
    callbacks, and returns what it trained."""

    epochs: int
    train: Callable


class _StopWhenAsked(keras.callbacks.Callback):
    def __init__(self, stop):
        super().__init__()
        self.stop = stop

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.is_set():
            raise Stopped


class _SharedProgress:
    """One Keras progress bar over the epochs of every training: each epoch a student ends
    moves it, and shows that student's latest validation exact match."""

    def __init__(self, epochs, verbose):
        self.done = dict.fromkeys(epochs, 0)
        self.lock = threading.Lock()
        self.bar = None if verbose == 0 else keras.utils.Progbar(
            sum(epochs.values()), verbose=1 if verbose == "auto" else verbose, unit_name="epoch",
            stateful_metrics=[f"{name} val_exact_match" for name in epochs])

    def callback(self, name):
        return keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: self.epoch_ended(name, epoch, logs or {}))

    def epoch_ended(self, name, epoch, logs):
        with self.lock:
            self.done[name] = epoch + 1  # a resumed training starts past its finished epochs
            if self.bar is not None:
                value = logs.get("val_exact_match")
                self.bar.update(sum(self.done.values()),
                                [] if value is None else [(f"{name} val_exact_match", float(value))])

    def close(self):
        if self.bar is not None:  # students stopped early leave the bar short of its end
            self.bar.update(sum(self.done.values()), finalize=True)


def _wait_until(condition):
    """Return once `condition()` holds. Polled, not waited on: a Ctrl-C that lands just before
    a blocking wait begins is only seen once the wait ends (measured: once every student had
    run to its end)."""
    while not condition():
        time.sleep(0.1)


def train_side_by_side(trainings, verbose="auto"):
    """Run each of `trainings` ({name: `SideBySide`}) in a thread of its own; {name: what it returned}.

    They are built one after another, in order, and start training together once all are
    built. A failure (or Ctrl-C) stops the others at their next batch and is raised (with
    several failures, the first student's).
    `verbose`: 0 for silence; otherwise one progress bar over all their epochs."""
    progress = _SharedProgress({name: training.epochs for name, training in trainings.items()}, verbose)
    built = {name: threading.Event() for name in trainings}
    start, stop = threading.Event(), threading.Event()

    def run(name, training):
        def before_training():
            built[name].set()
            start.wait()
            if stop.is_set():
                raise Stopped
        try:
            return training.train(before_training=before_training,
                                  extra_callbacks=[progress.callback(name), _StopWhenAsked(stop)])
        finally:
            built[name].set()  # failed before it was built: the next one need not wait

    with concurrent.futures.ThreadPoolExecutor(len(trainings)) as pool:
        futures = {}
        try:
            for name, training in trainings.items():
                futures[name] = pool.submit(run, name, training)
                _wait_until(built[name].is_set)
                if futures[name].done():  # failed while being built
                    break
            start.set()
            _wait_until(lambda: all(future.done() for future in futures.values()) or any(
                future.done() and future.exception() is not None for future in futures.values()))
        finally:
            # Normal end: nothing left to stop. A failure, or Ctrl-C here: the others stop at their next batch.
            stop.set()
            start.set()
            concurrent.futures.wait(futures.values())
            progress.close()
    failures = [future.exception() for future in futures.values()
                if future.exception() is not None and not isinstance(future.exception(), Stopped)]
    if failures:
        raise failures[0]
    return {name: future.result() for name, future in futures.items()}
