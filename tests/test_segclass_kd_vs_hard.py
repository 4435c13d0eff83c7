"""`python -m benchmarks.segclass_kd_vs_hard --quick`: a classifier teacher, then the segclass
student distilled from it and on the hard loss alone over two seeds, end to end on 380 synthetic
maps; the figures, the table, the curves and the reuse of finished runs."""

import json
import shutil

import pytest

from benchmarks import repo_relative
from benchmarks.segclass_mixedwm38 import STUDENT
from benchmarks.segclass_kd_vs_hard import (KD, TEACHER_STEP, against_spread, compare, main, markdown, run_name,
                                            stage_titles, student_settings, unfinished_run, write_report)
from kd_keras.recipes import OUR_TEACHER

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)


def run_benchmark(tmp_path, *arguments):
    return main(["--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results" / "kd"), *arguments])


def test_quick_benchmark_compares_both_students_over_the_seeds(tmp_path, capsys):
    assert run_benchmark(tmp_path, "--seeds", "0", "1") == 0
    results = json.loads((tmp_path / "results" / "kd.json").read_text())
    # The command that continues it names its own runs and results, not the defaults (another benchmark's).
    assert results["command"] == ("python -m benchmarks.segclass_kd_vs_hard --quick --seeds 0 1 "
                                  f"--runs {repo_relative(tmp_path / 'runs')} "
                                  f"--out {repo_relative(tmp_path / 'results' / 'kd')}")
    assert results["plan"] == ["hard seed 0", "kd seed 0", "hard seed 1", "kd seed 1"]
    assert results["unfinished"] == {} and "Partial" not in (tmp_path / "results" / "kd.md").read_text()
    assert results["kd"] == {"alpha_cls": 0.7, "alpha_seg": 0.0, "alpha_feat": 0.0, "temperature": 4.0}
    for stage in ("hard", "kd"):
        assert set(results["runs"][stage]) == {"0", "1"}
        for seed, row in results["runs"][stage].items():
            assert row["best_epoch"] == len(row["val_exact_match_by_epoch"]) == 1
            assert 0 <= row["test_exact_match"] <= 1 and 0 <= row["test_dice"] <= 1
            state = json.loads((tmp_path / "runs" / f"{stage}-epochs1-seed{seed}" / "training.json").read_text())
            assert state["settings"]["seed"] == int(seed)
            assert bool(state["settings"].get("teacher_pattern_logits")) == (stage == "kd")
        test = [row["test_exact_match"] for row in results["runs"][stage].values()]
        assert results["summary"][stage]["test_exact_match"] == pytest.approx(
            {"mean": sum(test) / 2, "min": min(test), "max": max(test)})
    gap = results["kd_minus_hard"]
    assert gap["test"] == pytest.approx(results["summary"]["kd"]["test_exact_match"]["mean"]
                                        - results["summary"]["hard"]["test_exact_match"]["mean"])
    table = (tmp_path / "results" / "kd.md").read_text()
    assert "| distilled from the vgg7 classifier (8 views) | 1 |" in table and "| hard loss only | 0 |" in table
    assert (tmp_path / "results" / "kd.png").stat().st_size > 0
    assert (tmp_path / "runs" / "teacher_cache.h5").is_file()

    # Run again: the teacher and every student are reused, and the figures come out the same; the wall
    # times stay those measured when they ran.
    capsys.readouterr()
    assert run_benchmark(tmp_path, "--seeds", "0", "1") == 0
    assert "Epoch" not in capsys.readouterr().out
    rerun = json.loads((tmp_path / "results" / "kd.json").read_text())
    assert rerun["runs"] == results["runs"]
    assert rerun["wall_seconds"] == results["wall_seconds"] and all(
        isinstance(seconds, int) for seconds in rerun["wall_seconds"].values())

    # --report-only over a third seed: the finished runs' figures, seed 2 as still to do, nothing trained.
    assert run_benchmark(tmp_path, "--report-only") == 0
    assert "Epoch" not in capsys.readouterr().out and not (tmp_path / "runs" / "hard-epochs1-seed2").exists()
    partial = json.loads((tmp_path / "results" / "kd.json").read_text())
    assert partial["runs"] == results["runs"]
    assert partial["unfinished"] == {f"{stage} seed 2": {"progress": "not started", "val_exact_match_by_epoch": []}
                                     for stage in ("hard", "kd")}
    assert ("**Partial: 4 of 6 runs finished.** Still to do: hard seed 2: not started; kd seed 2: not started. "
            "Continue with `python -m benchmarks.segclass_kd_vs_hard --quick "
            f"--runs {repo_relative(tmp_path / 'runs')} --out {repo_relative(tmp_path / 'results' / 'kd')}`") in \
        (tmp_path / "results" / "kd.md").read_text()

    # A fresh clone: the run directories are gone, the results file is not. Its runs stand: nothing is
    # trained, not even the teacher, and no figure is lost.
    shutil.rmtree(tmp_path / "runs")
    assert run_benchmark(tmp_path, "--seeds", "0", "1") == 0
    assert "Epoch" not in capsys.readouterr().out and not (tmp_path / "runs").exists()
    assert json.loads((tmp_path / "results" / "kd.json").read_text())["runs"] == results["runs"]

    # One distilled run not recorded: the teacher is trained again for it, and only it is.
    recorded = json.loads((tmp_path / "results" / "kd.json").read_text())
    del recorded["runs"]["kd"]["1"]
    (tmp_path / "results" / "kd.json").write_text(json.dumps(recorded))
    assert run_benchmark(tmp_path, "--seeds", "0", "1") == 0
    out = capsys.readouterr().out
    assert "== distilled from the vgg7 classifier (8 views), seed 1" in out and "== hard loss only" not in out
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [
        "kd-epochs1-seed1", "teacher-vgg7", "teacher_cache.h5"]
    again = json.loads((tmp_path / "results" / "kd.json").read_text())
    assert set(again["runs"]["kd"]) == {"0", "1"} and again["runs"]["hard"] == results["runs"]["hard"]
    assert again["runs"]["kd"]["0"] == results["runs"]["kd"]["0"] and again["unfinished"] == {}

    # A teacher started from another's weights (--init), against the hard-loss runs that results/kd
    # records (--hard-from): only that teacher and its distilled runs train, named apart from the others.
    pretrained, runs = tmp_path / "runs" / "teacher-vgg7", tmp_path / "runs"
    assert main(["--quick", "--seeds", "0", "1", "--runs", str(runs), "--out", str(tmp_path / "results" / "pre"),
                 "--init", str(pretrained), "--hard-from", str(tmp_path / "results" / "kd")]) == 0
    out = capsys.readouterr().out
    assert "== hard loss only" not in out
    assert "== distilled from the pre-trained vgg7 classifier (8 views), seed 1" in out
    pre = json.loads((tmp_path / "results" / "pre.json").read_text())
    assert pre["runs"]["hard"] == results["runs"]["hard"] and set(pre["runs"]["kd"]) == {"0", "1"}
    assert pre["wall_seconds"]["hard seed 1"] == results["wall_seconds"]["hard seed 1"]
    assert pre["teacher_recipe"]["init"] == repo_relative(pretrained / "teacher.keras")
    results_dir = tmp_path / "results"
    assert pre["command"] == ("python -m benchmarks.segclass_kd_vs_hard --quick --seeds 0 1 "
                              f"--init {repo_relative(pretrained / 'teacher.keras')} "
                              f"--hard-from {repo_relative(results_dir / 'kd')} "
                              f"--runs {repo_relative(runs)} --out {repo_relative(results_dir / 'pre')}")
    settings = json.loads((runs / "teacher-vgg7-pretrained" / "training.json").read_text())["settings"]
    assert settings["init"] == str(pretrained / "teacher.keras")
    assert (runs / "teacher-pretrained_cache.h5").is_file() and (runs / "kd-pretrained-epochs1-seed1").is_dir()
    table = (tmp_path / "results" / "pre.md").read_text()
    assert f"The hard-loss runs are those `{repo_relative(tmp_path / 'results' / 'kd.json')}` records" in table
    assert "| distilled from the pre-trained vgg7 classifier (8 views) | 0 |" in table


@pytest.mark.unit
def test_results_made_with_other_settings_are_refused_not_written_over(tmp_path, capsys):
    out = tmp_path / "results" / "kd.json"
    out.parent.mkdir()
    out.write_text(json.dumps({"data": "380 synthetic maps", "kd": KD, "runs": {"kd": {"0": {}}}}))
    before = out.read_text()
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--temperature", "2")
    assert "kd.json holds results made with other settings (student, epochs, student_settings, kd, teacher_recipe)" \
        in capsys.readouterr().err
    assert out.read_text() == before and not (tmp_path / "runs").exists()
    out.write_text("{not json")
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path)
    assert "kd.json: not valid JSON" in capsys.readouterr().err and out.read_text() == "{not json"


@pytest.mark.unit
def test_hard_loss_runs_are_taken_only_from_a_results_file_of_the_same_student_and_epochs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--hard-from", str(tmp_path / "nowhere"))
    assert f"--hard-from: no results file at {repo_relative(tmp_path / 'nowhere.json')}" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"data": "380 synthetic maps", "student": STUDENT, "epochs": 60,
                                 "runs": {"hard": {"0": {}}}}))
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--hard-from", str(tmp_path / "other"))
    assert ("other.json holds results made with other settings (epochs, student_settings): its hard-loss runs "
            "are not this benchmark's") in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


@pytest.mark.unit
def test_settings_other_than_paper_2s_get_their_own_runs_and_title():
    assert run_name("kd", KD, 10, 2) == "kd-epochs10-seed2"
    other = {**KD, "temperature": 2.0}
    assert run_name("kd", other, 10, 2) == "kd-T2-a0.7-epochs10-seed2"
    assert run_name("hard", other, 10, 2) == "hard-epochs10-seed2"  # the hard-loss runs are shared
    assert run_name("kd", other, 10, 2, pretrained=True) == "kd-pretrained-T2-a0.7-epochs10-seed2"
    assert run_name("hard", other, 10, 2, pretrained=True) == "hard-epochs10-seed2"
    assert stage_titles(other)["kd"].endswith(", T = 2, a_cls = 0.7") and "T =" not in stage_titles(KD)["kd"]


@pytest.mark.unit
def test_the_distilled_runs_range_is_placed_against_the_hard_loss_runs():
    hard = {"mean": 0.94, "min": 0.93, "max": 0.95}
    assert against_spread({"mean": 0.97, "min": 0.96, "max": 0.98}, hard) == "better than every hard-loss run"
    assert against_spread({"mean": 0.91, "min": 0.90, "max": 0.92}, hard) == "worse than every hard-loss run"
    assert against_spread({"mean": 0.96, "min": 0.95, "max": 0.97}, hard) == "overlapping the hard-loss runs' range"


@pytest.mark.unit
def test_one_seed_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--seeds", "3")
    assert "--seeds needs at least two seeds" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def run_row(val, test):
    return {"val_exact_match": val, "test_exact_match": test, "best_epoch": 3, "test_dice": 1.0,
            "val_exact_match_by_epoch": [val]}


@pytest.mark.unit
def test_part_way_the_gap_is_over_the_seeds_both_have_finished_and_the_spread_waits_for_two_each():
    runs = {"hard": {"0": run_row(0.95, 0.94), "1": run_row(0.97, 0.96)}, "kd": {"0": run_row(0.96, 0.96)}}
    summary, gap = compare(runs)
    assert summary["hard"]["val_exact_match"] == pytest.approx({"mean": 0.96, "min": 0.95, "max": 0.97})
    assert gap == pytest.approx({"seeds": ["0"], "val": 0.01, "test": 0.02})  # seed 0 alone, not 0.96 - 0.96
    assert compare({"hard": {"0": run_row(0.95, 0.94)}, "kd": {}}) == (
        {"hard": {"val_exact_match": {"mean": 0.95, "min": 0.95, "max": 0.95},
                  "test_exact_match": {"mean": 0.94, "min": 0.94, "max": 0.94}}}, {})
    runs["kd"]["1"] = run_row(0.98, 0.97)
    # 0.96-0.98 against 0.95-0.97
    assert compare(runs)[1]["val_against_spread"] == "overlapping the hard-loss runs' range"

    results = {"epochs": 60, "seeds": [0, 1, 2], "data": "d", "kd": KD, "command": "python -m x --epochs 60",
               "teacher": {"title": "vgg7", "test_exact_match": 0.98}, "teacher_recipe": {"arch": "vgg7"},
               "plan": ["hard seed 0", "kd seed 0"] * 3,
               "runs": {"hard": {"0": run_row(0.95, 0.94)}, "kd": {}}, "wall_seconds": {"hard seed 0": 10},
               "unfinished": {"kd seed 0": {"progress": "12 of 60 epochs, best validation exact match 90.00% so far"}}}
    results["summary"], results["kd_minus_hard"] = compare(results["runs"])
    text = markdown(results)
    assert ("**Partial: 1 of 6 runs finished.** Still to do: kd seed 0: 12 of 60 epochs, best validation exact "
            "match 90.00% so far. Continue with `python -m x --epochs 60`") in text
    assert "| hard loss only | 95.00% (95.00-95.00%) | 94.00% (94.00-94.00%) |" in text
    assert "Distilled minus hard" not in text and "| distilled" not in text and "trained again" not in text
    results["teacher_of_recorded_runs"] = {"title": "vgg7", "test_exact_match": 0.97}
    assert "before this teacher was trained again learnt from one that read 97.00% of the test maps" in \
        markdown(results)


@pytest.mark.unit
def test_the_report_lists_the_runs_in_the_plans_order_and_only_the_missing_ones_as_unfinished(tmp_path):
    # Recorded and finished runs are taken before any is trained: the report then holds them out of order.
    plan = {f"{stage} seed {seed}": (stage, seed, tmp_path / f"{stage}-{seed}")
            for seed in "01" for stage in ("hard", "kd")}
    results = {"epochs": 1, "seeds": [0, 1], "data": "d", "kd": KD, "teacher_recipe": {}, "command": "c",
               "teacher": {"title": "vgg7", "test_exact_match": 0.98}, "plan": list(plan),
               "wall_seconds": {"hard seed 1": 4, TEACHER_STEP: 3, "hard seed 0": 2, "kd seed 0": 5}}
    runs = {"hard": {"1": run_row(0.95, 0.94), "0": run_row(0.96, 0.95)}, "kd": {"0": run_row(0.97, 0.96)}}
    write_report(tmp_path / "kd", results, runs, plan, 1)
    written = json.loads((tmp_path / "kd.json").read_text())
    assert list(written["runs"]["hard"]) == ["0", "1"] and list(written["unfinished"]) == ["kd seed 1"]
    assert list(written["wall_seconds"]) == [TEACHER_STEP, "hard seed 0", "kd seed 0", "hard seed 1"]
    assert "Still to do: kd seed 1: not started." in (tmp_path / "kd.md").read_text()


@pytest.mark.unit
def test_an_unfinished_run_says_how_far_it_has_got(tmp_path):
    assert unfinished_run(tmp_path / "none", 60) == {"progress": "not started", "val_exact_match_by_epoch": []}
    history = [{"epoch": epoch, "val_exact_match": value} for epoch, value in enumerate([0.8, 0.91234])]
    (tmp_path / "training.json").write_text(json.dumps(
        {"settings": {}, "epoch": 2, "finished": False, "stopped": False, "history": history, "wait": 0,
         "best": 0.91234, "best_epoch": 2}))
    assert unfinished_run(tmp_path, 60) == {
        "progress": "2 of 60 epochs, best validation exact match 91.23% so far",
        "val_exact_match_by_epoch": [0.8, 0.9123]}


@pytest.mark.unit
def test_report_only_needs_a_finished_teacher(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--report-only")
    assert "--report-only: no finished teacher with its logits in" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
    # Results recorded, but a finished distilled run here, whose teacher is not: that is what is missing.
    recorded = {"data": "380 synthetic maps", "student": STUDENT, "epochs": 1, "student_settings": student_settings(1),
                "kd": KD, "teacher_recipe": OUR_TEACHER._asdict(), "teacher": {"title": "vgg7"}, "runs": {}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "kd.json").write_text(json.dumps(recorded))
    (tmp_path / "runs" / "kd-epochs1-seed0").mkdir(parents=True)
    (tmp_path / "runs" / "kd-epochs1-seed0" / "training.json").write_text(json.dumps(
        {"settings": {}, "epoch": 1, "finished": True, "stopped": False, "history": [], "wait": 0}))
    with pytest.raises(SystemExit):
        run_benchmark(tmp_path, "--report-only")
    assert "with its logits in {}, which the finished distilled runs there need; run without it first".format(
        tmp_path / "runs") in capsys.readouterr().err
