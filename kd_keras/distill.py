"""Distil a teacher into tiny students: the toolkit's main job.

    python -m kd_keras.distill                       # synthetic maps; trains or reuses a teacher; Net-1 and separable8k
    python -m kd_keras.distill --data mixedwm38.npz --teacher runs/teacher --student net1 \\
        --loss paper --alpha 0.5 --beta 0.5 --epochs 40
    python -m kd_keras.distill --task segclass        # Paper 2: defect mask + 38 patterns
    python -m kd_keras.distill --data fab.npz --unlabelled fab_unlabelled.npz   # also learn from maps without labels

Without --teacher, a teacher for the same data and seed (--teacher-arch, default vgg7) is
reused from runs/teacher-<arch>-<data>-seed<S>/ or trained there first. Losses: 'hinton' (the
default, label-free, per-defect sigmoid with temperature, times T^2), 'paper' (Paper 1's,
label-free, alpha * MSE(logits) + beta * BCE(sigmoids)), 'mixed' ((1 - w) * hard-label BCE +
w * paper loss).
The run directory gets config.json, teacher_cache.h5, one folder per student (its
.keras model, history.csv, curves.png, confusion.png), metrics.json and report.md. Then
each student is converted to full int8 for the smallest budget it fits (21 KB or 248 KB of
flash with their tensor-arena limits) into models/<student>/ (what python -m tflite.convert
writes: model.tflite, the C array, settings, card) and measured in TFLite Micro on the test
split: deployment.md holds the table against each budget and the commands that come next
(evaluate, build the firmware). --no-convert stops at the Keras models.
A directory holding a run is refused: --resume continues it exactly where it stopped
(finished students are not trained again; changed arguments are refused), --overwrite
starts it again. One process at a time trains in a directory.

--task segclass (Paper 2): a DeepLabV3+ teacher (reused from or trained in
runs/segclass-teacher-<data>-seed<S>/) and our stridedseg student, which output a
defect mask and one of the 38 patterns. Loss: --a-cls, --a-seg, --a-feat and
--temperature (see kd_keras.segclass_distillation); all three weights 0 trains the
student on the hard targets alone, without a teacher. --teacher may also name one of our
classifiers (python -m kd_keras.train_teacher): its logits averaged over the 8 views teach
the pattern, with --a-seg 0 --a-feat 0. Each student folder also gets masks.png: test
maps with their true and predicted masks.
"""

import argparse
import sys
from pathlib import Path

from kd_keras.cli import TRAINING_INTERRUPTED, add_common_arguments, run_command
from kd_keras.data import VIEWS
from kd_keras.distillation import LOSSES
from kd_keras.jobs import DistillJob, run_distill_job
from kd_keras.models import segclass_model_names, student_names, teacher_names
from kd_keras.tasks import TASKS
from tflite.deploy import DEPLOYMENT_REPORT, deploy_run

DEFAULT = DistillJob()


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m kd_keras.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, default=DEFAULT.task,
                        help="classify: 8 defect logits (Paper 1); segclass: defect mask + 38 patterns "
                             "(Paper 2) (default classify)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default runs/distill-<date>-<time>)")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a teacher run directory (or its teacher.keras); default: reuse or train one")
    parser.add_argument("--teacher-arch", choices=teacher_names(), default=DEFAULT.teacher_arch,
                        help="architecture when a classifier teacher has to be trained (default vgg7: as accurate as "
                             "ResNet-18 on the real dev set, 5x faster)")
    parser.add_argument("--teacher-epochs", type=int, default=None,
                        help="epochs when a teacher has to be trained (default: " + ", ".join(
                            f"{task.teacher_epochs} with --task {name}" for name, task in TASKS.items()) + ")")
    parser.add_argument("--student", nargs="+", choices=student_names() + segclass_model_names(), default=None,
                        help="student architecture(s) (default: " + "; ".join(
                            f"{' '.join(task.default_students)} with --task {name}"
                            for name, task in TASKS.items()) + ")")
    parser.add_argument("--student-seed", type=int, default=None, metavar="SEED",
                        help="seed of the students' initial weights, shuffling and augmentation (default: --seed's); "
                             "the split, and a teacher trained here, keep --seed's: several student seeds on one split")
    kd = parser.add_argument_group("distillation")
    kd.add_argument("--loss", choices=LOSSES, default=DEFAULT.loss, help=f"default: {DEFAULT.loss} (label-free)")
    kd.add_argument("--alpha", type=float, default=DEFAULT.alpha, help="weight of the logit MSE (default 0.5)")
    kd.add_argument("--beta", type=float, default=DEFAULT.beta, help="weight of the sigmoid BCE (default 0.5)")
    kd.add_argument("--temperature", type=float, default=DEFAULT.temperature,
                    help="for --loss hinton and --task segclass (default 4)")
    kd.add_argument("--kd-weight", type=float, default=None,
                    help="for --loss mixed: weight w of the distillation term (default 0.5)")
    kd.add_argument("--unlabelled", type=Path, nargs="+", default=None, metavar="NPZ",
                    help="files of maps without labels (e.g. from kd_keras.data import-lswmd --unlabelled-out; "
                         "any layout, labels unread) that the students also learn from, label-free; the teacher, "
                         "validation and test use --data alone")
    kd.add_argument("--teacher-views", type=int, choices=VIEWS, default=None,
                    help="8: the teacher's logits are its mean over the 8 rotations/flips of each map "
                         "(rotation-invariant, more accurate; cached, and reused for --augment) (default: "
                         + ", ".join(f"{task.teacher_views} with --task {name}" for name, task in TASKS.items()) + ")")
    segclass = parser.add_argument_group("--task segclass")
    terms = (("--a-cls", DEFAULT.a_cls, "pattern KD term"), ("--a-seg", DEFAULT.a_seg, "mask KD term"),
             ("--a-feat", DEFAULT.a_feat, "feature term"))
    for flag, default, term in terms:
        segclass.add_argument(flag, type=float, default=default, help=f"weight of the {term} (default {default})")
    parser.add_argument("--convert", action=argparse.BooleanOptionalAction, default=True,
                        help="convert each student to int8 for the budget it fits, into <run>/models/<student>, "
                             "and measure it in TFLite Micro (default: --convert)")
    add_common_arguments(parser, DEFAULT, lr_default=", ".join(
        f"{task.student_lr} with --task {name}" for name, task in TASKS.items()))
    parser.set_defaults(lr=None)  # each task's own `student_lr` (kd_keras.tasks)
    return parser


def run(args):
    job = DistillJob(**{key: value for key, value in vars(args).items() if key not in ("debug", "convert")})
    rows = run_distill_job(job)
    print(TASKS[job.task].table(rows))
    if args.convert:
        print(f"converting {', '.join(job.student)} to int8 and running them in TFLite Micro")
        deploy_run(job.out, job.student)
        print((job.out / DEPLOYMENT_REPORT).read_text())
    print(f"run directory: {job.out}")


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv), interrupted=TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
