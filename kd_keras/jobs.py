"""The toolkit's jobs as library functions: train a teacher, and distil students from it (and
make one teacher of several).

`python -m kd_keras.train_teacher` and `python -m kd_keras.distill` parse their arguments into
a `TeacherJob` or a `DistillJob` and call `run_teacher_job` / `run_distill_job`
(`python -m kd_keras.ensemble`: `EnsembleJob`, `run_ensemble_job`); benchmarks build the same
objects. A job owns its run directory (`kd_keras.rundir`): one process at a
time, refused when it already holds a run unless resumed or overwritten, and finished once
its metrics.json is written.

Example:

>>> job = DistillJob(synthetic_maps=380, out=Path("runs/small"))
>>> job.student, job.teacher_dir, job.arguments()["loss"]
(('net1', 'separable8k'), PosixPath('runs/teacher-vgg7-synthetic380-seed0'), 'hinton')
>>> DistillJob(task="segclass", student=("net1",))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: --student net1 is not a model for --task segclass; choose from deeplab, lightwafer...
"""

import dataclasses
import datetime
import functools
from pathlib import Path

import numpy as np

from kd_keras.data import (
    DEFAULT_RESIZE, DEFAULT_SYNTHETIC_MAPS, NUM_DEFECTS, WaferMaps, data_paths, file_layout, load_splits,
    load_unlabelled_maps,
)
from kd_keras.distillation import distill_student, load_teacher, teacher_logits_cached
from kd_keras.errors import FileFormatError, RunDirectoryError
from kd_keras.fileio import atomic_path, read_json, write_json
from kd_keras.models import build_teacher, ensemble_of, teacher_names, teacher_title
from kd_keras.reports import report_run
from kd_keras.rundir import (
    CONFIG_FILE, METRICS_FILE, changed_settings, digest, is_finished, locked, open_run, read_config,
    write_config,
)
from kd_keras.segclass_distillation import classifier_pattern_logits, train_segclass
from kd_keras.side_by_side import SideBySide, train_side_by_side
from kd_keras.tasks import CLASSIFY, SEGCLASS, TASKS, is_classifier
from kd_keras.training import TEACHER_FILE, load_model, make_strategy, start_from, train_teacher

SEGCLASS_TEACHER = "deeplab"
# Fields that say where a job runs or how it treats an existing run, not what it computes:
# a resumed run may change them.
NOT_RESULT_FIELDS = ("out", "resume", "overwrite", "teacher_dir")
# Fields added after runs were recorded: left out of the record while at their default, so
# that runs made before them still resume and their teachers are still reused.
ADDED_LATER = {"resize": DEFAULT_RESIZE, "teacher_arch": "resnet18", "drop_suspects": None, "unlabelled": None,
               "balance": 0.0, "init": None, "student_seed": None}


def _recorded(arguments):
    return {name: value for name, value in arguments.items()
            if not (name in ADDED_LATER and value == ADDED_LATER[name])}


@dataclasses.dataclass(frozen=True)
class Job:
    """What every training job is told: its data, its training settings, its run directory."""

    out: Path | None = None
    data: Path | None = None
    synthetic_maps: int = DEFAULT_SYNTHETIC_MAPS
    seed: int = 0
    resize: str = DEFAULT_RESIZE
    drop_suspects: Path | None = None  # a label audit's report: its suspects are left out of training
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    patience: int = 10
    augment: bool = False
    resume: bool = False
    overwrite: bool = False
    strategy: str = "default"

    def __post_init__(self):
        # One --data file is recorded as a path, as before several were read.
        paths = tuple(Path(path) for path in data_paths(self.data))
        object.__setattr__(self, "data", None if not paths else paths[0] if len(paths) == 1 else paths)

    def arguments(self):
        """What the result depends on: recorded in config.json, compared on --resume."""
        return _recorded({field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                          if field.name not in NOT_RESULT_FIELDS})

    def data_description(self):
        if self.data is None:
            return f"{self.synthetic_maps} synthetic maps (seed {self.seed}), split 80/10/10"
        paths = data_paths(self.data)
        resized = (f", maps resized to 52x52 by {self.resize}"
                   if any(file_layout(path) == "wm811k" for path in paths) else "")
        dropped = "" if self.drop_suspects is None else f", training maps suspected by {self.drop_suspects} left out"
        split = "each split 80/10/10" if len(paths) > 1 else "seeded 80/10/10 split"
        return f"{' + '.join(map(str, paths))}, {split} (seed {self.seed}){resized}{dropped}"

    def splits(self):
        return load_splits(self.data, self.synthetic_maps, self.seed, self.resize, self.drop_suspects)


@dataclasses.dataclass(frozen=True)
class TeacherJob(Job):
    """`python -m kd_keras.train_teacher`: a teacher trained on the labels."""

    arch: str = "resnet18"
    epochs: int = 20
    lr: float = 2e-3
    augment: bool = True
    balance: float = 0.0  # how much rarer label patterns weigh in the loss (`kd_keras.data.pattern_weights`)
    init: Path | None = None  # a teacher (run directory or .keras file) whose weights training starts from


@dataclasses.dataclass(frozen=True)
class DistillJob(Job):
    """`python -m kd_keras.distill`: students distilled from a teacher, given or trained here.

    `teacher_dir`: where a teacher is reused or trained when `teacher` is None (default
    runs/<teacher-<arch>|segclass-teacher>-<data>-seed<S>/ under the working directory;
    runs/teacher-<data>-seed<S>/ for a ResNet-18, as before `teacher_arch` existed).
    `teacher_arch`: the architecture of a classifier teacher trained here (vgg7 by default:
    as accurate as ResNet-18 on the real dev set and 5x faster, which the first run needs)."""

    task: str = "classify"
    # On 2 CPU cores a batch of 32 costs less per map than one of 128 and gives four times the
    # steps: the first run's teacher read 64% of its test maps instead of 49%, and the whole
    # job took 4:29 instead of 4:57 (benchmarks/first_run). Benchmarks pin what they measured.
    batch_size: int = 32
    teacher: Path | None = None
    teacher_dir: Path | None = None
    teacher_arch: str = "vgg7"
    teacher_epochs: int | None = None  # None: the task's `teacher_epochs`
    lr: float | None = None  # None: the task's `student_lr`
    student: tuple | None = None
    # The students' initial weights, shuffling and augmentation (None: `seed`'s). The split, and
    # a teacher trained here, keep `seed`'s: several student seeds on one split, as
    # benchmarks.best_per_budget distils them.
    student_seed: int | None = None
    # Label-free either way. Under Paper 1's loss (MSE on the logits) Net-1 learnt less from the
    # 16-epoch teacher than from the 14-epoch one (74.32% against 78.47%, 5 seeds); under Hinton's
    # it learns more (81.74%, 79.47-83.68%) (benchmarks/main_job_teacher).
    loss: str = "hinton"
    alpha: float = 0.5
    beta: float = 0.5
    temperature: float = 4.0
    kd_weight: float | None = None
    teacher_views: int | None = None  # None: the task's `teacher_views`
    a_cls: float = 0.7
    a_seg: float = 0.5
    a_feat: float = 0.3
    # Files of maps without labels that the students also learn from (never the teacher, never
    # validation or test): the label-free losses read the teacher's logits only.
    unlabelled: tuple | None = None

    def __post_init__(self):
        super().__post_init__()
        task = TASKS[self.task]
        if self.unlabelled is not None:
            object.__setattr__(self, "unlabelled", tuple(Path(path) for path in data_paths(self.unlabelled)) or None)
        if self.unlabelled and (self.task != CLASSIFY.name or self.loss == "mixed"):
            raise ValueError("--unlabelled maps are learnt from the teacher alone: they need --task classify "
                             f"and a label-free loss (hinton or paper), not --task {self.task} --loss {self.loss}")
        students = tuple(self.student or task.default_students)
        wrong = [name for name in students if name not in task.students()]
        if wrong:
            raise ValueError(f"--student {' '.join(wrong)} is not a model for --task {self.task}; choose from "
                             f"{', '.join(task.students())}")
        if self.teacher_arch not in teacher_names():
            raise ValueError(f"--teacher-arch {self.teacher_arch}: choose from {', '.join(teacher_names())}")
        if self.resume and self.out is None:
            raise ValueError("--resume needs the --out directory of the run to continue")
        object.__setattr__(self, "student", students)
        if self.lr is None:
            object.__setattr__(self, "lr", task.student_lr)
        if self.teacher_views is None:
            object.__setattr__(self, "teacher_views", task.teacher_views)
        if self.teacher_epochs is None:
            object.__setattr__(self, "teacher_epochs", task.teacher_epochs)
        if self.out is None:
            object.__setattr__(self, "out", Path("runs") / datetime.datetime.now().strftime("distill-%Y%m%d-%H%M%S"))
        if self.teacher_dir is None:
            data = (f"synthetic{self.synthetic_maps}" if self.data is None
                    else "+".join(Path(path).stem for path in data_paths(self.data)))
            data += "" if self.resize == DEFAULT_RESIZE else f"-{self.resize}"
            data += "" if self.drop_suspects is None else "-without-suspects"
            kind = ("segclass-teacher" if self.task == "segclass" else
                    "teacher" if self.teacher_arch == ADDED_LATER["teacher_arch"] else f"teacher-{self.teacher_arch}")
            object.__setattr__(self, "teacher_dir", Path("runs") / f"{kind}-{data}-seed{self.seed}")

    def data_description(self):
        description = super().data_description()
        if not self.unlabelled:
            return description
        return (f"{description}; the students also learn from the maps without labels of "
                f"{' + '.join(map(str, self.unlabelled))}")

    def arguments(self):
        arguments = super().arguments()
        if self.task != CLASSIFY.name:  # a segmentation + classification teacher is always DeepLabV3+
            arguments.pop("teacher_arch", None)
        return arguments

    @property
    def seed_of_students(self):
        return self.seed if self.student_seed is None else self.student_seed

    @property
    def hard_only(self):
        """A segmentation + classification student on the hard targets alone: no teacher."""
        return self.task == "segclass" and not (self.a_cls or self.a_seg or self.a_feat)

    def teacher_arguments(self):
        """What a teacher trained for this job depends on."""
        return _recorded({"task": self.task, "data": self.data, "synthetic_maps": self.synthetic_maps,
                          "seed": self.seed, "resize": self.resize, "drop_suspects": self.drop_suspects,
                          "epochs": self.teacher_epochs,
                          "batch_size": self.batch_size, "augment": True, "strategy": self.strategy,
                          **({"teacher_arch": self.teacher_arch} if self.task == CLASSIFY.name else {})})


@dataclasses.dataclass(frozen=True)
class EnsembleJob(Job):
    """`python -m kd_keras.ensemble`: one teacher made of several, their logits averaged
    (`kd_keras.models.ensemble_of`). It trains nothing: of `Job`'s fields only the data ones
    (what its report reads) are its arguments."""

    teachers: tuple = ()  # run directories or .keras files of classifier teachers

    def __post_init__(self):
        super().__post_init__()
        if len(self.teachers) < 2:
            raise ValueError(f"an ensemble needs at least 2 teachers, got {len(self.teachers)}")

    def arguments(self):
        files = [teacher_file(teacher) for teacher in self.teachers]
        data = {name: getattr(self, name) for name in ("data", "synthetic_maps", "seed", "resize", "drop_suspects")}
        # The files' digests: a member trained again makes another ensemble, which --resume refuses.
        return _recorded({"teachers": [str(path) for path in files],
                          "teacher_digests": [digest(path.read_bytes()) for path in files], **data})


def open_job_run(job, ignored=()):
    """Check `job.out` for the job (its lock held, see `kd_keras.rundir.open_run`) and record
    the job's arguments in a new run. Returns 'new', 'resume', or 'finished': a finished run
    resumed, which has nothing left to do but return its rows."""
    arguments = job.arguments()
    mode = open_run(job.out, arguments, resume=job.resume, overwrite=job.overwrite, ignored=ignored)
    if mode == "resume" and is_finished(job.out):
        print(f"{job.out} holds a finished run: nothing left to train")
        return "finished"
    if mode == "new":
        write_config(job.out, arguments)
    return mode


def run_ensemble_job(job):
    """Write the ensemble of `job.teachers` as `job.out`/teacher.keras and read it like a
    teacher on the test split (metrics.json, report.md); its row of the run's metrics."""
    paths = [teacher_file(teacher) for teacher in job.teachers]  # a wrong path or kind fails before any work
    teachers = [load_model(path) for path in paths]
    for path, teacher in zip(paths, teachers):
        if not is_classifier(teacher):
            raise ValueError(f"{path}: an ensemble is made of classifiers of 8 defect logits; this model outputs "
                             f"{', '.join(str(tuple(output.shape[1:])) for output in teacher.outputs)}")
    ensemble = ensemble_of(teachers)
    parts = job.splits()
    with locked(job.out):
        if open_job_run(job) == "finished":
            return stored_rows(job.out)["teacher"]
        with atomic_path(job.out / TEACHER_FILE) as tmp:
            ensemble.save(tmp)
        return report_run(job.out, f"{teacher_title(ensemble)} teacher", {"teacher": (ensemble, job.out)}, parts,
                          job.data_description(), CLASSIFY)["teacher"]


def run_teacher_job(job, verbose="auto"):
    """Train (or resume, or find finished) a teacher in `job.out`; its row of the run's metrics."""
    init = None if job.init is None else teacher_file(job.init)
    if init is not None:
        start_from(build_teacher(job.arch), init)  # a wrong path or architecture fails before any work
    parts = job.splits()
    with locked(job.out):
        mode = open_job_run(job)
        if mode == "finished":
            return stored_rows(job.out)["teacher"]
        teacher = train_teacher(parts, job.out, arch=job.arch, epochs=job.epochs, batch_size=job.batch_size,
                                learning_rate=job.lr, augment=job.augment, patience=job.patience, seed=job.seed,
                                resume=mode == "resume", strategy=make_strategy(job.strategy), verbose=verbose,
                                balance=job.balance, init=init)
        return report_run(job.out, f"{teacher_title(teacher)} teacher", {"teacher": (teacher, job.out)}, parts,
                          job.data_description(), CLASSIFY)["teacher"]


def run_distill_job(job, verbose="auto"):
    """Distil the job's students (training or reusing its teacher); {name: metrics row} of the run.

    A run the directory holds is refused unless `job.resume` (which goes on where it stopped;
    a finished run only returns its rows) or `job.overwrite`."""
    given_teacher = None if job.teacher is None else teacher_file(job.teacher)  # a wrong path fails before any work
    if given_teacher is not None and job.task == SEGCLASS.name and not job.hard_only:
        segclass_teacher_is_classifier(job, load_model(given_teacher), given_teacher)  # so does a wrong kind
    parts = job.splits()
    with locked(job.out):
        mode = open_job_run(job, ignored=("teacher_model",))
        if mode == "finished":
            return stored_rows(job.out)
        strategy = make_strategy(job.strategy)
        teacher_path = given_teacher or (None if job.hard_only else resolve_teacher(job, parts, strategy, verbose))
        config = read_config(job.out / CONFIG_FILE)
        write_json(job.out / CONFIG_FILE, {**config, "arguments": {**config["arguments"], "teacher_model":
                                                                   teacher_path and str(teacher_path)}})
        title, models = STUDENTS[job.task](job, parts, teacher_path, mode == "resume", strategy, verbose)
        return report_run(job.out, title, models, parts, job.data_description(), TASKS[job.task])


def _classifiers(job, parts, teacher_path, resume, strategy, verbose):
    """(report title, {name: (model, directory)}) of a classify job: its teacher and distilled students."""
    cache = job.out / "teacher_cache.h5"
    if job.unlabelled:
        parts = with_unlabelled_maps(parts, job.unlabelled, job.resize, teacher_path, cache, job.teacher_views)
    logits = teacher_logits_cached(teacher_path, parts, cache, views=job.teacher_views)
    teacher = load_teacher(teacher_path, job.teacher_views)
    models = {f"teacher ({teacher_title(teacher)})": (teacher, teacher_path.parent)}
    train = functools.partial(distill_job_student, job, parts=parts, teacher_path=teacher_path, logits=logits,
                              resume=resume, strategy=strategy)
    if len(job.student) == 1 or strategy is not None:  # a distribution strategy spreads one student already
        for name in job.student:
            print(f"distilling {name} ({job.loss} loss)")
            models[name] = (train(name, out_dir=job.out / name, verbose=verbose), job.out / name)
    else:
        print(f"distilling {', '.join(job.student)} side by side ({job.loss} loss)")
        students = train_side_by_side({name: SideBySide(job.epochs, functools.partial(
            train, name, out_dir=job.out / name, verbose=0)) for name in job.student}, verbose=verbose)
        models.update({name: (student, job.out / name) for name, student in students.items()})
    return f"Distillation ({job.loss} loss)", models


def with_unlabelled_maps(parts, paths, resize, teacher_path, cache_path, views):
    """`parts` whose training split also holds the maps of the files `paths`, their labels unread.

    The students' loss reads only the teacher's logits (computed here, over `views`, and cached
    with the rest of the training split's); a training map's label feeds only the exact match
    the progress bar shows, which on these maps is therefore the teacher's reading of them."""
    maps = np.concatenate([load_unlabelled_maps(path, resize) for path in paths])
    print(f"{len(maps):,} maps without labels join the {len(parts['train']):,} training maps")
    unread = WaferMaps(maps, np.zeros((len(maps), NUM_DEFECTS), np.uint8), source=" + ".join(map(str, paths)))
    train = WaferMaps.joined([parts["train"], unread])
    logits = teacher_logits_cached(teacher_path, {**parts, "train": train}, cache_path, views=views)
    readings = (logits["train"][len(parts["train"]):] > 0).astype(np.uint8)
    return {**parts, "train": dataclasses.replace(train, labels=np.concatenate([parts["train"].labels, readings]))}


def distill_job_student(job, name, parts, out_dir, teacher_path, logits, *, seed=None, resume=False, strategy=None,
                        extra_callbacks=(), before_training=None, verbose="auto"):
    """One classify student distilled as `job` says (loss, schedule, teacher views), seeded `seed`
    (default: the job's `seed_of_students`). Benchmarks call it to distil exactly as the main job does."""
    return distill_student(
        name, parts, out_dir, teacher_path, logits, loss=job.loss, alpha=job.alpha, beta=job.beta,
        temperature=job.temperature, distillation_weight=job.kd_weight, epochs=job.epochs, batch_size=job.batch_size,
        learning_rate=job.lr, augment=job.augment, teacher_views=job.teacher_views, patience=job.patience,
        seed=job.seed_of_students if seed is None else seed, resume=resume, strategy=strategy,
        extra_callbacks=extra_callbacks, before_training=before_training, verbose=verbose)


def _segclass_models(job, parts, teacher_path, resume, strategy, verbose):
    """(report title, {name: (model, directory)}) of a segclass job: its teacher and students.

    A classifier teacher (8 defect logits, given with --teacher) teaches the pattern alone,
    from its cached 8-view logits (`segclass_distillation.classifier_pattern_logits`); it is
    reported in its own run directory, not among this job's models, whose outputs differ."""
    models, pattern_logits = {}, None
    if not job.hard_only:
        teacher = load_model(teacher_path)
        if segclass_teacher_is_classifier(job, teacher, teacher_path):
            print(f"the classifier {teacher_path} teaches the pattern; the mask is learnt from the hard targets")
            pattern_logits = classifier_pattern_logits(teacher_path, parts, job.out / "teacher_cache.h5")
            teacher_path = None
        else:
            models[f"teacher ({teacher_title(teacher)})"] = (teacher, teacher_path.parent)
    for name in job.student:
        print(f"training {name} ({'hard loss only' if job.hard_only else 'distillation'})")
        models[name] = (train_segclass(
            name, parts, job.out / name, teacher_path=teacher_path, teacher_pattern_logits=pattern_logits,
            alpha_cls=job.a_cls, alpha_seg=job.a_seg,
            alpha_feat=job.a_feat, temperature=job.temperature, epochs=job.epochs, batch_size=job.batch_size,
            learning_rate=job.lr, augment=job.augment, patience=job.patience, seed=job.seed_of_students,
            resume=resume, verbose=verbose), job.out / name)
    return "Segmentation + classification, " + ("hard loss only" if job.hard_only else "distillation"), models


STUDENTS = {"classify": _classifiers, "segclass": _segclass_models}


def segclass_teacher_is_classifier(job, teacher, teacher_path):
    """Whether a segclass job's teacher is a classifier (8 defect logits); one with the mask
    or feature terms on is refused: a classifier has neither."""
    if not is_classifier(teacher):
        return False
    if job.a_seg or job.a_feat:
        raise ValueError(f"{teacher_path} is a classifier (8 defect logits): it teaches the pattern, not "
                         "the mask or features; distil from it with --a-seg 0 --a-feat 0")
    return True


def teacher_file(teacher):
    """The .keras file of a teacher given as a run directory or as the file itself (a path or
    its text: `kd_keras.cli.argument_type(teacher_file)` is an argparse type)."""
    teacher = Path(teacher)
    path = teacher / TEACHER_FILE if teacher.is_dir() else teacher
    if not path.is_file():
        raise FileNotFoundError(f"no teacher model at {path}; train one with python -m kd_keras.train_teacher")
    return path


def teacher_name(teacher):
    """What runs made from a teacher are named after: its run directory's name (the file's stem
    for a .keras file that is no run's teacher.keras)."""
    path = Path(teacher)
    return path.parent.name if path.name == TEACHER_FILE else path.name if path.is_dir() else path.stem


def resolve_teacher(job, parts, strategy, verbose="auto"):
    """Path of the job's own teacher .keras file: reused, continued, or trained now.

    The job's teacher directory is reused only when it was trained with the job's teacher
    arguments; an unfinished one is continued where it stopped."""
    teacher_dir, arguments = job.teacher_dir, job.teacher_arguments()
    with locked(teacher_dir):
        if (teacher_dir / CONFIG_FILE).is_file():
            changes = changed_settings(read_config(teacher_dir / CONFIG_FILE)["arguments"], arguments)
            if changes:
                raise RunDirectoryError(f"{teacher_dir} holds a teacher trained with other arguments: {changes}; "
                                        f"use it with --teacher {teacher_dir}, or move it away to train a new one")
            if is_finished(teacher_dir):
                print(f"reusing the teacher in {teacher_dir}")
                return teacher_dir / TEACHER_FILE
            print(f"continuing the unfinished teacher in {teacher_dir}")
        else:
            open_run(teacher_dir, arguments)  # refuses a directory that holds anything else
            print(f"training a teacher in {teacher_dir} ({job.teacher_epochs} epochs)")
            write_config(teacher_dir, arguments)
        teacher = TEACHERS[job.task](job, parts, teacher_dir, strategy, verbose)
        report_run(teacher_dir, f"{teacher_title(teacher)} teacher", {"teacher": (teacher, teacher_dir)}, parts,
                   job.data_description(), TASKS[job.task])
    return teacher_dir / TEACHER_FILE


# How a job trains its own teacher when given none.
TEACHERS = {
    "classify": lambda job, parts, teacher_dir, strategy, verbose: train_teacher(
        parts, teacher_dir, arch=job.teacher_arch, epochs=job.teacher_epochs, batch_size=job.batch_size,
        augment=True, seed=job.seed, resume=True, strategy=strategy, verbose=verbose),
    "segclass": lambda job, parts, teacher_dir, strategy, verbose: train_segclass(
        SEGCLASS_TEACHER, parts, teacher_dir, alpha_cls=0, alpha_seg=0, alpha_feat=0, epochs=job.teacher_epochs,
        batch_size=job.batch_size, seed=job.seed, resume=True, model_file=TEACHER_FILE, verbose=verbose),
}


def stored_rows(run_dir):
    """The models' rows of a finished run's metrics.json."""
    path = Path(run_dir) / METRICS_FILE
    metrics = read_json(path)
    rows = metrics.get("models") if isinstance(metrics, dict) else None
    if not isinstance(rows, dict):
        raise FileFormatError(f"{path}: no \"models\" object: not the metrics of a run")
    return rows
