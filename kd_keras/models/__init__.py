"""Models: registries of teachers (ResNet-18, vgg7), of tiny students, and of Paper 2's
segmentation + classification models (`kd_keras.models.segclass`: a defect mask and 38
pattern logits; `build_segclass_model("deeplab" | "lightwafer" | "stridedseg")`).

Every model takes the raw die map, float32 of shape (52, 52, 1) with values 0, 1, 2,
and returns 8 defect logits (multi-label: apply a sigmoid per defect). A new student is
one small function registered under a name, selectable from the command line:

>>> import keras
>>> @register_student("tiny")
... def tiny():
...     '''One conv layer: the smallest thing that can be distilled.'''
...     return keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Conv2D(4, 3),
...                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8)])
>>> build_student("tiny").count_params()
80
>>> "tiny" in student_names()
True
"""

from kd_keras.models.registry import (
    build_segclass_model, build_student, build_teacher, register_segclass_model, register_student,
    register_teacher, segclass_model_names, student_names, teacher_names,
)
from kd_keras.models import segclass  # noqa: F401  (registers the segmentation + classification models)
from kd_keras.models.students import DIE_SCALE
from kd_keras.models.teacher import DihedralMean, ensemble_of, resnet18, teacher_title

__all__ = ["DIE_SCALE", "DihedralMean", "build_segclass_model", "build_student", "build_teacher", "ensemble_of",
           "register_segclass_model", "register_student", "register_teacher", "resnet18",
           "segclass_model_names", "student_names", "teacher_names", "teacher_title"]
