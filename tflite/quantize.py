"""Full-integer (int8) post-training quantization of a Keras model, and what the result holds;
two edits of the converted flatbuffer: `strip_unread` (what no interpreter reads) and
`int4_weights` (chosen layers' weights as packed 4-bit values).

The model's input stays the raw die map (0 off-wafer, 1 good, 2 failed) of shape
(52, 52, 1): the representative maps span exactly those values, so the int8 input
quantization represents each of them exactly, and the model's own first layer does
any rescaling. Weights, activations, input and output are all int8.

Example:

>>> import numpy as np
>>> from kd_keras.models import build_student
>>> flatbuffer = convert_int8(build_student("net2", seed=0), np.ones((4, 52, 52), np.uint8))
>>> flatbuffer[4:8]  # a TFLite flatbuffer's file identifier
b'TFL3'
>>> layers = int4_layers(flatbuffer)  # (operator index, op, weights) of each layer that can take int4
>>> layers[0]
(0, 'CONV_2D', 54)
>>> int4 = int4_weights(flatbuffer, [index for index, _, _ in layers])
>>> len(flatbuffer) - len(int4) >= sum(weights for _, _, weights in layers) // 2 - 64  # two weights a byte
True
"""

import contextlib
import io
import warnings

import keras
import numpy as np
import tensorflow as tf

from kd_keras.data import MAP_SIZE, model_input
from kd_keras.framework_output import CONVERTER_LINES, c_stderr_without

REPRESENTATIVE_MAPS = 500
# The input range is [0, 2 * 255/254]: its int8 grid (scale 2/254, zero point -128) holds
# the die values 0, 1 and 2 exactly (-128, -1, 126); with [0, 2] (scale 2/255) a good die
# would fall between two steps.
INPUT_RANGE_MAX = 2.0 * 255 / 254


def convert_int8(model, representative_maps, seed=0, per_channel=True):
    """The int8 `.tflite` flatbuffer (bytes) of a Keras model taking (52, 52, 1) die maps.

    `representative_maps` are raw (N, 52, 52) maps from the training split; up to 500 of
    them, drawn with `seed`, calibrate the activation ranges.

    `per_channel=False` gives each weight tensor one scale instead of one per output
    channel. Per channel, the flatbuffer stores a float32 scale and an int64 zero point
    for each channel's weights, and again for the int32 biases until `strip_unread` drops
    those: 12 bytes a channel in the file `export_model` writes, a large share of a 21 KB
    model (what that buys in accuracy: benchmarks/README.md, "More model per byte")."""
    maps = np.asarray(representative_maps)
    if maps.ndim != 3 or maps.shape[1:] != (MAP_SIZE, MAP_SIZE) or len(maps) == 0:
        raise ValueError(f"representative maps must have shape (N, 52, 52) with N > 0, got {maps.shape}")
    chosen = np.random.default_rng(seed).permutation(len(maps))[:REPRESENTATIVE_MAPS]
    calibration = model_input(maps[chosen])
    # One corner die (off-wafer on every map) of one map carries the input range's maximum,
    # so the activation ranges stay those of real maps.
    calibration[0, 0, 0, 0] = INPUT_RANGE_MAX

    def representative_dataset():
        for wafer_map in calibration:
            yield [wafer_map[None]]

    # A fixed batch of one map: a dynamic batch costs SHAPE/STRIDED_SLICE/PACK ops per Flatten.
    single_map = keras.Input(batch_shape=(1, 52, 52, 1), name="die_map")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(single_map, model(single_map)))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # The converter offers this only as an attribute (set in its constructor), not an option.
    converter._experimental_disable_per_channel = not per_channel
    # Keras' export prints the SavedModel's signature to stdout: noise for our users. The
    # converter warns that the int8 input has no (mean, std) statistics: those are for graphs
    # trained with fake quantization; here the representative maps set the input's scale.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), c_stderr_without(CONVERTER_LINES):
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected", UserWarning)
        return converter.convert()


# The ops whose input 2 is an int32 bias.
_OPS_WITH_BIAS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_BIAS_INPUT = 2


def strip_unread(flatbuffer):
    """The flatbuffer without what the interpreters never read from a full-integer model, for
    the same outputs in fewer bytes of flash:

    - its strings (tensor and signature names: 'model/block_3/batch_normalization/...');
    - all but the first of a bias's per-channel scales and zero points. An int8 kernel takes
      a bias's scale to be input scale x weight scale and never reads it; FULLY_CONNECTED alone
      checks the first against them (`GetQuantizedConvolutionMultipler`), so the first stays.
      12 bytes a channel: 3,168 of separable8k's 19,128 bytes.

    TensorFlow Lite Micro would also take one zero point for all of a weight tensor's channels
    (they are all 0: 2,104 more bytes on separable8k), but LiteRT refuses a zero-point array
    shorter than its scales, so the weights keep theirs (tests/test_tflite.py checks that both
    interpreters give the same outputs as before)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(model)
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            name = flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex)
            if name not in _OPS_WITH_BIAS or len(operator.inputs) <= _BIAS_INPUT or operator.inputs[_BIAS_INPUT] < 0:
                continue
            bias = subgraph.tensors[operator.inputs[_BIAS_INPUT]]
            quantization = bias.quantization
            if bias.type == flatbuffer_utils.schema_fb.TensorType.INT32 and quantization is not None \
                    and quantization.scale is not None and len(quantization.scale) > 1:
                quantization.scale, quantization.zeroPoint = quantization.scale[:1], quantization.zeroPoint[:1]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# TFLite Micro reads packed int4 weights in these ops with one scale per output channel (as ours
# are); FULLY_CONNECTED takes int4 weights only with one scale per tensor, so it keeps int8.
INT4_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
INT4_MAX = 7  # symmetric, as int8 weights use [-127, 127]: zero point 0 for every channel
# Each channel's 4-bit step is chosen among these fractions of its largest weight, for the least
# squared error: clipping a few outliers buys a finer step for all the other weights.
_CLIP_FRACTIONS = np.linspace(0.5, 1.0, 26)


def int4_layers(flatbuffer):
    """[(operator index, op name, weight count)] of the operators whose int8 weights `int4_weights`
    can store as int4, in execution order."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    layers = []
    for index, operator in enumerate(subgraph.operators):
        name = flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex)
        weights = subgraph.tensors[operator.inputs[1]] if name in INT4_OPS else None
        if weights is not None and weights.type == flatbuffer_utils.schema_fb.TensorType.INT8:
            layers.append((index, name, int(np.prod(weights.shape))))
    return layers


def _int4_step(channel):
    """The 4-bit step (in int8 units) for one output channel's int8 weights: least squared error."""
    peak = max(float(np.abs(channel).max()), 1.0)
    steps = peak * _CLIP_FRACTIONS / INT4_MAX
    errors = [np.sum((np.clip(np.round(channel / step), -INT4_MAX, INT4_MAX) * step - channel) ** 2) for step in steps]
    return steps[int(np.argmin(errors))]


def int4_weights(flatbuffer, operators, pack=True):
    """The int8 flatbuffer with the weights of `operators` (indices from `int4_layers`) requantized
    to 4 bits, per output channel, and stored packed: two weights a byte, the first in the low
    nibble, as TFLite Micro and LiteRT unpack them (type INT4). Activations stay int8.

    Each channel's new scale is its int8 scale times its 4-bit step (`_int4_step`); its int32
    bias is divided by the same step, so that it keeps the scale input x weight that the kernels
    assume. `pack=False` stores the same 4-bit values as int8 instead: the model that the packed
    one must compute exactly (the tests check both interpreters).

    Raises ValueError naming an operator that cannot take int4 weights."""
    from tensorflow.lite.tools import flatbuffer_utils

    allowed = {index: name for index, name, _ in int4_layers(flatbuffer)}
    refused = [index for index in operators if index not in allowed]
    if refused:
        raise ValueError(f"operators {refused} cannot take int4 weights: only int8 {' and '.join(INT4_OPS)} "
                         f"weights can (operators {sorted(allowed)} here)")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    for index in sorted(set(operators)):
        operator = subgraph.operators[index]
        weights = subgraph.tensors[operator.inputs[1]]
        values = np.frombuffer(bytes(model.buffers[weights.buffer].data), np.int8).reshape(weights.shape)
        axis = weights.quantization.quantizedDimension
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).astype(np.float64)
        steps = np.array([_int4_step(channel) for channel in channels])
        shape = [1] * values.ndim
        shape[axis] = -1
        int4 = np.clip(np.round(values / steps.reshape(shape)), -INT4_MAX, INT4_MAX).astype(np.int8).ravel()
        scales = np.asarray(weights.quantization.scale, np.float64) * steps
        weights.quantization.scale = scales.astype(np.float32).tolist()
        if len(operator.inputs) > _BIAS_INPUT and operator.inputs[_BIAS_INPUT] >= 0:
            bias = subgraph.tensors[operator.inputs[_BIAS_INPUT]]
            bias_values = np.frombuffer(bytes(model.buffers[bias.buffer].data), np.int32)
            model.buffers[bias.buffer].data = np.frombuffer(
                np.round(bias_values / steps).astype(np.int32).tobytes(), np.uint8)
            input_scale = subgraph.tensors[operator.inputs[0]].quantization.scale[0]
            kept = len(bias.quantization.scale)  # one after `strip_unread`, else one a channel
            bias.quantization.scale = (input_scale * scales[:kept]).astype(np.float32).tolist()
        if pack:
            nibbles = (np.append(int4, 0) if len(int4) % 2 else int4).astype(np.uint8) & 0x0F
            int4 = nibbles[0::2] | (nibbles[1::2] << 4)
            weights.type = flatbuffer_utils.schema_fb.TensorType.INT4
        model.buffers[weights.buffer].data = np.frombuffer(int4.tobytes(), np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
