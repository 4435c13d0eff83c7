"""Paper 2's finding on the real dev set: does distillation beat the hard loss, by more than
the seeds spread?

    python -m benchmarks.segclass_kd_vs_hard                  # 10 epochs, seeds 0 1 2 (70 min on 2 cores)
    python -m benchmarks.segclass_kd_vs_hard --epochs 60      # the shipped student's schedule (4-6 hours)
    python -m benchmarks.segclass_kd_vs_hard --temperature 2 --out benchmarks/results/segclass_kd_vs_hard_T2
    python -m benchmarks.segclass_kd_vs_hard --quick --runs /tmp/r --out /tmp/res/kd   # smoke test
    python -m benchmarks.segclass_kd_vs_hard --epochs 60 --temperature 1 \\
        --init runs/wm811k-balance/vgg7-balance0-seed0 --hard-from benchmarks/results/segclass_kd_vs_hard_epochs60_T1 \\
        --out benchmarks/results/segclass_kd_vs_hard_epochs60_T1_pretrained   # a pre-trained teacher

The same student (`stridedseg`, with `benchmarks.segclass_mixedwm38`'s settings: augmented,
batch 128, peak learning rate 2e-3 under 10-epoch cosine restarts), the same epochs, the same
seeds and the same split (seed 0's), trained twice:

- "hard": on the hard targets alone (pattern and mask);
- "kd": distilled from our vgg7 classifier teacher (recipe `OUR_TEACHER`, trained once here),
  whose logits averaged over the 8 rotations/flips become the 38 patterns' logits: Paper 2's
  pattern term (a_cls = 0.7, T = 4 unless --a-cls and --temperature say otherwise); the mask
  is learnt from the hard targets (a_seg = a_feat = 0). Paper 2's own teacher, DeepLabV3+,
  takes over an hour an epoch on 2 cores. `--init TEACHER` starts that teacher from a trained
  one's weights (pre-training, e.g. on WM-811K maps); its distilled runs are named apart.

It reports each run's best validation exact match (what chooses between them) and the float
test exact match and Dice of that best model, per seed and as mean and range, the teacher's
own figures, and each run's validation curve (`.png`). Float Keras figures: the shipped model's
int8 figures come from `benchmarks.segclass_mixedwm38`. Every run directory is resumed: an
interrupted benchmark goes on where it stopped when run again, and finished runs are reused
(their wall time then reads "reused"). The results are written again after each run that
finishes, so a benchmark stopped part-way keeps its figures: they say which runs are still to
do, how far each has got and the command that continues them. `--report-only` writes them from
the runs finished so far, training nothing (safe beside a benchmark that is still training).
The runs its results file already records with the same settings stand where their run
directories are gone (a fresh clone, another machine): the benchmark goes on with the others,
and trains the teacher only for a distilled run still to do. A results file made with other
settings is refused, not written over. `--hard-from RESULTS` takes the hard-loss runs another
results file of this benchmark records (same data, student, epochs and settings: they do not
depend on the teacher), so that another teacher's distilled runs are compared with them
without training them again.
"""

import argparse
import sys
import time
from pathlib import Path

from benchmarks import DEFAULT_DATA, REPO, repo_relative, require_several_seeds, results_file, spread, write_results
from benchmarks.segclass_mixedwm38 import STUDENT, STUDENT_JOB
from kd_keras.cli import argument_type
from kd_keras.data import VIEWS, load_splits
from kd_keras.errors import FileFormatError
from kd_keras.fileio import read_json
from kd_keras.jobs import teacher_file
from kd_keras.plots import plot_validation_curves
from kd_keras.recipes import OUR_TEACHER
from kd_keras.rundir import versions
from kd_keras.segclass_distillation import classifier_pattern_logits, train_segclass
from kd_keras.tasks import CLASSIFY, MULTILABEL, SEGCLASS
from kd_keras.training import read_training_state, train_teacher

SPLIT_SEED = 0
QUICK_MAPS = 380
DEFAULT_RUNS = REPO / "runs" / "segclass-kd-vs-hard"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "segclass_kd_vs_hard"
# Paper 2's pattern term; a classifier teacher has no mask or features to distil.
KD = {"alpha_cls": 0.7, "alpha_seg": 0.0, "alpha_feat": 0.0, "temperature": 4.0}
HARD = {"alpha_cls": 0.0, "alpha_seg": 0.0, "alpha_feat": 0.0}
REUSED = "reused"  # the wall time of a step an earlier run had done
TEACHER_STEP = "teacher and its logits"
# What must agree for the runs a results file records to stand for this call's.
SAME_HARD_RUNS = ("data", "student", "epochs", "student_settings")  # the hard-loss runs need no teacher
SAME_RUNS = (*SAME_HARD_RUNS, "kd", "teacher_recipe")
TRAINING = {"lr": "learning_rate", "batch_size": "batch_size", "augment": "augment"}


def student_settings(epochs):
    """`train_segclass` keywords of `benchmarks.segclass_mixedwm38`'s student, for `epochs`."""
    return {keyword: STUDENT_JOB[name] for name, keyword in TRAINING.items()} | {"epochs": epochs}


def run_figures(model, run_dir, parts):
    """The run's best validation exact match, its epoch and curve, and that model's test figures."""
    state = read_training_state(run_dir)
    test = SEGCLASS.evaluate(SEGCLASS.predict(model, parts["test"].maps), parts["test"])
    return {"val_exact_match": state["best"], "best_epoch": state["best_epoch"],
            "val_exact_match_by_epoch": [round(row["val_exact_match"], 4) for row in state["history"]],
            "test_exact_match": test["exact_match"], "test_dice": test["dice"]}


def stage_titles(kd, pretrained=False):
    titles = {"hard": "hard loss only",
              "kd": f"distilled from the {'pre-trained ' if pretrained else ''}vgg7 classifier (8 views)"}
    if kd != KD:
        titles["kd"] += f", T = {kd['temperature']:g}, a_cls = {kd['alpha_cls']:g}"
    return titles


def run_name(stage, kd, epochs, seed, pretrained=False):
    """A student's run directory; a distilled one's names its settings where they are not Paper 2's,
    and a pre-trained teacher (`--init`)."""
    if stage == "hard":
        return f"hard-epochs{epochs}-seed{seed}"
    settings = "" if kd == KD else f"-T{kd['temperature']:g}-a{kd['alpha_cls']:g}"
    return f"kd{'-pretrained' if pretrained else ''}{settings}-epochs{epochs}-seed{seed}"


def finished(run_dir):
    state = read_training_state(run_dir)
    return bool(state and state["finished"])


def step_seconds(step, recorded, start=None):
    """The wall time of `step`: measured since `start`, or where it was done before (no `start`), what
    the results recorded for it (`recorded["wall_seconds"]`), else `REUSED`."""
    return recorded["wall_seconds"].get(step, REUSED) if start is None else round(time.time() - start)


def unfinished_run(run_dir, epochs):
    """How far an unfinished run has got: its progress in words and its validation curve so far."""
    state = read_training_state(run_dir)
    if not state or not state["history"]:
        return {"progress": "not started", "val_exact_match_by_epoch": []}
    return {"progress": f"{state['epoch']} of {epochs} epochs, best validation exact match "
                        f"{100 * state['best']:.2f}% so far",
            "val_exact_match_by_epoch": [round(row["val_exact_match"], 4) for row in state["history"]]}


def pretrained(results):
    """Whether the results' teacher started from a trained one's weights (`--init`)."""
    return bool(results["teacher_recipe"].get("init"))


def markdown(results):
    lines = [f"# Paper 2's student: distilled against hard loss, {results['epochs']} epochs, seeds "
             f"{' '.join(map(str, results['seeds']))}", "",
             f"Data: {results['data']}. Student `{STUDENT}`; teacher: {results['teacher']['title']} "
             f"(test exact match {100 * results['teacher']['test_exact_match']:.2f}% as 38 patterns). "
             f"Reproduce: `{results['command']}`. Float Keras figures.", ""]
    if "hard_runs_from" in results:
        lines += [f"The hard-loss runs are those `{results['hard_runs_from']}` records (the same data, student, "
                  "epochs and settings; they learn from no teacher).", ""]
    if "teacher_of_recorded_runs" in results:
        lines += [f"The distilled runs recorded before this teacher was trained again learnt from one that read "
                  f"{100 * results['teacher_of_recorded_runs']['test_exact_match']:.2f}% of the test maps.", ""]
    if results["unfinished"]:
        lines += [f"**Partial: {sum(map(len, results['runs'].values()))} of {len(results['plan'])} runs "
                  f"finished.** Still to do: " + "; ".join(f"{label}: {run['progress']}" for label, run in
                                                            results["unfinished"].items()) +
                  f". Continue with `{results['command']}` (each run goes on from its last finished epoch).", ""]
    if any(results["runs"].values()):
        lines += run_tables(results)
    gap = results["kd_minus_hard"]
    if gap:
        lines += ["", f"Distilled minus hard, mean over seeds {' '.join(gap['seeds'])}: validation "
                  f"{100 * gap['val']:+.2f} points, test {100 * gap['test']:+.2f} points. " + (
                      f"Against the seeds' spread, the distilled runs are {gap['val_against_spread']} on validation "
                      f"and {gap['test_against_spread']} on test." if "val_against_spread" in gap else
                      "The seeds' spread needs two finished runs of each.")]
    lines += ["", "Wall time: " + ", ".join(f"{name} {seconds}{'' if seconds == REUSED else ' s'}"
                                            for name, seconds in results["wall_seconds"].items()) + "."]
    return "\n".join(lines)


def run_tables(results):
    """The finished runs, one row each, then each stage's mean and range."""
    lines = ["| student | seed | best val exact match (epoch) | test exact match | test Dice |",
             "| --- | ---: | ---: | ---: | ---: |"]
    titles = stage_titles(results["kd"], pretrained(results))
    for stage, title in titles.items():
        for seed, row in results["runs"][stage].items():
            lines.append(f"| {title} | {seed} | {100 * row['val_exact_match']:.2f}% ({row['best_epoch']}) | "
                         f"{100 * row['test_exact_match']:.2f}% | {row['test_dice']:.4f} |")
    lines += ["", "| student | val: mean (range) | test: mean (range) |", "| --- | ---: | ---: |"]
    for stage, summary in results["summary"].items():
        cells = [f"{100 * s['mean']:.2f}% ({100 * s['min']:.2f}-{100 * s['max']:.2f}%)"
                 for s in (summary[key] for key in ("val_exact_match", "test_exact_match"))]
        lines.append(f"| {titles[stage]} | {' | '.join(cells)} |")
    return lines


def compare(runs):
    """Each stage's mean and range over its finished runs, and distilled minus hard over the seeds
    both have finished ({} before there is one), placed against the spread once each has two."""
    summary = {stage: {key: spread([row[key] for row in rows.values()]) for key in ("val_exact_match",
                                                                                    "test_exact_match")}
               for stage, rows in runs.items() if rows}
    seeds = [seed for seed in runs["hard"] if seed in runs["kd"]]
    if not seeds:
        return summary, {}
    gap = {"seeds": seeds, **{split: sum(runs["kd"][seed][key] - runs["hard"][seed][key] for seed in seeds) / len(seeds)
                              for split, key in (("val", "val_exact_match"), ("test", "test_exact_match"))}}
    if min(len(runs["hard"]), len(runs["kd"])) >= 2:
        gap |= {f"{split}_against_spread": against_spread(summary["kd"][key], summary["hard"][key])
                for split, key in (("val", "val_exact_match"), ("test", "test_exact_match"))}
    return summary, gap


def against_spread(kd, hard):
    """How the distilled runs' range of a figure lies against the hard-loss runs'."""
    if kd["min"] > hard["max"]:
        return "better than every hard-loss run"
    if kd["max"] < hard["min"]:
        return "worse than every hard-loss run"
    return "overlapping the hard-loss runs' range"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every student (default 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="initial seeds of the students (the split stays seed 0's; default 0 1 2)")
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS,
                        help="where the teacher's and students' run directories go")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results path without suffix (.json, .md, .png are written)")
    parser.add_argument("--temperature", type=float, default=KD["temperature"],
                        help=f"of the distilled student's pattern term (default {KD['temperature']:g}, Paper 2's)")
    parser.add_argument("--a-cls", type=float, default=KD["alpha_cls"],
                        help=f"weight of that term against the hard loss (default {KD['alpha_cls']:g}, Paper 2's)")
    parser.add_argument("--init", type=argument_type(teacher_file), default=None, metavar="TEACHER",
                        help="start the teacher from this one's weights (its run directory or .keras file, a vgg7) "
                             "instead of random ones: pre-training")
    parser.add_argument("--hard-from", type=Path, default=None, metavar="RESULTS",
                        help="take the hard-loss runs this results file of the benchmark records (path without "
                             "suffix; the same data, epochs and student settings) instead of training them")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MAPS} synthetic maps, one epoch each")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the results from the runs finished so far and say how far "
                             "the others have got")
    args = parser.parse_args(argv)
    if not args.quick and not args.data.is_file():
        parser.error(f"no dev set at {args.data}")
    require_several_seeds(parser, args.seeds)
    if args.epochs < 1:
        parser.error(f"--epochs must be positive, got {args.epochs}")
    if args.temperature <= 0 or not 0 < args.a_cls <= 1:
        parser.error(f"--temperature must be positive and --a-cls in (0, 1]; got {args.temperature}, {args.a_cls}")
    kd = {**KD, "alpha_cls": args.a_cls, "temperature": args.temperature}
    pretrained = args.init is not None  # a teacher started from another's weights
    stages = stage_titles(kd, pretrained)
    epochs = 1 if args.quick else args.epochs
    command = "python -m benchmarks.segclass_kd_vs_hard" + (" --quick" if args.quick else "") + (
        "" if args.epochs == 10 else f" --epochs {args.epochs}") + (
        "" if args.seeds == [0, 1, 2] else f" --seeds {' '.join(map(str, args.seeds))}") + (
        "" if args.temperature == KD["temperature"] else f" --temperature {args.temperature:g}") + (
        "" if args.a_cls == KD["alpha_cls"] else f" --a-cls {args.a_cls:g}") + (
        f" --init {repo_relative(args.init)}" if pretrained else "") + (
        "" if args.hard_from is None else f" --hard-from {repo_relative(args.hard_from)}") + "".join(
        # The command continues this benchmark: elsewhere it would start over, or overwrite another's results.
        f" {option} {repo_relative(path)}" for option, path, default in
        (("--runs", args.runs, DEFAULT_RUNS), ("--out", args.out, DEFAULT_OUT)) if path.resolve() != default)
    plan = {f"{stage} seed {seed}": (stage, str(seed), args.runs / run_name(stage, kd, epochs, seed, pretrained))
            for seed in args.seeds for stage in stages}
    results = {"data": f"{QUICK_MAPS} synthetic maps" if args.quick else
               f"{args.data.name}, seeded 80/10/10 split (seed {SPLIT_SEED})",
               "command": command, "student": STUDENT, "epochs": epochs, "seeds": args.seeds,
               "student_settings": student_settings(epochs), "kd": kd,
               # "init" only when given, so that results made before --init still match.
               "teacher_recipe": OUR_TEACHER._asdict() | ({"init": repo_relative(args.init)} if pretrained else {}),
               "plan": list(plan)}
    if args.hard_from is not None:
        results["hard_runs_from"] = repo_relative(results_file(args.hard_from, ".json"))
    try:
        recorded = read_recorded(args.out, results, args.hard_from)
    except ValueError as error:
        parser.error(str(error))
    # Each run is finished here, or recorded in the results file (its run directory gone), or still to do.
    finished_runs = {label for label, (stage, seed, run_dir) in plan.items() if finished(run_dir)}
    recorded_runs = {label for label, (stage, seed, run_dir) in plan.items()
                     if label not in finished_runs and seed in recorded["runs"].get(stage, {})}
    to_train = [] if args.report_only else [label for label in plan if label not in finished_runs | recorded_runs]
    # The teacher's logits: for every distilled run here (to train, or finished: resuming checks them), and
    # its row for the report where none is recorded.
    needs_teacher = not recorded["teacher"] or any(plan[label][0] == "kd" for label in (*to_train, *finished_runs))
    named = "-pretrained" if pretrained else ""  # a pre-trained teacher and its logits beside the other's
    teacher_dir, cache = args.runs / f"teacher-{OUR_TEACHER.arch}{named}", args.runs / f"teacher{named}_cache.h5"
    teacher_done = finished(teacher_dir) and cache.is_file()
    if args.report_only and needs_teacher and not teacher_done:
        why = ("which the finished distilled runs there need" if recorded["teacher"] else
               f"nor results recorded at {repo_relative(results_file(args.out, '.json'))}")
        parser.error(f"--report-only: no finished teacher with its logits in {args.runs}, {why}; run without it first")
    parts = load_splits(None if args.quick else args.data.resolve(), QUICK_MAPS, SPLIT_SEED)

    wall_seconds = {}
    teacher_patterns = None
    if needs_teacher:
        start = time.time()
        teacher_patterns, results["teacher"] = teacher_targets(parts, teacher_dir, cache, args.quick, args.init)
        wall_seconds[TEACHER_STEP] = step_seconds(TEACHER_STEP, recorded, None if teacher_done else start)
        if recorded["teacher"] and recorded["teacher"] != results["teacher"] and recorded["runs"].get("kd"):
            results["teacher_of_recorded_runs"] = recorded["teacher"]  # trained again, and not to the same figures
    else:
        results["teacher"] = recorded["teacher"]
        wall_seconds[TEACHER_STEP] = step_seconds(TEACHER_STEP, recorded)
    results["wall_seconds"] = wall_seconds
    runs = {stage: {} for stage in stages}
    # The runs to train come last, so that the report written after each holds every run done before.
    for label in [label for label in plan if label not in to_train] + to_train:
        stage, seed, run_dir = plan[label]
        if label in recorded_runs:
            runs[stage][seed] = recorded["runs"][stage][seed]
            wall_seconds[label] = step_seconds(label, recorded)
            continue
        reused = label in finished_runs
        if label not in to_train and not reused:
            continue
        start = time.time()
        print(f"== {stages[stage]}, seed {seed}: {run_dir}", flush=True)
        model = train_segclass(STUDENT, parts, run_dir, seed=int(seed), resume=True, verbose=2,
                               teacher_pattern_logits=teacher_patterns if stage == "kd" else None,
                               **(kd if stage == "kd" else HARD), **student_settings(epochs))
        runs[stage][seed] = run_figures(model, run_dir, parts)
        wall_seconds[label] = step_seconds(label, recorded, None if reused else start)
        if not reused:  # after every run it trains: a benchmark stopped part-way keeps what it finished
            write_report(args.out, results, runs, plan, epochs)
    if not to_train:  # else the loop has just written them
        write_report(args.out, results, runs, plan, epochs)
    return 0


def teacher_targets(parts, teacher_dir, cache, quick, init=None):
    """Train (or reuse) the vgg7 teacher, from `init`'s weights where given; return its 38 pattern
    logits over 8 views (cached) and its row."""
    teacher = train_teacher(parts, teacher_dir, arch=OUR_TEACHER.arch, epochs=1 if quick else OUR_TEACHER.epochs,
                            learning_rate=OUR_TEACHER.learning_rate, seed=SPLIT_SEED, resume=True, verbose=2,
                            init=init)
    patterns = classifier_pattern_logits(teacher_dir / "teacher.keras", parts, cache)
    test_logits = CLASSIFY.predict(teacher, parts["test"].maps, views=VIEWS[-1])[MULTILABEL]
    title = "vgg7" + (f" started from the weights of {repo_relative(init)}" if init else "") + ", mean of 8 views"
    return patterns, {"title": title, "run": repo_relative(teacher_dir),
                      "test_exact_match": CLASSIFY.evaluate({MULTILABEL: test_logits}, parts["test"], "nearest")[
                          "exact_match"]}


def read_recorded(out, results, hard_from=None):
    """What `<out>.json` records from an earlier call with the settings of `results`: its runs by
    stage and seed, its teacher row and its wall times (none where there is no such file); and
    the hard-loss runs `<hard_from>.json` records where `<out>.json` does not. Raises ValueError
    where a file was made with other settings (this call would write over `<out>.json`), where
    `<hard_from>.json` is missing, or where either is not a results file."""
    path = results_file(out, ".json")
    earlier = read_results(path, results, SAME_RUNS, "give another --out, or move it away") if path.is_file() else {}
    recorded = {"runs": earlier.get("runs", {}), "teacher": earlier.get("teacher"),
                "wall_seconds": earlier.get("wall_seconds", {})}
    if hard_from is not None:
        path = results_file(hard_from, ".json")
        if not path.is_file():
            raise ValueError(f"--hard-from: no results file at {repo_relative(path)}")
        other = read_results(path, results, SAME_HARD_RUNS, "its hard-loss runs are not this benchmark's")
        hard = recorded["runs"].setdefault("hard", {})
        for seed, row in other.get("runs", {}).get("hard", {}).items():
            if seed not in hard:
                hard[seed] = row
                label = f"hard seed {seed}"
                recorded["wall_seconds"].setdefault(label, other.get("wall_seconds", {}).get(label, REUSED))
    return recorded


def read_results(path, results, keys, remedy):
    """The results file at `path`, which must agree with `results` on `keys` (else ValueError, with `remedy`)."""
    earlier = read_json(path)
    if not isinstance(earlier, dict):
        raise FileFormatError(f"{repo_relative(path)}: not a benchmark's results (no JSON object)")
    differ = [key for key in keys if earlier.get(key) != results[key]]
    if differ:
        raise ValueError(f"{repo_relative(path)} holds results made with other settings ({', '.join(differ)}): "
                         f"{remedy}")
    return earlier


def write_report(out, results, runs, plan, epochs):
    """Write `<out>.{json,md,png}` from the runs finished so far; the rest of `plan` as unfinished."""
    # In the plan's order, whatever order the runs were done in.
    runs = {stage: {seed: rows[seed] for (planned, seed, _) in plan.values() if planned == stage and seed in rows}
            for stage, rows in runs.items()}
    seconds = results["wall_seconds"]
    results = {**results, "wall_seconds": {step: seconds[step] for step in (TEACHER_STEP, *plan) if step in seconds}}
    summary, gap = compare(runs)
    unfinished = {label: unfinished_run(run_dir, epochs) for label, (stage, seed, run_dir) in plan.items()
                  if seed not in runs[stage]}
    results = {**results, "runs": runs, "unfinished": unfinished, "summary": summary, "kd_minus_hard": gap,
               "versions": versions()}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_results(out, results, markdown(results))  # before the plot: a failed plot keeps the figures
    titles = stage_titles(results["kd"], pretrained(results))
    curves = {titles[stage]: {f"seed {seed}": row["val_exact_match_by_epoch"] for seed, row in rows.items()}
              for stage, rows in runs.items()}
    for label, run in unfinished.items():
        stage, seed, _ = plan[label]
        if run["val_exact_match_by_epoch"]:
            curves[titles[stage]][f"seed {seed}, unfinished"] = run["val_exact_match_by_epoch"]
    curves = {title: group for title, group in curves.items() if group}
    if curves:
        plot_validation_curves(curves, results_file(out, ".png"),
                               title=f"{STUDENT}: validation exact match by epoch, distilled against hard loss")
        print(f"drew {repo_relative(results_file(out, '.png'))}")


if __name__ == "__main__":
    sys.exit(main())
