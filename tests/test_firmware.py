"""The firmware stub's C++: the model's sources compile for the host and a Cortex-M, and the
stub's own decoding, views and mask art agree with Python."""

import dataclasses
import json
import re
import subprocess

import numpy as np
import pytest

from kd_keras.data import RESIZE_METHODS, dihedral_views, generate_wafer_maps, pattern_name, resize_map
from kd_keras.data.labels import encode_patterns
from kd_keras.evaluation import decode
from kd_keras.tasks import MASK
from tests.helpers import REPO, read_sample_map, require
from tflite.c_sources import patterns_h, sample_map_h
from tflite.card import ModelCard
from tflite.firmware import ImageFootprint, firmware_lines, map_file_parts, replay_inputs
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


def test_the_demo_sample_is_a_synthetic_map_the_model_reads_right(trained_student):
    _, root, card = trained_student
    die_map, pattern = read_sample_map(root / "out")
    data = generate_wafer_maps(38, seed=0)
    index = [pattern_name(p) for p in data.pattern_ids].index(pattern)
    assert np.array_equal(die_map, data.maps[index])  # generated, not taken from the real data
    int8 = Int8Model((root / "out" / "model.tflite").read_bytes())
    read_right = bool(int8.task.reads_right(int8.outputs(die_map[None], card.views), data.subset([index]))[0])
    assert read_right  # net1 after 20 epochs reads some synthetic map right
    assert (root / "out" / "sample_map.h").read_text() == sample_map_h(die_map, pattern, read_right)


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


def test_firmware_resize_is_the_toolkit_resize(tmp_path):
    resize_check = host_check_program(tmp_path, "resize_check")
    rng = np.random.default_rng(0)
    # Grids smaller and larger than 52 in either direction, 52 itself, and a single die.
    shapes = [(27, 27), (15, 212), (212, 204), (52, 52), (53, 51), (1, 1), *rng.integers(1, 220, (40, 2))]
    lines, expected = [], []
    for rows, cols in shapes:
        die_map = rng.integers(0, 3, (rows, cols)).astype(np.uint8)
        for method_id, method in enumerate(RESIZE_METHODS):
            lines.append(f"{rows} {cols} {method_id} " + "".join(map(str, die_map.ravel())))
            expected.append("".join(map(str, resize_map(die_map, 52, method).ravel())))
    printed = subprocess.run([resize_check], input="\n".join(lines) + "\n", capture_output=True, text=True,
                             check=True).stdout.split()
    assert printed == expected


def test_segclass_sources_compile_and_the_mask_prints_as_text(segclass_student, tmp_path):
    _, root, card, _ = segclass_student
    printed = make_check(root / "out", tmp_path / "build")
    assert f"{len(card.ops)} ops registered, arena {card.tensor_arena_size} bytes" in printed

    # The firmware's text art of the model's own int8 mask on the stub's sample map.
    die_map, _ = read_sample_map(root / "out")
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


# A map file's shape as GNU ld 2.40 writes it: a long section name on a line of its own, merged
# strings listed at one address with their sizes before merging, and alignment fill.
MAP_FILE = """Discarded input sections
 .text          0x00000000       0x99 build/cortex-m4-reference/net/main.o

Linker script and memory map

.text           0x00000040       0x80
 *(.text .text.*)
 .text          0x00000040       0x10 /usr/lib/crt0.o
 .text._ZN6tflite16MicroInterpreter6InvokeEv
                0x00000050       0x20 build/tflm/cortex-m4-core.a(micro_interpreter.o)
                0x00000050                tflite::MicroInterpreter::Invoke()
 .rodata.str1.1
                0x00000070        0x9 build/tflm/cortex-m4-reference.a(conv.o)
 .rodata.str1.1
                0x00000070        0x6 build/cortex-m4-reference/net/main.o
 *fill*         0x00000079        0x3
 .rodata.g_net_model_data
                0x0000007c       0x44 build/cortex-m4-reference/net/model_data.o

.data           0x000000c0        0x8
 .data          0x000000c0        0x8 /usr/lib/libc.a(lib_a-impure.o)

.bss            0x000000c8       0x10
 .bss.tensor_arena
                0x000000c8       0x10 build/cortex-m4-reference/net/main.o
"""


@pytest.mark.unit
def test_the_map_file_is_split_into_the_image_parts():
    parts = map_file_parts(MAP_FILE)
    assert parts[".text"] == {"model": 0x44, "tflite_micro": 0x20, "application": 0x9 + 0x3, "c_runtime": 0x10}
    assert sum(parts[".text"].values()) == 0x80  # the output section's size: merged strings counted once
    assert parts[".data"]["c_runtime"] == 8 and parts[".bss"]["application"] == 0x10


@pytest.mark.unit
def test_evaluate_prints_the_measured_images_of_a_card():
    flash = {"model": 19_128, "tflite_micro": 40_000, "application": 5_000, "c_runtime": 36_000}
    footprint = ImageFootprint(flash=flash, static_ram=20_000, arena=17_728, stack=1_700, heap=3_300)
    record = footprint.to_card(61_234_567.4)
    assert record["flash_bytes"] == 100_128 and record["ram_bytes"] == 25_000
    card = ModelCard.read(REPO / "models" / "kd-21kb" / "model_card.json")
    [line] = firmware_lines(dataclasses.replace(card, firmware={"cmsis_nn": record}))
    assert line == ("Cortex-M4 image, CMSIS-NN kernels: 100,128 bytes of flash (model 19,128, TFLite Micro 40,000, "
                    "application 5,000, C runtime 36,000); 25,000 bytes of RAM (.data+.bss 20,000 with the arena's "
                    "17,728, stack 1,700, heap 3,300); 61.2M instructions per inference")
    assert ModelCard.from_dict(json.loads(dataclasses.replace(card, firmware={"cmsis_nn": record}).to_json())
                               ).firmware == {"cmsis_nn": record}  # the card keeps it


@pytest.mark.unit
def test_replay_inputs_are_each_maps_views_map_after_map():
    maps = generate_wafer_maps(3, seed=0).maps
    inputs = replay_inputs(maps, 2)
    assert inputs.shape == (6, 52, 52)
    views = dihedral_views(maps)
    for index, die_map in enumerate(maps):
        assert np.array_equal(inputs[2 * index], die_map)  # view 0 is the map itself
        assert np.array_equal(inputs[2 * index + 1], views[1][index])
    assert np.array_equal(replay_inputs(maps, 1), maps)
