"""Wafer-defect classifiers for microcontrollers: data, teachers, knowledge distillation.

The pipeline, one subpackage or module per step: `kd_keras.data` (MixedWM38 files,
synthetic maps, splits, input pipelines) -> models -> distillation -> `tflite` (int8
conversion and the TFLite Micro harness) -> `firmware_stub`.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) hides our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
