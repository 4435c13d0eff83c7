"""The test pyramid's shared pieces: markers, the real data, and session fixtures.

Markers (pyproject.toml registers them; every test has exactly one of the first four, its own
or, failing that, its module's `TIER`):

- `unit`: plain functions on small inputs, in seconds (the doctests of kd_keras/ and tflite/ too);
- `integration`: trains or converts small models in this process;
- `e2e`: whole commands and benchmarks, in their own processes or end to end;
- `firmware`: builds the firmware stub's C++ (needs g++ and arm-none-eabi-g++);
- `real_data`: needs the real MixedWM38 or WM-811K dev set (skipped, saying why, where it is absent).

`python -m pytest -m unit` is the fast loop; `python -m pytest` runs everything CI runs.

The session fixtures are built once per test process (pytest-xdist runs two, pyproject.toml), for
every module that asks: the synthetic splits, a stand-in teacher trained on them, Net-1 trained on
them and converted to int8, and a small segmentation + classification student, converted too. The
two that take minutes, the stand-in teacher and Net-1, are trained once per test run and read by
both processes (`built_once`).
"""

# First, as for a user: kd_keras sets TensorFlow's output up before keras imports TensorFlow.
import kd_keras  # noqa: F401, I001

import fcntl
import os
import shutil

import keras
import pytest

from kd_keras.data import load_splits
from kd_keras.data.pipeline import make_dataset
from kd_keras.distillation import teacher_logits_cached
from kd_keras.models import build_student
from kd_keras.models.students import plain_cnn
from kd_keras.segclass_distillation import train_segclass
from kd_keras.training import cosine_adamw, load_model, multilabel_metrics, steps_for
from tests.helpers import REPO, npz_of
from tflite.budget import BUDGETS
from tflite.card import CARD_FILE, ModelCard
from tflite.export import export_model

REAL_DATA = REPO.parent / "shared" / "data" / "mixedwm38_dev.npz"
REAL_FAB_DATA = REPO.parent / "shared" / "data" / "wm811k_dev.npz"


TIERS = ("unit", "integration", "e2e", "firmware")


def pytest_collection_modifyitems(items):
    """Give each test its tier: its own marker, else its module's `TIER`; doctests are unit tests."""
    for item in items:
        own = [mark.name for mark in item.own_markers if mark.name in TIERS]
        if not own:
            tier = "unit" if isinstance(item, pytest.DoctestItem) else getattr(item.module, "TIER", None)
            if tier not in TIERS:
                raise pytest.UsageError(f"{item.nodeid}: no tier; mark it, or set its module's TIER, to one of "
                                        f"{', '.join(TIERS)}")
            item.add_marker(tier)
        elif len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid} has the tier markers {own}: give it one of {', '.join(TIERS)}")
        if {"real_data_path", "real_fab_data_path"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture(scope="session")
def real_data_path():
    """Path of the real MixedWM38 dev set; the test is skipped when this machine lacks it."""
    if not REAL_DATA.is_file():
        pytest.skip(f"real MixedWM38 data not found at {REAL_DATA} (only CI and team machines have it)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_fab_data_path():
    """Path of the real WM-811K dev set; the test is skipped when this machine lacks it."""
    if not REAL_FAB_DATA.is_file():
        pytest.skip(f"real WM-811K data not found at {REAL_FAB_DATA} (only CI and team machines have it)")
    return REAL_FAB_DATA


@pytest.fixture(scope="session")
def small_parts():
    """380 synthetic maps, split 304/38/38 (and the 38 test maps turned): for what runs, not what learns."""
    return load_splits(None, synthetic_maps=380, seed=0)


@pytest.fixture(scope="session")
def parts():
    """3,800 synthetic maps, split 80/10/10: enough for a model to learn something measurable."""
    return load_splits(None, synthetic_maps=3800, seed=0)


@pytest.fixture(scope="session")
def small_npz(small_parts, tmp_path_factory):
    """The 380 synthetic maps (train and test splits) as a file."""
    return npz_of(tmp_path_factory.mktemp("data") / "small.npz", small_parts["train"], small_parts["test"])


def built_once(tmp_path_factory, name, build):
    """The directory `build(directory)` filled, built once per test run rather than once per test
    process: pytest-xdist's two processes would each build it, at half speed side by side. The
    first to ask builds it; the other waits on the lock, then reads what it built."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's, under xdist its processes'
    directory, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the kernel's: released when the process ends, however it ends
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)  # left by a process that failed half-way
            directory.mkdir()
            build(directory)
            done.touch()
    return directory


@pytest.fixture(scope="session")
def stand_in_teacher(parts, tmp_path_factory):
    """A CNN trained on the labels for 10 epochs: a fast stand-in for ResNet-18 (its .keras path)."""
    def build(directory):
        keras.utils.set_random_seed(0)
        teacher = plain_cnn((16, 32, 64), (2, 2, 2), hidden_units=64, name="stand_in_teacher")
        train = parts["train"]
        teacher.compile(cosine_adamw(3e-3, steps_for(len(train), 64, 10)),
                        keras.losses.BinaryCrossentropy(from_logits=True), metrics=multilabel_metrics())
        teacher.fit(make_dataset(train.maps, train.labels.astype("float32"), batch_size=64, shuffle=True),
                    epochs=10, verbose=0, shuffle=False)
        teacher.save(directory / "teacher.keras")
    return built_once(tmp_path_factory, "stand_in_teacher", build) / "teacher.keras"


@pytest.fixture(scope="session")
def teacher_logits(stand_in_teacher, parts, tmp_path_factory):
    return teacher_logits_cached(stand_in_teacher, parts, tmp_path_factory.mktemp("cache") / "cache.h5")


@pytest.fixture(scope="session")
def trained_student(parts, tmp_path_factory):
    """Net-1 trained on the labels for 30 epochs, saved, and converted to int8 for the 248 KB
    budget: (model, its directory, the `ModelCard`); the int8 model is in `directory / "out"`.

    At a peak learning rate of 1e-2, as the distillation job's, and long enough that few test maps
    sit near a decision that int8 rounding moves: at 3e-3 it read only 56% of them, and after 20
    epochs on the sparser donuts and Loc clusters 67%, with int8 decoding 11% of them unlike float
    (30 epochs: 84%, and 3.4% for seeds 0 and 1)."""
    def build(root):
        keras.utils.set_random_seed(0)
        model = build_student("net1", seed=0)
        train = parts["train"]
        model.compile(cosine_adamw(1e-2, steps_for(len(train), 64, 30)),
                      keras.losses.BinaryCrossentropy(from_logits=True), metrics=multilabel_metrics())
        model.fit(make_dataset(train.maps, train.labels.astype("float32"), batch_size=64, shuffle=True,
                               augment=True), epochs=30, verbose=0, shuffle=False)
        model.save(root / "net1.keras")
        export_model(model, root / "out", train.maps, name="net1", budget=BUDGETS["248KB"],
                     source_model=root / "net1.keras")
    root = built_once(tmp_path_factory, "net1", build)
    return load_model(root / "net1.keras"), root, ModelCard.read(root / "out" / CARD_FILE)


@pytest.fixture(scope="session")
def segclass_student(small_parts, tmp_path_factory):
    """The default segclass student (stridedseg), 4 epochs on the hard targets of 304 synthetic maps
    (under a minute), converted: (model, its directory, the `ModelCard`, the splits); the int8 model is in
    `directory / "out"`."""
    root = tmp_path_factory.mktemp("segclass")
    model = train_segclass("stridedseg", small_parts, root, alpha_cls=0, alpha_seg=0, alpha_feat=0, epochs=4,
                           batch_size=16, learning_rate=1e-2, verbose=0)
    card = export_model(model, root / "out", small_parts["train"].maps, name="stridedseg", budget=BUDGETS["248KB"],
                        source_model=root / "stridedseg.keras")
    return model, root, card, small_parts
