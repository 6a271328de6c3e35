"""Feedback pages for students that never show the hidden tests, so that they can go out before the deadline.

nbgrader's feedback pages print each test cell as it ran, hidden tests included (its issue
#917), so they can only go back after the deadline and the tests cannot be used again. The
pages here show, per notebook: the assignment, the student, the status and total, and a
table of the test cells (part, points earned and possible, passed or failed, and for a
failure the student-facing message of its exception: an assertion's own message, else the
exception's type and message; a timeout in words). No cell source of any test cell is
shown, and no traceback; any line of a message that holds a line of the hidden tests is
withheld all the same (:func:`hidden_test_lines`). Errors raised by the student's own cells
are listed by name and message. ``course grade --feedback full`` writes nbgrader's pages
instead.

A submission that was not graded (missing points: a timeout, a dead kernel, not a notebook,
an error...) gets :func:`status_page`, which says what happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from course_lib.instructor.grading import CellError, Part, cell_error_list, cell_label
from course_lib.instructor.notebooks import cell_source
from course_lib.instructor.release import LEAK_MARKERS

HIDDEN_BEGIN, HIDDEN_END = LEAK_MARKERS[2], LEAK_MARKERS[3]
"""nbgrader's lines around hidden tests."""

MIN_HIDDEN_LINE = 8
"""Hidden-test lines shorter than this (``pass``, ``)``) are too common to withhold a message for."""

MAX_MESSAGE = 400
"""Characters of an exception's message shown at most."""

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.passed { color: #1a7f37; } .failed { color: #b42318; }
pre { white-space: pre-wrap; margin: 0; font-size: 0.9em; }
"""


def hidden_test_lines(notebooks: Iterable[str | Path | Mapping[str, Any]]) -> set[str]:
    """Every non-empty line (stripped) between nbgrader's hidden-test markers in the source notebooks."""
    lines: set[str] = set()
    for notebook in notebooks:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook
        for cell in nb.get("cells", []):
            inside = False
            for line in cell_source(cell).splitlines():
                if line.strip() == HIDDEN_BEGIN:
                    inside = True
                elif line.strip() == HIDDEN_END:
                    inside = False
                elif inside and line.strip():
                    lines.add(line.strip())
    return lines


def points(value: float) -> str:
    """Points as feedback shows them: ``3.0``, ``0.5``, ``0.25`` (at most two decimals)."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _withheld(text: str, hidden: set[str]) -> str:
    """``text`` with every line that holds a line of the hidden tests replaced by a note."""
    long = [h for h in hidden if len(h) >= MIN_HIDDEN_LINE]
    return "\n".join("(a line of the hidden tests, not shown)" if any(h in line for h in long) else line
                     for line in text.splitlines())


def student_message(error: CellError, timeout: float | None = None) -> str:
    """What a student may read of an error: an assertion's message, else ``Type: message``; never a traceback."""
    if error.ename == "CellTimeoutError":  # nbclient's message quotes the cell's source
        limit = f" {timeout:g} s" if timeout else ""
        return f"the cell ran past the{limit} limit per cell and was interrupted"
    message = error.evalue.strip()
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ..."
    if error.ename == "AssertionError":
        return message or "a check failed (AssertionError without a message)"
    return f"{error.ename}: {message}" if message else error.ename


@dataclass(frozen=True)
class CellResult:
    """One test cell's row of a feedback page."""

    cell: str
    part: str
    points: float
    max_points: float
    passed: bool
    """The cell ran without an error."""
    message: str = ""


def cell_results(autograded: Mapping[str, Any], scores: Mapping[str, float], max_scores: Mapping[str, float],
                 parts: Mapping[str, Part], *, timeout: float | None = None,
                 notes: Mapping[str, str] | None = None) -> list[CellResult]:
    """The rows of a feedback page: each test cell of the autograded notebook, in order.

    ``notes`` gives, per part, why a test that passed earned no points (e.g. a library copy).
    """
    part_of = {gid: name for name, part in parts.items() for gid in part.test_ids}
    errors = {e.cell: e for e in cell_error_list(autograded)}
    rows = []
    for i, cell in enumerate(autograded.get("cells", [])):
        gid = cell_label(cell, i)
        if gid not in max_scores or not (cell.get("metadata", {}).get("nbgrader") or {}).get("grade"):
            continue
        earned, most, part = float(scores.get(gid, 0.0)), float(max_scores[gid]), part_of.get(gid, "")
        error = errors.get(gid)
        message = student_message(error, timeout) if error else ""
        if error is None and earned < most and (notes or {}).get(part):
            message = notes[part]
        rows.append(CellResult(gid, part, earned, most, error is None, message))
    return rows


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n")


def results_page(*, assignment: str, student: str, notebook: str, status: str, message: str, total: float,
                 max_total: float, rows: list[CellResult], own_errors: list[CellError],
                 hidden: set[str]) -> str:
    """The feedback page of a graded notebook: status, total, a table of parts and one of test cells.

    ``own_errors`` are the errors of the student's own cells (answers and added cells), listed
    by cell with their message. Every text is escaped, and any line holding a line of
    ``hidden`` (the hidden tests) is withheld.
    """
    def text(value: str) -> str:
        return escape(_withheld(value, hidden))

    by_part: dict[str, list[float]] = {}
    for row in rows:
        earned = by_part.setdefault(row.part, [0.0, 0.0])
        earned[0] += row.points
        earned[1] += row.max_points
    body = [f"<h1>{escape(assignment)}: {escape(student)}</h1>",
            f"<p>Notebook <code>{escape(notebook)}</code>. Status: <strong>{escape(status)}</strong>."
            f" Total: <strong>{points(total)} / {points(max_total)}</strong> points.</p>"]
    if message:
        body.append(f"<p>{text(message)}</p>")
    body.append("<table><tr><th>part</th><th>points</th></tr>")
    body += [f"<tr><td>{escape(part or '(no part)')}</td><td class=\"num\">{points(got)} / {points(most)}</td></tr>"
             for part, (got, most) in by_part.items()]
    body.append("</table>")
    body.append("<table><tr><th>test cell</th><th>part</th><th>points</th><th>result</th><th>message</th></tr>")
    for row in rows:
        result = "passed" if row.passed else "failed"
        body.append(f"<tr><td><code>{escape(row.cell)}</code></td><td>{escape(row.part)}</td>"
                    f"<td class=\"num\">{points(row.points)} / {points(row.max_points)}</td>"
                    f"<td class=\"{result}\">{result}</td><td><pre>{text(row.message)}</pre></td></tr>")
    body.append("</table>")
    if own_errors:
        body.append("<p>Errors raised by your own cells:</p><ul>")
        body += [f"<li><code>{escape(e.cell)}</code>: <pre>{text(student_message(e))}</pre></li>" for e in own_errors]
        body.append("</ul>")
    body.append("<p>The tests' code is not shown: hidden tests check your answers on other inputs when the"
                " notebook is graded.</p>")
    return _page(f"{assignment}: {student}", "\n".join(body) + "\n")


def graded_page(autograded: str | Path, *, assignment: str, student: str, notebook: str, status: str, message: str,
                total: float, max_total: float, scores: Mapping[str, float], max_scores: Mapping[str, float],
                parts: Mapping[str, Part], hidden: set[str], timeout: float | None = None,
                notes: Mapping[str, str] | None = None) -> str:
    """:func:`results_page` of an autograded notebook file."""
    nb = json.loads(Path(autograded).read_text(encoding="utf-8"))
    rows = cell_results(nb, scores, max_scores, parts, timeout=timeout, notes=notes)
    own = [e for e in cell_error_list(nb) if not e.test]
    return results_page(assignment=assignment, student=student, notebook=notebook, status=status, message=message,
                        total=total, max_total=max_total, rows=rows, own_errors=own, hidden=hidden)


def status_page(student: str, assignment: str, status: str, message: str, files: list[str]) -> str:
    """A small feedback page for a submission that was not graded: its status, why, and the files received."""
    listing = "".join(f"<li><code>{escape(f)}</code></li>" for f in files)
    body = (f"<h1>{escape(assignment)}: {escape(student)}</h1>\n"
            f"<p>Status: <strong>{escape(status)}</strong></p>\n<p>{escape(message)}</p>\n"
            + (f"<p>Files received:</p><ul>{listing}</ul>\n" if listing else ""))
    return _page(f"{assignment}: {student}", body)
