"""Choose a converted classifier's decision threshold per defect on validation maps, and ship them.

    python -m tflite.calibrate models/wm811k-21kb --data wm811k.npz     # class-balanced macro F1
    python -m tflite.calibrate models/kd-21kb --data mixedwm38.npz       # exact match
    python -m tflite.calibrate models/both-248kb --data mixedwm38.npz wm811k.npz   # the mean of both

MODEL_DIR is a directory written by `python -m tflite.convert` holding a classifier (8 defect
logits). The thresholds are chosen, one defect at a time in whole int8 steps, on the validation
split of --data (seeded 80/10/10, as training and conversion split it; maps of other grids
resized as the card says), run in TFLite Micro as the firmware runs the model (its views), for
--metric: by default class-balanced macro F1 on a WM-811K-layout file (a fab's maps, one class
each, classes very unequal), exact match on a MixedWM38 one. A model of several sources (trained
on several --data files) is calibrated on all of them: each is split on its own, and the
thresholds maximize the mean of the files' figures on their validation maps. The card
(`thresholds_int8`, and its int8 accuracy on the test split), model_settings.h
(`kDetectionThresholdInt8`), sample_map.h and README.md are rewritten all at once; the model
itself is unchanged. Run it again with other maps to choose again. Measure the result on maps it
was not chosen on: `python -m tflite.evaluate MODEL_DIR --data FILE`.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, run_command
from tflite.thresholds import METRICS, calibrate_model


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tflite.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a model directory written by python -m tflite.convert")
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="wafer maps (MixedWM38 or WM-811K layout); several: for the mean of their figures")
    parser.add_argument("--seed", type=int, default=0,
                        help="split seed: the one the model was trained with (default 0)")
    parser.add_argument("--metric", choices=METRICS, default=None,
                        help="what the thresholds maximize on validation (default: balanced-macro-f1 on a "
                             "WM-811K-layout file, else exact-match; for each file)")
    add_debug_argument(parser)
    return parser


def run(args):
    command = " ".join(["python -m tflite.calibrate", str(args.model_dir), "--data", *map(str, args.data),
                        *(["--seed", str(args.seed)] if args.seed else []),
                        *(["--metric", args.metric] if args.metric else [])])
    report = calibrate_model(args.model_dir, args.data, seed=args.seed, metric=args.metric, made_by=command)
    print(f"{args.model_dir}: thresholds (int8) {report['thresholds']}")
    if len(args.data) > 1:
        print(f"{report['metric']} on the validation splits: {report['val_before']:.4f} before, "
              f"{report['val_after']:.4f} with them")
    for figures in report["files"]:
        fab = figures["test_fab_classes"]
        classes = (f"; macro F1 {fab['natural']['macro_f1']:.3f}, class-balanced {fab['balanced']['macro_f1']:.3f}"
                   if fab else "")
        print(f"{figures['data']}: {figures['metric']} on the validation split: {figures['val_before']:.4f} before, "
              f"{figures['val_after']:.4f} with them; int8 in TFLite Micro, on the {figures['test_maps']:,} test "
              f"maps: exact match {100 * figures['test_exact_match']:.2f}%{classes}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted="interrupted: nothing was written")


if __name__ == "__main__":
    sys.exit(main())
