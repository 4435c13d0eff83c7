"""Distillation that trains: on synthetic maps, with a quickly trained stand-in teacher."""

import json
import subprocess
import sys
from functools import partial

import keras
import numpy as np
import pytest

import tflite.deploy
from kd_keras import distill, ensemble, train_teacher
from kd_keras.data import DEFAULT_RESIZE, generate_fab_maps, load_unlabelled_maps, save_unlabelled, save_wm811k
from kd_keras.distillation import distill_student, teacher_logits_cached
from kd_keras.errors import RunDirectoryError
from kd_keras.data.cache import read_arrays
from kd_keras.evaluation import evaluate
from kd_keras.inference import predict
from kd_keras.models import DihedralMean, build_student
from kd_keras.side_by_side import SideBySide, train_side_by_side
from kd_keras.training import load_model
from tests.helpers import CHANCE, REPO

TIER = "integration"  # tests marked with no tier of their own (conftest.py)


def exact_match(model, split):
    return evaluate(predict(model, split.maps), split.labels)["exact_match"]


def test_teacher_learned(stand_in_teacher, parts):
    assert exact_match(load_model(stand_in_teacher), parts["test"]) > 10 * CHANCE


def test_label_free_distillation_learns(parts, stand_in_teacher, teacher_logits, tmp_path):
    student = distill_student("net1", parts, tmp_path, stand_in_teacher, teacher_logits, epochs=15, verbose=0)
    accuracy = exact_match(student, parts["test"])
    untrained = exact_match(build_student("net1", seed=1), parts["test"])
    assert accuracy > 3 * CHANCE, accuracy
    assert accuracy > untrained + 0.05, (accuracy, untrained)
    assert (tmp_path / "net1.keras").is_file() and (tmp_path / "history.csv").is_file()


def test_teacher_logits_are_cached_and_recomputed_for_another_teacher(parts, stand_in_teacher, teacher_logits,
                                                                    tmp_path, monkeypatch):
    cache = tmp_path / "cache.h5"
    first = teacher_logits_cached(stand_in_teacher, parts, cache)
    np.testing.assert_allclose(first["val"], teacher_logits["val"], rtol=1e-5)
    assert first["train"].shape == (len(parts["train"]), 8)

    import kd_keras.distillation

    def refuse(path):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(kd_keras.distillation, "load_model", refuse)
    teacher_logits_cached(stand_in_teacher, parts, cache)
    monkeypatch.undo()

    other = tmp_path / "other.keras"
    build_student("net2", seed=0).save(other)
    recomputed = teacher_logits_cached(other, parts, cache)
    assert not np.allclose(recomputed["val"], first["val"])


def test_a_student_resumes_from_cached_teacher_logits_as_from_fresh_ones(parts, stand_in_teacher, tmp_path):
    # HDF5 reads splits back by name (test, train, val); computed, they come in `splits` order.
    splits = ("train", "val", "test")
    fresh = teacher_logits_cached(stand_in_teacher, parts, tmp_path / "cache.h5", splits=splits)
    distill_student("net2", parts, tmp_path / "net2", stand_in_teacher, fresh, epochs=1, verbose=0)
    cached = teacher_logits_cached(stand_in_teacher, parts, tmp_path / "cache.h5", splits=splits)
    assert list(cached) == list(splits)
    distill_student("net2", parts, tmp_path / "net2", stand_in_teacher, cached, epochs=1, resume=True, verbose=0)


def test_students_side_by_side_get_the_weights_they_get_alone(parts, stand_in_teacher, teacher_logits, tmp_path,
                                                              capsys):
    few = {**parts, "train": parts["train"].subset(slice(0, 608))}
    logits = {**teacher_logits, "train": teacher_logits["train"][:608]}

    def train(name, out, **kwargs):
        return distill_student(name, few, out / name, stand_in_teacher, logits, epochs=2, batch_size=32,
                               learning_rate=1e-2, loss="hinton", **kwargs)

    alone = {name: train(name, tmp_path / "alone", verbose=0) for name in ("net1", "net2")}
    capsys.readouterr()
    together = train_side_by_side({name: SideBySide(2, partial(train, name, tmp_path / "together", verbose=0))
                                   for name in ("net1", "net2")}, verbose=1)
    for name in ("net1", "net2"):
        for weights, alone_weights in zip(together[name].get_weights(), alone[name].get_weights(), strict=True):
            np.testing.assert_array_equal(weights, alone_weights)
        assert (tmp_path / "together" / name / "history.csv").read_text() == \
            (tmp_path / "alone" / name / "history.csv").read_text()
    shown = capsys.readouterr().out  # one bar over both students' epochs
    assert "4/4" in shown and "net1 val_exact_match" in shown and "net2 val_exact_match" in shown


class InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_interrupted_run_keeps_its_best_model_and_resumes_exactly(parts, stand_in_teacher, teacher_logits, tmp_path):
    def run(out, **kwargs):
        return distill_student("net2", parts, out, stand_in_teacher, teacher_logits, epochs=4, verbose=0, **kwargs)

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run(out, extra_callbacks=[InterruptAfter(2)])
    assert load_model(out / "net2.keras").count_params() == 5_556
    state = json.loads((out / "training.json").read_text())
    assert (state["epoch"], state["finished"]) == (2, False)
    with pytest.raises(RunDirectoryError, match="holds an unfinished training run; continue it with --resume"):
        run(out)

    resumed = run(out, resume=True)
    epochs = np.genfromtxt(out / "history.csv", delimiter=",", names=True)["epoch"]
    assert epochs.tolist() == [0, 1, 2, 3]  # two before the interruption, two after, none twice
    assert json.loads((out / "training.json").read_text())["finished"]
    assert not (out / "checkpoint").exists()
    uninterrupted = run(tmp_path / "uninterrupted")
    for resumed_weights, weights in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(resumed_weights, weights)
    assert (out / "history.csv").read_text() == (tmp_path / "uninterrupted" / "history.csv").read_text()

    trained = (out / "net2.keras").read_bytes()
    run(out, resume=True)  # finished: nothing is trained again
    assert (out / "net2.keras").read_bytes() == trained


MIRRORED = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kd_keras.data import load_splits
from kd_keras.distillation import distill_student, teacher_logits_cached
from kd_keras.training import make_strategy
strategy = make_strategy("mirrored")
parts = load_splits(None, synthetic_maps=380, seed=0)
logits = teacher_logits_cached(sys.argv[1], parts, sys.argv[2] + "/cache.h5")
student = distill_student("net2", parts, sys.argv[2], sys.argv[1], logits, epochs=1, batch_size=32,
                          strategy=strategy, verbose=0)
print("replicas", strategy.num_replicas_in_sync, "parameters", student.count_params())
from kd_keras.training import train_teacher
teacher = train_teacher(parts, sys.argv[2] + "/teacher", arch="vgg7", epochs=1, batch_size=32, strategy=strategy,
                        verbose=0)
print("teacher parameters", teacher.count_params())  # vgg7 has BatchNorm: recalibrated under the strategy
"""


@pytest.mark.e2e  # its own process: logical devices are set before TensorFlow starts
def test_mirrored_strategy_trains_on_two_logical_cpus(stand_in_teacher, tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(stand_in_teacher), str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2 parameters 5556" in result.stdout
    assert "teacher parameters 293336" in result.stdout


def test_distill_writes_a_complete_run_directory(stand_in_teacher, tmp_path, capsys):
    out = tmp_path / "run"
    assert distill.main(["--synthetic-maps", "380", "--teacher", str(stand_in_teacher), "--student", "net2",
                         "--epochs", "2", "--out", str(out)]) == 0
    assert "| net2 | 5,556 |" in capsys.readouterr().out
    for name in ("config.json", "metrics.json", "report.md", "teacher_cache.h5", "net2/net2.keras",
                 "net2/history.csv", "net2/curves.png", "net2/confusion.png"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["seed"] == 0 and config["arguments"]["loss"] == "hinton"
    assert config["arguments"]["teacher_model"] == str(stand_in_teacher)
    assert config["versions"]["keras"] == keras.__version__
    metrics = json.loads((out / "metrics.json").read_text())
    # named after the model given, read over its 8 rotations/flips as classify teachers are by default
    assert set(metrics["models"]) == {"teacher (stand_in_teacher, mean of 8 views)", "net2"}
    assert 0 <= metrics["models"]["net2"]["metrics"]["test"]["nearest"]["exact_match"] <= 1
    assert "| net2 | 5,556 | 21.7 |" in (out / "report.md").read_text()
    # Deployed: Net-2's flash fits 21 KB but its tensor arena does not, so it went to 248 KB.
    deployment = json.loads((out / "deployment.json").read_text())["models"]["net2"]
    assert deployment["flash_bytes"] == (out / "models" / "net2" / "model.tflite").stat().st_size < 21_504
    assert deployment["arena_bytes"] > 16_384 and deployment["budget"] == "248KB"
    assert 0 <= deployment["int8_exact_match"] <= 1
    assert f"| net2 | {100 * deployment['int8_exact_match']:.2f}% |" in (out / "deployment.md").read_text()


def test_students_also_learn_from_maps_without_labels(stand_in_teacher, tmp_path, capsys):
    fab = generate_fab_maps(45, seed=1)
    save_unlabelled(tmp_path / "unlabelled.npz", fab.maps())
    out = tmp_path / "run"
    assert distill.main(["--synthetic-maps", "380", "--teacher", str(stand_in_teacher), "--student", "net2",
                         "--epochs", "1", "--out", str(out), "--no-convert",
                         "--unlabelled", str(tmp_path / "unlabelled.npz")]) == 0
    assert "45 maps without labels join the 304 training maps" in capsys.readouterr().out
    cache, _ = read_arrays(out / "teacher_cache.h5")
    assert len(cache["train"]) == 304 + 45 and len(cache["val"]) == 38
    # the teacher's logits of those maps are those of the maps as --resize brings them to 52x52
    unlabelled_maps = load_unlabelled_maps(tmp_path / "unlabelled.npz", DEFAULT_RESIZE)
    teacher = DihedralMean(load_model(stand_in_teacher))
    np.testing.assert_allclose(cache["train"][304:], predict(teacher, unlabelled_maps), atol=1e-4)
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["unlabelled"] == [str(tmp_path / "unlabelled.npz")]
    assert "the students also learn from the maps without labels of" in (out / "report.md").read_text()
    assert json.loads((out / "net2" / "training.json").read_text())["epoch"] == 1


def test_maps_without_labels_need_a_label_free_loss(tmp_path, capsys):
    assert distill.main(["--loss", "mixed", "--unlabelled", str(tmp_path / "u.npz"), "--out", str(tmp_path)]) == 1
    assert "--unlabelled maps are learnt from the teacher alone" in capsys.readouterr().err


def test_a_finished_run_resumed_reads_its_deployment_back(stand_in_teacher, tmp_path, capsys, monkeypatch):
    args = ["--synthetic-maps", "380", "--teacher", str(stand_in_teacher), "--student", "net2", "--epochs", "1",
            "--out", str(tmp_path / "run")]
    assert distill.main(args) == 0
    first = (tmp_path / "run" / "deployment.md").read_text()
    capsys.readouterr()

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(tflite.deploy, "export_model", refuse)
    assert distill.main([*args, "--resume"]) == 0
    assert "holds a finished run" in capsys.readouterr().out
    assert (tmp_path / "run" / "deployment.md").read_text() == first


def test_no_convert_stops_at_the_keras_models(stand_in_teacher, tmp_path, capsys):
    assert distill.main(["--synthetic-maps", "380", "--teacher", str(stand_in_teacher), "--student", "net2",
                         "--epochs", "1", "--out", str(tmp_path / "run"), "--no-convert"]) == 0
    assert "# Deployment" not in capsys.readouterr().out
    assert not (tmp_path / "run" / "models").exists() and (tmp_path / "run" / "net2" / "net2.keras").is_file()


def test_a_student_seed_changes_the_students_not_the_split(stand_in_teacher, tmp_path):
    common = ["--synthetic-maps", "380", "--teacher", str(stand_in_teacher), "--student", "net2", "--epochs", "1",
              "--no-convert"]
    for name, seeds in (("seed0", []), ("student1", ["--student-seed", "1"]), ("seed1", ["--seed", "1"])):
        assert distill.main([*common, *seeds, "--out", str(tmp_path / name)]) == 0
    runs = ("seed0", "student1", "seed1")
    config, state, maps, weights = ({name: read(tmp_path / name) for name in runs} for read in (
        lambda run: json.loads((run / "config.json").read_text())["arguments"],
        lambda run: json.loads((run / "net2" / "training.json").read_text())["settings"]["seed"],
        lambda run: read_arrays(run / "teacher_cache.h5")[1]["key"],  # a digest of the teacher and the split's maps
        lambda run: load_model(run / "net2" / "net2.keras").get_weights()[0]))
    assert "student_seed" not in config["seed0"] and config["student1"]["student_seed"] == 1  # recorded when given
    assert state == {"seed0": 0, "student1": 1, "seed1": 1}
    assert maps["student1"] == maps["seed0"] != maps["seed1"]
    assert not np.array_equal(weights["student1"], weights["seed0"])


@pytest.mark.parametrize("arch, parameters, title", [("resnet18", 11_183_944, "ResNet-18"), ("vgg7", 293_336, "vgg7")])
def test_train_teacher_writes_a_run(arch, parameters, title, tmp_path, capsys):
    assert train_teacher.main(["--synthetic-maps", "380", "--epochs", "1", "--arch", arch, "--out",
                               str(tmp_path)]) == 0
    assert "teacher: exact-match accuracy" in capsys.readouterr().out
    assert load_model(tmp_path / "teacher.keras").count_params() == parameters
    assert (tmp_path / "report.md").read_text().startswith(f"# {title} teacher")
    assert (tmp_path / "curves.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["arguments"]["arch"] == arch


def test_a_balanced_teacher_records_its_power_and_weighs_its_loss(tmp_path, capsys):
    # Synthetic maps come in even classes (every weight would be 1): a fab file where none and
    # Center are three times as common as each other class.
    fab = generate_fab_maps(180, seed=0)
    keep = [i for i, label in enumerate(fab.classes) if label in (0, 8) or i % 3 == 0]
    save_wm811k(tmp_path / "fab.npz", [fab.maps()[i] for i in keep], fab.classes[keep])
    for name, extra in (("plain", []), ("balanced", ["--balance", "1"])):
        assert train_teacher.main(["--data", str(tmp_path / "fab.npz"), "--epochs", "1", "--arch", "vgg7", "--out",
                                   str(tmp_path / name), *extra]) == 0
    plain, balanced = ({"config": json.loads((tmp_path / name / "config.json").read_text())["arguments"],
                        "state": json.loads((tmp_path / name / "training.json").read_text())}
                       for name in ("plain", "balanced"))
    assert "balance" not in plain["config"] and "balance" not in plain["state"]["settings"]  # as before it existed
    assert balanced["config"]["balance"] == balanced["state"]["settings"]["balance"] == 1.0
    # Same seed, same maps in the same order: only the weights differ, and so does the loss.
    assert balanced["state"]["history"][0]["loss"] != pytest.approx(plain["state"]["history"][0]["loss"], rel=1e-3)
    assert train_teacher.main(["--data", str(tmp_path / "fab.npz"), "--out", str(tmp_path / "balanced"),
                               "--resume"]) == 1
    assert "balance 1.0 -> (not set)" in capsys.readouterr().err


def test_a_teacher_starts_from_a_pretrained_one_of_the_same_architecture(tmp_path, capsys):
    common = ["--synthetic-maps", "380", "--epochs", "1"]
    assert train_teacher.main([*common, "--arch", "vgg7", "--out", str(tmp_path / "pretrained")]) == 0
    assert train_teacher.main([*common, "--arch", "vgg7", "--out", str(tmp_path / "tuned"), "--seed", "1",
                               "--init", str(tmp_path / "pretrained")]) == 0
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())["arguments"]
    settings = json.loads((tmp_path / "tuned" / "training.json").read_text())["settings"]
    assert config["init"] == str(tmp_path / "pretrained") and settings["init"] == str(tmp_path / "pretrained" /
                                                                                       "teacher.keras")
    capsys.readouterr()
    # Another architecture, or no teacher there: refused before any training, naming the file.
    assert train_teacher.main([*common, "--arch", "vgg9", "--out", str(tmp_path / "vgg9"),
                               "--init", str(tmp_path / "pretrained")]) == 1
    error = capsys.readouterr().err
    assert "pretrained/teacher.keras: its weights do not fit this model's (vgg9_teacher)" in error
    assert not (tmp_path / "vgg9").exists()
    assert train_teacher.main([*common, "--arch", "vgg7", "--out", str(tmp_path / "none"),
                               "--init", str(tmp_path / "missing")]) == 1
    assert "no teacher model at" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("args, message", [
    (("--resume",), "--resume needs the --out directory"),
    (("--data", "missing.npz"), "missing.npz: no such file"),
    (("--teacher", "no/such/run"), "no teacher model at no/such/run"),
])
def test_distill_errors(args, message, capsys):
    assert distill.main(list(args)) == 1
    assert message in capsys.readouterr().err


def test_distill_help_documents_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        distill.main(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for option in ("--data", "--teacher", "--student", "--loss", "--alpha", "--beta", "--temperature",
                   "--kd-weight", "--teacher-views", "--augment", "--resume", "--overwrite", "--strategy", "--seed",
                   "--debug"):
        assert option in printed


def test_augmented_distillation_runs_the_teacher_on_each_batch(parts, stand_in_teacher, teacher_logits, tmp_path):
    # With augmentation the cached training logits are never read: the teacher sees the rotated maps.
    student = distill_student("net2", parts, tmp_path, stand_in_teacher, {"train": None, "val": teacher_logits["val"]},
                              epochs=1, augment=True, verbose=0)
    assert student.count_params() == 5_556
    history = np.genfromtxt(tmp_path / "history.csv", delimiter=",", names=True)
    assert np.isfinite(history["loss"]) and 0 <= history["val_exact_match"] <= 1


def test_eight_view_teacher_logits_are_rotation_invariant_and_serve_augmentation(parts, stand_in_teacher, tmp_path):
    small = {"train": parts["train"].subset(np.arange(128)), "val": parts["val"]}
    eight = teacher_logits_cached(stand_in_teacher, small, tmp_path / "cache.h5", views=8)
    turned = {split: part.rotated() for split, part in small.items()}
    turned_eight = teacher_logits_cached(stand_in_teacher, turned, tmp_path / "turned.h5", views=8)
    np.testing.assert_allclose(turned_eight["val"], eight["val"], atol=1e-4)
    plain = teacher_logits_cached(stand_in_teacher, small, tmp_path / "cache.h5")  # other views: recomputed
    assert np.abs(plain["val"] - eight["val"]).max() > 1e-2
    # With 8 views the cached logits hold for every rotation/flip: no teacher runs (none exists here).
    distill_student("net2", small, tmp_path / "net2", tmp_path / "absent.keras", eight, epochs=1,
                    augment=True, teacher_views=8, verbose=0)
    assert (tmp_path / "net2" / "net2.keras").is_file()


def test_an_ensemble_of_teachers_is_one_teacher_of_their_mean_logits(parts, stand_in_teacher, tmp_path, capsys):
    other = tmp_path / "other.keras"
    keras.utils.set_random_seed(1)
    build_student("net2").save(other)  # any classifier of 8 defect logits; untrained, so unlike the first
    out = tmp_path / "ensemble"
    args = [str(stand_in_teacher), str(other), "--synthetic-maps", "3800", "--out", str(out)]
    assert ensemble.main(args) == 0
    assert "ensemble of 2 teachers: exact-match accuracy" in capsys.readouterr().out
    teacher = load_model(out / "teacher.keras")  # safe mode
    maps = parts["test"].maps
    mean = (predict(load_model(stand_in_teacher), maps) + predict(load_model(other), maps)) / 2
    np.testing.assert_allclose(predict(teacher, maps), mean, atol=1e-5)
    test = json.loads((out / "metrics.json").read_text())["models"]["teacher"]["metrics"]["test"]["threshold"]
    assert test["exact_match"] == pytest.approx(evaluate(mean, parts["test"].labels)["exact_match"], abs=1e-3)
    assert (out / "report.md").read_text().startswith("# ensemble of 2 teachers teacher")
    config = json.loads((out / "config.json").read_text())["arguments"]
    assert config["teachers"] == [str(stand_in_teacher), str(other)] and len(config["teacher_digests"]) == 2
    # It teaches as any teacher does, over 8 views too.
    assert distill.main(["--synthetic-maps", "3800", "--teacher", str(out), "--student", "net2", "--epochs", "1",
                         "--teacher-views", "8", "--no-convert", "--out", str(tmp_path / "run")]) == 0
    assert "ensemble of 2 teachers, mean of 8 views" in (tmp_path / "run" / "report.md").read_text()
    # Made again only when asked; a member changed since is refused on --resume, naming it.
    assert ensemble.main(args) == 1 and "--resume" in capsys.readouterr().err
    assert ensemble.main([*args, "--resume"]) == 0 and "nothing left to train" in capsys.readouterr().out
    keras.utils.set_random_seed(2)
    build_student("net2").save(other)
    assert ensemble.main([*args, "--resume"]) == 1 and "teacher_digests" in capsys.readouterr().err


@pytest.mark.parametrize("members, status, message", [
    (("first",), 2, "an ensemble needs at least 2 teachers, got 1"),
    (("first", "no/such/run"), 1, "no teacher model at no/such/run"),
    (("first", "mask"), 1, "an ensemble is made of classifiers of 8 defect logits"),
    (("first", "first", "--drop-suspects", "audit.json"), 2, "unrecognized arguments: --drop-suspects"),
])
def test_an_ensemble_refuses_what_is_not_two_classifiers(members, status, message, tmp_path, capsys):
    build_student("net2").save(tmp_path / "first.keras")
    keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Conv2D(1, 1)]).save(tmp_path / "mask.keras")
    paths = [str(tmp_path / f"{member}.keras") if member in ("first", "mask") else member for member in members]
    # It trains nothing, so it has no training maps to leave out (the last case).
    if status == 2:
        with pytest.raises(SystemExit) as exit_status:
            ensemble.main([*paths, "--out", str(tmp_path / "out")])
        assert exit_status.value.code == 2
    else:
        assert ensemble.main([*paths, "--out", str(tmp_path / "out")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
