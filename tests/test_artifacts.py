"""The typed pieces everything passes along: tasks, budgets, model cards, the choice of what ships."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kd_keras.data import generate_wafer_maps
from kd_keras.errors import FileFormatError
from kd_keras.jobs import DistillJob, TeacherJob
from kd_keras.rundir import run_data_settings, write_config
from kd_keras.tasks import CLASSIFY, MASK, MULTILABEL, PATTERN, SEGCLASS, task_of_output_shapes
from tests.helpers import REPO
from tflite.budget import BUDGETS, SEGCLASS_ARENA_BYTES, Budget, ConversionError, parse_budget
from tflite.card import ModelCard
from tflite.selection import best_of, choose_on_validation

TIER = "unit"  # tests marked with no tier of their own (conftest.py)


@pytest.mark.parametrize("text, expected", [("21KB", 21504), ("248kb", 253952), ("5000", 5000)])
def test_parse_budget(text, expected):
    assert parse_budget(text).flash_bytes == expected


def test_the_budgets_carry_their_arena_and_accuracy_targets():
    assert BUDGETS["21KB"] == Budget("21KB", 21_504, 16_384, 0.97)
    assert BUDGETS["248KB"] == Budget("248KB", 253_952, 65_536, 0.99)
    with pytest.raises(ValueError, match="expected 21KB, 248KB or a positive number of bytes"):
        parse_budget("lots")
    with pytest.raises(ConversionError, match="21,505 bytes, 1 bytes over the budget of 21,504; the heaviest layers: "
                                              r"dense \(3 parameters\)"):
        BUDGETS["21KB"].check_flash(21_505, [("dense", 3)])
    BUDGETS["21KB"].check_flash(21_504)
    with pytest.raises(ConversionError, match="the tensor arena is 65,537 bytes, 1 bytes over the 248 KB budget's "
                                              "65,536"):
        BUDGETS["248KB"].check_arena(65_537)
    BUDGETS["248KB"].check_arena(65_536)
    parse_budget("5000").check_arena(10**9)  # a budget in bytes holds the flash alone
    BUDGETS["21KB"].flash_only().check_arena(10**9)


def test_a_segmentation_model_may_use_more_arena_than_a_classifier():
    assert BUDGETS["248KB"].for_task("classify") == BUDGETS["248KB"]
    assert BUDGETS["248KB"].for_task("segclass") == Budget("248KB", 253_952, SEGCLASS_ARENA_BYTES, 0.99)
    assert parse_budget("5000").for_task("segclass").arena_bytes is None


@pytest.mark.parametrize("model", ["kd-21kb", "kd-248kb", "lightwafer-segclass", "paper1-net1", "paper1-net2"])
def test_shipped_cards_read_back_as_written(model):
    path = REPO / "models" / model / "model_card.json"
    card = ModelCard.read(path)
    written = json.loads(path.read_text())
    assert card.to_dict() == {**written, "views": written.get("views", 1)}  # nothing lost (older cards: 1 view)
    assert card.task is (SEGCLASS if model == "lightwafer-segclass" else CLASSIFY)


@pytest.mark.parametrize("change, words", [
    (lambda card: card.pop("ops"), "field 'ops' is missing"),
    (lambda card: card.update(views=3), "field 'views' must be one of (1, 8)"),
    (lambda card: card["outputs"][0].update(kind="logits"), "outputs[0].kind 'logits' is none of"),
    (lambda card: card["outputs"][0].update(scale="0.5"), "field 'outputs[0].scale' should be a number"),
    (lambda card: card["input"].pop("quantization"), "field 'input.quantization' is missing"),
    (lambda card: card.update(budget={"name": "21KB"}), "field 'budget.flash_bytes' is missing"),
    (lambda card: card.update(parameters=True), "field 'parameters' should be an integer, got True"),
])
def test_a_card_with_a_wrong_field_is_refused_naming_it(change, words):
    record = json.loads((REPO / "models" / "kd-21kb" / "model_card.json").read_text())
    change(record)
    with pytest.raises(FileFormatError, match=f"^card.json: .*{re.escape(words)}"):
        ModelCard.from_dict(record, "card.json")


def test_tasks_are_told_by_their_output_shapes():
    assert task_of_output_shapes([(1, 8)]) is CLASSIFY and CLASSIFY.output_kinds == (MULTILABEL,)
    assert task_of_output_shapes([(1, 38), (1, 52, 52, 1)]) is SEGCLASS and SEGCLASS.output_kinds == (PATTERN, MASK)
    with pytest.raises(ValueError, match="outputs mask_logits, pattern_logits are those of no task"):
        task_of_output_shapes([(1, 52, 52, 1), (1, 38)])


def test_a_task_scores_outputs_as_its_metrics_say():
    data = generate_wafer_maps(76, seed=0)
    perfect = {MULTILABEL: np.where(data.labels > 0, 5.0, -5.0)}
    assert CLASSIFY.figures(perfect, data) == {"exact_match": 1.0, "exact_match_nearest": 1.0}
    masks = np.where(data.masks > 0, 5.0, -5.0)[..., None]
    segclass = {PATTERN: np.eye(38)[data.pattern_ids] * 10, MASK: masks}
    assert SEGCLASS.figures(segclass, data) == {"exact_match": 1.0, "macro_f1": 1.0, "dice": 1.0, "iou": 1.0}


@pytest.mark.parametrize("scores, chosen", [
    ({0: {1: 0.95, 8: 0.97}, 1: {1: 0.96, 8: 0.96}}, (0, 8)),
    ({0: {1: 0.95}, 1: {1: 0.96}, 2: {1: 0.96}}, (1, 1)),  # ties: the first
    ({"only": {1: 0.5, 8: 0.5}}, ("only", 1)),
])
def test_the_best_candidate_and_view_count_is_chosen_first_of_equals(scores, chosen):
    assert best_of(scores) == chosen


def test_one_candidate_with_one_view_is_not_measured():
    class Unmeasurable:
        def outputs(self, *args):
            raise AssertionError("measured")
    assert choose_on_validation({"seed 0": Unmeasurable()}, None) == ("seed 0", 1, {})
    with pytest.raises(ValueError, match="nothing to choose from"):
        best_of({})


def test_jobs_record_what_their_result_depends_on():
    job = DistillJob(synthetic_maps=380, student=("net2",))
    arguments = job.arguments()
    assert arguments["student"] == ("net2",) and "out" not in arguments and "resume" not in arguments
    assert TeacherJob().arguments()["lr"] == 2e-3 and DistillJob().arguments()["lr"] == 1e-2
    assert DistillJob(task="segclass").arguments()["lr"] == 3e-3 and DistillJob(lr=0.5).lr == 0.5
    # each task's teacher epochs, recorded for the teacher it trains
    assert DistillJob().teacher_arguments()["epochs"] == 16 and DistillJob().arguments()["loss"] == "hinton"
    assert DistillJob(task="segclass").teacher_arguments()["epochs"] == 14
    assert DistillJob(teacher_epochs=3).arguments()["teacher_epochs"] == 3
    with pytest.raises(ValueError, match="--resume needs the --out directory"):
        DistillJob(resume=True)


def test_the_teacher_architecture_is_recorded_where_runs_before_it_still_match():
    job = DistillJob()  # the first run's teacher: vgg7, in a directory of its own
    assert job.teacher_dir == Path("runs/teacher-vgg7-synthetic3800-seed0")
    assert job.arguments()["teacher_arch"] == job.teacher_arguments()["teacher_arch"] == "vgg7"
    resnet = DistillJob(teacher_arch="resnet18")  # as every run was recorded before --teacher-arch
    assert resnet.teacher_dir == Path("runs/teacher-synthetic3800-seed0")
    assert "teacher_arch" not in resnet.arguments() and "teacher_arch" not in resnet.teacher_arguments()
    assert "teacher_arch" not in DistillJob(task="segclass").arguments()
    with pytest.raises(ValueError, match="--teacher-arch lenet: choose from resnet18, vgg7"):
        DistillJob(teacher_arch="lenet")


def test_one_data_file_is_recorded_as_before_and_several_name_the_teacher_together():
    assert TeacherJob(data=[Path("a/mixed.npz")]).arguments()["data"] == Path("a/mixed.npz")
    both = DistillJob(data=["a/mixed.npz", "b/fab.npz"], resize="max")
    assert both.arguments()["data"] == (Path("a/mixed.npz"), Path("b/fab.npz"))
    assert both.teacher_dir == Path("runs/teacher-vgg7-mixed+fab-max-seed0")
    assert both.data_description() == "a/mixed.npz + b/fab.npz, each split 80/10/10 (seed 0)"


def test_a_model_trained_on_several_files_converts_on_the_same_files(tmp_path):
    job = TeacherJob(data=["a/mixed.npz", "b/fab.npz"], resize="max")
    write_config(tmp_path, job.arguments())
    settings = run_data_settings(tmp_path / "teacher.keras")
    assert settings["data"] == (Path("a/mixed.npz"), Path("b/fab.npz")) and settings["resize"] == "max"
