"""Heavy runs and their committed results (`benchmarks/results/`), each a thin script over the
library: `python -m benchmarks.<name>` from the repository root (`--help` for each).

- `best_per_budget`: our best int8 model per flash budget, and Paper 1's open questions;
- `paper1_mixedwm38`: Paper 1 reproduced; `segclass_mixedwm38`: Paper 2 reproduced;
  `segclass_kd_vs_hard`: whether distillation beats the hard loss for Paper 2's student, over seeds;
- `teacher_ceiling`: how high a teacher goes on this data; `synthetic_to_real`: how realistic
  the synthetic maps are (MixedWM38-like, and WM-811K-like with `--like wm811k`);
- `firmware_footprint`: the whole firmware image per model; `wm811k_cross_domain`: how models
  trained on one source read the other (real WM-811K fab maps, MixedWM38);
- `first_run`: the main job with no arguments in a clean clone, timed, as a new user runs it.
- `main_job_teacher`: how long the main job's teacher trains: its figure, and its students'.
- `strip_unread`: the bytes each shipped model saves without what no interpreter reads.
- `weight_compression`: TFLite Micro's look-up-table weight compression on a shipped model.
- `label_audit`: which labels of a dev set (MixedWM38, or WM-811K with `--data`) are probably wrong,
  and the shipped models on the rest.
- `wm811k_per_budget`: models for real fab maps, one per budget (WM-811K alone, or with MixedWM38).
- `wm811k_teacher_balance`: whether a WM-811K teacher reads rare classes better when they weigh more.
- `unlabelled_maps`: what maps without labels add to a student distilled from a teacher of few labels.
"""

# First: kd_keras quiets TensorFlow's C++ start-up logging, before any benchmark imports TensorFlow.
import kd_keras  # noqa: F401

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from kd_keras.fileio import write_json, write_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The real MixedWM38 dev set, where CI and team machines keep it (beside the repository).
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mixedwm38_dev.npz"
DEFAULT_FAB_DATA = REPO.parent / "shared" / "data" / "wm811k_dev.npz"  # real fab maps, WM-811K layout


def repo_relative(path):
    """`path` as the results files record it: relative to the repository root (`../` where outside)."""
    return os.path.relpath(path, REPO)


def require_several_seeds(parser, seeds):
    """Stop with a usage error unless `seeds` (a --seeds list) holds two or more, all different:
    a spread over seeds needs several."""
    if len(seeds) < 2 or len(set(seeds)) < len(seeds):
        parser.error(f"--seeds needs at least two seeds, all different; got {seeds}")


def spread(values):
    """Mean, lowest and highest of a figure over several runs (e.g. seeds)."""
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


RESULTS_SUFFIXES = (".json", ".md", ".png")


def results_file(out, suffix):
    """`<out><suffix>`, where `out` names a benchmark's results with one of their suffixes or none:
    a name may hold a dot (`wm811k_per_budget_balance0.5`) that `Path.with_suffix` would replace."""
    out = Path(out)
    return Path(f"{out.with_suffix('') if out.suffix in RESULTS_SUFFIXES else out}{suffix}")


def write_results(out, results, text):
    """Write a benchmark's `results` to `<out>.json` and its Markdown `text` to `<out>.md` (each
    whole or not at all: a temporary file, then a rename), print the text and say where they are."""
    write_json(results_file(out, ".json"), results)
    write_text(results_file(out, ".md"), text)
    print(text)
    print(f"wrote {repo_relative(results_file(out, '.json'))} and .md")
