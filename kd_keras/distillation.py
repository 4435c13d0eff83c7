"""Knowledge distillation of the 8-logit teacher into a tiny student (Paper 1 and variants).

Losses, all on logits (teacher z_t, student z_s, per defect; means over defects and maps):

- `PaperLoss` (label-free, Paper 1): alpha * MSE(z_s, z_t) + beta * BCE(sigmoid(z_s), sigmoid(z_t)).
- `MultiLabelHintonLoss`: Hinton's temperature KD for multi-label heads, one sigmoid per defect:
  T^2 * BCE(sigmoid(z_s / T), sigmoid(z_t / T)). (Keras' `LogitsDistillation` takes a softmax over
  the last axis, which is wrong for 8 independent defects.)
- Supervised mix: `Distiller(..., distillation_weight=w)` trains on
  (1 - w) * BCE(labels, sigmoid(z_s)) + w * distillation; w = 1 is label-free.

Both losses subclass `keras.distillation.DistillationLoss`. The `Distiller` (a
`StudentTrainer`, see there why not `keras.distillation.Distiller`) reads the teacher's
logits on the (fixed) training maps, computed once, from each batch's targets. It runs the
teacher only when the batch carries no cached logits (with augmentation, the teacher must
see the augmented map).

Example:

>>> import numpy as np
>>> teacher_logits = np.array([[4.0, -4.0]])
>>> float(PaperLoss(alpha=1.0, beta=0.0).compute_loss(teacher_logits, np.array([[2.0, -4.0]])))
2.0
"""

import contextlib
from pathlib import Path

import keras
import numpy as np
from keras import ops

from kd_keras.data import MAP_SIZE, VIEWS
from kd_keras.data.cache import read_arrays, write_arrays
from kd_keras.inference import predict
from kd_keras.models import DihedralMean, build_student
from kd_keras.rundir import digest
from kd_keras.tasks import CLASSIFY
from kd_keras.training import cosine_adamw, fit_splits, load_model, multilabel_metrics, steps_for

LOSSES = ("paper", "hinton", "mixed")
TEACHER_LOGITS = "teacher_logits"
LABELS = "labels"


def _soft_bce(teacher_logits, student_logits):
    """Mean binary cross-entropy of sigmoid(student) against the soft targets sigmoid(teacher)."""
    targets = ops.sigmoid(ops.convert_to_tensor(teacher_logits, "float32"))
    student_logits = ops.convert_to_tensor(student_logits, "float32")
    return ops.mean(keras.losses.binary_crossentropy(targets, student_logits, from_logits=True))


class PaperLoss(keras.distillation.DistillationLoss):
    """Paper 1's label-free loss: alpha * MSE(logits) + beta * BCE(sigmoid outputs)."""

    def __init__(self, alpha=0.5, beta=0.5):
        if alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ValueError(f"alpha and beta must be non-negative and not both 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        teacher = ops.convert_to_tensor(teacher_outputs, "float32")
        student = ops.convert_to_tensor(student_outputs, "float32")
        mse = ops.mean(ops.square(student - teacher))
        return self.alpha * mse + self.beta * _soft_bce(teacher, student)


class MultiLabelHintonLoss(keras.distillation.DistillationLoss):
    """Temperature KD with one sigmoid per defect, scaled by T^2 so gradients keep their size."""

    def __init__(self, temperature=4.0):
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        t = self.temperature
        teacher = ops.convert_to_tensor(teacher_outputs, "float32") / t
        student = ops.convert_to_tensor(student_outputs, "float32") / t
        return t * t * _soft_bce(teacher, student)


def make_loss(name, alpha=0.5, beta=0.5, temperature=4.0, distillation_weight=None):
    """(distillation loss, weight w of the distillation term) for a `--loss` choice.

    'paper' and 'hinton' are label-free (w = 1); 'mixed' is (1 - w) * hard BCE + w * paper loss,
    with w = 0.5 unless given."""
    if name == "paper":
        return PaperLoss(alpha, beta), 1.0
    if name == "hinton":
        return MultiLabelHintonLoss(temperature), 1.0
    if name == "mixed":
        weight = 0.5 if distillation_weight is None else float(distillation_weight)
        if not 0 <= weight <= 1:
            raise ValueError(f"the distillation weight must lie in [0, 1], got {weight}")
        return PaperLoss(alpha, beta), weight
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


class StudentTrainer(keras.Model):
    """A student trained under a frozen teacher: `call` runs the student alone; a subclass's
    `compute_loss` says what the teacher's outputs and the hard targets add up to. Keras'
    own `keras.distillation.Distiller` runs the teacher on every batch and distils one
    output with one loss: ours read cached teacher logits, mix in hard targets, and, for
    Paper 2, distil two outputs and a feature projection."""

    def __init__(self, student, teacher=None, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def with_student_losses(self, loss):
        """`loss` plus the student's own (weight regularization)."""
        return loss + ops.sum(self.student.losses) if self.student.losses else loss


class Distiller(StudentTrainer):
    """Trains `student` on a teacher's logits, optionally mixed with the true labels.

    Batches are (maps, {"teacher_logits": ..., "labels": ...}). Without "teacher_logits"
    the `teacher` model is run on the batch. "labels" are needed for the hard-label part
    (distillation_weight < 1) and for the metrics (exact match on validation data).

    Example:

    >>> from kd_keras.models import build_student
    >>> distiller = Distiller(build_student("net2", seed=0), PaperLoss())
    >>> distiller.compile(optimizer="adam")
    """

    def __init__(self, student, distillation_loss, teacher=None, distillation_weight=1.0, **kwargs):
        if not 0 <= distillation_weight <= 1:
            raise ValueError(f"distillation_weight must lie in [0, 1], got {distillation_weight}")
        super().__init__(student, teacher, **kwargs)
        self.distillation_loss = distillation_loss
        self.distillation_weight = float(distillation_weight)
        self.hard_loss = keras.losses.BinaryCrossentropy(from_logits=True)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if TEACHER_LOGITS in y:
            teacher_logits = y[TEACHER_LOGITS]
        elif self.teacher is not None:
            teacher_logits = self.teacher(x, training=False)
        else:
            raise ValueError("batches carry no teacher_logits and the Distiller has no teacher")
        loss = self.distillation_loss.compute_loss(teacher_logits, y_pred)
        if self.distillation_weight < 1:
            hard = self.hard_loss(ops.cast(y[LABELS], "float32"), y_pred)
            loss = self.distillation_weight * loss + (1 - self.distillation_weight) * hard
        return self.with_student_losses(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y[LABELS], y_pred, sample_weight)


def load_teacher(teacher_path, views=1):
    """The teacher model; with `views=8`, its mean over the 8 rotations/flips (`DihedralMean`)."""
    if views not in VIEWS:
        raise ValueError(f"teacher views must be one of {VIEWS}, got {views}")
    teacher = load_model(teacher_path)
    return DihedralMean(teacher) if views == 8 else teacher


def teacher_logits_cached(teacher_path, parts, cache_path, splits=("train", "val"), views=1):
    """The teacher's logits on each split's maps, computed once and kept in an HDF5 file.

    `views=8` averages them over the 8 rotations/flips of each map. The cache is keyed by
    a hash of the teacher file, the views and the maps: anything else recomputes it."""
    key = digest(Path(teacher_path).read_bytes(), f"views={views}".encode(), *(parts[split].maps for split in splits))
    if Path(cache_path).is_file():
        arrays, attrs = read_arrays(cache_path)
        if attrs.get("key") == key:
            # In `splits` order, as computed (HDF5 reads back by name): a student's settings
            # hash the logits in order, and a resumed run compares them.
            return {split: arrays[split] for split in splits}
    teacher = load_teacher(teacher_path, views)
    print(f"computing the teacher's logits once, for {', '.join(splits)} (cached in {cache_path})")
    arrays = {split: predict(teacher, parts[split].maps, verbose="auto") for split in splits}
    write_arrays(cache_path, arrays, {"key": key, "teacher": str(teacher_path)})
    return arrays


def distill_student(student_name, parts, out_dir, teacher_path, teacher_logits, *, loss="paper",
                    alpha=0.5, beta=0.5, temperature=4.0, distillation_weight=None, epochs=30,
                    batch_size=128, learning_rate=3e-3, augment=False, teacher_views=1, patience=None,
                    seed=0, resume=False, overwrite=False, strategy=None, extra_callbacks=(), before_training=None,
                    verbose="auto"):
    """Distil the teacher into a new `student_name` student; return the best student.

    Args:
        parts: splits from `kd_keras.data.load_splits`.
        out_dir: this student's training directory (`<student_name>.keras`, history, checkpoint).
        teacher_path: the teacher's `.keras` file (run on each batch when `augment` is on).
        teacher_logits: {"train": ..., "val": ...} cached teacher logits
            (see `teacher_logits_cached`, made with the same `teacher_views`).
        augment: random rotations/flips of the training maps. With `teacher_views=1` the
            teacher then runs on each augmented batch; with 8 its cached logits already
            are those of every rotation/flip of the map, and are reused.
        loss, alpha, beta, temperature, distillation_weight: see `make_loss`.
        resume, overwrite: what to do with a run `out_dir` already holds (see `training.fit_resumable`).
        before_training: called once the student is built, before anything else
            (see `kd_keras.side_by_side`).
    With a label-free loss the training labels never reach the loss: they only feed the
    training-set exact-match shown in the progress bar.
    """
    distillation_loss, weight = make_loss(loss, alpha, beta, temperature, distillation_weight)
    train, val = parts["train"], parts["val"]
    with strategy.scope() if strategy else contextlib.nullcontext():
        student = build_student(student_name, seed=seed)
        run_teacher = augment and teacher_views == 1
        teacher = load_teacher(teacher_path) if run_teacher else None
        distiller = Distiller(student, distillation_loss, teacher, weight)
        distiller(np.zeros((1, MAP_SIZE, MAP_SIZE, 1), "float32"))  # build it: resuming loads weights into it
        distiller.compile(cosine_adamw(learning_rate, steps_for(len(train), batch_size, epochs)),
                          metrics=multilabel_metrics())
    if before_training is not None:
        before_training()
    targets = {"train": {LABELS: CLASSIFY.targets(train)}, "val": {LABELS: CLASSIFY.targets(val),
                                                                  TEACHER_LOGITS: teacher_logits["val"]}}
    if not run_teacher:
        targets["train"][TEACHER_LOGITS] = teacher_logits["train"]
    return fit_splits(
        distiller, parts, targets, out_dir, epochs=epochs, batch_size=batch_size, augment=augment, seed=seed,
        best_path=Path(out_dir) / f"{student_name}.keras", model_to_save=student, patience=patience,
        resume=resume, overwrite=overwrite, extra_callbacks=extra_callbacks, verbose=verbose,
        settings={"student": student_name, "loss": loss, "alpha": alpha, "beta": beta, "temperature": temperature,
                  "distillation_weight": weight, "learning_rate": learning_rate, "teacher_views": teacher_views,
                  "teacher": digest(Path(teacher_path).read_bytes()) if run_teacher else None,
                  "teacher_logits": digest(*(logits for logits in teacher_logits.values() if logits is not None))})
