"""The one label codec: 8-bit multi-hot <-> 38 pattern ids <-> readable names.

MixedWM38 labels every map with 8 binary defect flags, in this order:
Center, Donut, Edge-Loc, Edge-Ring, Loc, Near-full, Scratch, Random. Only 38 of
the 256 combinations occur (Normal, 8 single types and 29 mixtures); everything
downstream names a pattern by its id in `PATTERNS` and prints it as e.g. "C+EL+S".

Example:

>>> encode_patterns(np.array([[1, 0, 1, 0, 0, 0, 1, 0]]))
array([23])
>>> pattern_name(23)
'C+EL+S'
>>> decode_patterns([parse_pattern_name("S+EL+C")])
array([[1, 0, 1, 0, 0, 0, 1, 0]], dtype=uint8)
"""

import numpy as np

DEFECT_NAMES = (
    "Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Scratch", "Random",
)
DEFECT_ABBREVIATIONS = ("C", "D", "EL", "ER", "L", "NF", "S", "R")
NORMAL_NAME = "Normal"
NUM_DEFECTS = len(DEFECT_NAMES)


def _multihot(name):
    row = np.zeros(NUM_DEFECTS, np.uint8)
    if name != NORMAL_NAME:
        for part in name.split("+"):
            row[DEFECT_ABBREVIATIONS.index(part)] = 1
    return row


# The 38 MixedWM38 patterns: Normal, the 8 single types, then the mixtures by size.
PATTERN_NAMES = (
    NORMAL_NAME, "C", "D", "EL", "ER", "L", "NF", "S", "R",
    "C+EL", "C+ER", "C+L", "C+S", "D+EL", "D+ER", "D+L", "D+S",
    "EL+L", "EL+S", "ER+L", "ER+S", "L+S",
    "C+EL+L", "C+EL+S", "C+ER+L", "C+ER+S", "C+L+S",
    "D+EL+L", "D+EL+S", "D+ER+L", "D+ER+S", "D+L+S",
    "EL+L+S", "ER+L+S",
    "C+EL+L+S", "C+ER+L+S", "D+EL+L+S", "D+ER+L+S",
)
NUM_PATTERNS = len(PATTERN_NAMES)
PATTERNS = np.stack([_multihot(name) for name in PATTERN_NAMES])  # (38, 8) uint8

# 8-bit code (bit i = defect i) -> pattern id, -1 for the 218 codes that never occur.
_BIT_WEIGHTS = 1 << np.arange(NUM_DEFECTS)
_ID_OF_CODE = np.full(1 << NUM_DEFECTS, -1, np.int64)
_ID_OF_CODE[PATTERNS.astype(np.int64) @ _BIT_WEIGHTS] = np.arange(NUM_PATTERNS)


class InvalidLabelError(ValueError):
    """A label row that is not 0/1, or not one of the 38 MixedWM38 patterns."""

    def __init__(self, row_index, row, reason):
        self.row_index = row_index
        self.description = f"label {np.asarray(row).tolist()} {reason}"
        super().__init__(f"row {row_index}: {self.description}")


def pattern_ids_or_none(multihot):
    """(N,) pattern ids of 0/1 rows, -1 for rows that are none of the 38 patterns."""
    return _ID_OF_CODE[np.asarray(multihot).astype(np.int64) @ _BIT_WEIGHTS]


def encode_patterns(multihot):
    """Map (N, 8) multi-hot rows to (N,) pattern ids; raise `InvalidLabelError` on the first bad row."""
    multihot = np.asarray(multihot)
    if multihot.ndim != 2 or multihot.shape[1] != NUM_DEFECTS:
        raise ValueError(f"expected labels of shape (N, {NUM_DEFECTS}), got {multihot.shape}")
    not_binary = ~np.isin(multihot, (0, 1)).all(axis=1)
    if not_binary.any():
        i = int(np.argmax(not_binary))
        raise InvalidLabelError(i, multihot[i], "has values other than 0 and 1")
    ids = pattern_ids_or_none(multihot)
    if (ids < 0).any():
        i = int(np.argmax(ids < 0))
        raise InvalidLabelError(i, multihot[i], "is not one of the 38 MixedWM38 patterns")
    return ids


def decode_patterns(pattern_ids):
    """Map pattern ids to (N, 8) uint8 multi-hot rows."""
    pattern_ids = np.asarray(pattern_ids)
    if pattern_ids.size and (pattern_ids.min() < 0 or pattern_ids.max() >= NUM_PATTERNS):
        raise ValueError(f"pattern ids must lie in [0, {NUM_PATTERNS}), got {pattern_ids}")
    return PATTERNS[pattern_ids]


def pattern_name(pattern_id):
    """Readable name of one pattern id, e.g. 'C+EL+S'."""
    return PATTERN_NAMES[int(pattern_id)]


def flags_name(multihot_row):
    """Name of any 8-flag row, one of the 38 or not: 'C+EL+S', 'C+D', 'Normal'.

    >>> flags_name([1, 1, 0, 0, 0, 0, 0, 0]), flags_name([0] * 8)
    ('C+D', 'Normal')
    """
    present = [abbreviation for abbreviation, flag in zip(DEFECT_ABBREVIATIONS, multihot_row) if flag]
    return "+".join(present) or NORMAL_NAME


def parse_pattern_name(name):
    """Pattern id of a name; components may come in any order ('S+C' == 'C+S')."""
    parts = name.split("+")
    unknown = [p for p in parts if p not in DEFECT_ABBREVIATIONS and name != NORMAL_NAME]
    if unknown:
        raise ValueError(
            f"unknown defect {unknown[0]!r} in pattern name {name!r}; "
            f"expected {NORMAL_NAME!r} or abbreviations {DEFECT_ABBREVIATIONS} joined by '+'"
        )
    try:
        return int(encode_patterns(_multihot(name)[None])[0])
    except InvalidLabelError:
        raise ValueError(f"{name!r} is not one of the 38 MixedWM38 patterns") from None
