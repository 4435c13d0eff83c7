"""Full-integer (int8) post-training quantization of a Keras model, and what the result holds.

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
"""

import contextlib
import io
import warnings

import keras
import numpy as np
import tensorflow as tf

from kd_keras.data import MAP_SIZE, model_input

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
    model (what that buys in accuracy: README, Deployment)."""
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
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
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
