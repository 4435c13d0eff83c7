import keras
import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps
from kd_keras.models import (
    DihedralMean, build_student, build_teacher, register_student, resnet18, student_names, teacher_names,
    teacher_title,
)
from tflite.budget import BUDGETS
from tflite.export import int8_flatbuffer
from tflite.micro import Int8Model

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@pytest.mark.parametrize("name, parameters", [("net1", 61_316), ("net2", 5_556)])
def test_paper_students_have_the_expected_size(name, parameters):
    model = build_student(name, seed=0)
    assert model.count_params() == parameters
    # The paper's budgets are float32 file sizes: 248 KB and 21 KB.
    assert {"net1": 230_000 < 4 * parameters < 254_000, "net2": 4 * parameters < 23_000}[name]
    assert model(np.zeros((3, 52, 52, 1), "float32")).shape == (3, 8)


@pytest.mark.integration
@pytest.mark.parametrize("name, parameters, budget, ops", [
    ("separable8k", 8_784, BUDGETS["21KB"], {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"}),
    ("vgg225k", 224_918, BUDGETS["248KB"], {"CONV_2D", "MEAN", "FULLY_CONNECTED"}),
])
def test_our_students_fit_their_budget_and_arena_as_int8(name, parameters, budget, ops):
    model = build_student(name, seed=0)
    assert model.count_params() == parameters
    assert model(np.zeros((3, 52, 52, 1), "float32")).shape == (3, 8)
    int8 = Int8Model(int8_flatbuffer(model, generate_wafer_maps(38, seed=0).maps))
    assert len(int8.flatbuffer) <= budget.flash_bytes and int8.arena_bytes() <= budget.arena_bytes
    assert set(int8.ops) == ops


def test_teacher_is_resnet18():
    teacher = resnet18()
    assert teacher.count_params() == 11_183_944
    assert sum(layer.name.endswith("_add") for layer in teacher.layers) == 8  # 2-2-2-2 basic blocks
    assert teacher(np.zeros((2, 52, 52, 1), "float32")).shape == (2, 8)


def test_teachers_are_registered_by_name():
    assert teacher_names() == ["resnet18", "vgg7", "vgg9"]
    vgg7 = build_teacher("vgg7", seed=0)
    assert vgg7.count_params() == 293_336
    assert vgg7(np.zeros((2, 52, 52, 1), "float32")).shape == (2, 8)
    assert teacher_title(vgg7) == "vgg7" and teacher_title(DihedralMean(vgg7)) == "vgg7, mean of 8 views"
    vgg9 = build_teacher("vgg9", seed=0)
    assert vgg9.count_params() == 305_048 and teacher_title(vgg9) == "vgg9"
    # Two layers more than vgg7: one at 52x52, one at 26x26.
    full_resolution = [layer for layer in vgg9.layers if isinstance(layer, keras.layers.Conv2D)
                       and layer.output.shape[1:3] == (52, 52)]
    assert len(full_resolution) == 2 and len([layer for layer in vgg9.layers
                                              if isinstance(layer, keras.layers.Conv2D)]) == 9
    with pytest.raises(ValueError, match="unknown teacher 'resnet50'; choose one of resnet18, vgg7, vgg9"):
        build_teacher("resnet50")


def test_same_seed_same_initial_weights():
    a, b = build_student("net2", seed=3), build_student("net2", seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_unknown_and_duplicate_students_are_rejected():
    with pytest.raises(ValueError, match="unknown student 'net9'; choose one of .*net1, net2"):
        build_student("net9")
    with pytest.raises(ValueError, match="'net1' is already registered"):
        register_student("net1")(lambda: None)
    assert {"net1", "net2"} <= set(student_names())
