import numpy as np
import pytest

from kd_keras.data import PATTERN_NAMES, decode_patterns, parse_pattern_name
from kd_keras.evaluation import INVALID, decode, evaluate, pattern_ids_or_invalid, worst_mistakes

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def logits_for(multihot, margin=3.0):
    return np.where(np.asarray(multihot) == 1, margin, -margin)


def test_threshold_decoding_is_logit_sign():
    assert decode([[0.1, -0.1, 0, 5, -5, 0.2, -0.3, 1]]).tolist() == [[1, 0, 0, 1, 0, 1, 0, 1]]


def test_nearest_decoding_always_gives_one_of_the_38():
    rng = np.random.default_rng(0)
    predicted = decode(rng.normal(0, 3, (500, 8)), "nearest")
    assert (pattern_ids_or_invalid(predicted) != INVALID).all()


def test_nearest_decoding_keeps_valid_confident_predictions():
    truth = decode_patterns(np.arange(38))
    assert np.array_equal(decode(logits_for(truth), "nearest"), truth)


def test_unknown_decoding():
    with pytest.raises(ValueError, match="unknown decoding 'argmax'"):
        decode(np.zeros((1, 8)), "argmax")


def test_metrics_on_a_hand_example():
    names = ["C", "D+EL", "Normal", "S"]
    labels = decode_patterns([parse_pattern_name(n) for n in names])
    predicted = labels.copy()
    predicted[1, 2] = 0          # D+EL read as D: wrong, still a valid pattern
    predicted[3] = [1, 1, 0, 0, 0, 0, 0, 0]  # S read as C+D: not one of the 38
    metrics = evaluate(logits_for(predicted), labels)
    assert metrics["exact_match"] == 0.5
    assert metrics["hamming_accuracy"] == pytest.approx(1 - 4 / 32)
    assert metrics["invalid_pattern_rate"] == 0.25
    center = metrics["per_defect"]["Center"]
    assert (center["precision"], center["recall"], center["support"]) == (0.5, 1.0, 1)
    assert metrics["per_defect"]["Edge-Loc"]["recall"] == 0.0
    assert metrics["per_pattern_accuracy"] == {"Normal": 1.0, "C": 1.0, "S": 0.0, "D+EL": 0.0}
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (38, 39) and confusion.sum() == 4
    assert confusion[PATTERN_NAMES.index("D+EL"), PATTERN_NAMES.index("D")] == 1
    assert confusion[PATTERN_NAMES.index("S"), INVALID] == 1


def test_worst_mistakes_puts_the_most_confident_mistake_first():
    labels = np.array([[1, 0, 0, 0, 0, 0, 0, 0]] * 4)
    logits = np.full((4, 8), -5.0)
    logits[:, 0] = [4.0, -1.0, 3.0, -6.0]   # maps 1 and 3 miss Center (1: barely, 3: confidently)
    logits[2, 6] = 2.0                       # map 2 adds a Scratch it does not have
    assert worst_mistakes(logits, labels).tolist() == [3, 2, 1]
    assert worst_mistakes(logits, labels, count=1).tolist() == [3]
    assert worst_mistakes(logits[:1], labels[:1]).tolist() == []
