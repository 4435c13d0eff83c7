"""Wafer-defect classifiers for microcontrollers: data, teachers, knowledge distillation.

The pipeline, one subpackage or module per step: `kd_keras.data` (MixedWM38 files,
synthetic maps, splits, input pipelines) -> models -> distillation -> `tflite` (int8
conversion and the TFLite Micro harness) -> `firmware_stub`.
"""

import logging
import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) hides our own output. Level 3
# keeps only FATAL: its ERROR lines on a CPU machine are the failed CUDA probe and oneDNN's note
# that uint8 ops fall back to Eigen, and a real error reaches Python as an exception anyway.
# TF_CPP_MIN_LOG_LEVEL=0 in the environment shows everything again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _OneTracePerModel(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning, a false alarm here.

    TensorFlow counts the traces of a function by its code object, and every Keras model's
    train and predict step share one code object: a job that trains or evaluates several
    models (a teacher, its students, each on the test and the rotated test maps) traces each
    model's step once, and TensorFlow reads those as one function retraced in a loop."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_OneTracePerModel())
