import numpy as np
import pytest

from kd_keras.data import (
    DEFECT_ABBREVIATIONS, NUM_PATTERNS, PATTERN_NAMES, PATTERNS, InvalidLabelError,
    decode_patterns, encode_patterns, parse_pattern_name, pattern_name,
)

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def test_there_are_38_distinct_patterns_with_distinct_names():
    assert NUM_PATTERNS == 38 == len(PATTERN_NAMES) == len(set(PATTERN_NAMES))
    assert len({tuple(row) for row in PATTERNS}) == 38
    assert PATTERNS.shape == (38, 8) and PATTERNS.dtype == np.uint8


def test_pattern_counts_match_mixedwm38():
    sizes = np.bincount(PATTERNS.sum(axis=1))
    # Normal, 8 single types, 13 double, 12 triple and 4 quadruple mixtures.
    assert sizes.tolist() == [1, 8, 13, 12, 4]


def test_round_trip_multihot_id_name_for_all_38():
    ids = np.arange(NUM_PATTERNS)
    assert np.array_equal(encode_patterns(decode_patterns(ids)), ids)
    for pattern_id in ids:
        name = pattern_name(pattern_id)
        assert parse_pattern_name(name) == pattern_id
        row = decode_patterns([pattern_id])[0]
        expected = "+".join(a for a, flag in zip(DEFECT_ABBREVIATIONS, row) if flag) or "Normal"
        assert name == expected


def test_names_parse_in_any_order():
    assert parse_pattern_name("S+EL+C") == parse_pattern_name("C+EL+S") == PATTERN_NAMES.index("C+EL+S")
    assert decode_patterns([parse_pattern_name("C+EL+S")]).tolist() == [[1, 0, 1, 0, 0, 0, 1, 0]]


@pytest.mark.parametrize("name, message", [("C+X", "unknown defect 'X'"), ("C+D", "not one of the 38")])
def test_bad_names_are_rejected(name, message):
    with pytest.raises(ValueError, match=message):
        parse_pattern_name(name)


def test_invalid_label_rows_name_the_row():
    labels = decode_patterns([0, 1, 2]).astype(int)
    labels[2] = [1, 1, 0, 0, 0, 0, 0, 0]  # Center+Donut never occurs
    with pytest.raises(InvalidLabelError, match=r"row 2: label \[1, 1, 0, 0, 0, 0, 0, 0\] is not one of the 38"):
        encode_patterns(labels)
    labels[1, 4] = 2
    with pytest.raises(InvalidLabelError, match="row 1: .* values other than 0 and 1"):
        encode_patterns(labels)


def test_out_of_range_ids_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 38\)"):
        decode_patterns([38])
