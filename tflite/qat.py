"""Quantization-aware fine-tuning (QAT) with tensorflow-model-optimization.

tfmot works only on tf_keras (Keras 2) models, and importing it switches `tf.keras` to
tf_keras for the whole process (see `../shared/stack-notes.md`): this module is imported
only on the `--qat` path. It rebuilds a Keras 3 `Sequential` student layer by layer in
tf_keras, with its weights; a leading `Rescaling` (tfmot cannot quantize it) is folded
into the next layer's kernel, so the int8 model still takes raw die values. Its activation
ranges are calibrated on training maps (`calibrate_ranges`); the student is then
fine-tuned under fake quantization to reproduce its own float logits (no labels and no
teacher needed), and converted to full int8.

Used by `python -m tflite.convert --qat`; tested in a subprocess (tests/test_tflite.py),
since importing it changes `tf.keras` for the rest of the process.
"""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from tflite.quantize import INPUT_RANGE_MAX

# Keras 3 config keys that tf_keras does not know; the weights are copied anyway.
_KERAS3_ONLY = ("dtype", "quantization_config")


def _tf_keras_config(layer):
    return {key: value for key, value in layer.get_config().items()
            if key not in _KERAS3_ONLY and not key.endswith(("_initializer", "_regularizer", "_constraint"))}


def to_tf_keras(model):
    """The same network as a tf_keras `Sequential`, with the same weights."""
    layers, weights, scale = [tf_keras.Input(model.input_shape[1:])], [], 1.0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Rescaling":
            if getattr(layer, "offset", 0.0) or not isinstance(layer.scale, (int, float)):
                raise ValueError(f"QAT: cannot fold {layer.name} (only a scalar scale without offset)")
            scale *= float(layer.scale)
            continue
        if not hasattr(tf_keras.layers, kind):
            raise ValueError(f"QAT: tf_keras has no layer {kind} ({layer.name})")
        layers.append(getattr(tf_keras.layers, kind).from_config(_tf_keras_config(layer)))
        layer_weights = layer.get_weights()
        if layer_weights and scale != 1.0:
            layer_weights[0] = layer_weights[0] * scale  # x * s through a linear layer: kernel * s
            scale = 1.0
        weights.extend(layer_weights)
    if scale != 1.0:
        raise ValueError("QAT: a Rescaling layer with no weighted layer after it")
    rebuilt = tf_keras.Sequential(layers)
    rebuilt.set_weights(weights)
    return rebuilt


# tfmot's MovingAverageQuantizer (layer activations) starts every range at [-6, 6] and moves
# it 0.1% per training step (its decay, 0.999, is hard-coded): after a few hundred steps the
# ranges are still about [-5, 5] and most int8 steps are wasted (measured: QAT 44.6% against
# 57.1% for post-training quantization on synthetic maps). tfmot has no calibration call.
_EMA_DECAY = 0.999
CALIBRATION_MAPS = 500
_EMA_RANGES = ("post_activation_min", "post_activation_max", "output_min", "output_max")


def calibrate_ranges(quantized, maps):
    """Set each activation range of a tfmot model to its range on `maps` (as PTQ does).

    A training-mode call moves a range from r to `decay * r + (1 - decay) * batch range`
    and quantizes with the moved range; solving that for the batch range gives it exactly.
    One pass per layer, so each layer is calibrated on inputs already quantized with
    calibrated ranges upstream."""
    ranges = [v for v in quantized.non_trainable_variables if v.name.split("/")[-1].split(":")[0] in _EMA_RANGES]
    for variable in quantized.non_trainable_variables:
        if "quantize_layer_max" in variable.name:  # die values 0/1/2 exactly representable, as in PTQ
            variable.assign(INPUT_RANGE_MAX)
    for _ in quantized.layers:
        before = [variable.numpy() for variable in ranges]
        quantized(maps, training=True)
        for variable, previous in zip(ranges, before):
            variable.assign((variable.numpy() - _EMA_DECAY * previous) / (1 - _EMA_DECAY))


def quantization_aware_finetune(model, train_maps, epochs=3, learning_rate=1e-4, batch_size=128, seed=0):
    """Fine-tune a QAT copy of `model` to reproduce its float logits; return the int8 flatbuffer."""
    tf_keras.utils.set_random_seed(seed)
    maps = np.asarray(train_maps, np.float32)[..., None]
    targets = model.predict(maps, batch_size=512, verbose=0)
    quantized = tfmot.quantization.keras.quantize_model(to_tf_keras(model))
    calibrate_ranges(quantized, maps[np.random.default_rng(seed).permutation(len(maps))[:CALIBRATION_MAPS]])
    quantized.compile(tf_keras.optimizers.Adam(learning_rate), loss=tf_keras.losses.MeanSquaredError())
    quantized.fit(maps, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2)
    converter = tf.lite.TFLiteConverter.from_keras_model(quantized)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()
