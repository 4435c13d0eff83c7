"""Find maps whose labels are probably wrong: out-of-fold readings, then confident learning.

Every map is read by a model that never trained on it: the maps are cut into `folds` parts
(stratified by pattern), and a teacher trained on the other parts reads each part, on all 8
rotations/flips of every map (`out_of_fold_logits`). A defect flag is suspect where that reading
contradicts the label at least as confidently as the model is, on average, about the maps
labelled the other way (confident learning, Northcutt et al. 2021, one binary problem per
defect: `suspect_flags`). A map with a suspect flag is a suspect (`find_suspects`) when the
pattern the out-of-fold reading names (`evaluation.decode(..., "nearest")`) is not its label:
that pattern is its suspected label.

The labels themselves are never edited: the training commands can leave the suspects of the
training split out (`--drop-suspects label_audit.json`, read by `kd_keras.data.read_suspects`),
and figures on the test maps the audit does not suspect are reported beside the headline on the
original labels (`benchmarks/label_audit.py`).

Example:

>>> logits = np.array([[4.0, -4], [3.5, -4], [-4, -4], [-3, 4], [-5, -4]])  # out-of-fold readings
>>> labels = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 0]])             # map 2 reads as clean
>>> suspect_flags(logits, labels).nonzero()
(array([2]), array([0]))
"""

import collections
import dataclasses
import time
from pathlib import Path

import numpy as np

from kd_keras.data.labels import (
    DEFECT_ABBREVIATIONS, NUM_DEFECTS, PATTERNS, encode_patterns, flags_name, parse_pattern_name,
)
from kd_keras.data.mixedwm38 import VIEWS, dihedral_views
from kd_keras.data.pipeline import balancing_power
from kd_keras.data.splits import stratified_split
from kd_keras.evaluation import decode, exact_match
from kd_keras.fileio import atomic_path, write_json, write_text
from kd_keras.inference import predict
from kd_keras.plots import plot_mistakes
from kd_keras.recipes import OUR_TEACHER
from kd_keras.rundir import versions
from kd_keras.training import train_teacher

DEFAULT_FOLDS = 4
HELD_OUT_FILE = "held_out_logits.npz"  # per fold: the maps it held out and each view's logits


def fold_of_each_map(pattern_ids, folds=DEFAULT_FOLDS, seed=0):
    """(N,) fold number of each map: each pattern's maps dealt out evenly over `folds` folds.

    >>> fold_of_each_map(np.repeat([0, 1], 4), folds=2, seed=0).tolist()
    [1, 0, 0, 1, 1, 0, 1, 0]
    """
    pattern_ids = np.asarray(pattern_ids)
    if folds < 2:
        raise ValueError(f"a label audit needs at least 2 folds, got {folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(pattern_ids), np.int64)
    for pattern_id in np.unique(pattern_ids):
        members = rng.permutation(np.flatnonzero(pattern_ids == pattern_id))
        fold[members] = np.arange(len(members)) % folds
    return fold


def out_of_fold_logits(data, run_dir, train, *, folds=DEFAULT_FOLDS, seed=0):
    """(N, 8 views, 8 defects) logits of every map in `data`, each from the model of the fold
    that held it out, on its 8 rotations/flips (`dihedral_views` order); and the seconds each
    fold's `train` took when its logits were made.

    Args:
        data: a `WaferMaps`.
        run_dir: one sub-directory per fold (`fold0`, ...): the fold's training run and its
            held-out logits. A fold whose logits are there is not trained or read again, so an
            interrupted audit goes on where it stopped.
        train: `train(parts, fold_dir)` -> a trained Keras model, for parts {'train', 'val'}
            (`WaferMaps`; 'val', 5% of the other folds, is what the run monitors).
        folds, seed: how the maps are dealt out (`fold_of_each_map`); the seed also draws
            'val'.
    """
    fold = fold_of_each_map(data.pattern_ids, folds, seed)
    logits = np.empty((len(data), len(dihedral_views(data.maps[:1])), NUM_DEFECTS), np.float32)
    training_seconds = []
    for number in range(folds):
        fold_dir = Path(run_dir) / f"fold{number}"
        held_out = np.flatnonzero(fold == number)
        logits[held_out], seconds = _held_out_logits(data, held_out, fold_dir, train, seed)
        training_seconds.append(seconds)
    return logits, training_seconds


def _held_out_logits(data, held_out, fold_dir, train, seed):
    saved = fold_dir / HELD_OUT_FILE
    if saved.is_file():
        with np.load(saved, allow_pickle=False) as stored:
            if np.array_equal(stored["maps"], held_out):
                return stored["logits"], float(stored["training_seconds"])
    others = np.setdiff1d(np.arange(len(data)), held_out)
    carve = stratified_split(data.pattern_ids[others], fractions=(0.95, 0.05, 0.0), seed=seed)
    if len(carve.val) == 0:  # Keras would train without validating, and save no best model
        raise ValueError(f"{data.source}: too few maps for this audit: the teachers' validation maps (5% of each "
                         f"pattern's maps outside the fold) would be none; use more maps or fewer folds")
    start = time.time()
    model = train({"train": data.subset(others[carve.train]), "val": data.subset(others[carve.val])}, fold_dir)
    training_seconds = time.time() - start
    views = dihedral_views(data.maps[held_out])
    logits = np.stack([predict(model, view) for view in views], axis=1)
    with atomic_path(saved) as tmp:
        np.savez(tmp, maps=held_out, logits=logits, training_seconds=training_seconds)
    return logits, training_seconds


def suspect_flags(logits, labels):
    """(N, 8) bool: flags whose out-of-fold reading (logits, mean over views) contradicts
    the label confidently.

    Per defect, the model's self-confidence is its mean probability of the given flag over
    the maps labelled present, and over those labelled absent. A flag labelled present is
    suspect when the reading says absent (p < 0.5) with at least the mean confidence the
    model has in the maps labelled absent, and vice versa."""
    probability = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    labels = np.asarray(labels).astype(bool)
    suspect = np.zeros(labels.shape, bool)
    for defect in range(labels.shape[1]):
        p, present = probability[:, defect], labels[:, defect]
        if present.any() and (~present).any():
            absent_confidence = (1 - p[~present]).mean()
            present_confidence = p[present].mean()
            suspect[present, defect] = (p[present] < 0.5) & (1 - p[present] >= absent_confidence)
            suspect[~present, defect] = (p[~present] > 0.5) & (p[~present] >= present_confidence)
    return suspect


@dataclasses.dataclass(frozen=True)
class Suspect:
    """One map whose label the audit doubts.

    Attributes:
        index: the map's row in the source file.
        given: its label, as the file gives it ('C+EL').
        suspected: the pattern the out-of-fold reading names.
        label_probability: how likely the reading finds the given label (product over the
            8 defects of the probability of the given flag); the lower, the surer the doubt.
        suspect_defects: the defects whose flags are suspect.
        views_agreeing: of the 8 views, how many alone read the suspected pattern.
        probabilities: the reading's probability of each defect.
    """

    index: int
    given: str
    suspected: str
    label_probability: float
    suspect_defects: tuple
    views_agreeing: int
    probabilities: tuple


def find_suspects(view_logits, labels, defect_names):
    """The suspects among maps read out of fold, the surest doubt first.

    Args:
        view_logits: (N, views, 8) logits from `out_of_fold_logits`.
        labels: (N, 8) multi-hot labels of the same maps.
        defect_names: the 8 defects' names (`data.labels.DEFECT_ABBREVIATIONS`).
    """
    view_logits, labels = np.asarray(view_logits, np.float64), np.asarray(labels).astype(np.uint8)
    if view_logits.ndim != 3 or view_logits.shape[1] not in VIEWS or view_logits.shape[::2] != labels.shape:
        raise ValueError(f"need (N, 1 or 8 views, 8) logits for (N, 8) labels, got {view_logits.shape} and "
                         f"{labels.shape}")
    logits = view_logits.mean(axis=1)
    flags = suspect_flags(logits, labels)
    suspected = decode(logits, "nearest")
    suspected_ids = encode_patterns(suspected)
    view_ids = np.stack([encode_patterns(decode(view_logits[:, v], "nearest"))
                         for v in range(view_logits.shape[1])], axis=1)
    # log of the given flags' probability: log sigmoid(z) where present, log sigmoid(-z) where absent
    log_label_probability = -np.logaddexp(0, np.where(labels == 1, -logits, logits)).sum(axis=1)
    # A map whose doubted flags still decode to its given pattern is no suspect: the reading's
    # best pattern is the label.
    rows = np.flatnonzero(flags.any(axis=1) & (suspected_ids != encode_patterns(labels)))
    rows = rows[np.argsort(log_label_probability[rows], kind="stable")]
    return [Suspect(index=int(i), given=flags_name(labels[i]), suspected=flags_name(suspected[i]),
                    label_probability=float(np.exp(log_label_probability[i])),
                    suspect_defects=tuple(name for name, doubt in zip(defect_names, flags[i]) if doubt),
                    views_agreeing=int((view_ids[i] == suspected_ids[i]).sum()),
                    probabilities=tuple(round(float(p), 4) for p in 1 / (1 + np.exp(-logits[i]))))
            for i in rows]


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    """How an audit reads the maps: `folds` teachers of `arch`, each trained `epochs` epochs
    (peak learning rate `learning_rate`, rarer patterns weighed by `balance` as
    `train_teacher`'s) from `seed`, which also deals out the folds. `split_seed`: the seed of
    the train/val/test split each suspect is placed in (the training commands' `--seed`)."""

    folds: int = DEFAULT_FOLDS
    arch: str = OUR_TEACHER.arch
    epochs: int = 8
    learning_rate: float = OUR_TEACHER.learning_rate
    seed: int = 0
    split_seed: int = 0
    balance: float = 0.0

    def __post_init__(self):
        if self.folds < 2 or self.epochs < 1:
            raise ValueError(f"an audit needs at least 2 folds and 1 epoch, got {self.folds} and {self.epochs}")
        balancing_power(self.balance)


def audit_labels(data, run_dir, settings=AuditSettings(), verbose=0):
    """Audit the labels of a `WaferMaps`; return the report (JSON-ready: `Suspect`s with their
    split, and the settings). The folds' runs go under `run_dir` (an interrupted audit goes on)."""
    def train(parts, fold_dir):
        return train_teacher(parts, fold_dir, arch=settings.arch, epochs=settings.epochs,
                             learning_rate=settings.learning_rate, seed=settings.seed, balance=settings.balance,
                             resume=True, verbose=verbose)

    view_logits, training_seconds = out_of_fold_logits(data, run_dir, train, folds=settings.folds, seed=settings.seed)
    suspects = find_suspects(view_logits, data.labels, DEFECT_ABBREVIATIONS)
    split = stratified_split(data.pattern_ids, seed=settings.split_seed)
    split_of = {int(i): name for name in ("train", "val", "test") for i in getattr(split, name)}
    return {
        "data": data.source,
        "maps": len(data),
        "settings": dataclasses.asdict(settings),
        "out_of_fold_exact_match": exact_match(decode(view_logits.mean(axis=1)), data.labels),
        "suspects_per_split": {name: sum(split_of[s.index] == name for s in suspects)
                               for name in ("train", "val", "test")} | {"all": len(suspects)},
        "maps_per_split": {name: len(getattr(split, name)) for name in ("train", "val", "test")},
        "suspects": [{**dataclasses.asdict(s), "split": split_of[s.index]} for s in suspects],
        "fold_training_seconds": [round(seconds) for seconds in training_seconds],
        "versions": versions(),
    }


def write_audit(out, report, data, shown=30):
    """Write `<out>.json` (the report), `<out>.md` (its tables) and `<out>.png` (`plot_suspects`)."""
    out = Path(out)
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), audit_markdown(report))
    plot_suspects(out.with_suffix(".png"), report, data, shown)


def plot_suspects(out_path, report, data, shown=30):
    """Draw the `shown` surest suspects of `report`, with their given and suspected labels."""
    suspects = report["suspects"][:shown]
    if not suspects:  # a picture from an earlier audit would show maps this one does not doubt
        Path(out_path).unlink(missing_ok=True)
        return
    rows = [s["index"] for s in suspects]
    plot_mistakes(data.maps[rows], data.labels[rows], PATTERNS[[parse_pattern_name(s["suspected"]) for s in suspects]],
                  out_path, captions=[f"#{s['index']} ({s['split']}) p={s['label_probability']:.0e}\n"
                                      f"given {s['given']}\nsuspected {s['suspected']}" for s in suspects],
                  title=f"the {len(suspects)} surest of {len(report['suspects'])} suspect labels "
                        "(p: the out-of-fold reading's probability of the given label)")


def audit_markdown(report, listed=60):
    settings, suspects = report["settings"], report["suspects"]
    per_split = report["suspects_per_split"]
    lines = [f"# Label audit: {report['data']}", "",
             f"Every map read by a {settings['arch']} teacher that did not train on it ({settings['folds']} folds, "
             f"{settings['epochs']} epochs each"
             + (f", rarer patterns weighed more at balance {settings['balance']:g}" if settings.get("balance") else "")
             + (f", maps brought to 52x52 by `{report['resize']}`" if "resize" in report else "")
             + ", mean of 8 rotations/flips); a label is suspect where that reading "
             "contradicts a defect flag at least as confidently as the teacher is, on average, about the maps "
             "labelled the other way (confident learning), and names another pattern.", "",
             f"- Out-of-fold exact match against the given labels: {100 * report['out_of_fold_exact_match']:.2f}% "
             f"of {report['maps']:,} maps. Training the teachers took "
             f"{', '.join(f'{seconds:,}' for seconds in report['fold_training_seconds'])} s.",
             f"- Suspects: {per_split['all']:,} ({100 * per_split['all'] / report['maps']:.2f}%); in the split of "
             f"seed {settings['split_seed']}: "
             + ", ".join(f"{name} {per_split.get(name, 0):,} of {count:,}"
                         for name, count in report["maps_per_split"].items()) + ".", "",
             "Most frequent doubts:", "", "| given | suspected | maps |", "| --- | --- | ---: |"]
    pairs = collections.Counter((s["given"], s["suspected"]) for s in suspects)
    lines += [f"| {given} | {suspected} | {count} |" for (given, suspected), count in pairs.most_common(15)]
    lines += ["", f"The {min(listed, len(suspects))} surest suspects (all {len(suspects)} are in the .json; "
              "index: the map's row in the file):", "",
              "| index | split | given | suspected | p(given label) | views reading it so | doubted flags |",
              "| ---: | --- | --- | --- | ---: | ---: | --- |"]
    lines += [f"| {s['index']} | {s['split']} | {s['given']} | {s['suspected']} | {s['label_probability']:.1e} | "
              f"{s['views_agreeing']}/8 | {', '.join(s['suspect_defects'])} |" for s in suspects[:listed]]
    return "\n".join(lines) + "\n"
