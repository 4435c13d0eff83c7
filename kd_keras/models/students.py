"""The students of Paper 1 (`../shared/papers/kd-low-memory-wafer-2303.13974.md`), and ours.

Net-1 ("248 KB"): three 3x3 conv layers with 6, 16 and 32 kernels, each followed by 2x2
max-pooling, then a 48-unit hidden layer: 61,316 parameters (245 KB as float32; the
paper says about 60K). Net-2 ("21 KB"): two conv layers with 6 and 16 kernels, pooled
2x2 then 4x4, then the logits: 5,556 parameters (21.7 KB as float32; the paper says
about 4K, with the same 21 KB). The paper gives only kernel counts and sizes; the
pooling and dense widths here are ours, chosen to land on the paper's file sizes.
"""

import keras

from kd_keras.models.registry import register_student

# Die values 0/1/2 become 0/0.5/1 inside every model, so firmware feeds raw die maps.
DIE_SCALE = 0.5


def plain_cnn(widths, pool_sizes, hidden_units=None, name=None):
    """Conv(3x3, ReLU) + max-pool blocks, flatten, an optional hidden layer, 8 logits."""
    layers = [keras.Input((52, 52, 1)), keras.layers.Rescaling(DIE_SCALE, name="die_scale")]
    for width, pool in zip(widths, pool_sizes, strict=True):
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D(pool)]
    layers.append(keras.layers.Flatten())
    if hidden_units:
        layers.append(keras.layers.Dense(hidden_units, activation="relu"))
    layers.append(keras.layers.Dense(8, name="logits"))
    return keras.Sequential(layers, name=name)


@register_student("net1")
def net1():
    """Paper 1's 248 KB student: conv 6-16-32, hidden 48 (61,316 parameters)."""
    return plain_cnn((6, 16, 32), (2, 2, 2), hidden_units=48, name="net1")


@register_student("net2")
def net2():
    """Paper 1's 21 KB student: conv 6-16 (5,556 parameters)."""
    return plain_cnn((6, 16), (2, 4), name="net2")


def _conv_bn_relu(layer):
    return [layer, keras.layers.BatchNormalization(), keras.layers.ReLU()]


def vgg_cnn(base_width, layers_per_stage=(1, 2, 2, 2), dropout=0.2, name=None):
    """3x3 conv + BatchNorm + ReLU layers in four stages: `base_width` channels at 52x52, then 2x,
    4x and 8x that width, each later stage opening with a stride-2 layer; global average pooling,
    8 logits. The `vgg7` and `vgg9` teachers (see `kd_keras.models.teacher`) and the `vgg19k`,
    `vgg74k`, `vgg225k` students."""
    layers = [keras.Input((52, 52, 1)), keras.layers.Rescaling(DIE_SCALE, name="die_scale")]
    for stage, depth in enumerate(layers_per_stage):
        for index in range(depth):
            stride = 2 if stage > 0 and index == 0 else 1
            layers += _conv_bn_relu(keras.layers.Conv2D(base_width * 2**stage, 3, strides=stride, padding="same",
                                                        use_bias=False, kernel_regularizer=keras.regularizers.L2(1e-4)))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(dropout),
               keras.layers.Dense(8, name="logits")]
    return keras.Sequential(layers, name=name)


def strided_separable_cnn(stem_widths, separable_blocks, name=None):
    """3x3 stride-2 convs, then depthwise-separable blocks (3x3 depthwise, 1x1 pointwise, each
    with BatchNorm + ReLU), global average pooling, 8 logits.

    `separable_blocks`: (width, stride) pairs. Striding at once keeps the largest activation,
    hence the tensor arena, small: 52x52 maps become 26x26 after the first layer. BatchNorm
    folds into the convolutions when converted to int8."""
    layers = [keras.Input((52, 52, 1)), keras.layers.Rescaling(DIE_SCALE, name="die_scale")]
    for width in stem_widths:
        layers += _conv_bn_relu(keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False))
    for width, stride in separable_blocks:
        layers += _conv_bn_relu(keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False))
        layers += _conv_bn_relu(keras.layers.Conv2D(width, 1, use_bias=False))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, name="logits")]
    return keras.Sequential(layers, name=name)


@register_student("separable8k")
def separable8k():
    """A student for the 21 KB budget (8,784 parameters with BatchNorm): conv 8-16, separable 32-48-64.
    Shipped as models/kd-21kb (its card and `benchmarks/results/best_per_budget` hold its figures)."""
    return strided_separable_cnn((8, 16), ((32, 1), (48, 2), (64, 1)), name="separable8k")


@register_student("vgg19k")
def vgg19k():
    """`vgg_cnn` 4-8-16-32 (18,908 parameters): the small end of the family's size sweep."""
    return vgg_cnn(4, name="vgg19k")


@register_student("vgg74k")
def vgg74k():
    """`vgg_cnn` 8-16-32-64 (74,096 parameters): the middle of the family's size sweep."""
    return vgg_cnn(8, name="vgg74k")


@register_student("vgg225k")
def vgg225k():
    """A student for the 248 KB budget: `vgg_cnn` 14-28-56-112 (224,918 parameters); as int8 it
    fits the budget's flash and arena (tests/test_models.py). Shipped as models/kd-248kb."""
    return vgg_cnn(14, name="vgg225k")
