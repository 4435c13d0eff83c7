"""Command line for wafer-map files, in the MixedWM38 layout (52x52 maps, multi-hot labels) or
the WM-811K one (maps of any die grid, one class each; told apart by their keys).

    python -m kd_keras.data inspect FILE.npz
    python -m kd_keras.data synth --n 3800 --seed 0 --out synthetic.npz
    python -m kd_keras.data synth --layout wm811k --n 9000 --out fab.npz   # WM-811K-like: many grids
    python -m kd_keras.data show FILE.npz --out grid.png [--resize max]
    python -m kd_keras.data show FILE.npz --out compare.png --beside-synthetic   # real beside synthetic maps
                                                                                 # of the file's layout
    python -m kd_keras.data import-lswmd LSWMD.pkl --trust-pickle --out wm811k.npz   # needs pandas
        [--unlabelled-out wm811k_unlabelled.npz]   # its maps without labels too, to distil on
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import add_debug_argument, positive_int, run_command
from kd_keras.data.labels import NUM_PATTERNS
from kd_keras.data.layouts import file_layout, load_wafer_maps, npz_keys
from kd_keras.data.lswmd import import_lswmd
from kd_keras.data.mixedwm38 import describe, load_mixedwm38, save_mixedwm38
from kd_keras.data.resize import DEFAULT_RESIZE, RESIZE_METHODS
from kd_keras.data.synthetic import generate_fab_maps, generate_wafer_maps
from kd_keras.data.wm811k import (
    CLASS_NAMES, LABEL_KEY, describe_unlabelled, describe_wm811k, load_wm811k, save_wm811k,
)
from kd_keras.plots import plot_pattern_grid


def _inspect(args):
    if file_layout(args.file) == "mixedwm38":
        print(describe(load_mixedwm38(args.file)))
    elif LABEL_KEY in npz_keys(args.file):
        print(describe_wm811k(load_wm811k(args.file)))
    else:
        print(describe_unlabelled(args.file))


def _synth(args):
    if args.layout == "wm811k":
        fab = generate_fab_maps(args.n, seed=args.seed)
        save_wm811k(args.out, fab.maps(), fab.classes)
    else:
        data = generate_wafer_maps(args.n, seed=args.seed)
        save_mixedwm38(args.out, data.maps, data.labels)
    print(f"wrote {args.n} synthetic maps (seed {args.seed}, {args.layout} layout) to {args.out}")


def _show(args):
    data = load_wafer_maps(args.file, args.resize)
    fab = file_layout(args.file) == "wm811k"
    resized = f", resized to 52x52 by {args.resize}" if fab else ""
    title = f"{Path(args.file).name}: {len(data)} maps{resized} (red: failed dies)"
    beside = None
    if args.beside_synthetic:
        synthetic = (generate_fab_maps(len(CLASS_NAMES) * args.per_pattern, seed=args.seed).resized(args.resize)
                     if fab else generate_wafer_maps(NUM_PATTERNS * args.per_pattern, seed=args.seed))
        beside = (synthetic.maps, synthetic.pattern_ids)
        title = f"{Path(args.file).name} (left of each pattern) and synthetic maps (right){resized}"
    plot_pattern_grid(data.maps, data.pattern_ids, args.out, args.per_pattern, seed=args.seed, title=title,
                      beside=beside)
    print(f"wrote {args.out}")


def _import_lswmd(args):
    fab, unlabelled = import_lswmd(args.file, args.out, trust_pickle=args.trust_pickle,
                                   unlabelled_out=args.unlabelled_out)
    print(f"wrote {len(fab):,} labelled maps to {args.out}")
    if args.unlabelled_out is None or not unlabelled:
        print(f"{unlabelled:,} maps without labels left out (--unlabelled-out writes them)")
    else:
        print(f"wrote {unlabelled:,} maps without labels to {args.unlabelled_out} "
              f"(distil on them: python -m kd_keras.distill --unlabelled {args.unlabelled_out} ...)")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="validate a wafer-map npz (either layout) and summarize it")
    inspect.add_argument("file")
    inspect.set_defaults(run=_inspect)

    synth = commands.add_parser("synth", help="write synthetic wafer maps, MixedWM38-like or WM-811K-like")
    synth.add_argument("--n", type=positive_int, default=3800, help="number of maps (default 3800)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--layout", choices=("mixedwm38", "wm811k"), default="mixedwm38",
                       help="mixedwm38: 52x52 maps of the 38 patterns (default); wm811k: maps of many die "
                            "grids, one of WM-811K's 9 classes each")
    synth.add_argument("--out", required=True, help="output .npz path")
    synth.set_defaults(run=_synth)

    show = commands.add_parser("show", help="draw sample maps of every pattern to a PNG")
    show.add_argument("file")
    show.add_argument("--out", required=True, help="output .png path")
    show.add_argument("--per-pattern", type=positive_int, default=3, help="maps per pattern (default 3)")
    show.add_argument("--seed", type=int, default=0, help="which maps are drawn (default 0)")
    show.add_argument("--resize", choices=RESIZE_METHODS, default=DEFAULT_RESIZE,
                      help=f"how maps of other grids are brought to 52x52 (default {DEFAULT_RESIZE})")
    show.add_argument("--beside-synthetic", action="store_true",
                      help="draw as many of the built-in synthetic maps beside each pattern's maps, to compare")
    show.set_defaults(run=_show)
    lswmd = commands.add_parser("import-lswmd", help="convert the public WM-811K LSWMD.pkl (a pickle) to our layout")
    lswmd.add_argument("file")
    lswmd.add_argument("--out", required=True, help="output .npz path (WM-811K layout)")
    lswmd.add_argument("--unlabelled-out", default=None,
                       help="also write the maps without labels there (pixels and shapes only), for distillation")
    lswmd.add_argument("--trust-pickle", action="store_true",
                       help="load the pickle although loading a pickle runs code: only for a file you trust")
    lswmd.set_defaults(run=_import_lswmd)
    for command in (inspect, synth, show, lswmd):
        add_debug_argument(command)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_command(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
