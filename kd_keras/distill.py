"""Distil a teacher into tiny students: the toolkit's main job.

    python -m kd_keras.distill                       # synthetic maps; trains or reuses a teacher; Net-1 and Net-2
    python -m kd_keras.distill --data mixedwm38.npz --teacher runs/teacher --student net1 \\
        --loss paper --alpha 0.5 --beta 0.5 --epochs 40
    python -m kd_keras.distill --task segclass        # Paper 2: defect mask + 38 patterns

Without --teacher, a ResNet-18 teacher for the same data and seed is reused from
runs/teacher-<data>-seed<S>/ or trained there first. Losses: 'paper' (label-free,
alpha * MSE(logits) + beta * BCE(sigmoids)), 'hinton' (label-free, per-defect sigmoid
with temperature, times T^2), 'mixed' ((1 - w) * hard-label BCE + w * paper loss).
The run directory gets config.json, teacher_cache.h5, one folder per student (its
.keras model, history.csv, curves.png, confusion.png), metrics.json and report.md.
A directory holding a run is refused: --resume continues it exactly where it stopped
(finished students are not trained again; changed arguments are refused), --overwrite
starts it again. One process at a time trains in a directory.

--task segclass (Paper 2): a DeepLabV3+ teacher (reused from or trained in
runs/segclass-teacher-<data>-seed<S>/) and the LightWaferSegClassNet student, which
output a defect mask and one of the 38 patterns. Loss: --a-cls, --a-seg, --a-feat and
--temperature (see kd_keras.segclass_distillation); all three weights 0 trains the
student on the hard targets alone, without a teacher. Each student folder also gets
masks.png: test maps with their true and predicted masks.
"""

import argparse
import datetime
import sys
from pathlib import Path

from kd_keras.cli import (
    NOT_RESULT_ARGUMENTS, TRAINING_INTERRUPTED, add_common_arguments, data_description, make_strategy, run_command,
)
from kd_keras.distillation import LOSSES, TEACHER_VIEWS, distill_student, load_teacher, teacher_logits_cached
from kd_keras.errors import FileFormatError, RunDirectoryError
from kd_keras.fileio import read_json, write_json
from kd_keras.models import segclass_model_names, student_names, teacher_title
from kd_keras.rundir import (
    CONFIG_FILE, METRICS_FILE, changed_settings, is_finished, locked, open_run, read_config, write_config,
)
from kd_keras.runs import load_splits, metrics_table, report_run, report_segclass_run, segclass_table
from kd_keras.segclass_distillation import train_segclass
from kd_keras.training import TEACHER_FILE, load_model, train_teacher

TEACHER_EPOCHS_SYNTHETIC = 8
TASKS = ("classify", "segclass")
DEFAULT_STUDENTS = {"classify": ["net1", "net2"], "segclass": ["lightwafer"]}
SEGCLASS_TEACHER = "deeplab"


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, default="classify",
                        help="classify: 8 defect logits (Paper 1); segclass: defect mask + 38 patterns "
                             "(Paper 2) (default classify)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default runs/distill-<date>-<time>)")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a teacher run directory (or its teacher.keras); default: reuse or train one")
    parser.add_argument("--teacher-epochs", type=int, default=TEACHER_EPOCHS_SYNTHETIC,
                        help=f"epochs when a teacher has to be trained (default {TEACHER_EPOCHS_SYNTHETIC})")
    parser.add_argument("--student", nargs="+", choices=student_names() + segclass_model_names(), default=None,
                        help="student architecture(s) (default: net1 net2; with --task segclass: lightwafer)")
    kd = parser.add_argument_group("distillation")
    kd.add_argument("--loss", choices=LOSSES, default="paper", help="default: paper (label-free)")
    kd.add_argument("--alpha", type=float, default=0.5, help="weight of the logit MSE (default 0.5)")
    kd.add_argument("--beta", type=float, default=0.5, help="weight of the sigmoid BCE (default 0.5)")
    kd.add_argument("--temperature", type=float, default=4.0, help="for --loss hinton and --task segclass (default 4)")
    kd.add_argument("--kd-weight", type=float, default=None,
                    help="for --loss mixed: weight w of the distillation term (default 0.5)")
    kd.add_argument("--teacher-views", type=int, choices=TEACHER_VIEWS, default=1,
                    help="8: the teacher's logits are its mean over the 8 rotations/flips of each map "
                         "(rotation-invariant, more accurate; cached, and reused for --augment) (default 1)")
    segclass = parser.add_argument_group("--task segclass")
    segclass.add_argument("--a-cls", type=float, default=0.7, help="weight of the pattern KD term (default 0.7)")
    segclass.add_argument("--a-seg", type=float, default=0.5, help="weight of the mask KD term (default 0.5)")
    segclass.add_argument("--a-feat", type=float, default=0.3, help="weight of the feature term (default 0.3)")
    add_common_arguments(parser, epochs=30, learning_rate=3e-3, augment=False)
    return parser


def default_teacher_dir(args):
    data = f"synthetic{args.synthetic_maps}" if args.data is None else args.data.stem
    kind = "segclass-teacher" if args.task == "segclass" else "teacher"
    return Path("runs") / f"{kind}-{data}-seed{args.seed}"


def teacher_arguments(args):
    """What a teacher trained for this run depends on."""
    return {"task": args.task, "data": args.data, "synthetic_maps": args.synthetic_maps, "seed": args.seed,
            "epochs": args.teacher_epochs, "batch_size": args.batch_size, "augment": True,
            "strategy": args.strategy}


def resolve_teacher(args, parts, strategy):
    """Path of the teacher's .keras file: given, reused, continued, or trained now.

    The default teacher directory is reused only when it was trained with this run's
    teacher arguments; an unfinished one is continued where it stopped."""
    if args.teacher is not None:
        path = args.teacher / TEACHER_FILE if args.teacher.is_dir() else args.teacher
        if not path.is_file():
            raise FileNotFoundError(f"no teacher model at {path}; train one with python -m kd_keras.train_teacher")
        return path
    teacher_dir = default_teacher_dir(args)
    path = teacher_dir / TEACHER_FILE
    arguments = teacher_arguments(args)
    with locked(teacher_dir):
        if (teacher_dir / CONFIG_FILE).is_file():
            changes = changed_settings(read_config(teacher_dir / CONFIG_FILE)["arguments"], arguments)
            if changes:
                raise RunDirectoryError(f"{teacher_dir} holds a teacher trained with other arguments: {changes}; "
                                        f"use it with --teacher {teacher_dir}, or move it away to train a new one")
            if is_finished(teacher_dir):
                print(f"reusing the teacher in {teacher_dir}")
                return path
            print(f"continuing the unfinished teacher in {teacher_dir}")
        else:
            open_run(teacher_dir, arguments)  # refuses a directory that holds anything else
            print(f"training a teacher in {teacher_dir} ({args.teacher_epochs} epochs)")
            write_config(teacher_dir, arguments)
        if args.task == "segclass":
            teacher = train_segclass(SEGCLASS_TEACHER, parts, teacher_dir, alpha_cls=0, alpha_seg=0, alpha_feat=0,
                                     epochs=args.teacher_epochs, batch_size=args.batch_size, seed=args.seed,
                                     resume=True, model_file=TEACHER_FILE)
            report_segclass_run(teacher_dir, "DeepLabV3+ teacher", {"teacher": (teacher, teacher_dir)}, parts,
                                data_description(args))
            return path
        teacher = train_teacher(parts, teacher_dir, epochs=args.teacher_epochs, batch_size=args.batch_size,
                                augment=True, seed=args.seed, resume=True, strategy=strategy)
        report_run(teacher_dir, "ResNet-18 teacher", {"teacher": (teacher, teacher_dir)}, parts,
                   data_description(args))
    return path


def run_segclass(args, out, parts, resume):
    """--task segclass: train or reuse the teacher, distil each student, report."""
    hard_only = not (args.a_cls or args.a_seg or args.a_feat)
    teacher_path = None if hard_only else resolve_teacher(args, parts, None)
    record_teacher(out, teacher_path)
    models = {} if hard_only else {"teacher (DeepLabV3+)": (load_model(teacher_path), teacher_path.parent)}
    for name in args.student:
        print(f"training {name} ({'hard loss only' if hard_only else 'distillation'})")
        student = train_segclass(
            name, parts, out / name, teacher_path=teacher_path, alpha_cls=args.a_cls, alpha_seg=args.a_seg,
            alpha_feat=args.a_feat, temperature=args.temperature, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.lr, augment=args.augment, patience=args.patience,
            seed=args.seed, resume=resume)
        models[name] = (student, out / name)
    title = "Segmentation + classification, " + ("hard loss only" if hard_only else "distillation")
    return report_segclass_run(out, title, models, parts, data_description(args))


def run_classify(args, out, parts, resume):
    """--task classify: train or reuse the teacher, cache its logits, distil each student, report."""
    strategy = make_strategy(args.strategy)
    teacher_path = resolve_teacher(args, parts, strategy)
    record_teacher(out, teacher_path)
    logits = teacher_logits_cached(teacher_path, parts, out / "teacher_cache.h5", views=args.teacher_views)
    teacher = load_teacher(teacher_path, args.teacher_views)
    models = {f"teacher ({teacher_title(teacher)})": (teacher, teacher_path.parent)}
    for name in args.student:
        print(f"distilling {name} ({args.loss} loss)")
        student = distill_student(
            name, parts, out / name, teacher_path, logits, loss=args.loss, alpha=args.alpha,
            beta=args.beta, temperature=args.temperature, distillation_weight=args.kd_weight,
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
            augment=args.augment, teacher_views=args.teacher_views, patience=args.patience,
            seed=args.seed, resume=resume, strategy=strategy)
        models[name] = (student, out / name)
    return report_run(out, f"Distillation ({args.loss} loss)", models, parts, data_description(args))


def record_teacher(out, teacher_path):
    """Add the teacher's .keras file to the run's config.json."""
    config = read_config(out / CONFIG_FILE)
    write_json(out / CONFIG_FILE, {**config, "arguments": {**config["arguments"], "teacher_model": teacher_path and
                                                           str(teacher_path)}})


def results_table(task, rows):
    return segclass_table(rows) if task == "segclass" else metrics_table(rows)


def stored_rows(out):
    """The models' rows of a finished run's metrics.json."""
    path = out / METRICS_FILE
    metrics = read_json(path)
    rows = metrics.get("models") if isinstance(metrics, dict) else None
    if not isinstance(rows, dict):
        raise FileFormatError(f"{path}: no \"models\" object: not the metrics of a run")
    return rows


def run(args):
    if args.resume and args.out is None:
        raise ValueError("--resume needs the --out directory of the run to continue")
    out = args.out or Path("runs") / datetime.datetime.now().strftime("distill-%Y%m%d-%H%M%S")
    args.student = args.student or DEFAULT_STUDENTS[args.task]
    wrong = [name for name in args.student if (name in segclass_model_names()) != (args.task == "segclass")]
    if wrong:
        raise ValueError(f"--student {' '.join(wrong)} is not a model for --task {args.task}; choose from "
                         f"{', '.join(segclass_model_names() if args.task == 'segclass' else student_names())}")
    arguments = {key: value for key, value in vars(args).items() if key not in NOT_RESULT_ARGUMENTS}
    with locked(out):
        mode = open_run(out, arguments, resume=args.resume, overwrite=args.overwrite,
                        ignored=("teacher_model",))
        if mode == "resume" and is_finished(out):
            print(f"{out} holds a finished run: nothing left to train. Its results:")
            print(results_table(args.task, stored_rows(out)))
            return
        parts = load_splits(args.data, args.synthetic_maps, args.seed)
        if mode == "new":
            write_config(out, arguments)
        rows = (run_segclass if args.task == "segclass" else run_classify)(args, out, parts, mode == "resume")
    print(results_table(args.task, rows))
    print(f"run directory: {out}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted=TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
