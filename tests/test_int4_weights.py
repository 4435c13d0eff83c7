"""Packed int4 weights (`tflite.quantize.int4_weights`) and the benchmark that chooses which layers take them."""

import numpy as np
import pytest

from benchmarks.int4_weights import choose_plan
from benchmarks.int4_weights import main as int4_benchmark
from kd_keras.fileio import read_json
from kd_keras.tasks import MULTILABEL
from tests.helpers import npz_of
from tflite.micro import Int8Model
from tflite.quantize import INT4_MAX, int4_layers, int4_weights

TIER = "integration"  # tests marked with no tier of their own (conftest.py)


def weight_tensors(flatbuffer):
    """[(values as stored, scales)] of each conv layer's weights, in execution order."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    tensors = [subgraph.tensors[subgraph.operators[index].inputs[1]] for index, _, _ in int4_layers(flatbuffer)]
    return [(np.frombuffer(bytes(model.buffers[t.buffer].data), np.int8).reshape(t.shape),
             np.asarray(t.quantization.scale)) for t in tensors]


def test_packed_int4_weights_compute_what_their_values_stored_as_int8_compute(trained_student, parts):
    _, root, _ = trained_student
    int8 = Int8Model((root / "out" / "model.tflite").read_bytes())
    layers = int4_layers(int8.flatbuffer)
    assert [op for _, op, _ in layers] == ["CONV_2D"] * 3  # Net-1's FULLY_CONNECTED keeps int8
    operators = [index for index, _, _ in layers]
    packed = Int8Model(int4_weights(int8.flatbuffer, operators))
    unpacked = Int8Model(int4_weights(int8.flatbuffer, operators, pack=False))
    maps = parts["test"].maps[:40]
    assert packed.same_outputs(unpacked, maps) == {"tflite_micro": True, "litert": True}
    # Two weights a byte: half of every conv weight's byte saved (less the flatbuffer's padding).
    weights = sum(count for _, _, count in layers)
    assert len(int8.flatbuffer) - len(packed.flatbuffer) >= 0.95 * weights / 2
    assert len(unpacked.flatbuffer) == len(int8.flatbuffer)
    # The model still reads maps mostly as int8 does: 4 bits move some decisions, not most.
    agree = np.mean(np.all((packed.outputs(maps)[MULTILABEL] > 0) == (int8.outputs(maps)[MULTILABEL] > 0), axis=-1))
    assert agree > 0.5


def test_int4_values_are_the_int8_weights_on_a_coarser_grid(trained_student):
    _, root, _ = trained_student
    flatbuffer = (root / "out" / "model.tflite").read_bytes()
    first, _, _ = int4_layers(flatbuffer)[0]
    (before, scales), *untouched = weight_tensors(flatbuffer)
    (after, new_scales), *still = weight_tensors(int4_weights(flatbuffer, [first], pack=False))
    assert np.abs(after).max() <= INT4_MAX and np.abs(after).max() == INT4_MAX
    assert np.all(new_scales > scales)  # each channel's step grew by its own factor
    channels = len(scales)  # a CONV_2D's weights are stored output channel first
    weights = before.reshape(channels, -1) * scales[:, None]
    step = np.broadcast_to(new_scales[:, None], weights.shape)
    moved = np.abs(after.reshape(channels, -1) * step - weights)
    kept = np.abs(weights) <= INT4_MAX * step  # the rest were clipped to the channel's largest step
    assert np.all(moved[kept] <= step[kept] / 2 * (1 + 1e-5)) and kept.mean() > 0.9
    for (a, _), (b, _) in zip(untouched, still, strict=True):  # the other layers keep their int8 weights
        np.testing.assert_array_equal(a, b)


def test_an_operator_that_cannot_take_int4_weights_is_named(trained_student):
    _, root, _ = trained_student
    flatbuffer = (root / "out" / "model.tflite").read_bytes()
    fully_connected = Int8Model(flatbuffer).ops.index("FULLY_CONNECTED")
    with pytest.raises(ValueError, match=rf"operators \[{fully_connected}\] cannot take int4 weights: only int8 "
                                         r"CONV_2D and DEPTHWISE_CONV_2D"):
        int4_weights(flatbuffer, [fully_connected])


@pytest.mark.unit
def test_the_plan_is_the_longest_run_of_cheapest_layers_that_keeps_validation():
    alone = {3: 0.95, 5: 0.90, 7: 0.97}
    cumulative = {(7,): 0.97, (7, 3): 0.955, (7, 3, 5): 0.80}
    order, curve, plan = choose_plan(alone, lambda operators: cumulative[tuple(operators)], floor=0.95)
    assert order == [7, 3, 5] and curve == [0.97, 0.955, 0.80] and plan == [7, 3]
    assert choose_plan(alone, lambda operators: 0.5, floor=0.95)[2] == []
    # A later prefix that climbs back above the floor does not count: the plan stops at the first fall.
    dips = {(7,): 0.90, (7, 3): 0.96, (7, 3, 5): 0.96}
    assert choose_plan(alone, lambda operators: dips[tuple(operators)], floor=0.95)[2] == []


def test_the_benchmark_chooses_on_validation_and_reports_every_layer(trained_student, parts, tmp_path):
    _, root, _ = trained_student
    data = npz_of(tmp_path / "maps.npz", parts["train"], parts["val"], parts["test"])
    assert int4_benchmark(["--model", str(root / "out"), "--data", str(data), "--no-firmware", "--tolerance", "100",
                           "--out", str(tmp_path / "int4")]) == 0
    results = read_json(tmp_path / "int4.json")
    assert sorted(results["order"]) == [row["operator"] for row in results["layers"]] and len(results["curve"]) == 3
    assert results["plan"]["operators"] == results["order"]  # 100 points of tolerance take every layer
    assert results["plan"]["packed_computes_as_unpacked"] == {"tflite_micro": True, "litert": True}
    assert results["plan"]["bytes"] < results["int8"]["bytes"] and "firmware" not in results
    assert "| int4, the chosen plan |" in (tmp_path / "int4.md").read_text()
