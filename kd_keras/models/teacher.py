"""Teachers: ResNet-18 (Paper 1's), and VGG-style CNNs as accurate and many times cheaper.

- `resnet18`: basic blocks 2-2-2-2, widths 64-128-256-512. It keeps the ImageNet stem (7x7
  stride-2 conv + 3x3 stride-2 max-pool): a 52x52 map becomes 13x13 before the first block.
  A stride-1 stem is 14x slower on a CPU (see `../shared/stack-notes.md`).
- `vgg7`: seven 3x3 conv + BatchNorm + ReLU layers, 16 channels at full resolution, then
  32-64-128 in stride-2/stride-1 pairs (293,336 parameters): as accurate on the dev set as
  ResNet-18, many times faster to train.
- `vgg9`: vgg7 with a second 16-channel layer at 52x52 and a third 32-channel one at 26x26
  (305,048 parameters).

How they compare on the real dev set: benchmarks/README.md, and `benchmarks/results/`
(`teacher_ceiling`, `best_per_budget`, `paper1_mixedwm38`).
"""

import keras
from keras import ops

from kd_keras.models.registry import register_teacher
from kd_keras.models.students import DIE_SCALE, vgg_cnn

L2 = 1e-4


def _conv_bn(x, filters, kernel, strides=1, relu=True, name=None):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                            kernel_regularizer=keras.regularizers.L2(L2), name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters, strides, name):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, relu=False, name=f"{name}_down")
    x = _conv_bn(x, filters, 3, strides, name=f"{name}_a")
    x = _conv_bn(x, filters, 3, 1, relu=False, name=f"{name}_b")
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, shortcut]))


@register_teacher("resnet18")
def resnet18(dropout=0.2):
    """ResNet-18 for a (52, 52, 1) die map, 8 logits (about 11.2M parameters)."""
    inputs = keras.Input((52, 52, 1), name="die_map")
    x = keras.layers.Rescaling(DIE_SCALE, name="die_scale")(inputs)
    x = _conv_bn(x, 64, 7, 2, name="stem")
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    for stage, (filters, strides) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
        x = _basic_block(x, filters, strides, name=f"stage{stage}_1")
        x = _basic_block(x, filters, 1, name=f"stage{stage}_2")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(8, name="logits")(x), name="resnet18_teacher")


@register_teacher("vgg7")
def vgg7():
    """The cheap teacher: `vgg_cnn` 16-32-64-128 (293,336 parameters)."""
    return vgg_cnn(16, name="vgg7_teacher")


@register_teacher("vgg9")
def vgg9():
    """vgg7 with one more layer at 52x52 and one more at 26x26 (305,048 parameters): more
    of the network sees faint scratches and small local clusters before they are
    downsampled away."""
    return vgg_cnn(16, layers_per_stage=(2, 3, 2, 2), name="vgg9_teacher")


ENSEMBLE_NAME = "ensemble_teacher"


def ensemble_of(teachers):
    """One teacher of several classifiers: the mean of their 8 defect logits, as one Keras
    model that saves, loads in safe mode and teaches like any teacher (`python -m
    kd_keras.ensemble`).

    `teachers`: classifiers (`kd_keras.tasks.is_classifier`; `kd_keras.jobs.run_ensemble_job`
    refuses any other model, naming its file). The logits, not the probabilities, are averaged:
    as in the teacher-ceiling benchmark, and so that a student's temperature acts on the mean as
    it does on one teacher's logits. The teachers are renamed `member_<i>` (a model's layers
    need distinct names).

    >>> import numpy as np
    >>> def net(seed):
    ...     return keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(8, kernel_initializer=keras.initializers.GlorotUniform(seed))])
    >>> first, second = net(0), net(1)
    >>> maps = np.random.default_rng(0).integers(0, 3, (2, 52, 52, 1)).astype("float32")
    >>> mean = (first.predict(maps, verbose=0) + second.predict(maps, verbose=0)) / 2
    >>> bool(np.allclose(ensemble_of([first, second]).predict(maps, verbose=0), mean, atol=1e-5))
    True
    >>> ensemble_of([first])
    Traceback (most recent call last):
    ...
    ValueError: an ensemble needs at least 2 teachers, got 1
    """
    if len(teachers) < 2:
        raise ValueError(f"an ensemble needs at least 2 teachers, got {len(teachers)}")
    maps = keras.Input((52, 52, 1), name="die_map")
    for index, teacher in enumerate(teachers):
        teacher.name = f"member_{index}"
    mean = keras.layers.Average(name="mean_logits")([teacher(maps) for teacher in teachers])
    return keras.Model(maps, mean, name=ENSEMBLE_NAME)


# Model name -> how reports call the teacher.
TEACHER_TITLES = {"resnet18_teacher": "ResNet-18", "vgg7_teacher": "vgg7", "vgg9_teacher": "vgg9",
                  "deeplab_teacher": "DeepLabV3+"}


def teacher_title(model):
    """'ResNet-18', 'vgg7', 'ensemble of 3 teachers', or the model's own name for a teacher
    from elsewhere; adds ', mean of 8 views' for a `DihedralMean`."""
    if isinstance(model, DihedralMean):
        return f"{teacher_title(model.inner)}, mean of 8 views"
    if model.name == ENSEMBLE_NAME:
        return f"ensemble of {sum(isinstance(layer, keras.Model) for layer in model.layers)} teachers"
    return TEACHER_TITLES.get(model.name, model.name)


class DihedralMean(keras.Model):
    """A model's logits averaged over the 8 rotations and reflections of each input map.

    The mean over all 8 is the same for a map and for any rotated or flipped copy of it:
    a rotation-invariant teacher, and on the dev set a more accurate one (README). It costs
    8 forward passes, so its logits are computed once and cached.

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Conv2D(2, 3),
    ...                           keras.layers.Flatten(), keras.layers.Dense(8)])
    >>> maps = np.random.default_rng(0).integers(0, 3, (2, 52, 52, 1)).astype("float32")
    >>> turned = np.rot90(maps, 1, axes=(1, 2))
    >>> teacher = DihedralMean(model)
    >>> bool(np.allclose(teacher(maps), teacher(turned), atol=1e-5))
    True
    """

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, maps, training=False):
        views, x = [], maps
        for _ in range(4):
            views += [x, ops.flip(x, axis=2)]
            x = ops.flip(ops.transpose(x, (0, 2, 1, 3)), axis=1)  # a quarter turn
        return ops.mean(ops.stack([self.inner(view, training=training) for view in views]), axis=0)
