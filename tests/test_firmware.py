"""The firmware stub's C++: the model's sources compile for the host and a Cortex-M, and the
stub's own decoding, views and mask art agree with Python."""

import re
import subprocess

import numpy as np
import pytest

from kd_keras.data import dihedral_views, generate_wafer_maps, pattern_name
from kd_keras.data.labels import encode_patterns
from kd_keras.evaluation import decode
from kd_keras.tasks import MASK
from tests.helpers import REPO, require
from tflite.c_sources import patterns_h, sample_map_h
from tflite.micro import Int8Model

TIER = "firmware"  # tests marked with no tier of their own (conftest.py)


def make_check(model_dir, build):
    require("g++", "arm-none-eabi-g++", "arm-none-eabi-size")
    result = subprocess.run(["make", "-C", REPO / "firmware_stub", "check", f"MODEL_DIR={model_dir}", f"BUILD={build}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_sources_compile_for_host_and_cortex_m(trained_student, tmp_path):
    _, root, card = trained_student
    printed = make_check(root / "out", tmp_path)
    assert f"model {card.flash_bytes} bytes, 4 ops registered, arena {card.tensor_arena_size} bytes" in printed
    text, data = re.search(r"^\s*(\d+)\s+(\d+)\s+\d+\s+\d+\s+\w+\s+\S*model_data\.o", printed, re.M).groups()
    assert int(text) + int(data) == card.flash_bytes


@pytest.mark.unit
def test_sample_map_header_is_the_documented_synthetic_map():
    data = generate_wafer_maps(38, seed=0)
    index = [pattern_name(p) for p in data.pattern_ids].index("C+L")
    assert (REPO / "firmware_stub" / "sample_map.h").read_text() == sample_map_h(data.maps[index], "C+L")


@pytest.mark.unit
def test_patterns_header_is_generated_from_the_label_codec():
    assert (REPO / "firmware_stub" / "patterns.h").read_text() == patterns_h()


def host_check_program(tmp_path, name):
    """Build firmware_stub's `name` check program for the host; its path."""
    require("g++")
    result = subprocess.run(["make", "-C", REPO / "firmware_stub", f"BUILD={tmp_path}", f"{tmp_path}/host/{name}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "host" / name


def test_firmware_nearest_pattern_decoding_matches_python(tmp_path):
    patterns_check = host_check_program(tmp_path, "patterns_check")
    # int8 outputs tie often (two defects at the same value): both sides must break ties alike.
    outputs = np.random.default_rng(0).integers(-128, 128, (2000, 8))
    scale, zero_point = 0.0625, -3  # a power of two: the float sums in Python are exact too
    stdin = f"{zero_point}\n" + "\n".join(" ".join(map(str, row)) for row in outputs)
    decoded = subprocess.run([patterns_check], input=stdin, capture_output=True,
                             text=True, check=True).stdout.split()
    expected = encode_patterns(decode(scale * (outputs - zero_point), "nearest"))
    assert [int(i) for i in decoded] == expected.tolist()


def test_firmware_views_are_the_toolkit_views(tmp_path):
    views_check = host_check_program(tmp_path, "views_check")
    die_map = generate_wafer_maps(38, seed=0).maps[5]
    printed = subprocess.run([views_check], input=" ".join(map(str, die_map.ravel())), capture_output=True,
                             text=True, check=True).stdout.split()
    expected = ["".join(map(str, view.ravel())) for view in dihedral_views(die_map[None])]
    assert printed == expected and len(set(printed)) == 8  # 8 different views, in the same order


def test_segclass_sources_compile_and_the_mask_prints_as_text(segclass_student, tmp_path):
    _, root, card, _ = segclass_student
    printed = make_check(root / "out", tmp_path / "build")
    assert f"{len(card.ops)} ops registered, arena {card.tensor_arena_size} bytes" in printed

    # The firmware's text art of the model's own int8 mask on the stub's sample map.
    sample = (REPO / "firmware_stub" / "sample_map.h").read_text()
    die_map = np.array([int(v) for v in re.findall(r"\d+", sample.split("= {", 1)[1].split("}")[0])]).reshape(52, 52)
    mask_output = card.output(MASK)
    int8 = Int8Model((root / "out" / "model.tflite").read_bytes())
    mask = int8.run_micro(die_map[None])[mask_output.index][0, ..., 0]
    stdin = f"{mask_output.threshold_int8}\n" + " ".join(map(str, die_map.ravel())) + "\n" + \
        " ".join(map(str, mask.ravel()))
    art = subprocess.run([tmp_path / "build" / "host" / "mask_art_check"], input=stdin, capture_output=True,
                         text=True, check=True).stdout.split("\n")[:52]
    characters = np.array([list(line) for line in art])
    np.testing.assert_array_equal(characters == "#", mask > mask_output.threshold_int8)
    np.testing.assert_array_equal(characters == " ", (die_map == 0) & (mask <= mask_output.threshold_int8))
    assert (characters == "#").sum() > 0.5 * (die_map == 2).sum()  # the failed dies show
