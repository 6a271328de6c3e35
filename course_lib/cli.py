"""The ``course`` command (also ``python -m course_lib``).

::

    course run [NOTEBOOK ...] [--profile smoke|cpu|gpu] [--out build] [--timeout SECONDS]
    course release [--check]
    course data fetch [NAME ...]
    course data list
    course results [BUILD_DIR]

Exit status: 0 success; 1 the command ran but found a failure (a notebook failed,
exercises out of sync, a download failed); 2 the command was used wrongly (unknown
option or profile, a path that does not exist).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_lib.runtime import PROFILES, resolve_profile

OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something impossible (exit status 2)."""


def _error(message: str) -> None:
    print(f"course: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from course_lib.notebooks import run_notebooks

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
    from course_lib.release import check_exercises, generate_exercises

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
        return OK
    written = generate_exercises(solutions, exercises)
    for path in written:
        print(f"wrote {path}")
    problems = check_exercises(solutions, exercises)
    for problem in problems:
        print(problem, file=sys.stderr)
    return FAILED if problems else OK


def _download_module():
    try:
        from course_lib.data import download
    except ImportError as exc:
        raise UsageError(f"the data module is not available: {exc}") from None
    return download


def cmd_data_fetch(args: argparse.Namespace) -> int:
    download = _download_module()
    try:
        found = download.fetch_all(args.names or None)
    except ValueError as exc:  # an unknown name, refused before anything is downloaded
        raise UsageError(str(exc)) from None
    failed = {name: value for name, value in found.items() if isinstance(value, BaseException)}
    for name, value in found.items():
        if name not in failed:
            print(f"{name}: {value}")
    for name, err in failed.items():
        _error(f"could not fetch {name}: {err}")
    return FAILED if failed else OK


def cmd_data_list(args: argparse.Namespace) -> int:
    download = _download_module()
    for dataset, members in download.DATASETS.items():
        print(dataset)
        for name in members:
            spec = download.DATA_FILES[name]
            local = download.find_local(spec) if args.verify else None
            where = f" [{local or 'not found locally'}]" if args.verify else ""
            print(f"  {name}: {spec.description}{where}")
    return OK


def cmd_results(args: argparse.Namespace) -> int:
    from course_lib.notebooks import load_runs, results_table

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Run the course's notebooks, release the exercises, fetch the data.",
        epilog="Exit status: 0 success, 1 something failed, 2 wrong usage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

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
    release.add_argument("--solutions", default="solutions", metavar="DIR", help=argparse.SUPPRESS)
    release.add_argument("--exercises", default="exercises", metavar="DIR", help=argparse.SUPPRESS)
    release.set_defaults(func=cmd_release)

    data = sub.add_parser("data", help="download and verify the data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    fetch = data_sub.add_parser("fetch", help="download (if needed) and verify data sets")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="data sets to fetch (default: all)")
    fetch.set_defaults(func=cmd_data_fetch)
    listing = data_sub.add_parser("list", help="list the data sets the course knows")
    listing.add_argument("--verify", action="store_true", help="also look for verified local copies (reads them)")
    listing.set_defaults(func=cmd_data_list)

    results = sub.add_parser("results", help="print the results table of earlier runs")
    results.add_argument("build_dir", nargs="?", default="build", metavar="BUILD_DIR",
                         help="a profile's folder (build/cpu) or the folder above (default: build)")
    results.set_defaults(func=cmd_results)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``course`` command; returns the exit status (0 ok, 1 failure, 2 wrong usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        _error(str(exc))
        return USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
