"""The ``course`` command (also ``python -m course_lib``).

::

    course run [NOTEBOOK ...] [--profile smoke|cpu|gpu] [--out build] [--timeout SECONDS]
    course release [--check] [--zip [PATH]]
    course grade ASSIGNMENT SUBMISSIONS [--out DIR] [--jobs N] [--timeout S] [--notebook-timeout S]
                 [--roster FILE] [--force]
    course results [BUILD_DIR]
    course data fetch [NAME ...]
    course data list

``course data`` is here, for students and instructors alike. The other commands are the
instructor's tools (:mod:`course_lib.instructor.cli`), which the student bundle leaves
out: there, they only say so.

Exit status: 0 success; 1 the command ran but found a failure (a notebook failed,
exercises out of sync, a download failed, the grader could not grade a submission);
2 the command was used wrongly (unknown option or profile, a path that does not exist,
an instructor's command in the student bundle). A class in which some students'
notebooks time out, crash or are missing is graded successfully: their statuses are
results, written to ``grades.csv``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

OK, FAILED, USAGE = 0, 1, 2

INSTRUCTOR_COMMANDS = ("run", "release", "grade", "results")
"""The commands of :mod:`course_lib.instructor.cli`."""

NOT_IN_BUNDLE = "the instructor's tools are not part of the student bundle"


class UsageError(Exception):
    """The command line asks for something impossible (exit status 2)."""


def error(message: str) -> None:
    """Print ``course: error: message`` to stderr."""
    print(f"course: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- course data


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
        error(f"could not fetch {name}: {err}")
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


# --------------------------------------------------------------------------- the instructor's commands


def _instructor_cli() -> ModuleType | None:
    """:mod:`course_lib.instructor.cli`, or None where it is absent (the student bundle)."""
    try:
        from course_lib.instructor import cli
    except ModuleNotFoundError as exc:
        if exc.name != "course_lib.instructor":
            raise  # a package that the instructor's tools need is missing: say which
        return None
    return cli


def _not_in_bundle(args: argparse.Namespace) -> int:
    raise UsageError(f"`course {args.command}`: {NOT_IN_BUNDLE} (they come with the course's repository);"
                     " here, `course data` fetches and lists the data sets")


def _add_placeholders(sub: argparse._SubParsersAction) -> None:
    """Commands that take any arguments and say that the instructor's tools are not here."""
    for name in INSTRUCTOR_COMMANDS:
        # no option prefix: every argument, --help included, goes to `args` and the command gives its message
        placeholder = sub.add_parser(name, help=f"(not here: {NOT_IN_BUNDLE})", add_help=False, prefix_chars="\0")
        placeholder.add_argument("args", nargs="*")
        placeholder.set_defaults(func=_not_in_bundle)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Run the course's notebooks, release the exercises, grade a class, fetch the data.",
        epilog="Exit status: 0 success, 1 something failed, 2 wrong usage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    instructor = _instructor_cli()
    if instructor is not None:
        instructor.add_commands(sub)
    else:
        _add_placeholders(sub)

    data = sub.add_parser("data", help="download and verify the data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    fetch = data_sub.add_parser("fetch", help="download (if needed) and verify data sets")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="data sets to fetch (default: all)")
    fetch.set_defaults(func=cmd_data_fetch)
    listing = data_sub.add_parser("list", help="list the data sets the course knows")
    listing.add_argument("--verify", action="store_true", help="also look for verified local copies (reads them)")
    listing.set_defaults(func=cmd_data_list)
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
        error(str(exc))
        return USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return 130
