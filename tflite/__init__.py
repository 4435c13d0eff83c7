"""Deployment: int8 conversion, the TFLite Micro harness, the firmware's sources and runs.

Imports `kd_keras` first, which sets TensorFlow's logging up before TensorFlow is imported.
"""

import kd_keras  # noqa: F401
