"""How realistic are the synthetic maps? Train a student on synthetic maps only, test on real ones.

    python -m benchmarks.synthetic_to_real                  # 8-9 minutes on 2 cores
    python -m benchmarks.synthetic_to_real --train-maps 7600 --epochs 12 --real-maps 2000   # a smaller run
    python -m benchmarks.synthetic_to_real --like wm811k    # WM-811K-like maps, real fab maps

The student (Paper 1's Net-1 unless `--student`) learns from the synthetic maps' labels
alone. Reads `../shared/data/mixedwm38_dev.npz` (or `--data`) and writes
`benchmarks/results/synthetic_to_real.json`: exact-match accuracy on the real maps (all 8
defect flags right) against chance and on held-out synthetic maps, per-defect recall and
precision, and per pattern the accuracy and the reading most of its misread maps got.
With `--like wm811k` the synthetic maps are WM-811K-like (`generate_fab_maps`: die grids of
many sizes, one class each), the real ones `../shared/data/wm811k_dev.npz`, both brought to
52x52 as the toolkit brings fab maps; the json (`synthetic_to_real_wm811k.json`) adds each
class's recall and the macro F1, on the real class mix and class-balanced.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

from benchmarks import DEFAULT_DATA, DEFAULT_FAB_DATA, REPO, repo_relative
from kd_keras.data import DEFECT_NAMES, NUM_PATTERNS, PATTERN_NAMES, generate_wafer_maps, load_mixedwm38
from kd_keras.data.labels import flags_name
from kd_keras.data.pipeline import make_dataset
from kd_keras.data.synthetic import generate_fab_maps
from kd_keras.data.wm811k import load_wm811k
from kd_keras.evaluation import fab_class_figures, maps_read_right
from kd_keras.fileio import write_json
from kd_keras.inference import predict
from kd_keras.models import build_student, student_names


def most_common_misreading(predicted_flags):
    """'name (share of the misread maps)' for the reading most of these misread maps got, or None."""
    if not len(predicted_flags):
        return None
    rows, counts = np.unique(predicted_flags, axis=0, return_counts=True)
    return f"{flags_name(rows[counts.argmax()])} ({counts.max() / len(predicted_flags):.0%})"


# --like: (real data, its loader, the synthetic maps like it, results file), each giving `WaferMaps`.
SOURCES = {
    "mixedwm38": (DEFAULT_DATA, load_mixedwm38, generate_wafer_maps, "synthetic_to_real.json"),
    "wm811k": (DEFAULT_FAB_DATA, lambda path: load_wm811k(path).resized(),
               lambda num_maps, seed: generate_fab_maps(num_maps, seed).resized(), "synthetic_to_real_wm811k.json"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--like", choices=SOURCES, default="mixedwm38",
                        help="which real maps the synthetic ones imitate and are tested on (default mixedwm38)")
    parser.add_argument("--data", type=Path, help="the real maps' npz (default: the --like source's dev set)")
    parser.add_argument("--train-maps", type=int, default=19_000, help="synthetic training maps")
    parser.add_argument("--real-maps", type=int, default=0, help="real maps to test on (0: all)")
    parser.add_argument("--student", default="net1", choices=student_names(), help="the student to train")
    parser.add_argument("--epochs", type=int, default=30)
    # At 2e-3 Net-1 read only 69% of held-out synthetic maps (Scratch recall 69%), so the real
    # figure (63.54%) measured the training as much as the maps; at 1e-2 it reads 94% of them.
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate, cosine-decayed to 0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="results json (default benchmarks/results/<the source's file>)")
    args = parser.parse_args(argv)
    default_data, load_real, generate, results_file = SOURCES[args.like]
    args.data = args.data or default_data
    args.out = args.out or REPO / "benchmarks" / "results" / results_file

    start = time.time()
    real = load_real(args.data)
    if args.real_maps:
        real = real.subset(np.random.default_rng(args.seed).choice(len(real), args.real_maps, replace=False))
    train = generate(args.train_maps, seed=args.seed)
    val = generate(2 * NUM_PATTERNS * 10, seed=args.seed + 1)

    keras.utils.set_random_seed(args.seed)
    model = build_student(args.student)
    # Decaying to zero lets the final epochs settle instead of ending on a noisy step.
    steps = args.epochs * -(-len(train) // 128)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, steps)),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="hamming_accuracy")],
    )
    model.fit(
        make_dataset(train.maps, train.labels.astype("float32"), shuffle=True, augment=True, seed=args.seed),
        validation_data=make_dataset(val.maps, val.labels.astype("float32")),
        epochs=args.epochs, verbose=2, shuffle=False,  # the dataset shuffles itself (seeded); Keras would only warn
    )

    # The same model on held-out synthetic maps: what it can read at all, so that the gap to the
    # real figure is what the maps lack, not what the training does.
    synthetic_exact = maps_read_right(predict(model, val.maps) > 0, val.labels).mean()
    predicted = (predict(model, real.maps) > 0).astype(np.uint8)
    correct = maps_read_right(predicted, real.labels)
    ids = real.pattern_ids
    counts = np.bincount(ids, minlength=NUM_PATTERNS)
    results = {
        "command": "python -m benchmarks.synthetic_to_real " + " ".join(argv or sys.argv[1:]),
        "like": args.like,
        "student": args.student,
        "train_maps_synthetic": args.train_maps,
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "seed": args.seed,
        "real_maps": len(real),
        "real_data": repo_relative(args.data),
        "exact_match_accuracy": float(correct.mean()),
        "synthetic_exact_match": float(synthetic_exact),
        "synthetic_maps_held_out": len(val),
        "chance_exact_match": float(counts.max() / len(real)),
        "per_defect_recall": {
            name: float(predicted[real.labels[:, k] == 1, k].mean()) for k, name in enumerate(DEFECT_NAMES)
        },
        "per_defect_precision": {  # None for a defect the model never reads
            name: float(real.labels[predicted[:, k] == 1, k].mean()) if predicted[:, k].any() else None
            for k, name in enumerate(DEFECT_NAMES)
        },
        "per_pattern_accuracy": {
            PATTERN_NAMES[p]: float(correct[ids == p].mean()) for p in np.flatnonzero(counts)
        },
        "per_pattern_most_common_misreading": {
            PATTERN_NAMES[p]: most_common_misreading(predicted[(ids == p) & ~correct])
            for p in np.flatnonzero(counts)
        },
        **({"fab_classes": fab_class_figures(predicted, real.labels)} if args.like == "wm811k" else {}),
        "parameters": model.count_params(),
        "wall_seconds": round(time.time() - start, 1),
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(json.dumps({k: v for k, v in results.items() if not k.startswith("per_pattern") and k != "fab_classes"},
                     indent=2))
    if "fab_classes" in results:
        for mix, figures in results["fab_classes"].items():
            print(f"{mix}: accuracy {100 * figures['accuracy']:.2f}%, macro F1 {figures['macro_f1']:.3f}; recall "
                  + ", ".join(f"{name} {row['recall']:.0%}" for name, row in figures["per_class"].items()))
    print(f"exact-match accuracy on {len(real)} real maps: {100 * correct.mean():.2f}% "
          f"(chance {100 * results['chance_exact_match']:.2f}%), wrote {args.out}")


if __name__ == "__main__":
    main()
