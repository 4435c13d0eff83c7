"""Segmentation + classification models after Paper 2 (`../shared/papers/lightwafersegclassnet.md`).

Both take the raw die map, (52, 52, 1) float32 with values 0/1/2, and return a dict:
"mask" (52, 52, 1) logits of the defect mask (a die belongs to it when its logit > 0;
the MixedWM38 mask is the failed dies, `map == 2`) and "pattern" (38) logits over the
38 patterns of `kd_keras.data.labels` (softmax: exactly one pattern per map).

- `deeplab_teacher`: DeepLabV3+ on a ResNet-18-width backbone (basic blocks 2-2-2-2,
  64-128-256-512), trained from scratch at the native resolution: the map is padded to
  64x64 (with 0, the off-wafer value) so that strides divide it; a stride-2 7x7 stem and
  max-pool bring it to 16x16 (the low-level features), stages 2 and 3 to 4x4, stage 4
  keeps 4x4 with dilation 2 (output stride 16); ASPP (1x1, 3x3 at rates 1, 2, 3, and image
  pooling), the DeepLabV3+ decoder on the 16x16 low-level features (48 channels), then,
  our addition, a full-resolution refinement (the decoder's output upsampled to 64x64,
  concatenated with the input map, one 3x3 convolution) before the 1-channel mask head, and
  a 38-class head on the pooled last encoder features.
- `light_wafer_segclass_net`: Paper 2's student, a U-Net of depthwise-separable units
  (depthwise 3x3 and pointwise 1x1 as separate layers, then BatchNorm + ReLU). Encoder:
  ConvBlock (max-pool) 32 -> ConvBlock 64 -> GAPConvBlock (average-pool) 64 ->
  TerminalConvBlock (no pool) 64, from 56x56 (padded) down to 7x7; each block two units
  and spatial dropout, its skip taken after the last BatchNorm + ReLU. Decoder: nearest 2x
  upsampling (a nearest resize), concatenation with the skip, a 1x1 convolution that reduces
  the channels right after it, then one separable unit. The paper gives per-part parameter
  counts but not its channel widths; these are ours (`part_parameter_counts` reports ours
  next to the paper's).
- `strided_segclass_net` ("stridedseg"): ours, for a microcontroller's RAM. Paper 2's student
  needs a 608 KB tensor arena as int8: its full-resolution layers keep 32 to 96 channels at
  56x56. This one strides at once (52 -> 26 -> 13 -> 7) and decodes the mask from the 13x13
  features with only 8 channels at 52x52, next to the die map itself: a 78 KB arena.

Example:

>>> model = light_wafer_segclass_net()
>>> outputs = model(keras.ops.ones((2, 52, 52, 1)))
>>> tuple(outputs["mask"].shape), tuple(outputs["pattern"].shape)
((2, 52, 52, 1), (2, 38))
"""

import keras

from kd_keras.data.labels import NUM_PATTERNS
from kd_keras.models.registry import register_segclass_model
from kd_keras.models.students import DIE_SCALE

L2 = 1e-4
STUDENT_SIZE = 56  # the student pads 52 by 2 dies each side: 3 halvings to 7x7
TEACHER_SIZE = 64  # the teacher by 6: 4 halvings to 4x4
REFINE_FILTERS = 16  # the teacher's full-resolution mask refinement
FEATURES = "features"  # the layer whose pooled output feature distillation compares
MASK, PATTERN = "mask", "pattern"  # the models' two outputs
# Paper 2's table ("Revised", the PyTorch student): parameters per part.
PAPER_PART_PARAMETERS = {"encoder": 35_160, "decoder": 22_569, "classifier": 2_534, "total": 60_263}


def _pad(inputs, size):
    x = keras.layers.Rescaling(DIE_SCALE, name="die_scale")(inputs)
    return keras.layers.ZeroPadding2D((size - 52) // 2, name="pad")(x)


def _heads(mask_logits, features):
    """Crop the mask back to 52x52 (if padded); the pattern head on the pooled encoder features."""
    crop = (mask_logits.shape[1] - 52) // 2
    mask = (keras.layers.Cropping2D(crop, name=MASK) if crop else keras.layers.Identity(name=MASK))(mask_logits)
    pooled = keras.layers.GlobalAveragePooling2D(name="classifier_pool")(features)
    pooled = keras.layers.Dropout(0.2, name="classifier_dropout")(pooled)
    pattern = keras.layers.Dense(NUM_PATTERNS, name=PATTERN)(pooled)
    return {MASK: mask, PATTERN: pattern}


# --- Teacher ---------------------------------------------------------------------------------

def _conv_bn_relu(x, filters, kernel, name, strides=1, dilation=1, relu=True):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
                            use_bias=False, kernel_regularizer=keras.regularizers.L2(L2), name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters, strides, dilation, name):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn_relu(x, filters, 1, f"{name}_down", strides=strides, relu=False)
    x = _conv_bn_relu(x, filters, 3, f"{name}_a", strides=strides, dilation=dilation)
    x = _conv_bn_relu(x, filters, 3, f"{name}_b", dilation=dilation, relu=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, shortcut]))


@register_segclass_model("deeplab")
def deeplab_teacher(aspp_filters=128, decoder_filters=128):
    """DeepLabV3+ with a ResNet-18-width backbone and a 38-class head."""
    inputs = keras.Input((52, 52, 1), name="die_map")
    padded = _pad(inputs, TEACHER_SIZE)
    x = _conv_bn_relu(padded, 64, 7, "stem", strides=2)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)  # 16x16
    stages = ((64, 1, 1), (128, 2, 1), (256, 2, 1), (512, 1, 2))  # filters, stride, dilation
    for stage, (filters, strides, dilation) in enumerate(stages, start=1):
        x = _basic_block(x, filters, strides, dilation, f"stage{stage}_1")
        x = _basic_block(x, filters, 1, dilation, f"stage{stage}_2")
        if stage == 1:
            low_level = x  # 16x16
    features = keras.layers.Identity(name=FEATURES)(x)  # 4x4x512

    branches = [_conv_bn_relu(features, aspp_filters, 1, "aspp_1x1")]
    branches += [_conv_bn_relu(features, aspp_filters, 3, f"aspp_rate{rate}", dilation=rate) for rate in (1, 2, 3)]
    image = keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_image_pool")(features)
    image = _conv_bn_relu(image, aspp_filters, 1, "aspp_image")
    branches.append(keras.layers.UpSampling2D(features.shape[1], name="aspp_image_up")(image))
    x = keras.layers.Concatenate(name="aspp_concat")(branches)
    x = _conv_bn_relu(x, aspp_filters, 1, "aspp_project")
    x = keras.layers.Dropout(0.1, name="aspp_dropout")(x)

    x = keras.layers.UpSampling2D(4, interpolation="bilinear", name="decoder_up4")(x)  # 16x16
    low = _conv_bn_relu(low_level, 48, 1, "decoder_low_level")
    x = keras.layers.Concatenate(name="decoder_concat")([x, low])
    x = _conv_bn_relu(x, decoder_filters, 3, "decoder_a")
    x = _conv_bn_relu(x, decoder_filters, 3, "decoder_b")
    # A full-resolution refinement that DeepLabV3+ lacks: the mask is the failed dies, single
    # dies scattered over the wafer, which a decoder at a quarter of the resolution (upsampled
    # bilinearly) cannot draw; on the dev set it held the mask's Dice near 0.5. The paper
    # upsamples its maps to 224x224 instead, where a quarter is still 56x56.
    x = _conv_bn_relu(x, REFINE_FILTERS, 1, "decoder_reduce")
    x = keras.layers.UpSampling2D(4, interpolation="bilinear", name="decoder_up4_out")(x)  # 64x64
    x = keras.layers.Concatenate(name="decoder_refine_concat")([x, padded])
    x = _conv_bn_relu(x, REFINE_FILTERS, 3, "decoder_refine")
    mask_logits = keras.layers.Conv2D(1, 1, name="mask_logits")(x)
    return keras.Model(inputs, _heads(mask_logits, features), name="deeplab_teacher")


# --- Student ---------------------------------------------------------------------------------

def _separable_unit(x, filters, name, strides=1):
    """Depthwise 3x3 and pointwise 1x1 as separate layers, then BatchNorm + ReLU."""
    x = keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_depthwise")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pointwise")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _encoder_block(x, filters, pool, dropout, name):
    """ConvBlock (pool="max"), GAPConvBlock ("average") or TerminalConvBlock (None).

    Returns (output, skip): the skip is the block's features after its last BatchNorm + ReLU."""
    x = _separable_unit(x, filters, f"{name}_1")
    x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    skip = _separable_unit(x, filters, f"{name}_2")
    if pool == "max":
        return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(skip), skip
    if pool == "average":
        return keras.layers.AveragePooling2D(2, name=f"{name}_pool")(skip), skip
    return skip, skip


def _upsample(x, name):
    # Resizing, not UpSampling2D: Keras' nearest UpSampling2D repeats rows and columns,
    # which converts to TILE, an op TFLite Micro lacks; a nearest resize by exactly 2 is the
    # same function and converts to RESIZE_NEAREST_NEIGHBOR.
    return keras.layers.Resizing(2 * x.shape[1], 2 * x.shape[2], interpolation="nearest", name=name)(x)


def _decoder_block(x, skip, filters, name):
    x = _upsample(x, f"{name}_up")
    x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    # Reduce the channels with a 1x1 convolution right after the concatenation (Paper 2:
    # 89% fewer parameters than a 3x3 there), then one separable unit.
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_reduce")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_reduce_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_reduce_relu")(x)
    return _separable_unit(x, filters, f"{name}_refine")


@register_segclass_model("lightwafer")
def light_wafer_segclass_net(widths=(32, 64, 64, 64), dropout=0.1):
    """Paper 2's LightWaferSegClassNet for a 52x52 map: 62,736 parameters with the default
    widths (at most 64 channels, as in the paper)."""
    inputs = keras.Input((52, 52, 1), name="die_map")
    x = _pad(inputs, STUDENT_SIZE)
    skips = []
    for index, (filters, pool) in enumerate(zip(widths, ("max", "max", "average", None), strict=True), start=1):
        x, skip = _encoder_block(x, filters, pool, dropout, f"encoder{index}")
        skips.append(skip)
    features = keras.layers.Identity(name=FEATURES)(x)  # 7x7
    for index, (skip, filters) in enumerate(zip(skips[2::-1], widths[2::-1]), start=1):
        x = _decoder_block(x, skip, filters, f"decoder{index}")
    mask_logits = keras.layers.Conv2D(1, 1, name="decoder_mask_logits")(x)
    return keras.Model(inputs, _heads(mask_logits, features), name="light_wafer_segclass_net")


@register_segclass_model("stridedseg")
def strided_segclass_net(stem=24, middle=(48, 64), deep=(128, 192), decoder=16, full_resolution=8):
    """Our student for a microcontroller's RAM (51,231 parameters): LightWaferSegClassNet's parts, strided.

    Paper 2's student keeps 32 channels at full resolution and concatenates 96 there, which
    needs a 608 KB tensor arena. Here only the mask's last layer works at 52x52, with
    `full_resolution` channels; the encoder strides at once, like `separable8k`:

    - encoder: a 3x3 stride-2 convolution (`stem` channels, 26x26), separable units at 13x13
      (`middle`, the first strided) and at 7x7 (`deep`, likewise); the 7x7 features feed the
      38-pattern head.
    - decoder: the 13x13 features reduced to `decoder` channels, upsampled (nearest) to 26x26
      and concatenated with the stem's output, one separable unit (`full_resolution`
      channels), upsampled to 52x52 and concatenated with the die map itself, one 3x3
      convolution and the mask's 1x1. A failed die is a single die: the die map at full
      resolution lets the last layer draw it, so the coarse path only says which belong.
    """
    inputs = keras.Input((52, 52, 1), name="die_map")
    dies = keras.layers.Rescaling(DIE_SCALE, name="die_scale")(inputs)
    stem_out = _conv_bn_relu(dies, stem, 3, "encoder_stem", strides=2)  # 26x26
    x = _separable_unit(stem_out, middle[0], "encoder2_1", strides=2)  # 13x13
    middle_out = _separable_unit(x, middle[1], "encoder2_2")
    x = _separable_unit(middle_out, deep[0], "encoder3_1", strides=2)  # 7x7
    features = keras.layers.Identity(name=FEATURES)(_separable_unit(x, deep[1], "encoder3_2"))

    x = _conv_bn_relu(middle_out, decoder, 1, "decoder13_reduce")
    x = keras.layers.Concatenate(name="decoder26_concat")([_upsample(x, "decoder26_up"), stem_out])
    x = _separable_unit(x, full_resolution, "decoder26_refine")
    x = keras.layers.Concatenate(name="decoder52_concat")([_upsample(x, "decoder52_up"), dies])
    x = _conv_bn_relu(x, full_resolution, 3, "decoder52_refine")
    mask_logits = keras.layers.Conv2D(1, 1, name="decoder_mask_logits")(x)
    return keras.Model(inputs, _heads(mask_logits, features), name="strided_segclass_net")


def part_parameter_counts(model):
    """Parameters per part of a segmentation + classification model, as in Paper 2's table:
    {"encoder", "decoder", "classifier", "total"}. The classifier is the pattern head; the
    decoder every layer between the encoder features and the mask."""
    parts = {"encoder": 0, "decoder": 0, "classifier": 0}
    for layer in model.layers:
        if layer.name == "pattern":
            part = "classifier"
        elif layer.name.startswith(("decoder", "aspp", "mask")):
            part = "decoder"
        else:
            part = "encoder"
        parts[part] += layer.count_params()
    return {**parts, "total": model.count_params()}
