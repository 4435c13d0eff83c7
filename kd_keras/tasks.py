"""Tasks: what a model is asked about a wafer map, and everything that follows from it.

- `CLASSIFY` (Paper 1's students and ours): 8 defect logits, one sigmoid each; a map is
  read right when all 8 flags are. It may be averaged over the map's 8 rotations/flips.
- `SEGCLASS` (Paper 2's): 38 pattern logits (softmax) and a 52x52 defect-mask logit map.

A task owns its output kinds (told apart by shape, which is all a converted model shows),
the targets its students learn from, how a float model is run on raw maps, how outputs
are scored, the Markdown tables of a run, the accuracy figures of a model card and the
lines a command prints. Code that must work for either task asks the task, never
`if mask in outputs`.

Example:

>>> task_for_kinds([MULTILABEL]).name, task_for_kinds([PATTERN, MASK]).name
('classify', 'segclass')
>>> task_of_output_shapes([(1, 38), (1, 52, 52, 1)]) is SEGCLASS
True
"""

import numpy as np

from kd_keras.data import VIEWS, dihedral_views
from kd_keras.data.labels import DEFECT_NAMES, NUM_DEFECTS, NUM_PATTERNS, PATTERN_NAMES
from kd_keras.data.mixedwm38 import MAP_SIZE
from kd_keras.evaluation import decode, evaluate, evaluate_segclass
from kd_keras.inference import predict
from kd_keras.models import DihedralMean, segclass, segclass_model_names, student_names
from kd_keras.models.segclass import PAPER_PART_PARAMETERS, part_parameter_counts
from kd_keras.plots import plot_masks

# What a model output holds, by the name the model card gives it, and its shape (batch of one).
MULTILABEL, PATTERN, MASK = "multilabel_logits", "pattern_logits", "mask_logits"
OUTPUT_SHAPES = {MULTILABEL: (1, NUM_DEFECTS), PATTERN: (1, NUM_PATTERNS), MASK: (1, MAP_SIZE, MAP_SIZE, 1)}
SPLITS = ("test", "test_rotated")  # what a run's report scores: the test maps, and the same turned 90 degrees


def _percent(value):
    return f"{100 * value:.2f}%"


class Task:
    """What the two tasks share; each subclass says what its outputs mean."""

    name = None
    output_kinds = ()
    views = (1,)  # view counts its outputs may be averaged over
    default_students = ()
    student_lr = None  # the distillation job's peak learning rate unless --lr says otherwise
    teacher_views = 1  # the distillation job's --teacher-views unless it is given
    teacher_epochs = 14  # the distillation job's --teacher-epochs, for a teacher it trains, unless it is given
    card_figures = ()  # the model card's accuracy figures, float and int8, on the card's test maps

    def average_views(self, run, maps, views=1):
        """{kind: logits} of `run(maps) -> {kind: logits}` averaged over `views` rotations/flips
        (`kd_keras.data.dihedral_views`), as the firmware sums a classifier's outputs over views."""
        check_views(self, views)
        per_view = [run(view) for view in (dihedral_views(maps) if views > 1 else [maps])]
        return {kind: np.mean([outputs[kind] for outputs in per_view], axis=0) for kind in self.output_kinds}

    def figures(self, outputs, data):
        """The model card's accuracy figures of some outputs."""
        metrics = {decoding: self.evaluate(outputs, data, decoding) for decoding in self.decodings}
        return {name: metrics[decoding][metric] for name, (decoding, metric) in self.card_figures.items()}


class ClassifyTask(Task):
    """8 defect logits: thresholded at 0, or decoded to the nearest of the 38 patterns."""

    name = "classify"
    output_kinds = (MULTILABEL,)
    views = VIEWS
    # A student per budget: Paper 1's Net-1 for 248 KB, and for 21 KB our separable8k (models/kd-21kb's
    # architecture), since Paper 1's Net-2 needs a 22,496-byte tensor arena, over the budget's 16 KB.
    # In the first run separable8k read 87.37% of the test maps (int8), Net-2 35.00%; beside Net-1
    # it takes as much CPU time, and a little more wall time (benchmarks/README.md, "The main job").
    default_students = ("net1", "separable8k")
    # The first run's net1 read 69% of its synthetic test maps at 1e-2, 37% at 3e-3 (30 epochs, a
    # 94% teacher; benchmarks/README.md, "The main job"): at 3e-3 these small students had not left the climb.
    student_lr = 1e-2
    # The first run's teacher reads 92.11% of its synthetic test maps from one view and 94.47% as
    # the mean of all 8 (benchmarks/README.md, "The main job"): its students learn from the better reading.
    teacher_views = VIEWS[-1]
    # The first run's teacher reads 94.47% of its synthetic test maps after 14 epochs (8 views) and
    # 96.32% after 16 (Edge-Loc, a rim band with a wide gap, is learnt late); with Hinton's loss,
    # the main job's, Net-1 learns more from the 16-epoch one (benchmarks/main_job_teacher).
    teacher_epochs = 16
    decodings = ("threshold", "nearest")
    card_figures = {"exact_match": ("threshold", "exact_match"), "exact_match_nearest": ("nearest", "exact_match")}

    def students(self):
        return student_names()

    def targets(self, maps):
        """The hard targets of a split (`WaferMaps`): its 8 defect flags."""
        return maps.labels.astype("float32")

    def predict(self, model, maps, views=1):
        """{kind: float logits} of a Keras model on raw maps, averaged over `views` rotations/flips."""
        check_views(self, views)
        return {MULTILABEL: predict(DihedralMean(model) if views > 1 else model, maps)}

    def evaluate(self, outputs, data, decoding="threshold"):
        return evaluate(outputs[MULTILABEL], data.labels, decoding)

    def run_metrics(self, outputs, data):
        """What a run's report keeps of one split: every decoding's metrics."""
        return {decoding: self.evaluate(outputs, data, decoding) for decoding in self.decodings}

    report_note = ("Test split; 'nearest' decodes to the nearest of the 38 patterns; the rotated test turns every "
                   "test map by 90 degrees.")

    def headline(self, split_metrics):
        """The exact-match figure of a split's run metrics."""
        return split_metrics["threshold"]["exact_match"]

    def confusion(self, split_metrics):
        """The 38 x 39 confusion matrix of a split's run metrics."""
        return split_metrics["threshold"]["confusion"]

    def report_row(self, model, metrics):
        """A model's row of a run's metrics.json."""
        return {"parameters": int(model.count_params()), "metrics": metrics}

    def plot_examples(self, model, test, directory, name):
        """Pictures of the model's readings of test maps, beyond the confusion matrix: none."""

    def predicted_patterns(self, outputs):
        """Each map's reading: its 8 thresholded flags."""
        return decode(outputs[MULTILABEL])

    def reads_right(self, outputs, data):
        """Whether each map is read right as the firmware's demo prints it: the detected defects
        (thresholded) and the nearest of the 38 patterns both equal its label."""
        labels = data.labels
        return ((decode(outputs[MULTILABEL]) == labels).all(axis=1)
                & (decode(outputs[MULTILABEL], "nearest") == labels).all(axis=1))

    def table(self, rows):
        """A Markdown table of a run's {name: {"parameters", "metrics"}} rows."""
        lines = ["| model | parameters | float32 KiB | exact match | exact match (nearest) | rotated test | macro F1 | "
                 "Hamming |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in rows.items():
            test, rotated = row["metrics"]["test"], row["metrics"]["test_rotated"]
            lines.append(
                f"| {name} | {row['parameters']:,} | {row['parameters'] * 4 / 1024:.1f} | "
                f"{_percent(test['threshold']['exact_match'])} | {_percent(test['nearest']['exact_match'])} | "
                f"{_percent(rotated['threshold']['exact_match'])} | {test['threshold']['macro_f1']:.4f} | "
                f"{_percent(test['threshold']['hamming_accuracy'])} |")
        return "\n".join(lines)

    def detail_tables(self, rows):
        """The report's sections after the table: each model's per-defect figures."""
        sections = []
        for name, row in rows.items():
            sections += ["", f"## {name}: per defect (test, threshold decoding)", "",
                         per_defect_table(row["metrics"]["test"]["threshold"])]
        return sections

    def details(self, metrics):
        """What a command prints of some metrics after the exact match."""
        return per_defect_table(metrics)

    def card_sentence(self, accuracy):
        """The model README's words for the figures `card_figures` names, past float and int8 exact match."""
        if "int8_exact_match_nearest" not in accuracy:  # cards written before nearest decoding lack it
            return ""
        return (f"; {_percent(accuracy['int8_exact_match_nearest'])} decoded to the nearest of the 38 patterns "
                "(`NearestPattern()` in firmware_stub/patterns.h)")

    def summary(self, figures):
        """The line a conversion prints after the exact match."""
        return f" ({_percent(figures['int8_exact_match_nearest'])} decoded to the nearest pattern)"


class SegClassTask(Task):
    """38 pattern logits and a defect mask: the pattern is the largest logit, a die is in the mask above 0."""

    name = "segclass"
    output_kinds = (PATTERN, MASK)
    # Ours, not Paper 2's `lightwafer`: as int8 it fits a microcontroller's RAM (see kd_keras.models.segclass).
    default_students = ("stridedseg",)
    student_lr = 3e-3
    decodings = ("largest",)
    card_figures = {name: ("largest", name) for name in ("exact_match", "macro_f1", "dice", "iou")}

    def students(self):
        return segclass_model_names()

    def targets(self, maps):
        """{"pattern": ids, "mask": failed dies} of a split (`WaferMaps`)."""
        return {segclass.PATTERN: maps.pattern_ids.astype("int32"), segclass.MASK: maps.masks.astype("float32")}

    def predict(self, model, maps, views=1):
        check_views(self, views)
        outputs = predict(model, maps, batch_size=256)  # each map's mask logits are 11 KB
        return {PATTERN: outputs[segclass.PATTERN], MASK: outputs[segclass.MASK]}

    def evaluate(self, outputs, data, decoding=None):
        return evaluate_segclass(outputs[PATTERN], data.pattern_ids, outputs[MASK][..., 0], data.masks)

    def run_metrics(self, outputs, data):
        return self.evaluate(outputs, data)

    report_note = ("Test split, and the same maps turned by 90 degrees; a die is in the predicted mask when its "
                   "logit > 0.")
    masks_shown = 6

    def headline(self, split_metrics):
        return split_metrics["exact_match"]

    def confusion(self, split_metrics):
        return split_metrics["confusion"]

    def report_row(self, model, metrics):
        return {"parameters": int(model.count_params()), "parts": part_parameter_counts(model), "metrics": metrics}

    def plot_examples(self, model, test, directory, name):
        """masks.png: a few test maps with their true and predicted masks and patterns."""
        shown = np.random.default_rng(0).choice(len(test), min(self.masks_shown, len(test)), replace=False)
        outputs = self.predict(model, test.maps[shown])
        captions = [f"{PATTERN_NAMES[t]} -> {PATTERN_NAMES[p]}"
                    for t, p in zip(test.pattern_ids[shown], outputs[PATTERN].argmax(axis=1))]
        plot_masks(test.maps[shown], test.masks[shown], outputs[MASK][..., 0] > 0, captions, directory / "masks.png",
                   title=f"{name}: test maps (true -> predicted pattern)")

    def predicted_patterns(self, outputs):
        return outputs[PATTERN].argmax(axis=1)[:, None]

    def reads_right(self, outputs, data):
        """Whether each map's largest pattern logit is its pattern, as the firmware's demo prints it."""
        return outputs[PATTERN].argmax(axis=1) == data.pattern_ids

    def table(self, rows):
        lines = ["| model | parameters | accuracy | macro F1 | AUC (one vs rest) | Dice | IoU | pixel accuracy | "
                 "rotated: accuracy | rotated: Dice |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in rows.items():
            test, rotated = row["metrics"]["test"], row["metrics"]["test_rotated"]
            lines.append(f"| {name} | {row['parameters']:,} | {_percent(test['exact_match'])} | "
                         f"{test['macro_f1']:.4f} | {test['auc_ovr']:.4f} | {test['dice']:.4f} | {test['iou']:.4f} | "
                         f"{_percent(test['pixel_accuracy'])} | {_percent(rotated['exact_match'])} | "
                         f"{rotated['dice']:.4f} |")
        return "\n".join(lines)

    def detail_tables(self, rows):
        lines = ["| model | encoder | decoder | classifier | total |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, parts in [*((name, row["parts"]) for name, row in rows.items()),
                            ("Paper 2's student", PAPER_PART_PARAMETERS)]:
            lines.append(f"| {name} | {parts['encoder']:,} | {parts['decoder']:,} | {parts['classifier']:,} | "
                         f"{parts['total']:,} |")
        return ["", "Parameters per part:", "", *lines]

    def details(self, metrics):
        return (f"macro F1 {metrics['macro_f1']:.4f}; defect mask: Dice {metrics['dice']:.4f}, "
                f"IoU {metrics['iou']:.4f}, pixel accuracy {_percent(metrics['pixel_accuracy'])}")

    def card_sentence(self, accuracy):
        return (f"; defect-mask Dice float {accuracy['float_dice']:.4f}, int8 {accuracy['int8_dice']:.4f} "
                f"(IoU {accuracy['float_iou']:.4f}, {accuracy['int8_iou']:.4f})")

    def summary(self, figures):
        return f"; mask Dice float {figures['float_dice']:.4f}, int8 {figures['int8_dice']:.4f}"


CLASSIFY, SEGCLASS = ClassifyTask(), SegClassTask()
TASKS = {task.name: task for task in (CLASSIFY, SEGCLASS)}


def task_for_kinds(kinds):
    """The task whose outputs are `kinds` (in order)."""
    for task in TASKS.values():
        if tuple(kinds) == task.output_kinds:
            return task
    raise ValueError(f"outputs {', '.join(kinds)} are those of no task ({', '.join(TASKS)})")


def task_of_output_shapes(shapes):
    """The task of a model whose outputs have these shapes (batch of one), in order."""
    kinds = []
    for index, shape in enumerate(shapes):
        kind = next((kind for kind, known in OUTPUT_SHAPES.items() if tuple(shape) == known), None)
        if kind is None:
            raise ValueError(f"model output {index} has shape {tuple(shape)}; this toolkit deploys outputs of "
                             f"shape {', '.join(map(str, OUTPUT_SHAPES.values()))}")
        kinds.append(kind)
    return task_for_kinds(kinds)


def is_classifier(model):
    """Whether a Keras model's one output is the 8 defect logits of a classifier."""
    outputs = model.outputs
    return len(outputs) == 1 and tuple(outputs[0].shape[1:]) == OUTPUT_SHAPES[MULTILABEL][1:]


def check_views(task, views):
    """Refuse a number of views other than 1 or 8, and several views of a task that has one."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {VIEWS} (every rotation/flip of the map), got {views}")
    if views not in task.views:
        raise ValueError(f"averaging over {views} views needs a classifier with {NUM_DEFECTS} defect logits; "
                         f"this model's outputs are {', '.join(task.output_kinds)}")


def per_defect_table(metrics):
    lines = ["| defect | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in DEFECT_NAMES:
        d = metrics["per_defect"][name]
        lines.append(f"| {name} | {d['precision']:.4f} | {d['recall']:.4f} | {d['f1']:.4f} | {d['support']} |")
    return "\n".join(lines)

