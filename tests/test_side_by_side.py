"""Trainings side by side: built in turn, one progress bar, failures and Ctrl-C (with real students:
test_distill_training.py)."""

import signal
import threading
import time
from functools import partial

import pytest

from kd_keras.side_by_side import SideBySide, _SharedProgress, train_side_by_side

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def batches(name, events, before_training, extra_callbacks, fail_at=None, count=200):
    """A stand-in training: built, then `count` batches, each told to the callbacks."""
    events.append(f"{name} built")
    before_training()
    events.append(f"{name} trains")
    for batch in range(count):
        if batch == fail_at:
            raise OSError(28, "No space left on device", f"runs/{name}/training.json")
        for callback in extra_callbacks:
            callback.on_train_batch_end(batch)
        threading.Event().wait(0.001)
    return name


def test_students_are_built_one_after_another_and_all_before_any_trains():
    events = []
    trained = train_side_by_side({name: SideBySide(1, partial(batches, name, events, count=3))
                                  for name in ("net1", "net2", "vgg19k")}, verbose=0)
    assert trained == {"net1": "net1", "net2": "net2", "vgg19k": "vgg19k"}
    assert events[:3] == ["net1 built", "net2 built", "vgg19k built"]
    assert sorted(events[3:]) == ["net1 trains", "net2 trains", "vgg19k trains"]


def test_a_failure_stops_the_others_at_their_next_batch_and_is_raised():
    events = []
    trainings = {"net1": SideBySide(1, partial(batches, "net1", events, count=100_000)),
                 "net2": SideBySide(1, partial(batches, "net2", events, fail_at=5))}
    with pytest.raises(OSError, match="No space left on device") as raised:
        train_side_by_side(trainings, verbose=0)
    assert raised.value.filename == "runs/net2/training.json"


def test_a_failure_while_building_trains_nothing():
    def fails_to_build(before_training, extra_callbacks):
        raise ValueError("unknown student 'net9'")

    events = []
    with pytest.raises(ValueError, match="net9"):
        train_side_by_side({"net9": SideBySide(1, fails_to_build),
                            "net2": SideBySide(1, partial(batches, "net2", events))}, verbose=0)
    assert events == []


def test_ctrl_c_stops_every_student_and_is_raised():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    events = []

    def interrupts(before_training, extra_callbacks):
        before_training()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C
        return batches("net2", events, lambda: None, extra_callbacks, count=100_000)

    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            train_side_by_side({"net1": SideBySide(1, partial(batches, "net1", events, count=100_000)),
                                "net2": SideBySide(1, interrupts)}, verbose=0)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 30  # stopped, not run to their 100,000th batch


def test_a_resumed_student_moves_the_bar_from_its_finished_epochs(capsys):
    progress = _SharedProgress({"net1": 30, "net2": 30}, verbose=1)
    progress.callback("net1").on_epoch_end(11, {"val_exact_match": 0.5})  # resumed after epoch 11
    progress.callback("net2").on_epoch_end(0, {})
    progress.close()
    assert progress.done == {"net1": 12, "net2": 1}
    assert "13/60" in capsys.readouterr().out
