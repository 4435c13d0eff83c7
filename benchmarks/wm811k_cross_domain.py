"""Trained on X, tested on Y: how int8 models in TFLite Micro read real fab maps (WM-811K) and
MixedWM38 maps none of them trained on.

    python -m benchmarks.wm811k_cross_domain                        # every shipped classifier
    python -m benchmarks.wm811k_cross_domain --only wm811k-21kb     # these rows again, the others kept
    python -m benchmarks.wm811k_cross_domain --no-shipped --model DIR WM-811K --out /tmp/cross

Each model (a directory written by `python -m tflite.convert`) reads:
- the validation and test splits of `../shared/data/wm811k_dev.npz` (seeded 80/10/10, stratified
  by class; seed 0, as `--data` runs split it), brought to 52x52 by each `--resize` method. Its
  thresholded reading is a class (`none` when no defect is found; a mixture is wrong); the
  figures are accuracy and macro F1 over the 9 classes on the natural distribution, macro F1
  and per-class recall class-balanced (`kd_keras.evaluation.class_report`). The resize method
  is chosen per model on validation (balanced macro F1); test figures are those of that method.
- the test split of `../shared/data/mixedwm38_dev.npz` (seed 0): exact match (all 8 flags right).

Writes `benchmarks/results/wm811k_cross_domain.{json,md}`.
"""

import argparse
import sys
import time
from pathlib import Path

from benchmarks import DEFAULT_DATA, DEFAULT_FAB_DATA, REPO, repo_relative, results_file, write_results
from kd_keras.data import RESIZE_METHODS, load_splits
from kd_keras.data.wm811k import CLASS_NAMES
from kd_keras.fileio import read_json
from kd_keras.rundir import versions
from tflite.card import CARD_FILE, ModelCard
from tflite.export import load_converted
from tflite.harness import fab_figures

SEED = 0
# The shipped classifiers and what each was trained on.
SHIPPED = {"kd-21kb": "MixedWM38", "kd-248kb": "MixedWM38", "paper1-net1": "MixedWM38", "paper1-net2": "MixedWM38",
           "wm811k-21kb": "WM-811K", "wm811k-248kb": "WM-811K",
           "both-21kb": "MixedWM38 + WM-811K", "both-248kb": "MixedWM38 + WM-811K"}


def measure(model_dir, fab_splits, mixed_test):
    """{resize: {split: fab figures}}, the chosen resize, and the MixedWM38 test exact match of
    the model in `model_dir`; `fab_splits`: {resize: load_splits(...)} of the WM-811K file."""
    card, int8 = load_converted(model_dir)
    by_resize = {method: {split: fab_figures(int8, parts[split], card.views) for split in ("val", "test")}
                 for method, parts in fab_splits.items()}
    chosen = max(by_resize, key=lambda method: by_resize[method]["val"]["balanced"]["macro_f1"])
    mixed = None
    if mixed_test is not None:
        mixed = int8.task.figures(int8.outputs(mixed_test.maps, card.views), mixed_test)["exact_match"]
    return {"flash_bytes": card.flash_bytes, "arena_bytes": card.arena_bytes, "views": card.views,
            "card_resize": card.input.resize, "by_resize": by_resize, "chosen_resize": chosen,
            "test": by_resize[chosen]["test"], "mixedwm38_test_exact_match": mixed}


def markdown(results):
    """The cross-domain table and the per-class recall table."""
    lines = ["| model | trained on | flash | arena | resize (chosen on val) | WM-811K accuracy | WM-811K macro F1 | "
             "WM-811K macro F1, balanced | MixedWM38 exact match |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for name, row in results["models"].items():
        test = row["test"]
        mixed = row["mixedwm38_test_exact_match"]
        lines.append(f"| {name} | {row['trained_on']} | {row['flash_bytes']:,} | {row['arena_bytes']:,} | "
                     f"{row['chosen_resize']} | {100 * test['natural']['accuracy']:.2f}% | "
                     f"{test['natural']['macro_f1']:.3f} | {test['balanced']['macro_f1']:.3f} | "
                     + (f"{100 * mixed:.2f}% |" if mixed is not None else "- |"))
    lines += ["", "Recall per class on the WM-811K test split (the chosen resize):", "",
              "| model | " + " | ".join(CLASS_NAMES) + " |", "| --- |" + " ---: |" * len(CLASS_NAMES)]
    for name, row in results["models"].items():
        recalls = row["test"]["natural"]["per_class"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * recalls[c]['recall']:.1f}%" for c in CLASS_NAMES) + " |")
    commands = ", ".join(f"`{command.strip()}`" for command in dict.fromkeys(
        row["command"] for row in results["models"].values()))
    lines += ["", f"WM-811K: {results['fab_data']}, test {results['fab_test_maps']:,} maps; MixedWM38: "
              f"{results['mixedwm38_data']}, test {results['mixedwm38_test_maps']:,} maps. int8 in TFLite Micro. "
              f"Made by {commands}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fab-data", type=Path, default=DEFAULT_FAB_DATA, help="WM-811K-layout npz")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MixedWM38-layout npz")
    parser.add_argument("--model", nargs=2, action="append", default=[], metavar=("DIR", "TRAINED_ON"),
                        help="a converted model directory and what it was trained on (repeatable)")
    parser.add_argument("--no-shipped", action="store_true", help="only the --model directories")
    parser.add_argument("--only", nargs="+", choices=SHIPPED, default=None,
                        help="measure only these shipped models; the other rows of the results file are kept")
    parser.add_argument("--resize", nargs="+", choices=RESIZE_METHODS, default=list(RESIZE_METHODS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "wm811k_cross_domain")
    args = parser.parse_args(argv)

    start = time.time()
    command = "python -m benchmarks.wm811k_cross_domain " + " ".join(argv if argv is not None else sys.argv[1:])
    shipped = [] if args.no_shipped else [name for name in SHIPPED if (REPO / "models" / name).is_dir()]
    models = [(REPO / "models" / name, SHIPPED[name]) for name in args.only or shipped]
    models += [(Path(directory), trained_on) for directory, trained_on in args.model]
    fab_splits = {method: load_splits(args.fab_data, seed=SEED, resize=method) for method in args.resize}
    mixed_test = load_splits(args.data, seed=SEED)["test"]
    results = {"fab_data": repo_relative(args.fab_data), "mixedwm38_data": repo_relative(args.data), "seed": SEED,
               "fab_test_maps": len(fab_splits[args.resize[0]]["test"]), "mixedwm38_test_maps": len(mixed_test),
               "models": {}}
    if args.only and results_file(args.out, ".json").is_file():  # rows measured before, by the command they name
        results["models"] = read_json(results_file(args.out, ".json"))["models"]
        # Their footprint as the card says now: strip_unread changes a model's bytes, not its outputs.
        for row in results["models"].values():
            card_path = REPO / row["model_dir"] / CARD_FILE
            if card_path.is_file():
                card = ModelCard.read(card_path)
                row.update(flash_bytes=card.flash_bytes, arena_bytes=card.arena_bytes)
    for model_dir, trained_on in models:
        began = time.time()
        row = measure(model_dir, fab_splits, mixed_test)
        results["models"][model_dir.name] = {"model_dir": repo_relative(model_dir), "trained_on": trained_on,
                                             "command": command, "seconds": round(time.time() - began), **row}
        test = row["test"]
        print(f"{model_dir.name} ({trained_on}): WM-811K test accuracy {100 * test['natural']['accuracy']:.2f}%, "
              f"macro F1 {test['natural']['macro_f1']:.3f} (balanced {test['balanced']['macro_f1']:.3f}, "
              f"resize {row['chosen_resize']}); MixedWM38 exact match "
              f"{100 * row['mixedwm38_test_exact_match']:.2f}% [{time.time() - began:.0f} s]", flush=True)
    results.update(command=command, wall_seconds=time.time() - start, versions=versions())
    write_results(args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
