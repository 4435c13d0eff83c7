"""int8 conversion, the TFLite Micro harness and the generated C sources."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kd_keras.data import dihedral_views, generate_wafer_maps
from kd_keras.data.labels import PATTERN_NAMES, encode_patterns
from kd_keras.data.pipeline import make_dataset
from kd_keras.evaluation import decode, evaluate
from kd_keras.models import build_student
from kd_keras.runs import load_splits
from kd_keras.training import cosine_adamw, multilabel_metrics, steps_for
from tflite.export import ConversionError, export_model, int8_flatbuffer, parse_budget, write_model_readme
from tflite.harness import compare_with_references, micro_logits
from tflite.micro import run_litert, run_micro
from tflite.quantize import convert_int8

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def parts():
    return load_splits(None, synthetic_maps=7600, seed=0)


@pytest.fixture(scope="module")
def trained(parts, tmp_path_factory):
    """Net-1 trained on labels for 20 epochs (~1 min): confident enough that int8 rounding
    flips few decisions (float 58%, int8 57% when measured)."""
    keras.utils.set_random_seed(0)
    model = build_student("net1", seed=0)
    train = parts["train"]
    model.compile(cosine_adamw(3e-3, steps_for(len(train), 64, 20)),
                  keras.losses.BinaryCrossentropy(from_logits=True), metrics=multilabel_metrics())
    model.fit(make_dataset(train.maps, train.labels.astype("float32"), batch_size=64, shuffle=True, augment=True),
              epochs=20, verbose=0, shuffle=False)
    root = tmp_path_factory.mktemp("net1")
    model.save(root / "net1.keras")
    card = export_model(model, root / "out", train.maps, name="net1", budget_bytes=parse_budget("248KB"),
                        source_model=root / "net1.keras")
    return model, root, card


def test_card_describes_the_model(trained):
    model, root, card = trained
    out = root / "out"
    assert card == json.loads((out / "model_card.json").read_text())
    assert card["flash_bytes"] == (out / "model.tflite").stat().st_size < 248 * 1024
    assert card["input"]["shape"] == [1, 52, 52, 1] and card["input"]["die_value_int8"] == [-128, -1, 126]
    assert card["input"]["encoding"] == {"0": [0.0], "1": [1.0], "2": [2.0]}
    (output,) = card["outputs"]
    assert output["kind"] == "multilabel_logits" and output["labels"][0] == "Center"
    assert card["ops"] == ["CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert card["parameters"] == 61_316 and 10_000 < card["arena_bytes"] < card["tensor_arena_size"]
    # 52*52*6*9 + 26*26*16*9*6 + 13*13*32*9*16 + 1152*48 + 48*8
    assert card["macs_per_inference"] == 146_016 + 584_064 + 778_752 + 55_296 + 384


def test_a_flatbuffer_converted_beforehand_is_written_unchanged_with_the_same_card(trained, parts, tmp_path):
    model, root, card = trained
    flatbuffer = int8_flatbuffer(model, parts["train"].maps)
    assert flatbuffer == (root / "out" / "model.tflite").read_bytes()  # conversion is deterministic
    again = export_model(model, tmp_path / "out", parts["train"].maps, name="net1",
                         budget_bytes=parse_budget("248KB"), source_model=root / "net1.keras", flatbuffer=flatbuffer)
    assert again == card
    for name in ("model.tflite", "model_data.cc", "model_settings.h"):
        assert (tmp_path / "out" / name).read_bytes() == (root / "out" / name).read_bytes(), name


def test_micro_and_litert_agree_exactly(parts):
    flatbuffer = convert_int8(build_student("net2", seed=0), parts["train"].maps)
    maps = parts["test"].maps[:50]
    (micro,), (litert,) = run_micro(flatbuffer, maps), run_litert(flatbuffer, maps)
    assert micro.dtype == np.int8 and micro.shape == (50, 8)
    assert np.array_equal(micro, litert)


def test_int8_tracks_float(trained, parts):
    model, root, _ = trained
    flatbuffer = (root / "out" / "model.tflite").read_bytes()
    report = compare_with_references(flatbuffer, model, parts["test"])
    # Measured: TFLite Micro and LiteRT's reference kernels round a few outputs differently
    # (1 int8 unit on ~0.25% of this model's outputs; on the real dev set, up to 2 units on
    # 1.4% of the shipped Net-1's and 1 unit on 0.3% of Net-2's).
    assert report["micro_vs_litert_max_int8_difference"] <= 1
    assert report["micro_vs_litert_differing_outputs"] < 0.01
    assert report["float_exact_match"] > 0.1  # it learned something worth checking
    # A 58% model has many maps near a decision, and int8 rounding moves some of them: 1.18
    # points on one 2-core machine with the pinned packages (under 1 on CI's, when measured).
    assert abs(report["int8_accuracy_drop"]) <= 0.02, report


def test_c_array_round_trips_to_the_tflite_bytes(trained):
    _, root, _ = trained
    out = root / "out"
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_net1_model_data[] = {" in source
    array = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", source))
    assert array == (out / "model.tflite").read_bytes()
    header = (out / "model_data.h").read_text()
    assert f"constexpr unsigned int g_net1_model_data_size = {len(array)};" in header
    settings = (out / "model_settings.h").read_text()
    assert "constexpr int kNumModelOps = 4;" in settings and "resolver.AddConv2D()" in settings


def compilers():
    missing = [c for c in ("g++", "arm-none-eabi-g++", "arm-none-eabi-size") if shutil.which(c) is None]
    if missing and not IN_CI:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi); CI installs them")
    assert not missing, f"CI must have {missing}: .ci/run installs them"


def test_sources_compile_for_host_and_cortex_m(trained, tmp_path):
    compilers()
    _, root, card = trained
    result = subprocess.run(["make", "-C", REPO / "firmware_stub", "check", f"MODEL_DIR={root / 'out'}",
                             f"BUILD={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"model {card['flash_bytes']} bytes, 4 ops registered, arena {card['tensor_arena_size']} bytes" \
        in result.stdout
    text, data = re.search(r"^\s*(\d+)\s+(\d+)\s+\d+\s+\d+\s+\w+\s+\S*model_data\.o", result.stdout, re.M).groups()
    assert int(text) + int(data) == card["flash_bytes"]


def test_sample_map_header_is_the_documented_synthetic_map():
    from kd_keras.data import pattern_name
    from tflite.c_sources import sample_map_h

    data = generate_wafer_maps(38, seed=0)
    index = [pattern_name(p) for p in data.pattern_ids].index("C+L")
    assert (REPO / "firmware_stub" / "sample_map.h").read_text() == sample_map_h(data.maps[index], "C+L")


def test_patterns_header_is_generated_from_the_label_codec():
    from tflite.c_sources import patterns_h

    assert (REPO / "firmware_stub" / "patterns.h").read_text() == patterns_h()


def host_check_program(tmp_path, name):
    """Build firmware_stub's `name` check program for the host; its path."""
    if shutil.which("g++") is None:
        if IN_CI:
            pytest.fail("CI must have g++")
        pytest.skip("g++ not installed")
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


def test_eight_views_are_rotation_invariant(trained, parts):
    _, root, _ = trained
    flatbuffer = (root / "out" / "model.tflite").read_bytes()
    maps = parts["test"].maps[:40]
    eight = micro_logits(flatbuffer, maps, views=8)
    np.testing.assert_allclose(micro_logits(flatbuffer, np.rot90(maps, 1, axes=(1, 2)), views=8), eight, atol=1e-5)
    np.testing.assert_allclose(micro_logits(flatbuffer, maps[:, ::-1], views=8), eight, atol=1e-5)
    assert not np.allclose(micro_logits(flatbuffer, maps), eight)  # one view is not the mean of eight
    with pytest.raises(ValueError, match="views must be 1 or 8"):
        micro_logits(flatbuffer, maps, views=4)


def test_convert_and_evaluate_clis_with_eight_views(trained, parts, tmp_path):
    from kd_keras.data import save_mixedwm38

    model, root, _ = trained
    data = tmp_path / "data.npz"
    save_mixedwm38(data, np.concatenate([parts["train"].maps, parts["test"].maps]),
                   np.concatenate([parts["train"].labels, parts["test"].labels]))
    out = tmp_path / "views"
    result = run_module("tflite.convert", root / "net1.keras", "--data", data, "--out", out, "--views", 8)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test maps, mean of 8 views: float" in result.stdout
    card = json.loads((out / "model_card.json").read_text())
    assert card["views"] == 8 and "constexpr int kNumViews = 8;" in (out / "model_settings.h").read_text()
    assert card["accuracy"]["float_exact_match"] > 0.1

    test = parts["test"]
    test_file = tmp_path / "test.npz"
    save_mixedwm38(test_file, test.maps, test.labels)
    result = run_module("tflite.evaluate", out, "--data", test_file, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    eight_views = micro_logits((out / "model.tflite").read_bytes(), test.maps, views=8)
    assert report["views"] == 8 and report["metrics"]["exact_match"] == evaluate(eight_views, test.labels)["exact_match"]

    result = run_module("tflite.convert", root / "net1.keras", "--data", data, "--out", out, "--views", 4)
    assert result.returncode == 2 and "invalid choice: 4" in result.stderr


def test_over_budget_fails_with_the_overshoot_and_writes_nothing(trained, parts, tmp_path):
    model, _, card = trained
    with pytest.raises(ConversionError, match=r"bytes over the budget of 21,504; the heaviest layers: dense"):
        export_model(model, tmp_path / "out", parts["train"].maps, name="net1", budget_bytes=21 * 1024)
    assert os.listdir(tmp_path) == []


def test_bad_identifier_fails_before_any_work(trained, parts, tmp_path):
    with pytest.raises(ValueError, match="'net-1' is not a C identifier"):
        export_model(trained[0], tmp_path / "out", parts["train"].maps, name="net-1", budget_bytes=10**6)
    assert os.listdir(tmp_path) == []


def test_unsupported_op_is_named_and_nothing_is_written(parts, tmp_path):
    inputs = keras.Input((52, 52, 1))
    x = keras.layers.Conv2D(4, 3, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(8)(keras.layers.GlobalAveragePooling2D()(x)))
    with pytest.raises(ConversionError, match="uses op TANH"):
        export_model(model, tmp_path / "out", parts["train"].maps, name="tanh_net", budget_bytes=10**6)
    assert os.listdir(tmp_path) == []


def test_failed_conversion_keeps_the_previous_output(trained, parts, tmp_path):
    model, root, _ = trained
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConversionError):
        export_model(model, out, parts["train"].maps, name="net1", budget_bytes=1000)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert os.listdir(tmp_path) == ["out"]


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_evaluate_cli_compares_and_checks_the_budget(trained, parts, tmp_path):
    from kd_keras.data import save_mixedwm38

    _, root, card = trained
    data = tmp_path / "test.npz"
    save_mixedwm38(data, parts["test"].maps, parts["test"].labels)
    result = run_module("tflite.evaluate", root / "out", "--data", data, "--compare", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["compare"]["micro_vs_litert_max_int8_difference"] <= 1
    assert report["metrics"]["maps"] == len(parts["test"]) and report["arena_bytes"] == card["arena_bytes"]

    result = run_module("tflite.evaluate", root / "out", "--data", data, "--budget", "21KB")
    assert result.returncode == 1
    assert f"{card['flash_bytes'] - 21 * 1024:,} bytes over the budget of 21,504" in result.stderr


def test_truncated_tflite_is_refused(trained, parts, tmp_path):
    from kd_keras.data import save_mixedwm38

    _, root, _ = trained
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    flatbuffer = (out / "model.tflite").read_bytes()
    (out / "model.tflite").write_bytes(flatbuffer[: len(flatbuffer) // 2])
    data = tmp_path / "test.npz"
    save_mixedwm38(data, parts["test"].maps[:10], parts["test"].labels[:10])
    result = run_module("tflite.evaluate", out, "--data", data)
    assert result.returncode == 1 and "truncated or replaced" in result.stderr


def test_convert_cli_on_a_run_directory(tmp_path):
    run = tmp_path / "run"
    (run / "net2").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arguments": {"data": None, "synthetic_maps": 380, "seed": 0}}))
    build_student("net2", seed=0).save(run / "net2" / "net2.keras")
    result = run_module("tflite.convert", run / "net2", "--out", tmp_path / "models" / "net2", "--budget", "21KB")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bytes of flash (budget 21,504)" in result.stdout and "int8 in TFLite Micro" in result.stdout
    card = json.loads((tmp_path / "models" / "net2" / "model_card.json").read_text())
    assert card["accuracy"]["test_maps"] == 38 and card["name"] == "net2"
    assert 0 <= card["accuracy"]["int8_exact_match_nearest"] <= 1
    assert f"({100 * card['accuracy']['int8_exact_match_nearest']:.2f}% decoded to the nearest pattern)" in result.stdout

    result = run_module("tflite.convert", run / "net2", "--out", tmp_path / "bad", "--name", "2x")
    assert result.returncode == 1 and "'2x' is not a C identifier" in result.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("text, expected", [("21KB", 21504), ("248kb", 253952), ("5000", 5000)])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


def test_exported_model_carries_no_names_and_computes_the_same(trained, parts):
    model, root, _ = trained
    exported = (root / "out" / "model.tflite").read_bytes()
    with_names = convert_int8(model, parts["train"].maps)
    assert b"logits" in with_names and b"logits" not in exported and len(exported) < len(with_names)
    maps = parts["test"].maps[:50]
    np.testing.assert_array_equal(run_micro(exported, maps)[0], run_micro(with_names, maps)[0])


def test_model_readme_is_written_from_the_card(trained):
    _, root, card = trained
    write_model_readme(root / "out", "Net-1 for a test.", "python make_it.py")
    text = (root / "out" / "README.md").read_text()
    assert text.startswith("# out\n\nNet-1 for a test.") and "Made by `python make_it.py`" in text
    assert f"| {card['flash_bytes']:,} bytes | {card['arena_bytes']:,} bytes |" in text
    assert "Exact-match accuracy" not in text  # this card has no accuracy figures


def test_parse_budget_rejects_nonsense():
    with pytest.raises(ValueError, match="expected 21KB, 248KB or a positive number of bytes"):
        parse_budget("lots")


def test_convert_cli_with_quantization_aware_training(trained, parts, tmp_path):
    from kd_keras.data import save_mixedwm38

    _, root, _ = trained
    data = tmp_path / "data.npz"
    held_out = [parts["val"], parts["test"]]  # maps net1 never saw: QAT fine-tunes on 80% of them
    save_mixedwm38(data, np.concatenate([p.maps for p in held_out]), np.concatenate([p.labels for p in held_out]))
    result = run_module("tflite.convert", root / "net1.keras", "--data", data, "--out", tmp_path / "qat",
                        "--qat", "--qat-epochs", 2)
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "qat" / "model_card.json").read_text())
    assert card["quantization"] == "quantization-aware training, 2 epochs"
    assert card["ops"] == ["CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert card["input"]["die_value_int8"] == [-128, -1, 126]
    accuracy = card["accuracy"]
    # Before tflite.qat calibrated the activation ranges, QAT lost 13 points to float on synthetic maps.
    assert accuracy["test_maps"] == 152 and accuracy["int8_exact_match"] >= accuracy["float_exact_match"] - 0.03, accuracy


def weight_scale_counts(flatbuffer):
    """How many scales each constant (weight or bias) tensor of a flatbuffer carries."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    return [len(tensor.quantization.scale) for tensor in model.subgraphs[0].tensors
            if model.buffers[tensor.buffer].data is not None and tensor.quantization.scale is not None]


def test_convert_cli_with_per_tensor_weight_scales(trained, parts, tmp_path):
    from kd_keras.data import save_mixedwm38

    model, root, per_channel_card = trained
    data = tmp_path / "data.npz"
    save_mixedwm38(data, np.concatenate([parts["train"].maps, parts["test"].maps]),
                   np.concatenate([parts["train"].labels, parts["test"].labels]))
    result = run_module("tflite.convert", root / "net1.keras", "--data", data, "--out", tmp_path / "per-tensor",
                        "--per-tensor")
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "per-tensor" / "model_card.json").read_text())
    flatbuffer = (tmp_path / "per-tensor" / "model.tflite").read_bytes()
    assert card["weight_scales"] == "per-tensor" and per_channel_card["weight_scales"] == "per-channel"
    assert set(weight_scale_counts(flatbuffer)) == {1}
    per_channel_counts = weight_scale_counts((root / "out" / "model.tflite").read_bytes())
    assert max(per_channel_counts) > 1
    # Each scale dropped saves its float32 and its int64 zero point: 12 bytes, less some alignment
    # padding (measured: 2,512 bytes for 210 scales).
    assert per_channel_card["flash_bytes"] - card["flash_bytes"] >= 11 * (sum(per_channel_counts) - len(per_channel_counts))
    report = compare_with_references(flatbuffer, model, parts["test"])
    assert report["micro_vs_litert_max_int8_difference"] <= 1
    assert abs(report["int8_accuracy_drop"]) <= 0.03, report

    result = run_module("tflite.convert", root / "net1.keras", "--data", data, "--out", tmp_path / "refused",
                        "--per-tensor", "--qat")
    assert result.returncode == 1 and "post-training quantization only, not QAT" in result.stderr
    assert not (tmp_path / "refused").exists()


# --- A segmentation + classification model (Paper 2): two int8 outputs ----------------------------

@pytest.fixture(scope="module")
def segclass(tmp_path_factory):
    """LightWaferSegClassNet, 3 epochs on the hard targets of 304 synthetic maps (seconds), converted."""
    from kd_keras.segclass_distillation import train_segclass

    parts = load_splits(None, synthetic_maps=380, seed=0)
    root = tmp_path_factory.mktemp("segclass")
    model = train_segclass("lightwafer", parts, root, alpha_cls=0, alpha_seg=0, alpha_feat=0, epochs=3,
                           learning_rate=3e-3, verbose=0)
    card = export_model(model, root / "out", parts["train"].maps, name="lightwafer",
                        budget_bytes=parse_budget("248KB"), source_model=root / "lightwafer.keras")
    return model, root, card, parts


def test_segclass_card_describes_both_outputs(segclass):
    _, root, card, _ = segclass
    outputs = {output["kind"]: output for output in card["outputs"]}
    assert sorted(outputs) == ["mask_logits", "pattern_logits"]
    assert sorted(output["index"] for output in card["outputs"]) == [0, 1]
    assert outputs["pattern_logits"]["shape"] == [1, 38] and outputs["pattern_logits"]["labels"] == list(PATTERN_NAMES)
    mask = outputs["mask_logits"]
    assert mask["shape"] == [1, 52, 52, 1] and mask["threshold_int8"] == mask["zero_point"]
    assert {"RESIZE_NEAREST_NEIGHBOR", "STRIDED_SLICE", "DEPTHWISE_CONV_2D"} <= set(card["ops"])
    assert card["parameters"] == 62_736 and card["flash_bytes"] < 248 * 1024
    settings = (root / "out" / "model_settings.h").read_text()
    assert "#define WAFER_MODEL_HAS_MASK 1" in settings and "kNumDefects" not in settings
    assert f"constexpr int kMaskOutputIndex = {mask['index']};" in settings
    assert f"constexpr int8_t kMaskThresholdInt8 = {mask['threshold_int8']};" in settings
    assert f"constexpr int kPatternOutputIndex = {outputs['pattern_logits']['index']};" in settings


def test_segclass_micro_matches_litert_and_float(segclass):
    model, root, _, parts = segclass
    flatbuffer = (root / "out" / "model.tflite").read_bytes()
    report = compare_with_references(flatbuffer, model, parts["test"])
    assert report["micro_vs_litert_max_int8_difference"] <= 1, report
    assert report["micro_vs_litert_differing_outputs"] < 0.01, report
    assert report["float_dice"] > 0.8, report  # it learned the mask
    assert abs(report["float_dice"] - report["int8_dice"]) < 0.02, report
    assert abs(report["int8_accuracy_drop"]) <= 0.1, report  # 38 test maps: 4 maps


def test_segclass_sources_compile_and_the_mask_prints_as_text(segclass, tmp_path):
    compilers()
    _, root, card, _ = segclass
    result = subprocess.run(["make", "-C", REPO / "firmware_stub", "check", f"MODEL_DIR={root / 'out'}",
                             f"BUILD={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(card['ops'])} ops registered, arena {card['tensor_arena_size']} bytes" in result.stdout

    # The firmware's text art of the model's own int8 mask on the stub's sample map.
    sample = (REPO / "firmware_stub" / "sample_map.h").read_text()
    die_map = np.array([int(v) for v in re.findall(r"\d+", sample.split("= {", 1)[1].split("}")[0])]).reshape(52, 52)
    mask_output = next(output for output in card["outputs"] if output["kind"] == "mask_logits")
    mask = run_micro((root / "out" / "model.tflite").read_bytes(), die_map[None])[mask_output["index"]][0, ..., 0]
    stdin = f"{mask_output['threshold_int8']}\n" + " ".join(map(str, die_map.ravel())) + "\n" + \
        " ".join(map(str, mask.ravel()))
    art = subprocess.run([tmp_path / "host" / "mask_art_check"], input=stdin, capture_output=True, text=True,
                         check=True).stdout.split("\n")[:52]
    characters = np.array([list(line) for line in art])
    np.testing.assert_array_equal(characters == "#", mask > mask_output["threshold_int8"])
    np.testing.assert_array_equal(characters == " ", (die_map == 0) & (mask <= mask_output["threshold_int8"]))
    assert (characters == "#").sum() > 0.5 * (die_map == 2).sum()  # the failed dies show


def test_segclass_readme_names_both_outputs(segclass):
    _, root, card, _ = segclass
    write_model_readme(root / "out", "A test student.", "python make_it.py")
    text = (root / "out" / "README.md").read_text()
    pattern = next(o for o in card["outputs"] if o["kind"] == "pattern_logits")
    assert f"Outputs: {pattern['index']}: 38 int8 pattern logits (the pattern is the largest" in text
    assert "the 52x52 defect mask as int8 logits" in text


def test_segclass_convert_and_evaluate_clis(segclass, tmp_path):
    from kd_keras.data import save_mixedwm38

    _, root, _, parts = segclass
    splits = [parts[name] for name in ("train", "val", "test")]
    data = tmp_path / "maps.npz"
    save_mixedwm38(data, np.concatenate([p.maps for p in splits]), np.concatenate([p.labels for p in splits]))
    result = run_module("tflite.convert", root / "lightwafer.keras", "--data", data, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mask Dice float" in result.stdout
    card = json.loads((tmp_path / "out" / "model_card.json").read_text())
    assert 0.8 < card["accuracy"]["int8_dice"] <= 1 and card["accuracy"]["test_maps"] == 38

    result = run_module("tflite.evaluate", tmp_path / "out", "--data", data, "--compare", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["metrics"]["maps"] == 380 and 0.8 < report["metrics"]["dice"] <= 1
    assert report["compare"]["micro_vs_litert_max_int8_difference"] <= 1


def test_eight_views_of_a_mask_model_are_refused(segclass, tmp_path):
    model, _, _, parts = segclass
    with pytest.raises(ValueError, match="needs a classifier with 8 defect logits; this model's outputs are "
                                         "pattern_logits, mask_logits"):
        export_model(model, tmp_path / "out", parts["train"].maps, name="lightwafer",
                     budget_bytes=parse_budget("248KB"), views=8)
    assert not (tmp_path / "out").exists()


def test_an_output_of_unknown_shape_is_refused(parts, tmp_path):
    inputs = keras.Input((52, 52, 1))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match=r"model output 0 has shape \(1, 5\)"):
        export_model(model, tmp_path / "out", parts["train"].maps, name="five", budget_bytes=10**6)
    assert os.listdir(tmp_path) == []
