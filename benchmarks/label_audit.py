"""Which labels of a real dev set are probably wrong, and every shipped model on the test maps
the audit does not suspect.

    python -m benchmarks.label_audit            # MixedWM38: about 50 min on 2 cores; run again to go on
    python -m benchmarks.label_audit --data ../shared/data/wm811k_dev.npz   # WM-811K's fab maps
    python -m benchmarks.label_audit --quick    # 1,520 synthetic maps, 1 epoch: figures mean nothing
    python -m benchmarks.label_audit --audit benchmarks/results/label_audit.json   # a model shipped: read them again

Audits the MixedWM38 dev set's labels with `kd_keras.label_audit` as `python -m
kd_keras.audit_labels --data <dev set> --out runs/label-audit` does (4 vgg7 teachers, 8 epochs
each, every map read by the one that never trained on it). Then each shipped model reads the
test split every headline figure uses (seed 0), int8, in TFLite Micro, as its card says (views,
thresholds): the figure on every test map against the original labels, which stays the headline
and is never edited, and the figure on the test maps the audit does not suspect.

A WM-811K-layout --data (one class per map, many grids) is audited as its teachers are trained:
maps brought to 52x52 by `max`, rarer classes weighed more (balance 0.5); the models read are
those that read fab maps (wm811k-*, both-*), each on maps resized as its card says, and their
figures are WM-811K's: class-balanced macro F1 (the headline) and accuracy on the natural
distribution. Its results default to benchmarks/results/label_audit_wm811k.*.

Writes benchmarks/results/label_audit.{json,md,png}: the audit's report (every suspect with its
row in the file, its split, given and suspected label and the evidence; the surest drawn), and
the shipped models' two figures. The .json is also an audit report that the training commands
read: `--drop-suspects benchmarks/results/label_audit.json` trains without the suspects. The
folds' runs stay in --runs, so an interrupted benchmark goes on where it stopped. `--audit`
takes the audit from a report this benchmark wrote instead (its suspects and figures kept as
they are), and reads the shipped models again: after a model ships, without the folds' runs.
"""

import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import DEFAULT_DATA, REPO, repo_relative, results_file, write_results
from kd_keras.data import (
    DEFAULT_RESIZE, file_layout, generate_wafer_maps, load_wafer_maps, read_suspects, stratified_split,
)
from kd_keras.errors import FileFormatError
from kd_keras.evaluation import fab_class_figures
from kd_keras.fileio import read_json
from kd_keras.label_audit import AuditSettings, audit_labels, audit_markdown, plot_suspects
from tflite.export import load_converted

RESULTS = REPO / "benchmarks" / "results" / "label_audit"
SHIPPED = sorted(p.name for p in (REPO / "models").iterdir() if p.is_dir())
# The models whose headline figure is on MixedWM38's test split; wm811k-* are judged on WM-811K's maps.
MIXEDWM38_MODELS = [name for name in SHIPPED if not name.startswith("wm811k")]
FAB_MODELS = [name for name in SHIPPED if name.startswith(("wm811k", "both"))]  # trained to read fab maps
QUICK = AuditSettings(folds=2, epochs=1)
# WM-811K's teachers read its rare classes best with them weighed more (benchmarks.wm811k_teacher_balance),
# and on maps brought to 52x52 by max (benchmarks.wm811k_cross_domain).
FAB_BALANCE, FAB_RESIZE = 0.5, "max"


def headline_figures(card, outputs, data, fab):
    """{figure: value} of a model's outputs on `data`: its card's headline figure, or for
    WM-811K's maps (`fab`) their class-balanced macro F1 and natural accuracy."""
    if fab:
        figures = fab_class_figures(card.task.predicted_patterns(outputs), data.labels)
        return {"balanced_macro_f1": figures["balanced"]["macro_f1"], "accuracy": figures["natural"]["accuracy"]}
    headline = next(iter(card.task.card_figures))
    return {headline: card.task.figures(outputs, data)[headline]}


def shipped_model_figures(model_dirs, maps_resized, suspects, split_seed=0, fab=False):
    """{model: figures} of each model directory on the test split (seed `split_seed`) of the maps
    `maps_resized(resize)` gives (a `WaferMaps`, brought to 52x52 as the model's card says),
    int8 in TFLite Micro: each of `headline_figures` on every test map (`all`) and on those whose
    row is not in `suspects` (`clean`)."""
    figures = {}
    for model_dir in model_dirs:
        card, int8 = load_converted(model_dir)
        data = maps_resized(card.input.resize)
        test = stratified_split(data.pattern_ids, seed=split_seed).test
        clean = ~np.isin(test, suspects)
        views = f"{card.views} view{'s' * (card.views > 1)}"
        print(f"{model_dir.name}: reading {len(test):,} test maps in TFLite Micro ({views})", flush=True)
        outputs = int8.outputs(data.maps[test], card.views)
        every = headline_figures(card, outputs, data.subset(test), fab)
        unsuspected = headline_figures(card, {kind: logits[clean] for kind, logits in outputs.items()},
                                       data.subset(test[clean]), fab)
        figures[model_dir.name] = {
            "test_maps": len(test), "clean_test_maps": int(clean.sum()),
            "figures": {name: {"all": every[name], "clean": unsuspected[name]} for name in every}}
    return figures


def figure_text(name, value):
    """A figure as the tables show it: an F1 score to 3 places, anything else a percentage."""
    return f"{value:.3f}" if "f1" in name else f"{100 * value:.2f}%"


def markdown(results):
    lines = [audit_markdown(results), "## The shipped models on the audit-clean test maps", "",
             f"int8 in TFLite Micro, the seed-{results['settings']['split_seed']} test split of "
             f"{results['data']}; 'all test maps' is the headline figure on the original labels.", "",
             "| model | figure | all test maps | test maps the audit does not suspect | suspects left out |",
             "| --- | --- | ---: | ---: | ---: |"]
    for name, row in results["shipped_models"].items():
        for figure, value in row["figures"].items():
            lines.append(f"| {name} | int8 {figure.replace('_', ' ')} | {figure_text(figure, value['all'])} | "
                         f"{figure_text(figure, value['clean'])} | {row['test_maps'] - row['clean_test_maps']:,} of "
                         f"{row['test_maps']:,} |")
    seconds = results["wall_seconds"]
    audit = ("the audit taken from its report" if "--audit" in results["command"] else
             f"{seconds['audit']:,} s for the audit, whose finished folds are reused")
    lines += ["", f"Reproduce: `{results['command']}` (here: {audit}, and {seconds['shipped_models']:,} s for the "
              "models)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help=f"labelled maps, MixedWM38 or WM-811K layout (default {repo_relative(DEFAULT_DATA)})")
    parser.add_argument("--runs", type=Path, default=None,
                        help="the audit's directory: one training run per fold (default runs/label-audit, "
                             "runs/label-audit-wm811k for WM-811K's maps)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results path without suffix (default {repo_relative(RESULTS)}, with _wm811k for "
                             "WM-811K's maps)")
    parser.add_argument("--models", nargs="*", choices=SHIPPED, default=None,
                        help="shipped models to read the test maps with (default: for MixedWM38 all but wm811k-*, "
                             "whose headline is on WM-811K maps; for WM-811K those trained on its maps)")
    parser.add_argument("--audit", type=Path, default=None, metavar="AUDIT_JSON",
                        help="take the audit from this benchmark's report (its .json) instead of running it, "
                             "and read the shipped models again")
    parser.add_argument("--quick", action="store_true",
                        help="2 folds of 1 epoch, on 1,520 synthetic maps unless --data is given")
    args = parser.parse_args(argv)
    data_path = args.data if args.data is not None or args.quick else DEFAULT_DATA
    if data_path is not None and not data_path.is_file():
        parser.error(f"no dev set at {data_path}")
    fab = data_path is not None and file_layout(data_path) == "wm811k"
    resize = FAB_RESIZE if fab else DEFAULT_RESIZE
    data = generate_wafer_maps(1520, seed=0) if data_path is None else load_wafer_maps(data_path, resize)
    suffix = "-wm811k" if fab else ""
    runs = args.runs or REPO / "runs" / f"label-audit{suffix}"
    out = args.out or RESULTS.with_name(RESULTS.name + suffix.replace("-", "_"))
    models = args.models if args.models is not None else FAB_MODELS if fab else MIXEDWM38_MODELS

    start = time.time()
    if args.audit is None:
        settings = dataclasses.replace(QUICK if args.quick else AuditSettings(), balance=FAB_BALANCE if fab else 0.0)
        report = audit_labels(data, runs, settings, verbose=2)
    else:
        try:
            read_suspects(args.audit, data)  # an audit of these maps and labels, or a clear refusal
            report = {key: value for key, value in read_json(args.audit).items()
                      if key not in ("command", "shipped_models", "wall_seconds")}
            settings = AuditSettings(**report["settings"])
        except (OSError, FileFormatError, KeyError, TypeError) as error:
            parser.error(f"--audit: {args.audit} is no report of this benchmark: {error}")
    audit_seconds = round(time.time() - start)

    @functools.cache
    def maps_resized(model_resize):  # a fab model reads maps brought to 52x52 as its card says
        return data if model_resize == resize or not fab else load_wafer_maps(data_path, model_resize)

    suspects = np.array([s["index"] for s in report["suspects"]], np.int64)
    start = time.time()
    figures = shipped_model_figures([REPO / "models" / name for name in models], maps_resized, suspects,
                                    settings.split_seed, fab)
    report["data"] = "1,520 synthetic maps (seed 0)" if data_path is None else repo_relative(data_path)
    if fab:
        report["resize"] = resize
    # The audit's report, as the audit command writes it (training commands read its suspects with
    # --drop-suspects), with the shipped models' figures.
    command = ("python -m benchmarks.label_audit" + " --quick" * args.quick
               + (f" --data {repo_relative(args.data)}" if args.data is not None else "")
               + (f" --audit {repo_relative(args.audit)}" if args.audit is not None else ""))
    results = {**report, "command": command,
               "shipped_models": figures,
               "wall_seconds": {"audit": audit_seconds, "shipped_models": round(time.time() - start)}}
    write_results(out, results, markdown(results))
    plot_suspects(results_file(out, ".png"), report, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
