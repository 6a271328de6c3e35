"""Benchmark of ``course grade``: seconds per submission and for a whole class.

Builds a class of N copies of a perfect submission of an assignment (its exercise with the
solution's answers filled in, as a student who gets everything right hands it in), grades it
with ``course grade`` once per ``--jobs`` setting, each time into a fresh output folder, and
reports

* the wall-clock time for the whole class (the command, start to end),
* the wall-clock time per submission (the class's time divided by N: what a class costs),
* the mean time to grade one student (from handing the job to a grading process to its
  result, while the other jobs run beside it), and the same without starting the grading
  process (each of the ``--jobs`` processes starts once and then grades student after student),

checking that every copy got full marks. Writes a markdown table with the hardware it ran
on to ``benchmarks/RESULTS-grading.md``. It is a measurement, not a test: run it on an
otherwise idle machine. Usage::

    python benchmarks/bench_grading.py                 # 50 copies, --jobs 1 and --jobs 2
    python benchmarks/bench_grading.py --n 2 --jobs 1  # a quick check that it works
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib.data.download import cache_dir, data_dirs
from course_lib.instructor.class_grading import STATE_FILE, GradingState, read_grades_csv
from course_lib.instructor.grading import reference_answer
from course_lib.instructor.release import render_exercises
from course_lib.results import markdown_table
from course_lib.runtime import describe_hardware

REPO = Path(__file__).resolve().parents[1]


def perfect_submission(solution: Path) -> str:
    """The exercise generated from ``solution`` with the solution's answer cells put in (the reference answer)."""
    exercise = json.loads(render_exercises([solution])[solution.stem])
    return json.dumps(reference_answer(exercise, json.loads(solution.read_text(encoding="utf-8"))), indent=1)


def grade(solution: Path, class_dir: Path, out: Path, jobs: int, timeout: float, notebook_timeout: float) -> dict:
    """Run ``course grade`` on the class; returns its timings and what it found."""
    command = [sys.executable, "-m", "course_lib", "grade", str(solution), str(class_dir), "--out", str(out),
               "--jobs", str(jobs), "--timeout", str(timeout), "--notebook-timeout", str(notebook_timeout)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"course grade failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    rows = read_grades_csv(out / "grades.csv")
    students = [s for s in GradingState.load(out / STATE_FILE).students.values() if s.seconds is not None]
    per_student = [s.seconds for s in students]
    warm = [s.seconds - (s.phases or {}).get("start", 0.0) for s in students]
    full = [name for name, row in rows.items() if row["status"] == "graded" and row["total"] == row["max"]]
    return {"jobs": jobs, "seconds": seconds, "n": len(rows), "full_marks": len(full),
            "per_student": statistics.mean(per_student) if per_student else float("nan"),
            "warm": statistics.mean(warm) if warm else float("nan"),
            "statuses": sorted({row["status"] for row in rows.values()})}


TABLE_COLUMNS = ("jobs", "class of N (s)", "per submission (s)", "one student, mean (s)",
                 "one student, process started (s)", "full marks")


def table(results: list[dict], solution: Path, n: int, timeout: float, notebook_timeout: float) -> str:
    import nbgrader

    lines = [
        "# Grading benchmark",
        "",
        f"`course grade` on a class of {n} copies of a perfect submission of `{solution.relative_to(REPO)}`,"
        f" profile smoke, per-cell limit {timeout:g} s, whole-notebook limit {notebook_timeout:g} s.",
        "",
        f"- hardware: {describe_hardware()} (each notebook's kernel: 1 thread)",
        f"- Python {platform.python_version()}, nbgrader {nbgrader.__version__}",
        f"- date: {dt.date.today().isoformat()}",
        "",
        markdown_table(TABLE_COLUMNS, [[r["jobs"], r["seconds"], r["seconds"] / r["n"], r["per_student"], r["warm"],
                                        f"{r['full_marks']}/{r['n']}"] for r in results], floatfmt=".1f").rstrip("\n"),
    ]
    lines += ["", "Per submission: the class's wall-clock time divided by N (what a class costs, setup included)."
              " One student: from handing the job to a grading process to its result (kernel start, execution,"
              " feedback), while the other jobs run beside it; the last column leaves out starting the grading"
              " process, which each of the jobs does once.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="copies in the class (default 50)")
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs settings to time (default 1,2)")
    parser.add_argument("--assignment", default=str(REPO / "solutions" / "01_likelihood_models.ipynb"),
                        help="the solution notebook (default: topic 01)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per cell (default 120)")
    parser.add_argument("--notebook-timeout", type=float, default=600.0, help="seconds per notebook (default 600)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS-grading.md"),
                        help="where the table goes (default benchmarks/RESULTS-grading.md)")
    args = parser.parse_args(argv)
    if data_dirs() == [cache_dir()]:
        print(f"note: COURSE_DATA_DIR is not set; the data is looked up in the user cache {cache_dir()}",
              file=sys.stderr)
    solution = Path(args.assignment).resolve()
    jobs = [int(j) for j in args.jobs.split(",") if j.strip()]
    text = perfect_submission(solution)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        class_dir = Path(tmp) / "class"
        class_dir.mkdir()
        for i in range(args.n):
            (class_dir / f"student{i:03d}.ipynb").write_text(text, encoding="utf-8")
        for j in jobs:
            print(f"grading {args.n} submissions with --jobs {j} ...", flush=True)
            result = grade(solution, class_dir, Path(tmp) / f"out-jobs{j}", j, args.timeout, args.notebook_timeout)
            print(f"  {result['seconds']:.1f} s for the class, {result['seconds'] / result['n']:.1f} s per submission,"
                  f" {result['per_student']:.1f} s per student ({result['warm']:.1f} s once its grading process"
                  f" runs); full marks {result['full_marks']}/{result['n']}", flush=True)
            results.append(result)
    report = table(results, solution, args.n, args.timeout, args.notebook_timeout)
    Path(args.results).write_text(report, encoding="utf-8")
    print(f"wrote {args.results}")
    return 0 if all(r["full_marks"] == r["n"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
