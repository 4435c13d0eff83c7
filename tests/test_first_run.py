"""benchmarks.first_run's reading of what the main job printed (the run itself is the benchmark's)."""

from benchmarks.first_run import framework_lines, time_report

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


def test_framework_lines_are_told_from_the_toolkit_s_own_and_from_time_s_report():
    stderr = "\n".join([
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796281110.926796   12075 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "Epoch 1/8\r 1/24 ━━━━ 0s - loss: 1.0\r24/24 ━━━━ 14s - loss: 0.9",
        "/site-packages/tensorflow/lite/python/convert.py:846: UserWarning: Statistics for quantized inputs",
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
        "distilling net1 (hinton loss)",
        '\tCommand being timed: "python -m kd_keras.distill"',
        "\tExit status: 0",
        "E0000 00:00:1.0 never read: after time's report"])
    assert framework_lines(stderr) == [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796281110.926796   12075 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "/site-packages/tensorflow/lite/python/convert.py:846: UserWarning: Statistics for quantized inputs",
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8"]


def test_time_report_gives_peak_memory_and_cpu_seconds():
    stderr = "\n".join(["Epoch 1/8", '\tCommand being timed: "python -m kd_keras.distill"',
                        "\tUser time (seconds): 512.25", "\tSystem time (seconds): 20.5",
                        "\tPercent of CPU this job got: 171%", "\tMaximum resident set size (kbytes): 1453056"])
    assert time_report(stderr) == {"peak_mib": 1419, "cpu_seconds": 532.8}
