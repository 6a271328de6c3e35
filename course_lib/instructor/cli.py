"""The instructor's commands of ``course``: ``run``, ``release``, ``grade`` and ``results``.

:func:`add_commands` adds them to the parser of :mod:`course_lib.cli`, which holds the
students' ``course data`` and the exit statuses. Each command imports what it runs when it
runs, so that ``course --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.cli import FAILED, OK, UsageError, error
from course_lib.runtime import PROFILES, resolve_profile

# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from course_lib.instructor.notebooks import run_notebooks

    try:
        profile = resolve_profile(args.profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.paths:
        paths = [Path(p) for p in args.paths]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UsageError(f"no notebook at {', '.join(missing)}")
        not_notebooks = [str(p) for p in paths if p.suffix != ".ipynb"]
        if not_notebooks:
            raise UsageError(f"not a notebook (expected .ipynb): {', '.join(not_notebooks)}")
    else:
        paths = sorted(Path("lectures").glob("*.ipynb"))
        if not paths:
            raise UsageError("no notebook given and none in lectures/ (run from the repository's root)")
    runs = run_notebooks(paths, out_dir=args.out, profile=profile, timeout=args.timeout)
    folder = Path(args.out) / profile
    failed = [run for run in runs if not run.ok]
    print(f"\n{len(runs) - len(failed)} of {len(runs)} notebook(s) ran; results in {folder / 'results.md'}")
    for run in failed:
        print(f"FAILED {run.notebook}: {run.error}", file=sys.stderr)
    return FAILED if failed else OK


def cmd_release(args: argparse.Namespace) -> int:
    from course_lib.instructor.release import check_exercises, generate_exercises

    solutions, exercises = Path(args.solutions), Path(args.exercises)
    if not solutions.is_dir():
        raise UsageError(f"no solutions folder at {solutions} (run from the repository's root)")
    if args.check:
        problems = check_exercises(solutions, exercises)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} problem(s) in {exercises}/; `course release` regenerates the exercises",
                  file=sys.stderr)
            return FAILED
        print(f"{exercises}/ is in sync with {solutions}/ and leaks nothing")
        return _write_bundle(args, exercises, solutions)
    written = generate_exercises(solutions, exercises)
    for path in written:
        print(f"wrote {path}")
    problems = check_exercises(solutions, exercises)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return FAILED
    return _write_bundle(args, exercises, solutions)


def _write_bundle(args: argparse.Namespace, exercises: Path, solutions: Path) -> int:
    if args.zip is None:
        return OK
    from course_lib.instructor.release import build_bundle

    try:
        path = build_bundle(args.zip or None, root=".", exercises_dir=exercises, solutions_dir=solutions)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        error(str(exc))
        return FAILED
    print(f"wrote the student bundle {path}")
    return OK


def cmd_grade(args: argparse.Namespace) -> int:
    from course_lib.instructor.class_grading import grade_class, resolve_assignment

    try:
        source = resolve_assignment(args.assignment, args.solutions)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    submissions = Path(args.submissions)
    if not submissions.exists():
        raise UsageError(f"no submissions at {submissions}")
    if args.roster is not None and not Path(args.roster).is_file():
        raise UsageError(f"no roster at {args.roster}")
    out = Path(args.out) if args.out else Path("build") / "grades" / (source.stem if source.is_file() else source.name)
    try:
        grades = grade_class(source, submissions, out, roster=args.roster, jobs=args.jobs, timeout=args.timeout,
                             notebook_timeout=args.notebook_timeout, force=args.force, profile=args.profile,
                             feedback=args.feedback, library_copies=args.library_copies)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        error(str(exc))
        return FAILED
    print()
    print(grades.summary())
    for student in grades.errors:
        error(f"could not grade {student}: {grades.students[student].message}")
    return FAILED if grades.errors else OK


def cmd_results(args: argparse.Namespace) -> int:
    from course_lib.instructor.notebooks import load_runs, results_table

    try:
        runs, hardware = load_runs(args.build_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print(results_table(runs, hardware), end="")
    return OK



# --------------------------------------------------------------------------- parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``run``, ``release``, ``grade`` and ``results`` to the subcommands ``sub`` of the ``course`` parser."""
    run = sub.add_parser("run", help="execute notebooks headless in a profile and collect their results",
                         description="Execute notebooks with papermill and write build/<profile>/results.md.")
    run.add_argument("paths", nargs="*", metavar="NOTEBOOK", help="notebooks to run (default: lectures/*.ipynb)")
    run.add_argument("--profile", choices=PROFILES, default=None,
                     help="sizes to run at (default: $COURSE_PROFILE, else gpu with CUDA, else cpu)")
    run.add_argument("--out", default="build", metavar="DIR", help="where executed notebooks go (default: build)")
    run.add_argument("--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
                     help="seconds any single cell may run (default: no limit)")
    run.set_defaults(func=cmd_run)

    release = sub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader",
                             description="Regenerate exercises/<stem>.ipynb from solutions/<stem>.ipynb.")
    release.add_argument("--check", action="store_true",
                         help="change nothing; list stale, missing or extra exercises and leaks, exit 1 if any")
    release.add_argument("--zip", nargs="?", const="", default=None, metavar="PATH",
                         help="also write the student bundle (exercises, lectures, course_lib, environment files)"
                              " to PATH (default: build/release/dgm-course.zip)")
    release.add_argument("--solutions", default="solutions", metavar="DIR", help=argparse.SUPPRESS)
    release.add_argument("--exercises", default="exercises", metavar="DIR", help=argparse.SUPPRESS)
    release.set_defaults(func=cmd_release)

    from course_lib.instructor.class_grading import (
        DEFAULT_NOTEBOOK_TIMEOUT,
        DEFAULT_TIMEOUT,
        FEEDBACK_MODES,
        LIBRARY_COPIES,
    )

    grade = sub.add_parser(
        "grade", help="autograde a class's submissions with nbgrader: grades.csv and feedback",
        description="Autograde every student's submission of ASSIGNMENT with nbgrader (hidden tests included, in"
                    " the smoke profile), each in a private copy of the course, several at a time. First the"
                    " self-check: the reference answer (the released exercise with the solution's answers) is"
                    " graded in the same environment and limits; unless it scores full marks, no student is"
                    " graded and each failing cell is named (OUT/reference/ holds it). Writes OUT/grades.csv"
                    " (one row per student: status, points per part, total, max, message),"
                    " OUT/feedback/<student>.html (points, pass or fail and messages per test cell, never the"
                    " tests' code) and the nbgrader course directory OUT/course/ with its gradebook. A re-run"
                    " re-grades only the submissions that changed.",
        epilog="Statuses: graded, graded-with-warnings, timeout, kernel-died, not-a-notebook, missing, duplicate,"
               " error. Exit status: 0 the class was graded (whatever the statuses), 1 the reference answer did"
               " not score full marks (no student graded), the grader failed on a submission or a cell failed"
               " because of the environment (status error), or grading could not start, 2 wrong usage.")
    grade.add_argument("assignment", metavar="ASSIGNMENT",
                       help="solutions/<ASSIGNMENT>.ipynb (a unique prefix such as 01 will do) or a solution notebook")
    grade.add_argument("submissions", metavar="SUBMISSIONS",
                       help="a folder (or .zip) of <student>.ipynb files, of <student>/ folders, or nbgrader's"
                            " submitted/<student>/<assignment>/; only read")
    grade.add_argument("--out", default=None, metavar="DIR",
                       help="where grades.csv, feedback/ and the course directory go"
                            " (default: build/grades/<assignment>)")
    grade.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                       help="students graded at a time (default: the number of cores)")
    grade.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                       help=f"seconds one cell may run before it is interrupted (default: {DEFAULT_TIMEOUT:g})")
    grade.add_argument("--notebook-timeout", type=_positive_seconds, default=DEFAULT_NOTEBOOK_TIMEOUT, metavar="S",
                       help="seconds one student's whole notebook may run before it is stopped"
                            f" (default: {DEFAULT_NOTEBOOK_TIMEOUT:g})")
    grade.add_argument("--roster", default=None, metavar="FILE",
                       help="student ids, one a line (or a CSV with a 'student' column): who submitted nothing is"
                            " listed as missing")
    grade.add_argument("--force", action="store_true", help="re-grade every submission, changed or not")
    grade.add_argument("--feedback", choices=FEEDBACK_MODES, default="summary",
                       help="summary (default): pages of points, pass or fail and the message of each failed test,"
                            " without the tests' code, fit to hand out before the deadline; full: nbgrader's pages,"
                            " which show every test as it ran, hidden tests included")
    grade.add_argument("--library-copies", choices=LIBRARY_COPIES, default="warn",
                       help="what a part gets when the answer uses the course_lib names that the solution declares"
                            " for it: warn (default: status graded-with-warnings, the message names the part and"
                            " the name) or zero (likewise, and the part scores 0)")
    grade.add_argument("--profile", choices=PROFILES, default="smoke", help=argparse.SUPPRESS)
    grade.add_argument("--solutions", default="solutions", metavar="DIR", help=argparse.SUPPRESS)
    grade.set_defaults(func=cmd_grade)

    results = sub.add_parser("results", help="print the results table of earlier runs")
    results.add_argument("build_dir", nargs="?", default="build", metavar="BUILD_DIR",
                         help="a profile's folder (build/cpu) or the folder above (default: build)")
    results.set_defaults(func=cmd_results)
