"""Nothing lost: faults injected into the command lines, and what they leave behind.

Each case asserts the exit status, a one-line message naming the file, and that no file
that was there before changed (hashes before and after; the lock file, which records the
directory's holder, aside). The kill -9 test interrupts a small distillation at 20+
instants, during training and inside checkpoint writes, and resumes it each time: it must
end with the same models and histories as the same run never interrupted. (Tests marked
e2e run commands in their own processes: a kill, a file-size limit, a pipe that closes.)
"""

import errno
import hashlib
import json
import os
import pathlib
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from kd_keras import distill
from kd_keras.data import generate_wafer_maps, save_mixedwm38
from kd_keras.models import build_student
from kd_keras.rundir import LOCK_FILE
from kd_keras.training import load_model
from tests.helpers import REPO
from tflite import convert, evaluate, export

TIER = "integration"  # tests marked with no tier of their own (conftest.py)
MAPS = 760  # synthetic maps of the training runs: enough for the students to improve now and then


def snapshot(root):
    """{relative path: sha256} of every file under `root` (the lock file aside)."""
    root = Path(root)
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and path.name != LOCK_FILE}


# TensorFlow's C++ start-up lines (absl's pre-initialisation notice, CUDA probing), which a
# command run in a fresh process prints before any of ours; they are not the toolkit's message.
TENSORFLOW_STARTUP = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def one_line_error(stderr, *names):
    """The one line of an expected failure, which names `names`."""
    lines = [line for line in stderr.splitlines() if line.strip() and not TENSORFLOW_STARTUP.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A MixedWM38-layout file of synthetic maps and an untrained Net-2 (.keras)."""
    root = tmp_path_factory.mktemp("workspace")
    data = generate_wafer_maps(380, seed=0)
    save_mixedwm38(root / "maps.npz", data.maps, data.labels)
    build_student("net2", seed=0).save(root / "net2.keras")
    return root


@pytest.fixture(scope="module")
def converted(workspace):
    """A model directory written by `tflite.convert`."""
    out = workspace / "converted" / "net2"
    assert convert.main([str(workspace / "net2.keras"), "--data", str(workspace / "maps.npz"), "--out", str(out),
                         "--budget", "248KB"]) == 0
    return out


def convert_into(workspace, out, *extra):
    return convert.main([str(workspace / "net2.keras"), "--data", str(workspace / "maps.npz"), "--out", str(out),
                         "--budget", "248KB", *extra])


# ---------------------------------------------------------------------------------------------
# tflite.convert: never deletes what it did not write; the swap is all or nothing.


def models_folder(root):
    """A folder of models and a notes file, as `models/` is."""
    folder = root / "models"
    for name in ("kd-21kb", "kd-248kb"):
        (folder / name).mkdir(parents=True)
        (folder / name / "model.tflite").write_bytes(b"TFL3 not really")
    (folder / "notes.txt").write_text("what we shipped and why\n")
    return folder


def run_folder(root):
    """A student's training folder: its only float model and its history."""
    folder = root / "run" / "net2"
    folder.mkdir(parents=True)
    shutil.copy(root / "net2.keras", folder)
    (folder / "history.csv").write_text("epoch,loss\n0,1.0\n")
    return folder


@pytest.mark.parametrize("target", ["models folder", "the input model's run folder", "a file", "the working folder"])
def test_convert_refuses_what_it_did_not_write_before_any_work(workspace, tmp_path, monkeypatch, capsys, target):
    shutil.copy(workspace / "net2.keras", tmp_path / "net2.keras")
    (tmp_path / "notes.txt").write_text("my notes\n")
    out = {"models folder": lambda: models_folder(tmp_path),
           "the input model's run folder": lambda: run_folder(tmp_path),
           "a file": lambda: tmp_path / "notes.txt",
           "the working folder": lambda: Path(".")}[target]()
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    source = tmp_path / "run" / "net2" / "net2.keras" if "run folder" in target else tmp_path / "net2.keras"
    status = convert.main([str(source), "--data", str(workspace / "maps.npz"), "--out", str(out)])
    assert status == 1
    one_line_error(capsys.readouterr().err, out)
    assert snapshot(tmp_path) == before


def test_reconverting_keeps_the_files_convert_did_not_write(workspace, converted, tmp_path):
    out = tmp_path / "net2"
    shutil.copytree(converted, out)
    (out / "README.md").write_text("hand-written\n")
    (out / "notes").mkdir()
    (out / "notes" / "calibration.txt").write_text("500 maps\n")
    kept = {name: digest for name, digest in snapshot(out).items() if name in ("README.md", "notes/calibration.txt")}
    assert convert_into(workspace, out, "--name", "renamed") == 0
    assert {name: snapshot(out)[name] for name in kept} == kept
    assert json.loads((out / "model_card.json").read_text())["name"] == "renamed"
    assert [p.name for p in tmp_path.iterdir()] == ["net2"]  # no staging folder left beside it


def test_a_symbolic_link_to_a_model_directory_stays_a_link(workspace, converted, tmp_path):
    shutil.copytree(converted, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert convert_into(workspace, tmp_path / "link", "--name", "linked") == 0
    assert (tmp_path / "link").is_symlink()
    assert json.loads((tmp_path / "real" / "model_card.json").read_text())["name"] == "linked"


def failing(error_number):
    def fail(*args, **kwargs):
        raise OSError(error_number, os.strerror(error_number))
    return fail


@pytest.mark.parametrize("fault", ["the exchange fails", "no exchange, the second rename fails", "disk full",
                                   "read-only folder"])
def test_a_failed_conversion_leaves_the_old_directory_where_it_was(workspace, converted, tmp_path, monkeypatch,
                                                                   capsys, fault):
    out = tmp_path / "net2"
    shutil.copytree(converted, out)
    (out / "README.md").write_text("hand-written\n")
    before = snapshot(tmp_path)
    import kd_keras.fileio as fileio

    real_rename, real_write_bytes, real_mkdir = os.rename, pathlib.Path.write_bytes, os.mkdir
    if fault == "the exchange fails":
        monkeypatch.setattr(fileio, "_exchange", failing(errno.EIO))
    elif fault == "no exchange, the second rename fails":
        monkeypatch.setattr(fileio, "_exchange", lambda first, second: False)

        def rename(source, destination):
            if Path(destination) == out.resolve():
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_rename(source, destination)
        monkeypatch.setattr(os, "rename", rename)
    elif fault == "disk full":
        def write_bytes(self, data):
            if self.name == "model_data.cc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real_write_bytes(self, data)
        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    else:
        def mkdir(path, *args, **kwargs):
            if Path(path).parent == tmp_path:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_mkdir(path, *args, **kwargs)
        monkeypatch.setattr(os, "mkdir", mkdir)
    assert convert_into(workspace, out) == 1
    one_line_error(capsys.readouterr().err, out)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before  # the old directory, whole, and nothing beside it


def test_the_two_rename_swap_works_where_the_system_cannot_exchange(workspace, converted, tmp_path, monkeypatch):
    import kd_keras.fileio as fileio

    out = tmp_path / "net2"
    shutil.copytree(converted, out)
    (out / "README.md").write_text("hand-written\n")
    monkeypatch.setattr(fileio, "_exchange", lambda first, second: False)
    assert convert_into(workspace, out, "--name", "swapped") == 0
    assert (out / "README.md").read_text() == "hand-written\n"
    assert json.loads((out / "model_card.json").read_text())["name"] == "swapped"
    assert [p.name for p in tmp_path.iterdir()] == ["net2"]


def test_ctrl_c_in_convert_does_not_suggest_resume(workspace, tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(export, "export_model", interrupt)  # what convert_student calls
    assert convert_into(workspace, tmp_path / "net2") == 130
    message = capsys.readouterr().err
    assert "nothing was written" in message and "--resume" not in message
    assert not (tmp_path / "net2").exists()


def test_a_budget_refused_says_why(workspace, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        convert_into(workspace, tmp_path / "net2", "--budget", "1KB")
    assert exit_info.value.code == 2
    assert "budget '1KB': expected 21KB, 248KB or a positive number of bytes" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Files that are not what they claim: one line naming the file, never a traceback.


def corrupt_card(directory, change):
    card = json.loads((directory / "model_card.json").read_text())
    change(card)
    (directory / "model_card.json").write_text(json.dumps(card))


@pytest.mark.parametrize("fault, words", [
    ("card without outputs", "field 'outputs' is missing"),
    ("card with a text size", "field 'flash_bytes' should be an integer"),
    ("card that is not JSON", "not valid JSON"),
    ("flatbuffer corrupted inside", "not a model TFLite Micro can load"),
    ("flatbuffer truncated", "truncated or replaced"),
])
def test_evaluate_names_the_broken_file(workspace, converted, tmp_path, capsys, fault, words):
    model_dir = tmp_path / "net2"
    shutil.copytree(converted, model_dir)
    tflite = model_dir / "model.tflite"
    if fault == "card without outputs":
        corrupt_card(model_dir, lambda card: card.pop("outputs"))
    elif fault == "card with a text size":
        corrupt_card(model_dir, lambda card: card.update(flash_bytes="big"))
    elif fault == "card that is not JSON":
        (model_dir / "model_card.json").write_text('{"name": "net2", ')
    elif fault == "flatbuffer corrupted inside":
        flatbuffer = bytearray(tflite.read_bytes())
        flatbuffer[4:64] = bytes(range(60))  # the flatbuffer's root table offsets and identifier
        tflite.write_bytes(bytes(flatbuffer))
    else:
        tflite.write_bytes(tflite.read_bytes()[:1000])
    before = snapshot(tmp_path)
    assert evaluate.main([str(model_dir), "--data", str(workspace / "maps.npz")]) == 1
    broken = "model_card.json" if "card" in fault else "model.tflite"
    assert words in one_line_error(capsys.readouterr().err, model_dir / broken)
    assert snapshot(tmp_path) == before


def test_compare_without_the_float_model_compares_what_it_can(workspace, converted, tmp_path, capsys):
    model_dir = tmp_path / "net2"
    shutil.copytree(converted, model_dir)
    corrupt_card(model_dir, lambda card: card.update(source_model="runs/gone/net2.keras"))
    assert evaluate.main([str(model_dir), "--data", str(workspace / "maps.npz"), "--compare"]) == 0
    printed = capsys.readouterr().out
    assert "TFLite Micro vs LiteRT (reference kernels): max difference" in printed
    assert "no comparison with the float model: the float model its card names (runs/gone/net2.keras) is not " \
           "here" in printed


@pytest.mark.parametrize("fault, words", [
    ("truncated", "not a complete .keras model"),
    ("a Lambda layer", "Keras cannot load this model"),
    ("a directory", "expected exactly one student .keras file, found none"),
])
def test_a_model_file_keras_cannot_load_is_named(workspace, tmp_path, capsys, fault, words):
    model = tmp_path / "student.keras"
    if fault == "truncated":
        model.write_bytes((workspace / "net2.keras").read_bytes()[:3000])
    elif fault == "a Lambda layer":
        inputs = keras.Input((52, 52, 1))
        keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(model)
    else:
        model.mkdir()
    before = snapshot(tmp_path)
    assert convert.main([str(model), "--data", str(workspace / "maps.npz"), "--out", str(tmp_path / "out")]) == 1
    assert words in one_line_error(capsys.readouterr().err, model)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("config, words", [
    ("{not json", "not valid JSON"),
    ('{"command": "python -m kd_keras.distill"}', 'expected an object with an "arguments" object'),
    ('{"arguments": {"seed": "zero"}}', "field 'arguments.seed' has the wrong type"),
    ('{"arguments": {"data": ["a.npz", 3]}}', "field 'arguments.data' has the wrong type"),
])
def test_a_broken_run_configuration_is_named(workspace, tmp_path, capsys, config, words):
    (tmp_path / "net2").mkdir()
    shutil.copy(workspace / "net2.keras", tmp_path / "net2")
    (tmp_path / "config.json").write_text(config)
    before = snapshot(tmp_path)
    assert convert.main([str(tmp_path / "net2"), "--out", str(tmp_path / "out")]) == 1
    assert words in one_line_error(capsys.readouterr().err, tmp_path / "config.json")
    assert snapshot(tmp_path) == before


def npz_member(path, name, header, payload, compression=zipfile.ZIP_DEFLATED):
    """Add one .npy member, header and payload given as bytes, to an npz archive."""
    with zipfile.ZipFile(path, "a", compression) as archive:
        archive.writestr(f"{name}.npy", header + payload)


def npy_header(shape, dtype="<i4"):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def set_member_flags(path, name, method=None, encrypted=False):
    """Rewrite a member's headers in place: its compression method, its encrypted bit."""
    raw = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, flags_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30), (b"PK\x01\x02", 8, 10, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_at:start + name_at + len(encoded)] == encoded:
                if encrypted:
                    raw[start + flags_at] |= 1
                if method is not None:
                    raw[start + method_at:start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(raw))


@pytest.mark.e2e
@pytest.mark.parametrize("fault, words", [
    ("zip bomb", "declares an array of shape (1000000000, 8) (32,000,000,000 bytes) but holds"),
    ("encrypted member", "is encrypted"),
    ("unknown compression", "compression method is not supported"),
    ("truncated archive", "not an npz archive"),
    ("a directory", "is a directory, not an .npz file"),
])
def test_inspect_refuses_hostile_archives_in_one_line_and_little_memory(tmp_path, fault, words):
    path = tmp_path / "maps.npz"
    maps = np.ones((2, 52, 52), np.uint8).tobytes()
    if fault == "zip bomb":  # 32 GB declared, 50 MB of zeros stored in 50 KB
        npz_member(path, "arr_1", npy_header((10**9, 8)), bytes(50_000_000))
        npz_member(path, "arr_0", npy_header((2, 52, 52), "|u1"), maps)
    elif fault == "a directory":
        path.mkdir()
    else:
        npz_member(path, "arr_1", npy_header((2, 8)), bytes(64), zipfile.ZIP_STORED)
        npz_member(path, "arr_0", npy_header((2, 52, 52), "|u1"), maps, zipfile.ZIP_STORED)
        if fault == "encrypted member":
            set_member_flags(path, "arr_1.npy", encrypted=True)
        elif fault == "unknown compression":
            set_member_flags(path, "arr_1.npy", method=99)
        else:
            path.write_bytes(path.read_bytes()[:200])

    def small_memory():  # a loader that decompressed first would run out of it
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run([sys.executable, "-m", "kd_keras.data", "inspect", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, preexec_fn=small_memory)
    assert result.returncode == 1, result.stderr
    assert words in one_line_error(result.stderr, path)


@pytest.mark.e2e
def test_a_reader_that_goes_away_is_no_error(workspace):
    child = subprocess.Popen([sys.executable, "-m", "kd_keras.data", "inspect", str(workspace / "maps.npz")],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # as `| head` does, before the summary is printed
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and stderr == ""


# ---------------------------------------------------------------------------------------------
# Training runs: refused, resumed exactly, one process at a time.


@pytest.fixture(scope="module")
def teacher(stand_in_teacher):
    """The session's stand-in teacher: the students learn a little from it."""
    return stand_in_teacher


def distill_args(teacher, out, *extra, epochs=8):
    return ["--synthetic-maps", str(MAPS), "--teacher", str(teacher), "--student", "net2", "net1",
            "--epochs", str(epochs), "--batch-size", "32", "--loss", "hinton", "--lr", "0.01", "--out", str(out),
            "--no-convert", *extra]


@pytest.fixture(scope="module")
def reference_run(teacher, tmp_path_factory):
    """The run the interrupted ones must equal: the same command, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert distill.main(distill_args(teacher, out)) == 0
    return out


def results_of(run):
    """What a run's result is: each student's history and best weights."""
    return {name: ((run / name / "history.csv").read_text(), load_model(run / name / f"{name}.keras").get_weights())
            for name in ("net2", "net1")}


def assert_same_results(run, reference):
    for name, (history, weights) in results_of(reference).items():
        resumed_history, resumed_weights = results_of(run)[name]
        assert resumed_history == history, name
        for resumed, expected in zip(resumed_weights, weights, strict=True):
            np.testing.assert_array_equal(resumed, expected)


@pytest.fixture
def finished_run(reference_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    return run


def test_a_finished_run_is_refused_without_resume_or_overwrite(teacher, finished_run, capsys):
    before = snapshot(finished_run)
    assert distill.main(distill_args(teacher, finished_run)) == 1
    assert "holds a finished run; continue it with --resume, start it again with --overwrite" in \
        one_line_error(capsys.readouterr().err, finished_run)
    assert snapshot(finished_run) == before


def test_resume_refuses_changed_arguments_naming_them(teacher, finished_run, capsys):
    before = snapshot(finished_run)
    changed = distill_args(teacher, finished_run, "--resume", "--seed", "1", "--loss", "paper")
    changed[1] = "380"  # --synthetic-maps
    assert distill.main(changed) == 1
    assert "loss hinton -> paper, seed 0 -> 1, synthetic_maps 760 -> 380" in \
        one_line_error(capsys.readouterr().err, finished_run)
    assert snapshot(finished_run) == before  # config.json still says what the run was


def test_resume_of_a_finished_run_trains_nothing(teacher, finished_run, capsys):
    before = snapshot(finished_run)
    assert distill.main(distill_args(teacher, finished_run, "--resume")) == 0
    assert "holds a finished run: nothing left to train" in capsys.readouterr().out
    assert snapshot(finished_run) == before


def test_overwrite_starts_again_without_stale_students(teacher, finished_run):
    # Net-2 alone this time: Net-1's folder of the old run must not survive beside the new metrics.
    args = distill_args(teacher, finished_run, "--overwrite", epochs=1)
    args.remove("net1")
    assert distill.main(args) == 0
    assert not (finished_run / "net1").exists()
    assert set(json.loads((finished_run / "metrics.json").read_text())["models"]) == {
        "teacher (stand_in_teacher, mean of 8 views)", "net2"}


def test_an_output_folder_that_holds_no_run_is_refused(teacher, tmp_path, capsys):
    folder = models_folder(tmp_path)
    before = snapshot(tmp_path)
    assert distill.main(distill_args(teacher, folder)) == 1
    assert "is not empty and holds no run (kd-21kb/, kd-248kb/, notes.txt)" in \
        one_line_error(capsys.readouterr().err, folder)
    assert snapshot(tmp_path) == before


def test_a_second_process_is_refused_naming_the_holder(teacher, finished_run, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_EX); f.write('%d' % __import__('os').getpid()); f.flush(); "
         "print('locked', flush=True); time.sleep(60)", str(finished_run / LOCK_FILE)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(finished_run)
        assert distill.main(distill_args(teacher, finished_run, "--resume")) == 1
        assert f"is in use by another run (pid {holder.pid})" in one_line_error(capsys.readouterr().err, finished_run)
        assert snapshot(finished_run) == before
    finally:
        holder.kill()
        holder.wait()


def test_leftovers_of_a_kill_inside_a_checkpoint_write_are_ignored(teacher, reference_run, tmp_path):
    """A kill while the weights are written leaves a partial (here 0-byte) file and a temporary
    training.json: the resumed run goes on from the last committed epoch."""
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    state = json.loads((run / "net1" / "training.json").read_text())
    state.update(finished=False, stopped=False, epoch=0, weights=None, history=[], best=None, best_epoch=None, wait=0)
    (run / "net1" / "training.json").write_text(json.dumps(state))
    (run / "metrics.json").unlink()
    (run / "net1" / "checkpoint").mkdir()
    (run / "net1" / "checkpoint" / "epoch-0001.weights.h5").write_bytes(b"")  # a kill mid-write
    (run / "net1" / ".training.abc.tmp.json").write_text('{"epoch": 1, "fin')
    assert distill.main(distill_args(teacher, run, "--resume")) == 0
    assert_same_results(run, reference_run)


# ---------------------------------------------------------------------------------------------
# kill -9 at random instants, and inside every step of a checkpoint write.

# Run in each interrupted process: kills it with SIGKILL at the count-th time the training
# reaches the named point of its epoch-end commit (see kd_keras.training.RunCheckpoint).
FAULT_INJECTION = r"""
import os, signal, sys
import keras
import kd_keras.training as training
point, count = os.environ["FAULT"].split(":")
count, seen = int(count), [0]


def reached():
    seen[0] += 1
    return seen[0] == count


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if point == "weights":  # halfway through writing the epoch's weights
    save_weights = keras.Model.save_weights

    def half_written(self, filepath, *args, **kwargs):
        save_weights(self, filepath, *args, **kwargs)
        if reached():
            os.truncate(filepath, os.path.getsize(filepath) // 2)
            die()
    keras.Model.save_weights = half_written
elif point == "best":  # the best model written to its temporary name, not yet renamed
    save = keras.Model.save

    def written(self, filepath, *args, **kwargs):
        save(self, filepath, *args, **kwargs)
        if reached():
            die()
    keras.Model.save = written
elif point == "commit":  # training.json written to its temporary name, not yet renamed
    replace = os.replace

    def before_rename(source, destination):
        if str(destination).endswith("training.json") and reached():
            die()
        return replace(source, destination)
    os.replace = before_rename
elif point == "history":  # committed, history.csv not yet rewritten
    write_history = training.write_history

    def after_commit(path, rows):
        if reached():
            die()
        return write_history(path, rows)
    training.write_history = after_commit
from kd_keras.distill import main
sys.exit(main(sys.argv[1:]))
"""


def run_until_killed(argv, fault, rng):
    """Run distill with `fault` ('timer' or 'point:count'); return its exit status (-9: killed).

    'timer' kills at a random instant of the first 1.5 s after training began."""
    env = {**os.environ, "FAULT": fault if fault != "timer" else "none:0"}
    child = subprocess.Popen([sys.executable, "-c", FAULT_INJECTION, *argv], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    training_started = threading.Event()

    def watch():
        for line in child.stdout:
            if line.startswith("distilling"):  # the students are built and trained next
                training_started.set()
        training_started.set()  # the output ended: so did the process
    threading.Thread(target=watch, daemon=True).start()
    if fault == "timer":
        training_started.wait(timeout=300)
        try:
            child.wait(timeout=rng.uniform(0.0, 1.5))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    return child.wait(timeout=600)


INJECTED = ("weights", "best", "commit", "history")


@pytest.mark.e2e
def test_kill_9_at_random_instants_then_resume_ends_as_the_uninterrupted_run(teacher, reference_run, tmp_path):
    """At least 20 kills, at least two inside each step of a checkpoint write. A run that
    finishes before enough kills have landed is checked, and a new one is killed."""
    rng = random.Random(0)
    kills, finished_runs = [], []
    run = tmp_path / "run-0"
    for _ in range(60):
        landed = {point: sum(kill.startswith(point) for kill in kills) for point in INJECTED}
        if len(kills) >= 20 and min(landed.values()) >= 2:
            break
        fault = "timer" if rng.random() < 0.5 else f"{rng.choice(INJECTED)}:{rng.choice((1, 2))}"
        status = run_until_killed(distill_args(teacher, run, "--resume"), fault, rng)
        assert status in (0, -signal.SIGKILL), (fault, status)
        if status == -signal.SIGKILL:
            kills.append(fault)
        else:
            finished_runs.append(run)
            run = tmp_path / f"run-{len(finished_runs)}"
    landed = {point: sum(kill.startswith(point) for kill in kills) for point in INJECTED}
    assert len(kills) >= 20 and min(landed.values()) >= 2, kills
    if run.exists():
        assert run_until_killed(distill_args(teacher, run, "--resume"), "none:0", rng) == 0
        finished_runs.append(run)
    for run in finished_runs:
        assert_same_results(run, reference_run)
        for name in ("net2", "net1"):
            state = json.loads((run / name / "training.json").read_text())
            assert state["finished"] and [row["epoch"] for row in state["history"]] == list(range(8))
        assert (run / "metrics.json").read_text().replace(str(run), "") == \
            (reference_run / "metrics.json").read_text().replace(str(reference_run), "")


@pytest.mark.e2e
def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(teacher, reference_run, tmp_path):
    run = tmp_path / "run"

    def small_disk():  # every file is limited to 100 KB: the first weights checkpoint does not fit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    result = subprocess.run([sys.executable, "-m", "kd_keras.distill", *distill_args(teacher, run)], cwd=REPO,
                            capture_output=True, text=True, timeout=600, preexec_fn=small_disk)
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert "File too large" in line and str(run) in line, line
    assert subprocess.run([sys.executable, "-m", "kd_keras.distill", *distill_args(teacher, run, "--resume")],
                          cwd=REPO, capture_output=True, timeout=600).returncode == 0
    assert_same_results(run, reference_run)
