"""Paper 2: segmentation + classification models, their losses and metrics, and distillation."""

import json

import keras
import numpy as np
import pytest

from kd_keras import distill
from kd_keras.data import generate_wafer_maps, load_splits
from kd_keras.data.labels import PATTERNS
from kd_keras.evaluation import evaluate_segclass, pattern_logits
from kd_keras.models import build_segclass_model, register_segclass_model
from kd_keras.models.students import plain_cnn
from kd_keras.models.segclass import light_wafer_segclass_net, part_parameter_counts
from kd_keras.reports import evaluate_model
from kd_keras.segclass_distillation import (
    TEACHER_PATTERN, SegClassDistiller, classification_loss, dice_loss, feature_loss, segmentation_loss,
    train_segclass,
)
from kd_keras.tasks import SEGCLASS
from tests.helpers import CHANCE
from tflite.budget import BUDGETS, SEGCLASS_ARENA_BYTES
from tflite.export import int8_flatbuffer
from tflite.micro import Int8Model

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@register_segclass_model("stand_in_segclass_teacher")
def stand_in_teacher():
    """A narrow LightWaferSegClassNet: trains in seconds, stands in for DeepLabV3+."""
    return light_wafer_segclass_net(widths=(16, 32, 48, 48))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_lightwafer_parts_and_outputs():
    model = build_segclass_model("lightwafer", seed=0)
    assert part_parameter_counts(model) == {"encoder": 28_841, "decoder": 31_425, "classifier": 2_470,
                                            "total": 62_736}
    outputs = model(np.zeros((3, 52, 52, 1), "float32"))
    assert tuple(outputs["mask"].shape) == (3, 52, 52, 1) and tuple(outputs["pattern"].shape) == (3, 38)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"DepthwiseConv2D", "SpatialDropout2D", "MaxPooling2D", "AveragePooling2D", "Concatenate"} <= kinds
    # Every decoder concatenation is followed by its 1x1 channel reduction.
    for concat in (layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)):
        reduce = model.get_layer(concat.name.replace("_concat", "_reduce"))
        assert reduce.kernel_size == (1, 1)


@pytest.mark.integration
def test_stridedseg_fits_a_microcontroller_as_int8():
    """Flash within 248 KB and a tensor arena within 96 KB: one narrow layer at 52x52."""
    model = build_segclass_model("stridedseg", seed=0)
    assert part_parameter_counts(model) == {"encoder": 41_408, "decoder": 2_489, "classifier": 7_334,
                                            "total": 51_231}
    outputs = model(np.zeros((3, 52, 52, 1), "float32"))
    assert tuple(outputs["mask"].shape) == (3, 52, 52, 1) and tuple(outputs["pattern"].shape) == (3, 38)
    full_resolution = [layer.name for layer in model.layers
                       if isinstance(layer, keras.layers.Conv2D) and layer.output.shape[1:3] == (52, 52)]
    assert full_resolution == ["decoder52_refine_conv", "decoder_mask_logits"]
    int8 = Int8Model(int8_flatbuffer(model, generate_wafer_maps(38, seed=0).maps))
    assert len(int8.flatbuffer) <= BUDGETS["248KB"].flash_bytes and int8.arena_bytes() <= SEGCLASS_ARENA_BYTES
    assert "TILE" not in int8.ops and "RESIZE_NEAREST_NEIGHBOR" in int8.ops


def test_deeplab_teacher_outputs():
    model = build_segclass_model("deeplab", seed=0)
    outputs = model(np.zeros((2, 52, 52, 1), "float32"))
    assert tuple(outputs["mask"].shape) == (2, 52, 52, 1) and tuple(outputs["pattern"].shape) == (2, 38)
    assert model.count_params() == 13_544_007
    # The mask is refined at full resolution (64x64, the padded map) with the map itself.
    refine = model.get_layer("decoder_refine_concat")
    padded_map = model.get_layer("pad").output
    assert refine.output.shape[1:3] == (64, 64) and any(tensor is padded_map for tensor in refine.input)
    assert {f"aspp_rate{rate}_conv" for rate in (1, 2, 3)} <= {layer.name for layer in model.layers}


def test_classification_loss_matches_hand_computation():
    labels = np.array([0, 2])
    student = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = np.array([[4.0, 1.0, -2.0], [-1.0, 0.0, 5.0]])
    hard = -np.mean(log_softmax(student)[[0, 1], labels])
    assert float(classification_loss(labels, student, alpha=0)) == pytest.approx(hard, rel=1e-5)
    t, alpha = 4.0, 0.7
    p_t = np.exp(log_softmax(teacher / t))
    kl = np.mean(np.sum(p_t * (log_softmax(teacher / t) - log_softmax(student / t)), axis=-1))
    expected = (1 - alpha) * hard + alpha * t * t * kl
    assert float(classification_loss(labels, student, teacher, alpha, t)) == pytest.approx(expected, rel=1e-5)


def test_segmentation_loss_matches_hand_computation():
    masks = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    student = np.array([[[2.0, -1.0], [0.5, 1.0]]])[..., None]
    teacher = np.array([[[6.0, -6.0], [-2.0, 4.0]]])[..., None]
    p = sigmoid(student[..., 0])
    bce = -np.mean(masks * np.log(p) + (1 - masks) * np.log(1 - p))
    dice = 1 - (2 * np.sum(masks * p) + 1) / (np.sum(masks) + np.sum(p) + 1)
    assert float(dice_loss(masks, student)) == pytest.approx(dice, rel=1e-5)
    assert float(segmentation_loss(masks, student, alpha=0)) == pytest.approx(bce + dice, rel=1e-5)
    t, alpha = 4.0, 0.5
    q, p_soft = sigmoid(teacher[..., 0] / t), sigmoid(student[..., 0] / t)
    soft = -np.mean(q * np.log(p_soft) + (1 - q) * np.log(1 - p_soft))
    expected = (1 - alpha) * (bce + dice) + alpha * t * t * soft
    assert float(segmentation_loss(masks, student, teacher, alpha, t)) == pytest.approx(expected, rel=1e-5)


def test_feature_loss_is_one_minus_cosine():
    student = np.array([[1.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
    teacher = np.array([[0.0, 3.0], [1.0, 1.0], [-1.0, -1.0]])
    assert float(feature_loss(student, teacher)) == pytest.approx((1 + 0 + 2) / 3, abs=1e-6)


def test_segclass_metrics_by_hand():
    pattern_ids = np.array([0, 0, 1, 1])
    logits = np.zeros((4, 38))
    logits[[0, 1, 2, 3], [0, 1, 1, 1]] = [2.0, 1.0, 3.0, 0.5]  # one map of pattern 0 read as 1
    masks = np.zeros((4, 52, 52), np.uint8)
    masks[0, :2, :2] = 1  # 4 dies
    mask_logits = np.full((4, 52, 52), -1.0)
    mask_logits[0, :2, :1] = 1.0  # 2 of the 4 found: Dice 2*2/6, IoU 2/4; maps 1-3 empty and right
    metrics = evaluate_segclass(logits, pattern_ids, mask_logits, masks)
    assert metrics["exact_match"] == 0.75
    assert metrics["per_pattern"]["Normal"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                                "support": 2}
    assert metrics["dice"] == pytest.approx((4 / 6 + 3) / 4)
    assert metrics["iou"] == pytest.approx((0.5 + 3) / 4)
    assert metrics["pixel_accuracy"] == pytest.approx(1 - 2 / (4 * 52 * 52))
    # Softmax probabilities of pattern 1 by map: 0.023, 0.068, 0.352, 0.043; its maps (2, 3) rank
    # above the others in 3 of 4 pairs. Of pattern 0: 0.166, 0.025, 0.018, 0.026; also 3 of 4.
    assert metrics["auc_ovr"] == pytest.approx(0.75)
    assert np.array(metrics["confusion"])[0, 1] == 1


def test_distiller_validates_its_arguments():
    student = light_wafer_segclass_net()
    with pytest.raises(ValueError, match="alpha_cls must lie in"):
        SegClassDistiller(student, student, alpha_cls=1.5)
    with pytest.raises(ValueError, match="need a segmentation \\+ classification teacher"):
        SegClassDistiller(student, alpha_cls=0, alpha_seg=0.5, alpha_feat=0)
    with pytest.raises(ValueError, match="temperature"):
        SegClassDistiller(student, student, temperature=0)


def test_cached_teacher_pattern_logits_teach_the_pattern_alone():
    """A classifier teacher's cached pattern logits stand for a teacher model in the pattern term."""
    student = build_segclass_model("stridedseg", seed=0)
    distiller = SegClassDistiller(student, alpha_cls=0.7, alpha_seg=0, alpha_feat=0, temperature=4.0)
    data = generate_wafer_maps(4, seed=0)
    maps = data.maps[..., None].astype("float32")
    targets = SEGCLASS.targets(data)
    outputs = student(maps)
    cached = np.random.default_rng(0).normal(size=(4, 38)).astype("float32")
    loss = float(distiller.compute_loss(maps, {**targets, TEACHER_PATTERN: cached}, outputs))
    expected = (classification_loss(targets["pattern"], outputs["pattern"], cached, 0.7, 4.0)
                + segmentation_loss(targets["mask"], outputs["mask"], alpha=0) + sum(student.losses))
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert float(distiller.compute_loss(maps, {**targets, TEACHER_PATTERN: -cached}, outputs)) != pytest.approx(loss)
    with pytest.raises(ValueError, match="batches must carry teacher_pattern_logits"):
        distiller.compute_loss(maps, targets, outputs)


def test_a_classifiers_logits_become_the_patterns_log_probabilities():
    """Softmax of `pattern_logits` is the per-defect sigmoids' probability of each of the 38
    patterns, renormalised over the 38."""
    defect_logits = np.random.default_rng(1).normal(scale=2, size=(3, 8))
    p = sigmoid(defect_logits)[:, None, :]
    joint = np.prod(np.where(PATTERNS[None] == 1, p, 1 - p), axis=-1)
    patterns = np.exp(log_softmax(pattern_logits(defect_logits)))
    np.testing.assert_allclose(patterns, joint / joint.sum(axis=1, keepdims=True), rtol=1e-9)


@pytest.fixture(scope="module")
def parts():
    return load_splits(None, synthetic_maps=1140, seed=0)


@pytest.mark.integration
def test_multitask_distillation_learns_both_tasks(parts, tmp_path):
    """A stand-in teacher on the hard targets, then the student with every loss term on."""
    train_segclass("stand_in_segclass_teacher", parts, tmp_path / "teacher", alpha_cls=0, alpha_seg=0,
                   alpha_feat=0, epochs=6, learning_rate=3e-3, verbose=0)
    student = train_segclass("stridedseg", parts, tmp_path / "student",
                             teacher_path=tmp_path / "teacher" / "stand_in_segclass_teacher.keras",
                             epochs=6, batch_size=32, learning_rate=3e-3, verbose=0)
    learned = evaluate_model(SEGCLASS, student, parts)["test"]
    untrained = evaluate_model(SEGCLASS, build_segclass_model("stridedseg", seed=1), parts)["test"]
    assert learned["exact_match"] > max(3 * CHANCE, untrained["exact_match"] + 0.04)
    assert learned["dice"] > 0.9 > untrained["dice"] + 0.3
    assert (tmp_path / "student" / "history.csv").is_file()


@pytest.mark.integration
def test_segclass_hard_loss_only_writes_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where a teacher would go (runs/): none is needed
    out = tmp_path / "run"
    assert distill.main(["--task", "segclass", "--a-cls", "0", "--a-seg", "0", "--a-feat", "0", "--synthetic-maps",
                         "380", "--epochs", "1", "--out", str(out)]) == 0
    assert "| stridedseg | 51,231 |" in capsys.readouterr().out  # the default student
    for name in ("config.json", "metrics.json", "report.md", "stridedseg/stridedseg.keras",
                 "stridedseg/masks.png", "stridedseg/confusion.png", "stridedseg/curves.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())["models"]["stridedseg"]
    assert set(metrics["metrics"]) == {"test", "test_rotated"}
    assert "Paper 2's student | 35,160 | 22,569 | 2,534 | 60,263" in (out / "report.md").read_text()
    assert not (tmp_path / "runs").exists()  # no teacher was needed


@pytest.fixture(scope="module")
def classifier_teacher(tmp_path_factory):
    """An untrained classifier (8 defect logits) saved as a teacher: what the job does with its
    logits, not what they teach."""
    path = tmp_path_factory.mktemp("classifier") / "teacher.keras"
    plain_cnn((8, 16), (4, 4), name="stand_in_classifier").save(path)
    return path


@pytest.mark.integration
def test_a_classifier_teaches_a_segclass_student_the_pattern(tmp_path, classifier_teacher, capsys):
    out = tmp_path / "run"
    assert distill.main(["--task", "segclass", "--teacher", str(classifier_teacher), "--a-seg", "0", "--a-feat", "0",
                         "--synthetic-maps", "380", "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "teaches the pattern; the mask is learnt from the hard targets" in printed
    assert (out / "teacher_cache.h5").is_file()  # its 8-view logits, computed once
    state = json.loads((out / "stridedseg" / "training.json").read_text())
    assert state["settings"]["teacher"] is None and state["settings"]["teacher_pattern_logits"]
    assert state["settings"]["alpha_cls"] == 0.7
    assert set(json.loads((out / "metrics.json").read_text())["models"]) == {"stridedseg"}  # not the classifier


def test_a_classifier_teacher_is_refused_for_the_mask_terms(tmp_path, classifier_teacher, capsys):
    out = tmp_path / "run"
    assert distill.main(["--task", "segclass", "--teacher", str(classifier_teacher), "--synthetic-maps", "380",
                         "--epochs", "1", "--out", str(out)]) == 1
    assert "is a classifier (8 defect logits): it teaches the pattern, not the mask or features; distil from it " \
           "with --a-seg 0 --a-feat 0" in capsys.readouterr().err
    assert not out.exists()  # refused before the run directory is made


def test_a_classification_student_is_refused_for_segclass(capsys):
    assert distill.main(["--task", "segclass", "--student", "net1", "--synthetic-maps", "380"]) == 1
    assert "--student net1 is not a model for --task segclass; choose from" in capsys.readouterr().err


def test_too_few_maps_to_split_are_refused(tmp_path, capsys):
    assert distill.main(["--task", "segclass", "--a-cls", "0", "--a-seg", "0", "--a-feat", "0",
                         "--synthetic-maps", "190", "--out", str(tmp_path / "run")]) == 1
    assert "190 maps leave the val and test split(s) empty" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run directory is made
