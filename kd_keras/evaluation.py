"""Metrics for 8-label defect predictions, and decoding logits into patterns.

Two decodings: `threshold` (a defect is present when its logit > 0, i.e. p > 0.5;
the result may be a combination that is not one of the 38 patterns) and `nearest`
(the most likely of the 38 patterns under independent per-defect sigmoids).

Example:

>>> logits = np.array([[3.0, -2, -2, -2, 0.2, -2, -2, -2]])    # C and a faint L
>>> decode(logits, "threshold").tolist(), decode(logits, "nearest").tolist()
([[1, 0, 0, 0, 1, 0, 0, 0]], [[1, 0, 0, 0, 1, 0, 0, 0]])
>>> decode(np.array([[3.0, 3.0, -2, -2, -2, -2, -2, -2]]), "nearest").tolist()  # C+D never occurs
[[1, 0, 0, 0, 0, 0, 0, 0]]
"""

import numpy as np

from kd_keras.data.labels import (
    DEFECT_NAMES, NUM_PATTERNS, PATTERN_NAMES, PATTERNS, encode_patterns, pattern_ids_or_none,
)
from kd_keras.data.wm811k import CLASS_NAMES, classes_of_labels

DECODINGS = ("threshold", "nearest")
INVALID = NUM_PATTERNS  # confusion-matrix column for predictions that are none of the 38


def decode(logits, method="threshold"):
    """(N, 8) logits -> (N, 8) uint8 multi-hot predictions."""
    logits = np.asarray(logits, np.float64)
    if method == "threshold":
        return (logits > 0).astype(np.uint8)
    if method == "nearest":
        # Ties go to the first pattern, as in the firmware's NearestPattern().
        return PATTERNS[np.argmax(pattern_logits(logits), axis=1)]
    raise ValueError(f"unknown decoding {method!r}; choose one of {DECODINGS}")


def pattern_logits(defect_logits):
    """(N, 8) defect logits -> (N, 38) logits of the 38 patterns: the log-probability of each
    pattern under independent per-defect sigmoids, up to a constant per map. So their softmax
    is the distribution over the 38 patterns, given that the map is one of them.

    log p(pattern) = sum over defects of log sigmoid(z) where present, log sigmoid(-z) where
    not; as log sigmoid(z) - log sigmoid(-z) = z, that is a constant (the sum of log sigmoid(-z)
    over all 8) plus the sum of the pattern's own logits.

    >>> pattern_logits(np.array([[3.0, -2, -2, -2, 0.2, -2, -2, -2]]))[0, encode_patterns(
    ...     np.array([[1, 0, 0, 0, 1, 0, 0, 0]]))[0]]  # C+L: 3.0 + 0.2
    np.float64(3.2)
    """
    return np.asarray(defect_logits, np.float64) @ PATTERNS.T


def pattern_ids_or_invalid(multihot):
    """Pattern id of each row, or `INVALID` for rows that are none of the 38 patterns."""
    ids = pattern_ids_or_none(multihot)
    return np.where(ids < 0, INVALID, ids)


def maps_read_right(predicted, labels):
    """Per map: are all 8 defect flags right? (Exact match; `training.ExactMatch` is the same
    inside a Keras graph.)"""
    return (np.asarray(predicted) == np.asarray(labels)).all(axis=1)


def exact_match(predicted, labels):
    """The share of maps whose 8 flags are all right."""
    return float(maps_read_right(predicted, labels).mean())


THRESHOLD_GRID = np.arange(-3.0, 3.01, 0.25)


def tune_thresholds(logits, labels, grid=THRESHOLD_GRID, rounds=2, score=exact_match):
    """Per-defect logit thresholds that maximize `score` on (logits, labels), one defect at a
    time (coordinate ascent); ties go to the threshold nearest 0.

    `score(readings, labels)`: a number from (N, 8) thresholded readings.

    >>> logits = np.array([[1.0, -1.0], [0.5, -1.5]])
    >>> tune_thresholds(logits, np.array([[1, 0], [0, 0]]), grid=np.array([0.0, 0.75]), rounds=1).tolist()
    [0.75, 0.0]
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    thresholds = np.zeros(logits.shape[1])
    for _ in range(rounds):
        for defect in range(len(thresholds)):
            def trial_score(value, defect=defect):
                trial = thresholds.copy()
                trial[defect] = value
                return score((logits > trial).astype(np.uint8), labels), -abs(value)
            thresholds[defect] = max(grid, key=trial_score)
    return thresholds


def evaluate(logits, labels, decoding="threshold"):
    """All the metrics of a run, as plain Python numbers (JSON-ready).

    Returns exact-match accuracy (the headline: all 8 flags right), Hamming accuracy,
    per-defect precision/recall/F1, macro F1, per-pattern accuracy, the share of
    predictions that are none of the 38 patterns, and a 38 x 39 confusion matrix (rows:
    true pattern; columns: predicted pattern, the last one for invalid predictions)."""
    labels = np.asarray(labels).astype(np.uint8)
    predicted = decode(logits, decoding)
    exact = maps_read_right(predicted, labels)
    true_ids, predicted_ids = encode_patterns(labels), pattern_ids_or_invalid(predicted)
    tp = (predicted & labels).sum(axis=0).astype(float)
    precision = np.divide(tp, predicted.sum(axis=0), out=np.zeros(8), where=predicted.sum(axis=0) > 0)
    recall = np.divide(tp, labels.sum(axis=0), out=np.zeros(8), where=labels.sum(axis=0) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(8), where=precision + recall > 0)
    confusion = np.zeros((NUM_PATTERNS, NUM_PATTERNS + 1), np.int64)
    np.add.at(confusion, (true_ids, predicted_ids), 1)
    present = np.flatnonzero(np.bincount(true_ids, minlength=NUM_PATTERNS))
    return {
        "decoding": decoding,
        "maps": int(len(labels)),
        "exact_match": float(exact.mean()),
        "hamming_accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1.mean()),
        "invalid_pattern_rate": float((predicted_ids == INVALID).mean()),
        "per_defect": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(DEFECT_NAMES, precision, recall, f1, labels.sum(axis=0))
        },
        "per_pattern_accuracy": {PATTERN_NAMES[i]: float(exact[true_ids == i].mean()) for i in present},
        "confusion": confusion.tolist(),
    }


def worst_mistakes(logits, labels, count=12, decoding="threshold"):
    """Indices of the wrongly decoded maps, the most confidently wrong first (at most `count`).

    A map's confidence in its mistake is the largest |logit| among the defects it got wrong."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    wrong_flags = decode(logits, decoding) != labels
    confidence = np.where(wrong_flags, np.abs(logits), -np.inf).max(axis=1)
    wrong = np.flatnonzero(wrong_flags.any(axis=1))
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:count]


def _one_vs_rest_auc(scores, positives):
    """Area under the ROC curve of `scores` for the boolean `positives` (Mann-Whitney U,
    ties counted half). Written here because the pinned stack has no exact AUC: Keras' AUC
    metric approximates it with a fixed number of thresholds."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average rank of each run of tied scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def evaluate_segclass(pattern_logits, pattern_ids, mask_logits, masks):
    """Metrics of a segmentation + classification model, as plain Python numbers.

    Classification (38 patterns, argmax): accuracy (= exact match), macro F1 and mean
    one-vs-rest AUC over the patterns present, per-pattern precision/recall/F1. Masks (a
    die is in the predicted mask when its logit > 0): Dice and IoU per map, averaged (a map
    whose true and predicted masks are both empty scores 1), and pixel accuracy. Also a 38 x 39
    confusion matrix shaped like `evaluate`'s (its last, "invalid" column stays 0)."""
    pattern_logits, pattern_ids = np.asarray(pattern_logits, np.float64), np.asarray(pattern_ids)
    predicted_ids = pattern_logits.argmax(axis=1)
    present = np.flatnonzero(np.bincount(pattern_ids, minlength=NUM_PATTERNS))
    per_pattern = {}
    for i in present:
        tp = np.sum((predicted_ids == i) & (pattern_ids == i))
        predicted, support = np.sum(predicted_ids == i), np.sum(pattern_ids == i)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_pattern[PATTERN_NAMES[i]] = {"precision": float(precision), "recall": float(recall),
                                         "f1": float(f1), "support": int(support)}
    shifted = pattern_logits - pattern_logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    aucs = [_one_vs_rest_auc(probabilities[:, i], pattern_ids == i) for i in present
            if 0 < np.sum(pattern_ids == i) < len(pattern_ids)]

    truth = np.asarray(masks).reshape(len(masks), -1).astype(bool)
    predicted_mask = (np.asarray(mask_logits).reshape(len(masks), -1) > 0)
    overlap = (truth & predicted_mask).sum(axis=1)
    union = (truth | predicted_mask).sum(axis=1)
    sizes = truth.sum(axis=1) + predicted_mask.sum(axis=1)
    confusion = np.zeros((NUM_PATTERNS, NUM_PATTERNS + 1), np.int64)
    np.add.at(confusion, (pattern_ids, predicted_ids), 1)
    return {
        "maps": int(len(pattern_ids)),
        "exact_match": float(np.mean(predicted_ids == pattern_ids)),
        "macro_f1": float(np.mean([row["f1"] for row in per_pattern.values()])),
        "auc_ovr": float(np.mean(aucs)) if aucs else float("nan"),
        "dice": float(np.mean(np.where(sizes > 0, 2 * overlap / np.maximum(sizes, 1), 1.0))),
        "iou": float(np.mean(np.where(union > 0, overlap / np.maximum(union, 1), 1.0))),
        "pixel_accuracy": float(np.mean(truth == predicted_mask)),
        "per_pattern": per_pattern,
        "confusion": confusion.tolist(),
    }


def class_report(true_classes, predicted_classes, class_names, balanced=False):
    """Single-class metrics: accuracy, macro F1 over `class_names`, per-class precision/recall/F1
    and a K x (K + 1) confusion matrix (rows: true class; columns: predicted class, the last for
    a prediction that is none of them, e.g. a mixture on a WM-811K map, which counts as wrong).

    `balanced`: every class weighs the same, each map 1 / its class's count, as on a test set
    with as many maps of each class (a model predicting the commonest class everywhere scores
    its natural share on accuracy but 1/K balanced); accuracy is then the mean recall.

    >>> report = class_report([0, 0, 0, 1], [0, 0, 0, 0], ["none", "Center"])
    >>> report["accuracy"], round(report["macro_f1"], 3), class_report([0, 0, 0, 1], [0, 0, 0, 0],
    ...     ["none", "Center"], balanced=True)["accuracy"]
    (0.75, 0.429, 0.5)
    """
    true_classes, predicted_classes = np.asarray(true_classes), np.asarray(predicted_classes)
    k = len(class_names)
    support = np.bincount(true_classes, minlength=k)
    weights = 1.0 / support[true_classes] if balanced else np.ones(len(true_classes))
    confusion = np.zeros((k, k + 1))
    np.add.at(confusion, (true_classes, predicted_classes), weights)
    hits = np.diag(confusion[:, :k])
    predicted, actual = confusion[:, :k].sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    present = support > 0
    return {
        "maps": int(len(true_classes)),
        "balanced": bool(balanced),
        "accuracy": float(hits.sum() / confusion.sum()),
        "macro_f1": float(f1[present].mean()),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, support)},
        "confusion": confusion.round(6).tolist() if balanced else confusion.astype(int).tolist(),
    }


def fab_class_figures(readings, labels):
    """How (N, 8) thresholded readings read maps that have one WM-811K class each (`labels`: their
    (N, 8) flags): each reading as a class (`none` for no defect; a mixture is wrong), on the natural
    class distribution and class-balanced (`class_report`)."""
    true, predicted = classes_of_labels(labels), classes_of_labels(readings)
    return {"natural": class_report(true, predicted, CLASS_NAMES),
            "balanced": class_report(true, predicted, CLASS_NAMES, balanced=True)}
