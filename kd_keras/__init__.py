"""Wafer-defect classifiers for microcontrollers: data, teachers, knowledge distillation.

The pipeline, one subpackage or module per step: `kd_keras.data` (MixedWM38 files,
synthetic maps, splits, input pipelines) -> models -> distillation -> `tflite` (int8
conversion and the TFLite Micro harness) -> `firmware_stub`.
"""

# First, so that TensorFlow's own output is set up before anything imports it.
from kd_keras import framework_output  # noqa: F401
