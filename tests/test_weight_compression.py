"""`benchmarks.weight_compression`: weights clustered to 2**bits values and stored as look-up
tables that TensorFlow Lite Micro decodes (DECODE) to exactly the clustered weights."""

import numpy as np
import pytest

from benchmarks.weight_compression import cluster, clustered_and_compressed, micro_only
from kd_keras.data import generate_wafer_maps
from kd_keras.models import build_student
from tflite.micro import Int8Model
from tflite.quantize import convert_int8

TIER = "integration"  # tests marked with no tier of their own (conftest.py)


@pytest.mark.unit
def test_clustering_keeps_at_most_the_table_and_leaves_few_values_alone():
    values = np.random.default_rng(0).normal(0, 40, 500).round().clip(-127, 127)
    clustered = cluster(values, 16)
    assert len(np.unique(clustered)) <= 16 and set(np.unique(clustered)) <= set(range(-127, 128))
    assert np.abs(clustered - values).mean() < 4  # each value moves to a near centre
    few = np.array([-3.0, 5.0, 5.0, 9.0])
    np.testing.assert_array_equal(cluster(few, 4), few)


def test_tflite_micro_decodes_the_tables_to_the_clustered_weights():
    maps = generate_wafer_maps(38, seed=0).maps
    int8 = Int8Model(convert_int8(build_student("net2", seed=0), maps))
    clustered, compressed = clustered_and_compressed(int8.flatbuffer, 4, per_channel=True)
    assert b"DECODE" in compressed and b"DECODE" not in clustered
    clustered_model = Int8Model(clustered)
    decoded = micro_only(clustered_model, compressed)
    for mine, theirs in zip(clustered_model.run_micro(maps), decoded.run_micro(maps), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert decoded.arena_bytes() > clustered_model.arena_bytes()  # the decoded weights live in the arena
