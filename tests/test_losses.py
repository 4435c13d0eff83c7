"""Each loss against a hand computation in NumPy on small tensors."""

import numpy as np
import pytest

from kd_keras.distillation import Distiller, MultiLabelHintonLoss, PaperLoss, make_loss
from kd_keras.models import build_student

TIER = "unit"  # tests marked with no tier of their own (conftest.py)

TEACHER = np.array([[2.0, -1.0, 0.5, -3.0], [0.0, 4.0, -2.0, 1.0]])
STUDENT = np.array([[1.0, -2.0, 1.5, -1.0], [0.5, 2.0, -1.0, -1.0]])
LABELS = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def bce(targets, probabilities):
    return np.mean(-(targets * np.log(probabilities) + (1 - targets) * np.log(1 - probabilities)))


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (1.0, 0.0), (0.2, 0.8)])
def test_paper_loss(alpha, beta):
    expected = alpha * np.mean((STUDENT - TEACHER) ** 2) + beta * bce(sigmoid(TEACHER), sigmoid(STUDENT))
    got = float(PaperLoss(alpha, beta).compute_loss(TEACHER, STUDENT))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_multilabel_hinton_loss(temperature):
    t = temperature
    expected = t * t * bce(sigmoid(TEACHER / t), sigmoid(STUDENT / t))
    got = float(MultiLabelHintonLoss(t).compute_loss(TEACHER, STUDENT))
    assert got == pytest.approx(expected, rel=1e-5)


def test_loss_is_smallest_when_the_student_copies_the_teacher():
    loss = PaperLoss()
    assert float(loss.compute_loss(TEACHER, TEACHER)) < float(loss.compute_loss(TEACHER, STUDENT))


def distiller_loss(loss_name, labels, **kwargs):
    loss, weight = make_loss(loss_name, **kwargs)
    distiller = Distiller(build_student("net2", seed=0), loss, distillation_weight=weight)
    y = {"teacher_logits": TEACHER.astype("float32"), "labels": labels.astype("float32")}
    return float(distiller.compute_loss(y=y, y_pred=STUDENT.astype("float32")))


def test_mixed_loss_combines_hard_labels_and_distillation():
    w = 0.3
    paper = 0.5 * np.mean((STUDENT - TEACHER) ** 2) + 0.5 * bce(sigmoid(TEACHER), sigmoid(STUDENT))
    expected = (1 - w) * bce(LABELS, sigmoid(STUDENT)) + w * paper
    assert distiller_loss("mixed", LABELS, distillation_weight=w) == pytest.approx(expected, rel=1e-5)


def test_label_free_losses_never_see_the_labels():
    for name in ("paper", "hinton"):
        assert distiller_loss(name, LABELS) == pytest.approx(distiller_loss(name, 1 - LABELS), rel=1e-7)
    assert distiller_loss("mixed", LABELS) != pytest.approx(distiller_loss("mixed", 1 - LABELS))


@pytest.mark.parametrize("call, message", [
    (lambda: make_loss("kl"), "unknown loss 'kl'; choose one of paper, hinton, mixed"),
    (lambda: make_loss("mixed", distillation_weight=1.5), r"must lie in \[0, 1\], got 1.5"),
    (lambda: PaperLoss(0, 0), "not both 0"),
    (lambda: MultiLabelHintonLoss(0), "temperature must be positive"),
])
def test_bad_loss_settings_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_distiller_without_cached_logits_needs_a_teacher():
    distiller = Distiller(build_student("net2", seed=0), PaperLoss())
    with pytest.raises(ValueError, match="no teacher_logits and the Distiller has no teacher"):
        distiller.compute_loss(x=np.zeros((2, 52, 52, 1), "float32"), y={"labels": LABELS},
                               y_pred=STUDENT.astype("float32"))
