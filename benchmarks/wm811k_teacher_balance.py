"""Does weighing WM-811K's rare classes more in the loss make a better teacher for real fab maps?

    python -m benchmarks.wm811k_teacher_balance                      # balance 0 and 0.5, seed 0
    python -m benchmarks.wm811k_teacher_balance --balance 0 0.5 1 --seeds 0 1
    python -m benchmarks.wm811k_teacher_balance --balance 0.5 --epochs 40 --init runs/mixedwm38-teacher
    python -m benchmarks.wm811k_teacher_balance --balance 0.5 --without-suspects runs/wm811k-audit/label_audit.json
    python -m benchmarks.wm811k_teacher_balance --quick --fab-data fab.npz --runs /tmp/r --out /tmp/res/balance

The teacher of `benchmarks.wm811k_per_budget` (`kd_keras.recipes.OUR_TEACHER`: vgg7, 20 epochs,
rotations/flips; the seeded 80/10/10 split of `--fab-data`, maps brought to 52x52 by max),
trained once for each `--balance` power and initial seed (`python -m kd_keras.train_teacher
--balance P`: a map's loss weighs its class's share of the training maps to the power -P; 0 is
the shipped teacher's recipe; `--epochs` and `--init`, a teacher whose weights training starts
from, change the recipe and name the runs). Each is read at logit 0 on the validation and test maps, from one
view and as the mean of its 8 rotations/flips (what its students learn from): accuracy, macro F1
and recall per class, on the natural class distribution and class-balanced (issue 18's figure,
where answering `none` everywhere scores no better than any other single answer). With several
`--seeds`, each balance's teachers are also read as one ensemble (the mean of their logits, as
`python -m kd_keras.ensemble` makes one teacher of them), and the seeds' spread is given.
With `--without-suspects`, a label audit of the file (`python -m kd_keras.audit_labels`), each
teacher is trained a second time without the training maps the audit suspects (`train_teacher
--drop-suspects`), and every teacher is also read on the test maps the audit does not suspect.

Each teacher's run directory (`--runs`, default runs/wm811k-balance/) is resumed when
unfinished and reused when finished. Writes `benchmarks/results/wm811k_teacher_balance.{json,md}`.
`--quick`: one epoch per teacher; its figures mean nothing.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import DEFAULT_FAB_DATA, REPO, repo_relative, spread, write_results
from kd_keras.cli import argument_type, positive_int
from kd_keras.data import CLASS_NAMES, VIEWS, load_wafer_maps, read_suspects, split_data, stratified_split
from kd_keras.data.pipeline import balancing_power
from kd_keras.errors import FileFormatError
from kd_keras.evaluation import fab_class_figures
from kd_keras.jobs import TeacherJob, run_teacher_job, teacher_file, teacher_name
from kd_keras.recipes import OUR_TEACHER
from kd_keras.rundir import versions
from kd_keras.tasks import CLASSIFY
from kd_keras.training import TEACHER_FILE, load_model, read_training_state

SPLIT_SEED = 0  # the split of benchmarks.wm811k_per_budget
RESIZE = "max"  # its resize, chosen there on validation
SPLITS = ("val", "test")


def teacher_outputs(model_path, parts, clean=None):
    """{"<split>_views<V>": the model's outputs} for one view and the mean of all 8, on val and test;
    where `clean` (a mask of the test maps) is given, also "test_clean_views<V>", on those maps."""
    model = load_model(model_path)
    outputs = {f"{split}_views{views}": CLASSIFY.predict(model, parts[split].maps, views)
               for split in SPLITS for views in (1, VIEWS[-1])}
    if clean is not None:
        outputs |= {f"test_clean_views{views}": {kind: logits[clean] for kind, logits in
                                                 outputs[f"test_views{views}"].items()} for views in (1, VIEWS[-1])}
    return outputs


def readings(outputs, parts):
    """{"<split>_views<V>": fab_class_figures} of `teacher_outputs`."""
    return {key: fab_class_figures(CLASSIFY.predicted_patterns(split_outputs), parts[key.rsplit("_", 1)[0]].labels)
            for key, split_outputs in outputs.items()}


def ensemble_outputs(members):
    """The outputs of the ensemble of several teachers' `teacher_outputs`: their logits' mean, as
    `python -m kd_keras.ensemble` makes it (for a view count, the mean over views and members alike)."""
    return {key: {kind: np.mean([outputs[key][kind] for outputs in members], axis=0) for kind in members[0][key]}
            for key in members[0]}


def seed_label(row):
    """A teacher's seed, or the seeds of an ensemble's teachers."""
    return f"ensemble of {', '.join(map(str, row['seeds']))}" if "seeds" in row else row["seed"]


def row_cells(row, audited):
    """A teacher's first cells in the tables: balance, seed and, after an audit, its training maps."""
    cells = [f"{row['balance']:g}", f"{seed_label(row)}"]
    return " | ".join(cells + (["without suspects" if row["without_suspects"] else "all"] if audited else []))


def markdown(results):
    views = VIEWS[-1]
    init = results.get("init")  # not in results from before --init
    start = "" if init is None else f", starting from the weights of {init}"
    recipe = f"{OUR_TEACHER.arch}, {results['epochs']} epochs{start}"
    audit = results.get("audit")  # not in results from before --without-suspects
    audited = audit is not None
    lines = [f"# WM-811K teacher with rare classes weighed more ({recipe})", "",
             f"Data: {results['data']}, seeded 80/10/10 split (seed {SPLIT_SEED}), maps brought to 52x52 by "
             f"{RESIZE}. Float Keras, logit 0. Balance P: each training map's loss weighs its class's share to "
             f"the power -P (0: the shipped teacher's recipe). Reproduce: `{results['command']}`."]
    if audited:
        lines += ["", f"Label audit: {audit}. Training maps 'without suspects': the training split less the "
                  f"{results['suspects_in_training']:,} maps the audit suspects there. The last column reads the "
                  f"{results['clean_test_maps']:,} test maps the audit does not suspect (of "
                  f"{results['test_maps']:,}); every other figure is on the original labels of every map."]
    lines += ["", "| balance | seed | " + "training maps | " * audited + f"best epoch | val macro F1, balanced: "
              f"1 view | {views} views | test accuracy ({views} views) | test macro F1 | test macro F1, balanced: "
              f"1 view | {views} views |" + " on the test maps the audit does not suspect |" * audited,
              "| ---: | ---: | " + "--- | " * audited + " | ".join("---:" for _ in range(7 + audited)) + " |"]
    ensembles = results.get("ensembles", {})  # not in results from before they were read
    rows = [*results["teachers"].values(), *ensembles.values()]
    for row in rows:
        figures = row["figures"]
        test = figures[f"test_views{views}"]
        clean = f" {figures[f'test_clean_views{views}']['balanced']['macro_f1']:.3f} |" if audited else ""
        lines.append(f"| {row_cells(row, audited)} | {row.get('best_epoch', '-')} | "
                     f"{figures['val_views1']['balanced']['macro_f1']:.3f} | "
                     f"{figures[f'val_views{views}']['balanced']['macro_f1']:.3f} | "
                     f"{100 * test['natural']['accuracy']:.2f}% | {test['natural']['macro_f1']:.3f} | "
                     f"{figures['test_views1']['balanced']['macro_f1']:.3f} | {test['balanced']['macro_f1']:.3f} |"
                     + clean)
    spreads = results.get("seed_spread", {})
    if spreads:
        lines += ["", f"The seeds' spread of the test macro F1, class-balanced, {views} views: " + "; ".join(
            f"balance {teachers}: {spread['mean']:.3f} ({spread['min']:.3f}-{spread['max']:.3f})"
            for teachers, spread in spreads.items()) + ". An ensemble is the mean of its teachers' logits "
            "(`python -m kd_keras.ensemble`)."]
    lines += ["", f"Recall per class on the test maps ({views} views):", "",
              "| balance | seed | " + "training maps | " * audited + " | ".join(CLASS_NAMES) + " |",
              "| ---: | ---: | " + "--- | " * audited + " | ".join("---:" for _ in CLASS_NAMES) + " |"]
    for row in rows:
        per_class = row["figures"][f"test_views{views}"]["natural"]["per_class"]
        lines.append(f"| {row_cells(row, audited)} | "
                     + " | ".join(f"{100 * per_class[name]['recall']:.1f}%" for name in CLASS_NAMES) + " |")
    best = max(rows, key=lambda row: row["figures"][f"val_views{views}"]["balanced"]["macro_f1"])
    confusion = best["figures"][f"test_views{views}"]["natural"]["confusion"]
    dropped = ", without the suspects" if best.get("without_suspects") else ""
    lines += ["", f"Where the teacher best on validation (balance {best['balance']:g}, seed {seed_label(best)}"
              f"{dropped}) errs: its test maps by class (rows) and by what it reads ({views} views; a mixture of "
              "defects is wrong):", "",
              "| class \\ read | " + " | ".join(CLASS_NAMES) + " | mixture |",
              "| --- | " + " | ".join("---:" for _ in range(len(CLASS_NAMES) + 1)) + " |"]
    lines += [f"| {name} | " + " | ".join(f"{count:,}" for count in counts) + " |"
              for name, counts in zip(CLASS_NAMES, confusion)]
    lines += ["", "Wall time: " + ", ".join(f"{name} {seconds} s" for name, seconds in results["wall_seconds"].items())
              + " (a teacher found finished counts the seconds to read it)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fab-data", type=Path, default=DEFAULT_FAB_DATA, help="WM-811K-layout npz")
    parser.add_argument("--balance", type=argument_type(balancing_power), nargs="+", default=[0.0, 0.5], metavar="P",
                        help="balancing powers, one teacher each (default 0 0.5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="initial seeds, one teacher each (default 0)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "wm811k-balance",
                        help="where the teachers' run directories go")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "wm811k_teacher_balance",
                        help="results path without suffix (.json and .md are written)")
    parser.add_argument("--epochs", type=positive_int, default=OUR_TEACHER.epochs,
                        help=f"each teacher's (default {OUR_TEACHER.epochs}, the recipe's)")
    parser.add_argument("--init", type=argument_type(teacher_file), default=None, metavar="TEACHER",
                        help="start each teacher from this one's weights (a run directory or .keras file), e.g. "
                             "a MixedWM38 teacher's")
    parser.add_argument("--without-suspects", type=Path, default=None, metavar="AUDIT_JSON",
                        help="a label audit of --fab-data (python -m kd_keras.audit_labels): each teacher is trained "
                             "again without the training maps it suspects, and every teacher is also read on the test "
                             "maps it does not suspect")
    parser.add_argument("--quick", action="store_true", help="one epoch per teacher: a check that it runs")
    args = parser.parse_args(argv)
    if not args.fab_data.is_file():
        parser.error(f"no WM-811K-layout file at {args.fab_data}")
    powers = args.balance
    epochs = 1 if args.quick else args.epochs
    # A recipe other than the shipped teacher's gets run directories of its own.
    recipe = ("" if args.epochs == OUR_TEACHER.epochs else f"-epochs{args.epochs}") + (
        "" if args.init is None else f"-init-{teacher_name(args.init)}")
    # Paths as the command line would give them, relative to here: the runs record them.
    fab_data, runs = Path(os.path.relpath(args.fab_data)), Path(os.path.relpath(args.runs))
    data = load_wafer_maps(fab_data, RESIZE)
    parts = split_data(data, seed=SPLIT_SEED)
    clean, audit, audited = None, None, {}
    if args.without_suspects is not None:
        try:
            suspects = read_suspects(args.without_suspects, data)
        except (OSError, FileFormatError) as error:
            parser.error(f"--without-suspects: {error}")
        audit = Path(os.path.relpath(args.without_suspects))
        rows = stratified_split(data.pattern_ids, seed=SPLIT_SEED)  # the rows split_data puts in each split
        clean = ~np.isin(rows.test, suspects)
        parts["test_clean"] = data.subset(rows.test[clean])
        audited = {"audit": repo_relative(args.without_suspects), "test_maps": len(rows.test),
                   "clean_test_maps": int(clean.sum()),
                   "suspects_in_training": int(np.isin(rows.train, suspects).sum())}

    teachers, ensembles, spreads, wall_seconds = {}, {}, {}, {}
    for power in powers:
        for drop_suspects in [None] + [audit] * (audit is not None):
            named = "" if drop_suspects is None else ", without suspects"
            outputs = []
            for seed in args.seeds:
                label = f"balance {power:g}, seed {seed}{named}"
                start = time.time()
                job = TeacherJob(arch=OUR_TEACHER.arch, lr=OUR_TEACHER.learning_rate, epochs=epochs, balance=power,
                                 data=fab_data, resize=RESIZE, seed=seed, resume=True, init=args.init,
                                 drop_suspects=drop_suspects,
                                 out=runs / (f"{OUR_TEACHER.arch}-balance{power:g}-seed{seed}{recipe}"
                                             + "-without-suspects" * (drop_suspects is not None)))
                run_teacher_job(job, verbose=2)
                state = read_training_state(job.out)
                outputs.append(teacher_outputs(job.out / TEACHER_FILE, parts, clean))
                teachers[label] = {"balance": power, "seed": seed, "without_suspects": drop_suspects is not None,
                                   "run": repo_relative(job.out), "best_epoch": state["best_epoch"],
                                   "val_exact_match": state["best"], "figures": readings(outputs[-1], parts)}
                wall_seconds[label] = round(time.time() - start)
            if len(args.seeds) > 1:
                ensembles[f"balance {power:g}{named}, ensemble of seeds {', '.join(map(str, args.seeds))}"] = {
                    "balance": power, "seeds": args.seeds, "without_suspects": drop_suspects is not None,
                    "figures": readings(ensemble_outputs(outputs), parts)}
                # The seeds' spread of the test macro F1, class-balanced, 8 views.
                spreads[f"{power:g}{named}"] = spread(
                    [row["figures"][f"test_views{VIEWS[-1]}"]["balanced"]["macro_f1"] for row in teachers.values()
                     if row["balance"] == power and row["without_suspects"] == (drop_suspects is not None)])

    command = "python -m benchmarks.wm811k_teacher_balance" + (" --quick" if args.quick else "") + (
        "" if powers == [0.0, 0.5] else f" --balance {' '.join(f'{p:g}' for p in powers)}") + (
        "" if args.seeds == [0] else f" --seeds {' '.join(map(str, args.seeds))}") + (
        "" if args.epochs == OUR_TEACHER.epochs else f" --epochs {args.epochs}") + (
        "" if args.init is None else f" --init {repo_relative(args.init)}") + (
        "" if audit is None else f" --without-suspects {repo_relative(args.without_suspects)}")
    results = {"data": repo_relative(args.fab_data), "split_seed": SPLIT_SEED, "resize": RESIZE, "epochs": epochs,
               "init": None if args.init is None else repo_relative(args.init),
               "teacher_recipe": OUR_TEACHER._asdict(), "command": command, "teachers": teachers,
               "ensembles": ensembles, "seed_spread": spreads,
               **audited,
               "wall_seconds": wall_seconds, "versions": versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
