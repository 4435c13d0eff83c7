"""Named training recipes: the settings our benchmarks train with, in one place.

- `OUR_TEACHER`: the vgg7 teacher of `benchmarks.best_per_budget` (as accurate as Paper 1's
  ResNet-18 on the dev set, in a seventh of the time; see the README).
- `PAPER1_QUESTIONS`: Paper 1's open questions (label-free against supervised, and the
  balance of its two loss terms), as `distill_student` loss settings.
- `PAPER1_STUDENTS`: the paper's students as published (label-free, alpha = beta = 0.5).

Example:

>>> OUR_TEACHER.arch, OUR_TEACHER.epochs
('vgg7', 20)
>>> PAPER1_QUESTIONS["label-free, Hinton T=4"]
{'loss': 'hinton', 'temperature': 4.0}
"""

from typing import NamedTuple


class TeacherRecipe(NamedTuple):
    arch: str
    epochs: int
    learning_rate: float


OUR_TEACHER = TeacherRecipe("vgg7", 20, 3e-3)
PAPER1_TEACHER = TeacherRecipe("resnet18", 40, 2e-3)

# Paper 1's open questions: (label, `distill_student` loss settings). "labels only" is
# distillation weight 0: no teacher at all.
PAPER1_QUESTIONS = {
    "label-free, paper loss alpha=0.5 beta=0.5": {"loss": "paper", "alpha": 0.5, "beta": 0.5},
    "label-free, paper loss alpha=1 beta=0 (logit MSE)": {"loss": "paper", "alpha": 1.0, "beta": 0.0},
    "label-free, paper loss alpha=0 beta=1 (sigmoid BCE)": {"loss": "paper", "alpha": 0.0, "beta": 1.0},
    "label-free, Hinton T=4": {"loss": "hinton", "temperature": 4.0},
    "supervised, 0.5 labels + 0.5 paper loss": {"loss": "mixed", "distillation_weight": 0.5},
    "labels only, no teacher": {"loss": "mixed", "distillation_weight": 0.0},
}
PAPER1_STUDENTS = {"loss": "paper", "alpha": 0.5, "beta": 0.5}


def recipe_name(settings):
    """The question's label of some loss settings, or the settings as text."""
    return next((label for label, known in PAPER1_QUESTIONS.items() if known == settings), str(settings))
