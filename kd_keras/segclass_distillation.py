"""Multi-task distillation after Paper 2: a defect mask and one of the 38 patterns.

Targets per map: "pattern", the pattern id (0-37), and "mask", the (52, 52) defect mask
(failed dies). Models return {"mask": (52, 52, 1) logits, "pattern": 38 logits}. The loss
(z: pattern logits, s: mask logits; _s student, _t teacher; T the temperature):

    L_cls  = (1 - a_cls) CE(z_s, y) + a_cls T^2 KL(softmax(z_t / T) || softmax(z_s / T))
    L_seg  = (1 - a_seg) (BCE(s_s, m) + Dice(s_s, m)) + a_seg T^2 BCE(sigmoid(s_s / T), sigmoid(s_t / T))
    L_feat = 1 - cos(W GAP(f_s), GAP(f_t))        (W: a learned projection to the teacher's width)
    L      = L_cls + L_seg + a_feat L_feat

With a_cls = a_seg = a_feat = 0 this is the "hard loss only" student, and no teacher is
needed. Defaults are the paper's: T = 4, a_cls = 0.7, a_seg = 0.5, a_feat = 0.3.

The teacher is either a segmentation + classification model (Paper 2's DeepLabV3+), run on
every batch, or one of our classifiers (8 defect logits), which teaches the pattern only
(a_seg = a_feat = 0): its logits averaged over the 8 rotations/flips of each map are
computed once (`classifier_pattern_logits`), turned into the 38 patterns' logits
(`evaluation.pattern_logits`), and read from each batch's targets. That mean is the same
for every rotation/flip the augmentation draws, so it stays right for augmented maps and
costs nothing per batch. On 2 cores a vgg7 classifier trains an epoch of the dev set in
about 75 s; DeepLabV3+'s first epoch had not ended after an hour.

`SegClassDistiller` is our own `keras.Model` with a custom `compute_loss`, like
`kd_keras.distillation.Distiller`: `keras.distillation.Distiller` distils one output with
one loss and cannot take hard targets or a learned feature projection. The teacher runs
on every batch (its mask logits are too big to cache, and augmentation changes the maps).
A classifier teacher's cached pattern logits come with the targets instead.

Example:

>>> import numpy as np
>>> hard_mask = np.zeros((1, 2, 2, 1)); hard_mask[0, 0, 0, 0] = 1
>>> logits = np.full((1, 2, 2, 1), -20.0); logits[0, 0, 0, 0] = 20.0
>>> round(float(dice_loss(hard_mask, logits)), 6)  # a perfect mask
0.0
"""

from pathlib import Path

import keras
import numpy as np
from keras import ops

from kd_keras.data import MAP_SIZE, VIEWS
from kd_keras.distillation import StudentTrainer, teacher_logits_cached
from kd_keras.evaluation import pattern_logits
from kd_keras.models import build_segclass_model
from kd_keras.models.segclass import FEATURES, MASK, PATTERN
from kd_keras.rundir import digest
from kd_keras.tasks import SEGCLASS
from kd_keras.training import fit_splits, load_model, steps_for

DICE_SMOOTHING = 1.0  # keeps the Dice of an empty mask predicted empty at 1, not 0/0
TEACHER_PATTERN = "teacher_pattern_logits"  # the targets' key of cached teacher pattern logits


def dice_loss(masks, mask_logits):
    """1 - soft Dice of sigmoid(logits) against the 0/1 masks, per map, averaged over maps."""
    masks = ops.reshape(ops.cast(masks, "float32"), (ops.shape(masks)[0], -1))
    probabilities = ops.reshape(ops.sigmoid(ops.cast(mask_logits, "float32")), (ops.shape(masks)[0], -1))
    overlap = ops.sum(masks * probabilities, axis=-1)
    total = ops.sum(masks, axis=-1) + ops.sum(probabilities, axis=-1)
    return ops.mean(1 - (2 * overlap + DICE_SMOOTHING) / (total + DICE_SMOOTHING))


def _mean_bce(targets, logits):
    targets = ops.cast(targets, "float32")
    return ops.mean(ops.binary_crossentropy(targets, ops.cast(logits, "float32"), from_logits=True))


def classification_loss(pattern_ids, student_logits, teacher_logits=None, alpha=0.7, temperature=4.0):
    """(1 - alpha) CE(student, labels) + alpha T^2 KL(softmax(teacher / T) || softmax(student / T))."""
    student_logits = ops.cast(student_logits, "float32")
    hard = ops.mean(ops.sparse_categorical_crossentropy(pattern_ids, student_logits, from_logits=True))
    if alpha == 0:
        return hard
    t = temperature
    teacher_log_p = ops.log_softmax(ops.cast(teacher_logits, "float32") / t, axis=-1)
    student_log_p = ops.log_softmax(student_logits / t, axis=-1)
    kl = ops.mean(ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1))
    return (1 - alpha) * hard + alpha * t * t * kl


def segmentation_loss(masks, student_logits, teacher_logits=None, alpha=0.5, temperature=4.0):
    """(1 - alpha) (BCE + Dice)(student, masks) + alpha T^2 BCE(sigmoid(student / T), sigmoid(teacher / T))."""
    masks = ops.reshape(ops.cast(masks, "float32"), ops.shape(student_logits))
    hard = _mean_bce(masks, student_logits) + dice_loss(masks, student_logits)
    if alpha == 0:
        return hard
    t = temperature
    soft = _mean_bce(ops.sigmoid(ops.cast(teacher_logits, "float32") / t), ops.cast(student_logits, "float32") / t)
    return (1 - alpha) * hard + alpha * t * t * soft


def feature_loss(projected_student_features, teacher_features):
    """1 - cosine similarity of (projected, pooled) student and teacher features, averaged over maps."""
    student = ops.cast(projected_student_features, "float32")
    teacher = ops.cast(teacher_features, "float32")
    cosine = ops.sum(student * teacher, axis=-1) / (
        ops.sqrt(ops.sum(student * student, axis=-1) * ops.sum(teacher * teacher, axis=-1)) + 1e-8)
    return ops.mean(1 - cosine)


def with_pooled_features(model):
    """`model` with a third output, "features": its `features` layer, globally averaged
    (same layers and weights: training one trains the other)."""
    pooled = keras.layers.GlobalAveragePooling2D()(model.get_layer(FEATURES).output)
    return keras.Model(model.inputs, {**model.output, FEATURES: pooled})


@keras.saving.register_keras_serializable(package="kd_keras")
class MaskDice(keras.metrics.Mean):
    """Mean Dice of the predicted mask (logit > 0) against the true mask, per map."""

    def update_state(self, masks, mask_logits, sample_weight=None):
        masks = ops.reshape(ops.cast(masks, "float32"), (ops.shape(mask_logits)[0], -1))
        predicted = ops.reshape(ops.cast(mask_logits > 0, "float32"), (ops.shape(mask_logits)[0], -1))
        overlap = ops.sum(masks * predicted, axis=-1)
        total = ops.sum(masks, axis=-1) + ops.sum(predicted, axis=-1)
        dice = ops.where(total > 0, 2 * overlap / ops.maximum(total, 1.0), 1.0)
        return super().update_state(dice, sample_weight)


class SegClassDistiller(StudentTrainer):
    """Trains a segmentation + classification `student` on hard targets and a `teacher`.

    Batches are (maps, {"pattern": ids, "mask": masks}), and with `teacher=None` and
    `alpha_cls > 0`, {"teacher_pattern_logits": ...} too: a classifier teacher's cached
    pattern logits (see the module docstring). Reports `exact_match` (pattern accuracy: the
    38 patterns are exactly the valid 8-flag combinations) and `dice`.

    Example:

    >>> from kd_keras.models.segclass import light_wafer_segclass_net
    >>> hard_only = SegClassDistiller(light_wafer_segclass_net(), alpha_cls=0, alpha_seg=0, alpha_feat=0)
    >>> hard_only.compile(optimizer="adamw")
    """

    def __init__(self, student, teacher=None, *, alpha_cls=0.7, alpha_seg=0.5, alpha_feat=0.3,
                 temperature=4.0, **kwargs):
        for name, value in (("alpha_cls", alpha_cls), ("alpha_seg", alpha_seg)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if alpha_feat < 0:
            raise ValueError(f"alpha_feat must not be negative, got {alpha_feat}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if teacher is None and (alpha_seg or alpha_feat):
            raise ValueError("the mask and feature distillation terms (alpha_seg, alpha_feat > 0) need a "
                             "segmentation + classification teacher")
        super().__init__(student, teacher, **kwargs)
        self.alpha_cls, self.alpha_seg, self.alpha_feat = float(alpha_cls), float(alpha_seg), float(alpha_feat)
        self.temperature = float(temperature)
        if self.alpha_feat:
            # The student's pooled features come out of `call` with its outputs, so the
            # student runs once per batch; the projection W is trained with it, never exported.
            self.student_with_features = with_pooled_features(student)
            self.teacher_with_features = with_pooled_features(teacher)
            teacher_width = teacher.get_layer(FEATURES).output.shape[-1]
            self.projection = keras.layers.Dense(teacher_width, use_bias=False, name="feature_projection")
        self.exact_match = keras.metrics.SparseCategoricalAccuracy(name="exact_match")
        self.dice = MaskDice(name="dice")

    def build(self, input_shape):
        if self.alpha_feat:
            self.projection.build((None, self.student.get_layer(FEATURES).output.shape[-1]))

    def call(self, inputs, training=None):
        return (self.student_with_features if self.alpha_feat else self.student)(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher = {}
        if self.alpha_feat:
            teacher = self.teacher_with_features(x, training=False)
        elif self.alpha_seg or (self.alpha_cls and TEACHER_PATTERN not in y):
            if self.teacher is None:
                raise ValueError(f"alpha_cls > 0 without a teacher: batches must carry {TEACHER_PATTERN}")
            teacher = self.teacher(x, training=False)
        if TEACHER_PATTERN in y:
            teacher[PATTERN] = y[TEACHER_PATTERN]
        loss = classification_loss(y[PATTERN], y_pred[PATTERN], teacher.get(PATTERN), self.alpha_cls,
                                   self.temperature)
        loss = loss + segmentation_loss(y[MASK], y_pred[MASK], teacher.get(MASK), self.alpha_seg, self.temperature)
        if self.alpha_feat:
            loss = loss + self.alpha_feat * feature_loss(self.projection(y_pred[FEATURES]), teacher[FEATURES])
        return self.with_student_losses(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.exact_match.update_state(y[PATTERN], y_pred[PATTERN])
        self.dice.update_state(y[MASK], y_pred[MASK])
        return self.get_metrics_result()


def cosine_restarts_adamw(learning_rate, steps_per_epoch, restart_epochs=10, weight_decay=1e-4):
    """AdamW under cosine annealing with warm restarts every `restart_epochs` epochs (Paper 2's
    CosineAnnealingWarmRestarts, period kept fixed)."""
    schedule = keras.optimizers.schedules.CosineDecayRestarts(
        learning_rate, max(1, steps_per_epoch * restart_epochs), t_mul=1.0, m_mul=1.0)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def classifier_pattern_logits(teacher_path, parts, cache_path):
    """A classifier teacher's (8 defect logits) pattern logits on the training and validation
    maps: {"train": (N, 38), "val": (N, 38)}, from its logits averaged over the 8 views,
    which are computed once and cached in `cache_path` (see `distillation.teacher_logits_cached`)."""
    logits = teacher_logits_cached(teacher_path, parts, cache_path, views=VIEWS[-1])
    return {split: pattern_logits(split_logits).astype("float32") for split, split_logits in logits.items()}


def train_segclass(model_name, parts, out_dir, *, teacher_path=None, teacher_pattern_logits=None, alpha_cls=0.7,
                   alpha_seg=0.5, alpha_feat=0.3, temperature=4.0, epochs=30, batch_size=64, learning_rate=2e-3,
                   restart_epochs=10, augment=True, patience=None, seed=0, resume=False, overwrite=False,
                   model_file=None, extra_callbacks=(), verbose="auto"):
    """Train a registered segmentation + classification model; return the best one (by
    validation pattern accuracy), saved as `out_dir/<model_file>` (default `<model_name>.keras`).

    Without a teacher it learns from the hard targets alone (pass alpha_cls = alpha_seg =
    alpha_feat = 0): that is how the teacher, and the "hard loss only" student, are trained.
    With `teacher_path` (a segmentation + classification model), `SegClassDistiller`'s loss
    (see the module docstring); with `teacher_pattern_logits` instead, a classifier teacher's
    cached pattern logits (`classifier_pattern_logits`) teach the pattern (alpha_seg =
    alpha_feat = 0). `resume`, `overwrite`: what to do with a run `out_dir` already holds
    (see `training.fit_resumable`).
    """
    if teacher_path is not None and teacher_pattern_logits is not None:
        raise ValueError("give a segmentation + classification teacher_path or a classifier's "
                         "teacher_pattern_logits, not both")
    model = build_segclass_model(model_name, seed=seed)
    teacher = load_model(teacher_path) if teacher_path else None
    distiller = SegClassDistiller(model, teacher, alpha_cls=alpha_cls, alpha_seg=alpha_seg,
                                  alpha_feat=alpha_feat, temperature=temperature)
    distiller(np.zeros((1, MAP_SIZE, MAP_SIZE, 1), "float32"))  # build it: resuming loads weights into it
    # A run shorter than one restart period anneals once, to the end of the run.
    distiller.compile(cosine_restarts_adamw(learning_rate, steps_for(len(parts["train"]), batch_size, 1),
                                            min(restart_epochs, epochs)))
    targets = {split: SEGCLASS.targets(parts[split]) for split in ("train", "val")}
    if teacher_pattern_logits is not None:
        targets = {split: {**targets[split], TEACHER_PATTERN: teacher_pattern_logits[split]} for split in targets}
    return fit_splits(
        distiller, parts, targets, out_dir,
        epochs=epochs, batch_size=batch_size, augment=augment, seed=seed,
        best_path=Path(out_dir) / (model_file or f"{model_name}.keras"), model_to_save=model, patience=patience,
        resume=resume, overwrite=overwrite, extra_callbacks=extra_callbacks, verbose=verbose,
        settings={"model": model_name, "teacher": digest(Path(teacher_path).read_bytes()) if teacher_path else None,
                  **({"teacher_pattern_logits": digest(*teacher_pattern_logits.values())}
                     if teacher_pattern_logits is not None else {}),
                  "alpha_cls": alpha_cls, "alpha_seg": alpha_seg, "alpha_feat": alpha_feat,
                  "temperature": temperature, "learning_rate": learning_rate, "restart_epochs": restart_epochs})
