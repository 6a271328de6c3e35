"""Feedback pages that students may read before the deadline: points, pass or fail, messages, no test code.

Built here from small autograded notebooks written by hand; the pages of a graded class (and
nbgrader's with ``--feedback full``) are checked in ``test_grader_checks.py``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from course_lib.instructor.feedback import (
    cell_results,
    graded_page,
    hidden_test_lines,
    points,
    status_page,
    student_message,
)
from course_lib.instructor.grading import CellError, parts_of

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "00_toy_assignment.ipynb"
CHECKED = FIXTURES / "solutions" / "00_checked_assignment.ipynb"


def page_text(page: str) -> str:
    """What a browser shows of a page: the tags dropped, the entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": ["\x1b[0;31m---------\x1b[0m", "Cell In[7], line 3", "assert secret_check(x)", ename]}


def _autograded(errors: dict[str, dict]) -> dict:
    """The toy solution as if autograded, with the given error outputs in the cells named by grade id."""
    nb = json.loads(TOY.read_text())
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in errors:
            cell["outputs"] = [errors[grade_id]]
    return nb


MAX = {"square_test": 1.0, "mean_test": 2.0, "mean_test_hidden": 1.0}


def test_hidden_test_lines_are_read_from_the_source():
    assert hidden_test_lines([TOY]) == {"assert square(-2) == 4, \"square(-2) should be 4\"",
                                        "assert abs(mean([0.5, 1.5, 4.0]) - 2.0) < 1e-12"}


def test_a_student_reads_the_assertions_message_or_the_errors_type_never_a_traceback():
    assert student_message(CellError(3, "t", "AssertionError", "square(3) should be 9, got 6")) == (
        "square(3) should be 9, got 6")
    assert student_message(CellError(3, "t", "AssertionError", "")) == (
        "a check failed (AssertionError without a message)")
    assert student_message(CellError(3, "t", "NameError", "name 'square' is not defined")) == (
        "NameError: name 'square' is not defined")
    timed_out = CellError(3, "t", "CellTimeoutError", "A cell timed out...\nHere is a preview of the cell contents:\n"
                          "-------------------\n['assert secret_check(x)']\n")
    assert student_message(timed_out, 20) == "the cell ran past the 20 s limit per cell and was interrupted"
    assert len(student_message(CellError(3, "t", "ValueError", "x" * 5000))) < 500


def test_rows_give_each_test_cells_points_result_and_message():
    nb = _autograded({"square_test": _error("AssertionError", "square(3) should be 9, got 6"),
                      "mean_test_hidden": _error("AssertionError", "")})
    rows = cell_results(nb, {"square_test": 0.0, "mean_test": 2.0, "mean_test_hidden": 0.0}, MAX, parts_of(TOY))
    assert [(r.cell, r.part, r.points, r.max_points, r.passed, r.message) for r in rows] == [
        ("square_test", "square", 0.0, 1.0, False, "square(3) should be 9, got 6"),
        ("mean_test", "mean", 2.0, 2.0, True, ""),
        ("mean_test_hidden", "mean", 0.0, 1.0, False, "a check failed (AssertionError without a message)"),
    ]
    zeroed = cell_results(nb, {"mean_test": 0.0}, MAX, parts_of(TOY), notes={"mean": "part mean: uses the library"})
    assert zeroed[1].message == "part mean: uses the library"


def test_a_page_shows_no_test_code_no_traceback_and_escapes_what_it_shows(tmp_path):
    hidden = hidden_test_lines([TOY])
    quoting = "assert abs(mean([0.5, 1.5, 4.0]) - 2.0) < 1e-12"  # an error message that quotes a hidden line
    nb = _autograded({"square_test": _error("AssertionError", "<script>alert(1)</script> should be 9"),
                      "mean_test_hidden": _error("SyntaxError", f"in\n{quoting}\nhere"),
                      "square_answer": _error("ZeroDivisionError", "division by zero")})
    path = tmp_path / "toy.ipynb"
    path.write_text(json.dumps(nb))
    page = graded_page(path, assignment="00_toy_assignment", student="ann & co", notebook="00_toy_assignment.ipynb",
                       status="graded", message="", total=2.0, max_total=4.0,
                       scores={"square_test": 0.0, "mean_test": 2.0, "mean_test_hidden": 0.0}, max_scores=MAX,
                       parts=parts_of(TOY), hidden=hidden)
    shown = page_text(page)
    assert "<script>" not in page and "&lt;script&gt;" in page and "ann &amp; co" in page
    assert "Total: 2.0 / 4.0 points" in shown
    for line in hidden:
        assert line not in shown
    assert "(a line of the hidden tests, not shown)" in shown
    assert "secret_check" not in shown and "Cell In[7]" not in shown  # no traceback
    assert "square_answer" in shown and "ZeroDivisionError: division by zero" in shown  # the student's own error
    source = "".join("".join(c["source"]) for c in json.loads(TOY.read_text())["cells"]
                     if c["metadata"].get("nbgrader", {}).get("grade"))
    for line in source.splitlines():
        if len(line.strip()) >= 10:
            assert line.strip() not in shown, line  # no test cell's source, visible part included


def test_points_read_as_points():
    assert [points(x) for x in (27, 0, 0.5, 0.25, 1 / 3)] == ["27.0", "0.0", "0.5", "0.25", "0.33"]


def test_the_status_page_says_what_happened():
    page = status_page("ann", "00_toy_assignment", "kernel-died", "the kernel died in <cell>", ["ann.ipynb"])
    assert "kernel-died" in page and "&lt;cell&gt;" in page and "ann.ipynb" in page


def test_the_checked_fixture_has_hidden_lines_to_look_for():
    lines = hidden_test_lines([CHECKED])
    assert len([line for line in lines if len(line) >= 10]) >= 5
