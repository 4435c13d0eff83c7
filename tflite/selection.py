"""Choosing what ships, on the validation split, as the firmware will run it.

A benchmark trains several candidates (student seeds) and may run each on one view of a map
or on all 8 rotations/flips; `choose_on_validation` scores every (candidate, views) pair as
an int8 model in TFLite Micro on the validation maps and keeps the best. The choice itself,
`best_of`, is plain and tested with made-up scores.

Example:

>>> best_of({"seed 0": {1: 0.95, 8: 0.96}, "seed 1": {1: 0.97, 8: 0.96}})
('seed 1', 1)
>>> best_of({"seed 0": {1: 0.9, 8: 0.9}, "seed 1": {1: 0.9, 8: 0.9}})  # ties go to the first
('seed 0', 1)
"""


def best_of(scores):
    """The (candidate, views) pair with the highest score in {candidate: {views: score}};
    the first of equals (candidates, then views, in the order given)."""
    if not scores or not all(scores.values()):
        raise ValueError("nothing to choose from: every candidate needs at least one score")
    candidate = max(scores, key=lambda key: max(scores[key].values()))
    return candidate, max(scores[candidate], key=scores[candidate].get)


def choose_on_validation(candidates, val, view_candidates=(1,)):
    """Of `candidates` ({key: `tflite.micro.Int8Model`}) and of the view counts, the pair whose
    exact match in TFLite Micro on the validation split `val` is the best.

    Returns (key, views, scores), scores being {key: {views: exact match}}; with a single
    candidate and a single view count nothing is measured and scores is {}."""
    if len(candidates) * len(view_candidates) == 1:
        return next(iter(candidates)), view_candidates[0], {}
    scores = {key: {views: int8.task.evaluate(int8.outputs(val.maps, views), val)["exact_match"]
                    for views in view_candidates} for key, int8 in candidates.items()}
    key, views = best_of(scores)
    return key, views, scores
