"""Which labels of the real dev set are probably wrong, and every shipped model on the test maps
the audit does not suspect.

    python -m benchmarks.label_audit            # about 50 min on 2 cores; run again to go on
    python -m benchmarks.label_audit --quick    # 1,520 synthetic maps, 1 epoch: figures mean nothing
    python -m benchmarks.label_audit --audit benchmarks/results/label_audit.json   # a model shipped: read them again

Audits the MixedWM38 dev set's labels with `kd_keras.label_audit` as `python -m
kd_keras.audit_labels --data <dev set> --out runs/label-audit` does (4 vgg7 teachers, 8 epochs
each, every map read by the one that never trained on it). Then each shipped model reads the
test split every headline figure uses (seed 0), int8, in TFLite Micro, as its card says (views,
thresholds): the figure on every test map against the original labels, which stays the headline
and is never edited, and the figure on the test maps the audit does not suspect.

Writes benchmarks/results/label_audit.{json,md,png}: the audit's report (every suspect with its
row in the file, its split, given and suspected label and the evidence; the surest drawn), and
the shipped models' two figures. The .json is also an audit report that the training commands
read: `--drop-suspects benchmarks/results/label_audit.json` trains without the suspects. The
folds' runs stay in --runs, so an interrupted benchmark goes on where it stopped. `--audit`
takes the audit from a report this benchmark wrote instead (its suspects and figures kept as
they are), and reads the shipped models again: after a model ships, without the folds' runs.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import DEFAULT_DATA, REPO, repo_relative, results_file, write_results
from kd_keras.data import generate_wafer_maps, load_wafer_maps, read_suspects, stratified_split
from kd_keras.errors import FileFormatError
from kd_keras.fileio import read_json
from kd_keras.label_audit import AuditSettings, audit_labels, audit_markdown, plot_suspects
from tflite.export import load_converted

RESULTS = REPO / "benchmarks" / "results" / "label_audit"
SHIPPED = sorted(p.name for p in (REPO / "models").iterdir() if p.is_dir())
# The models whose headline figure is on this test split; wm811k-* are judged on WM-811K's maps.
MIXEDWM38_MODELS = [name for name in SHIPPED if not name.startswith("wm811k")]
QUICK = AuditSettings(folds=2, epochs=1)


def shipped_model_figures(model_dirs, data, suspects, split_seed=0):
    """{model: figures} of each model directory on `data`'s test split (seed `split_seed`), int8 in
    TFLite Micro: `all` on every test map, `clean` on those whose row is not in `suspects`."""
    test = stratified_split(data.pattern_ids, seed=split_seed).test
    clean = ~np.isin(test, suspects)
    figures = {}
    for model_dir in model_dirs:
        card, int8 = load_converted(model_dir)
        views = f"{card.views} view{'s' * (card.views > 1)}"
        print(f"{model_dir.name}: reading {len(test):,} test maps in TFLite Micro ({views})", flush=True)
        outputs = int8.outputs(data.maps[test], card.views)
        headline = next(iter(card.task.card_figures))
        figures[model_dir.name] = {
            "figure": headline, "test_maps": len(test), "clean_test_maps": int(clean.sum()),
            "all": card.task.figures(outputs, data.subset(test))[headline],
            "clean": card.task.figures({kind: logits[clean] for kind, logits in outputs.items()},
                                       data.subset(test[clean]))[headline]}
    return figures


def markdown(results):
    lines = [audit_markdown(results), "## The shipped models on the audit-clean test maps", "",
             f"int8 in TFLite Micro, the seed-{results['settings']['split_seed']} test split of "
             f"{results['data']}; 'all test maps' is the headline figure on the original labels.", "",
             "| model | figure | all test maps | test maps the audit does not suspect | suspects left out |",
             "| --- | --- | ---: | ---: | ---: |"]
    for name, row in results["shipped_models"].items():
        lines.append(f"| {name} | int8 {row['figure'].replace('_', ' ')} | {100 * row['all']:.2f}% | "
                     f"{100 * row['clean']:.2f}% | {row['test_maps'] - row['clean_test_maps']:,} of "
                     f"{row['test_maps']:,} |")
    seconds = results["wall_seconds"]
    audit = ("the audit taken from its report" if "--audit" in results["command"] else
             f"{seconds['audit']:,} s for the audit, whose finished folds are reused")
    lines += ["", f"Reproduce: `{results['command']}` (here: {audit}, and {seconds['shipped_models']:,} s for the "
              "models)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "label-audit",
                        help="the audit's directory: one training run per fold")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix")
    parser.add_argument("--models", nargs="*", choices=SHIPPED, default=MIXEDWM38_MODELS,
                        help="shipped models to read the test maps with (default: all but wm811k-*, whose headline "
                             "is on WM-811K maps)")
    parser.add_argument("--audit", type=Path, default=None, metavar="AUDIT_JSON",
                        help="take the audit from this benchmark's report (its .json) instead of running it, "
                             "and read the shipped models again")
    parser.add_argument("--quick", action="store_true", help="1,520 synthetic maps, 2 folds of 1 epoch")
    args = parser.parse_args(argv)
    if not args.quick and not args.data.is_file():
        parser.error(f"no dev set at {args.data}")
    data = generate_wafer_maps(1520, seed=0) if args.quick else load_wafer_maps(args.data)

    start = time.time()
    if args.audit is None:
        settings = QUICK if args.quick else AuditSettings()
        report = audit_labels(data, args.runs, settings, verbose=2)
    else:
        try:
            read_suspects(args.audit, data)  # an audit of these maps and labels, or a clear refusal
            report = {key: value for key, value in read_json(args.audit).items()
                      if key not in ("command", "shipped_models", "wall_seconds")}
            settings = AuditSettings(**report["settings"])
        except (OSError, FileFormatError, KeyError, TypeError) as error:
            parser.error(f"--audit: {args.audit} is no report of this benchmark: {error}")
    audit_seconds = round(time.time() - start)
    suspects = np.array([s["index"] for s in report["suspects"]], np.int64)
    start = time.time()
    figures = shipped_model_figures([REPO / "models" / name for name in args.models], data, suspects,
                                    settings.split_seed)
    report["data"] = "1,520 synthetic maps (seed 0)" if args.quick else repo_relative(args.data)
    # The audit's report, as the audit command writes it (training commands read its suspects with
    # --drop-suspects), with the shipped models' figures.
    command = "python -m benchmarks.label_audit" + " --quick" * args.quick + (
        f" --audit {repo_relative(args.audit)}" if args.audit is not None else "")
    results = {**report, "command": command,
               "shipped_models": figures,
               "wall_seconds": {"audit": audit_seconds, "shipped_models": round(time.time() - start)}}
    write_results(args.out, results, markdown(results))
    plot_suspects(results_file(args.out, ".png"), report, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
