"""The first run, as a new user makes it: the main job with no arguments, in a clean clone, timed.

    python -m benchmarks.first_run                 # clones HEAD into a temporary directory
    python -m benchmarks.first_run --keep runs/first-run-clone   # keep the clone to look at

Clones the repository's committed HEAD (what a user gets), runs `python -m kd_keras.distill`
there under `/usr/bin/time -v` with nothing else, and writes
`benchmarks/results/first_run.{json,md}`: the wall time against the 5-minute aim, peak memory,
the teacher's and the students' exact match on the synthetic test split (float; the
teacher's recall per defect too), each
student's int8 figures in TFLite Micro with its flash, arena and budget, and the lines
TensorFlow printed to the screen that are not the toolkit's own. Needs git and GNU time.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, write_results
from kd_keras.fileio import read_json

RESULTS = REPO / "benchmarks" / "results"
TARGET_SECONDS = 5 * 60
# What TensorFlow and Abseil print from C++ (I/W/E lines, the pre-logging warning) and what
# the TFLite converter's calibrator prints: framework output, not ours.
FRAMEWORK_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|WARNING:tensorflow|"
                            r"fully_quantize: |.*Warning: )")


def run_first_job(clone):
    """(wall seconds, GNU time's report (see `time_report`), stdout, stderr) of the main job run in `clone`."""
    start = time.time()
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "kd_keras.distill"], cwd=clone,
                            capture_output=True, text=True)
    seconds = time.time() - start
    if result.returncode != 0:
        raise RuntimeError(f"the main job failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return seconds, time_report(result.stderr), result.stdout, result.stderr


def time_report(stderr):
    """{"peak_mib": peak resident memory, "cpu_seconds": user + system} from GNU time's -v report.

    CPU seconds compare commits run on different days better than the wall clock: a machine
    whose neighbours take turns on its cores stretches the wall time, not the time the job ran."""
    def field(name):
        return float(re.search(rf"\t{re.escape(name)}: ([\d.]+)", stderr).group(1))
    return {"peak_mib": round(field("Maximum resident set size (kbytes)") / 1024),
            "cpu_seconds": round(field("User time (seconds)") + field("System time (seconds)"), 1)}


def framework_lines(stderr):
    """The lines of `stderr` that TensorFlow and its converter printed (time's report left out)."""
    text = stderr.split("\tCommand being timed:")[0]
    return [line for line in text.replace("\r", "\n").splitlines() if FRAMEWORK_LINE.match(line)]


def figures(clone):
    """The run's float test figures and its deployment rows, read from the files it wrote: the
    teacher as its students learn from it (its row in the run, e.g. the mean of 8 views), and
    from one view (its own run's)."""
    run_dir = next((clone / "runs").glob("distill-*"))
    teacher_dir = next((clone / "runs").glob("teacher-*"))
    rows = read_json(run_dir / "metrics.json")["models"]
    exact = {name: row["metrics"]["test"]["threshold"]["exact_match"] for name, row in rows.items()}
    teacher_name = next(name for name in rows if name.startswith("teacher"))
    teacher = rows[teacher_name]["metrics"]["test"]["threshold"]
    one_view = read_json(teacher_dir / "metrics.json")["models"]["teacher"]["metrics"]["test"]["threshold"]
    return {"teacher": teacher_name, "teacher_exact_match": teacher["exact_match"],
            "teacher_exact_match_one_view": one_view["exact_match"],
            "teacher_recall": {defect: row["recall"] for defect, row in teacher["per_defect"].items()},
            "float_exact_match": exact, "deployment": read_json(run_dir / "deployment.json")["models"]}


def markdown(results):
    lines = ["# The first run", "",
             f"`{results['command']}` in a clean clone of {results['commit']}, nothing reused (the teacher "
             f"trained too), {results['cpus']} CPU cores.", "",
             f"- Wall time: **{results['seconds']:.0f} s** (aim: under {TARGET_SECONDS} s); CPU time (user + "
             f"system, all cores) {results['cpu_seconds']:.0f} s; peak memory {results['peak_mib']:.0f} MiB.",
             f"- {results['teacher'].capitalize()}, synthetic test split: {100 * results['teacher_exact_match']:.2f}% "
             f"exact match ({100 * results['teacher_exact_match_one_view']:.2f}% from one view); recall "
             + ", ".join(f"{defect} {100 * recall:.0f}%" for defect, recall in results["teacher_recall"].items())
             + ".",
             f"- Framework lines on the screen: {len(results['framework_lines'])}"
             + (" (below)" if results["framework_lines"] else ""), "",
             "| student | float | int8 in TFLite Micro | flash | arena | budget |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, row in results["deployment"].items():
        lines.append(f"| {name} | {100 * results['float_exact_match'][name]:.2f}% | "
                     f"{100 * row['int8_exact_match']:.2f}% | {row['flash_bytes']:,} | {row['arena_bytes']:,} | "
                     f"{row['budget'] or 'none'} |")
    if results["framework_lines"]:
        lines += ["", "```", *results["framework_lines"], "```"]
    lines += ["", f"Reproduce: `python -m benchmarks.first_run` ({results['benchmark_seconds']:.0f} s with the clone)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, default=None, help="clone here and keep it (must not exist)")
    parser.add_argument("--out", type=Path, default=RESULTS / "first_run.json")
    args = parser.parse_args(argv)
    if shutil.which("git") is None or not Path("/usr/bin/time").is_file():
        parser.error("needs git and GNU time (/usr/bin/time)")
    start = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        clone = args.keep or Path(scratch) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True, capture_output=True,
                                text=True).stdout.strip()
        seconds, report, _, stderr = run_first_job(clone)
        results = {"command": "python -m kd_keras.distill", "commit": commit, "cpus": len(os.sched_getaffinity(0)),
                   "seconds": round(seconds, 1), "target_seconds": TARGET_SECONDS, **report,
                   **figures(clone), "framework_lines": framework_lines(stderr)}
    results["benchmark_seconds"] = round(time.time() - start, 1)
    write_results(args.out, results, markdown(results))


if __name__ == "__main__":
    sys.exit(main())
