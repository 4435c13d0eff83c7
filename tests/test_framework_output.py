"""What TensorFlow prints that is not ours stays off the screen; everything else reaches it."""

import os
import subprocess
import sys

import numpy as np
import pytest

from kd_keras.models import build_student
from kd_keras.framework_output import CONVERTER_LINES, TENSORFLOW_IMPORT_LINES, c_stderr_without
from tests.helpers import REPO
from tflite.quantize import convert_int8

TIER = "unit"  # tests marked with no tier of their own (conftest.py)

CUDA_PROBE = ("I0000 00:00:1796515698.475641   29917 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.")


def test_only_the_named_lines_are_dropped_and_the_rest_is_written_back_in_order(capfd):
    with c_stderr_without(TENSORFLOW_IMPORT_LINES + CONVERTER_LINES):
        os.write(2, b"first\n")
        os.write(2, f"{CUDA_PROBE}\n".encode())
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n")
        os.write(2, f"{CUDA_PROBE} and more\n".encode())  # not the whole line: kept
    assert capfd.readouterr().err == f"first\n{CUDA_PROBE} and more\n"


def test_what_was_printed_is_written_back_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError), c_stderr_without([r"noise"]):
        os.write(2, b"noise\nwhy it failed\n")
        raise RuntimeError("failed")
    assert capfd.readouterr().err == "why it failed\n"


def _stderr_of(code, level=None):
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        environment["TF_CPP_MIN_LOG_LEVEL"] = level
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                            check=True)
    return result.stderr


@pytest.mark.integration
def test_importing_tensorflow_through_the_toolkit_prints_nothing():
    assert _stderr_of("import kd_keras, keras, tensorflow") == ""


@pytest.mark.integration
def test_tf_cpp_min_log_level_0_shows_the_cuda_probe_again():
    assert (_stderr_of("import kd_keras, tensorflow", level="0").count("cudart_stub")
            == _stderr_of("import tensorflow", level="0").count("cudart_stub"))


@pytest.mark.integration
def test_converting_a_model_prints_no_converter_chatter(capfd):
    flatbuffer = convert_int8(build_student("net2", seed=0), np.ones((4, 52, 52), np.uint8))
    assert flatbuffer[4:8] == b"TFL3"
    assert "fully_quantize" not in capfd.readouterr().err
