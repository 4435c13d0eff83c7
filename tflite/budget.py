"""Budgets: what a deployed model must fit, and the accuracy we aim at inside it.

The two budgets of Paper 1 (21 KB and 248 KB of flash for the model) with the RAM our
targets allow its tensor arena and the exact-match accuracy we aim at (see the README).

Example:

>>> budget = parse_budget("21KB")
>>> budget.flash_bytes, budget.arena_bytes, budget.accuracy_target
(21504, 16384, 0.97)
>>> parse_budget("30000").name, parse_budget("30000").arena_bytes
('30,000 bytes', None)
>>> budget.check_arena(22_496)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tflite.budget.ConversionError: the tensor arena is 22,496 bytes, 6,112 bytes over the 21 KB budget's 16,384 ...
>>> parse_budget("1KB")
Traceback (most recent call last):
...
ValueError: budget '1KB': expected 21KB, 248KB or a positive number of bytes
"""

import dataclasses

from kd_keras.errors import ToolkitError


class ConversionError(ToolkitError, ValueError):
    """A model that cannot be deployed as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Flash for the model file, RAM for its tensor arena (None: not set), and the accuracy aimed at."""

    name: str
    flash_bytes: int
    arena_bytes: int | None = None
    accuracy_target: float | None = None

    @property
    def title(self):
        """'21 KB', or '30,000 bytes'."""
        return self.name.replace("KB", " KB")

    def check_flash(self, flash_bytes, heaviest_layers=()):
        """Raise `ConversionError` saying by how much, and which layers weigh most, if over budget."""
        if flash_bytes > self.flash_bytes:
            heaviest = ", ".join(f"{layer} ({params:,} parameters)" for layer, params in heaviest_layers)
            raise ConversionError(
                f"model.tflite is {flash_bytes:,} bytes, {flash_bytes - self.flash_bytes:,} bytes over the budget "
                f"of {self.flash_bytes:,}" + (f"; the heaviest layers: {heaviest}" if heaviest else ""))

    def check_arena(self, arena_bytes):
        """Raise `ConversionError` saying by how much, if the tensor arena is over the budget's (where it sets one)."""
        if self.arena_bytes is not None and arena_bytes > self.arena_bytes:
            raise ConversionError(
                f"the tensor arena is {arena_bytes:,} bytes, {arena_bytes - self.arena_bytes:,} bytes over the "
                f"{self.title} budget's {self.arena_bytes:,} (a budget given in bytes holds the flash alone)")

    def for_task(self, task_name):
        """The budget a model of the task `task_name` (`kd_keras.tasks`) is held to: a segmentation +
        classification model's tensor arena may take `SEGCLASS_ARENA_BYTES`."""
        if task_name != "segclass" or self.arena_bytes is None:
            return self
        return dataclasses.replace(self, arena_bytes=max(self.arena_bytes, SEGCLASS_ARENA_BYTES))

    def flash_only(self):
        """This budget without its arena limit (see `PAPER1_BUDGETS`)."""
        return dataclasses.replace(self, arena_bytes=None)

    def to_dict(self):
        return dataclasses.asdict(self)


BUDGETS = {budget.name: budget for budget in (Budget("21KB", 21 * 1024, 16 * 1024, 0.97),
                                              Budget("248KB", 248 * 1024, 64 * 1024, 0.99))}
# Paper 1's budgets are file sizes: what its students are held to (Net-2's 22,496-byte tensor
# arena is over our 21 KB budget's 16 KB).
PAPER1_BUDGETS = {name: budget.flash_only() for name, budget in BUDGETS.items()}


# The RAM aimed at for a segmentation + classification model's tensor arena (in the 248 KB class
# of parts): its mask's full-resolution activations need more than a classifier's 64 KB.
SEGCLASS_ARENA_BYTES = 96 * 1024


def parse_budget(text):
    """'21KB', '248KB' or a number of bytes (flash only) -> a `Budget`."""
    key = str(text).upper().replace(" ", "")
    if key in BUDGETS:
        return BUDGETS[key]
    if key.isdigit() and int(key) > 0:
        return Budget(f"{int(key):,} bytes", int(key))
    raise ValueError(f"budget {text!r}: expected 21KB, 248KB or a positive number of bytes")
