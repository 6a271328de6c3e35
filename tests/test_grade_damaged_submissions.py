"""``course grade`` on damaged, endless and hostile submissions: each gets its status, the rest of the class its grade.

A class of the toy assignment (``square``, 1 point; ``mean``, 3 points) in which students edit a locked test,
loop forever, swallow the interrupt, kill their kernel, hand in half a file, delete a test cell, tamper with the
files of the grading, hand in two notebooks or nothing. None of this depends on what an exercise asks, so a toy
assignment that grades in seconds shows it; topic 01's class (``test_grade_command.py``) checks the points of a
real exercise part by part.
"""

from __future__ import annotations

import json
import time

import pytest
from test_grade_command import (
    ENDLESS,
    TOY,
    _answers,
    _exercise,
    _grade,
    _insert_after,
    _save,
    _tree_digest,
    _with,
    _without,
)

from course_lib.instructor.class_grading import read_grades_csv

pytestmark = pytest.mark.slow  # grades a class: tens of seconds, two of them in endless loops

ASSIGNMENT = TOY.stem
CELL_TIMEOUT = 10
"""Seconds per cell: far above what the toy's cells take, so that only the endless loops reach it."""
NOTEBOOK_TIMEOUT = 120

SWALLOWS = ("while True:\n    try:\n        while True:\n            pass\n"
            "    except:  # also catches the interrupt\n        pass\n")
KILLS = "import os\n\nos._exit(1)\n"
TAMPERS = """\
import pathlib

# where an nbgrader course keeps the gradebook and the other students' notebooks, relative to a notebook it grades
guesses = ["../../../gradebook.db", "../../../submitted/perfect/{a}/{a}.ipynb", "../../perfect/{a}/{a}.ipynb",
           "../../../autograded/perfect/{a}/{a}.ipynb"]
clobbered = []
for guess in guesses:
    path = pathlib.Path(guess.format(a="ASSIGNMENT"))
    if path.exists():
        path.write_text("overwritten by a student")
        clobbered.append(guess)
pathlib.Path("../../../gradebook.db").write_text("not a gradebook")  # inside the private copy, harmless
print("clobbered:", clobbered)
print("solution visible:", pathlib.Path("../../../source/ASSIGNMENT/ASSIGNMENT.ipynb").exists())
""".replace("ASSIGNMENT", ASSIGNMENT)

STUDENTS = ("perfect", "edited_test", "endless", "swallowed", "exits", "truncated", "deleted_test", "hostile", "dup",
            "absent")


@pytest.fixture(scope="module")
def damaged_class(tmp_path_factory):
    """The toy class graded once by ``course grade --jobs 2``; (folders, exit code, rows)."""
    root = tmp_path_factory.mktemp("damaged")
    answers = _answers(TOY)
    perfect = _with(_exercise(TOY), answers)
    wrong_square = {"square_answer": "def square(x):\n    return 2 * x\n"}
    subs = root / "submissions"
    _save(subs / "perfect.ipynb", perfect)
    edited = {**wrong_square, "square_test": "pass\n", "mean_test": "assert True\n"}
    _save(subs / "edited_test.ipynb", _with(perfect, edited))
    _save(subs / "endless.ipynb", _with(perfect, {"square_answer": ENDLESS + answers["square_answer"]}))
    _save(subs / "swallowed.ipynb", _with(perfect, {"square_answer": SWALLOWS + answers["square_answer"]}))
    _save(subs / "exits.ipynb", _with(perfect, {"square_answer": KILLS}))
    text = json.dumps(perfect, indent=1)
    _save(subs / "truncated.ipynb", text[: len(text) // 2])
    _save(subs / "deleted_test.ipynb", _without(perfect, "mean_test_hidden"))
    _save(subs / "hostile.ipynb", _insert_after(perfect, "intro", TAMPERS))
    _save(subs / "dup.ipynb", perfect)
    _save(subs / "dup" / f"{ASSIGNMENT}.ipynb", perfect)
    roster = root / "roster.csv"
    roster.write_text("student,name\n" + "".join(f"{s},Student {s}\n" for s in STUDENTS))
    before = _tree_digest(subs)
    out = root / "out"
    args = (TOY, subs, "--out", out, "--jobs", "2", "--timeout", CELL_TIMEOUT, "--notebook-timeout", NOTEBOOK_TIMEOUT,
            "--roster", roster)
    code = _grade(*args)
    return {"subs": subs, "out": out, "code": code, "before": before, "args": args,
            "rows": read_grades_csv(out / "grades.csv")}


EXPECTED = {
    # student: (status, total); the toy has 4 points, square 1 and mean 3
    "perfect": ("graded", "4"),
    "edited_test": ("graded-with-warnings", "3"),  # square wrong, its edited test restored: 0 of 1
    "endless": ("timeout", "3"),  # square never defined: 0 of 1; mean graded after it
    "swallowed": ("timeout", ""),
    "exits": ("kernel-died", ""),
    "truncated": ("not-a-notebook", ""),
    "deleted_test": ("graded-with-warnings", "4"),
    "hostile": ("graded", "4"),
    "dup": ("duplicate", ""),
    "absent": ("missing", ""),
}


def test_each_damaged_submission_gets_its_status_and_exact_score(damaged_class):
    rows = damaged_class["rows"]
    assert damaged_class["code"] == 0
    assert {s: (r["status"], r["total"]) for s, r in rows.items()} == EXPECTED
    assert all(r["max"] == "4" for r in rows.values())
    # not graded: empty, not a zero that looks real
    assert (rows["exits"]["square"], rows["exits"]["mean"]) == ("", "")


def test_an_edited_locked_test_is_restored_and_the_original_runs(damaged_class):
    row = damaged_class["rows"]["edited_test"]
    assert (row["square"], row["mean"]) == ("0", "3")  # the original test ran against the wrong answer
    assert "square_test was edited" in row["message"] and "mean_test was edited" in row["message"]


def test_a_deleted_test_cell_is_put_back_and_graded(damaged_class):
    row = damaged_class["rows"]["deleted_test"]
    assert row["mean"] == "3" and "mean_test_hidden was deleted" in row["message"]


def test_an_endless_loop_times_out_and_the_later_cells_are_still_graded(damaged_class):
    row = damaged_class["rows"]["endless"]
    assert (row["square"], row["mean"]) == ("0", "3") and "square_answer" in row["message"]


def test_a_loop_that_swallows_the_interrupt_is_stopped_and_the_run_finishes(damaged_class):
    row = damaged_class["rows"]["swallowed"]
    assert "did not stop when interrupted" in row["message"] and "square_answer" in row["message"]
    state = json.loads((damaged_class["out"] / "state.json").read_text())
    assert state["students"]["swallowed"]["seconds"] < NOTEBOOK_TIMEOUT  # stopped by the per-cell limit


def test_a_kernel_that_dies_a_truncated_file_and_a_duplicate_are_named_so(damaged_class):
    rows = damaged_class["rows"]
    assert "kernel died" in rows["exits"]["message"] and "square_answer" in rows["exits"]["message"]
    assert "not valid JSON" in rows["truncated"]["message"]
    assert "dup.ipynb" in rows["dup"]["message"] and f"dup/{ASSIGNMENT}.ipynb" in rows["dup"]["message"]


def test_a_tampering_student_reaches_neither_the_gradebook_nor_another_students_notebook(damaged_class):
    from nbgrader.api import Gradebook

    out = damaged_class["out"]
    graded = json.loads((out / "course" / "autograded" / "hostile" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in graded["cells"] for o in c.get("outputs", []))
    assert "clobbered: []" in printed and "solution visible: False" in printed
    perfect = out / "course" / "autograded" / "perfect" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert json.loads(perfect.read_text())["cells"]  # still a notebook
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(ASSIGNMENT, s).score for s in ("perfect", "hostile", "endless")}
    assert scores == {"perfect": 4.0, "hostile": 4.0, "endless": 3.0}


def test_the_gradebook_and_feedback_hold_every_graded_student(damaged_class):
    from nbgrader.api import Gradebook, MissingEntry

    out, rows = damaged_class["out"], damaged_class["rows"]
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        for student, row in rows.items():
            if row["total"]:
                assert gb.find_submission(ASSIGNMENT, student).score == float(row["total"])
            else:
                with pytest.raises(MissingEntry):
                    gb.find_submission(ASSIGNMENT, student)
    for student, row in rows.items():
        page = out / "feedback" / f"{student}.html"
        assert page.is_file() == (row["status"] != "missing"), student
    assert "4.0" in (out / "feedback" / "perfect.html").read_text()  # nbgrader's feedback, with the score
    assert "kernel-died" in (out / "feedback" / "exits.html").read_text()


def test_the_submissions_are_never_modified_and_a_rerun_regrades_nothing(damaged_class, capsys):
    subs, out = damaged_class["subs"], damaged_class["out"]
    assert _tree_digest(subs) == damaged_class["before"]
    csv_before = (out / "grades.csv").read_text()
    start = time.perf_counter()
    capsys.readouterr()
    code = _grade(*damaged_class["args"])
    printed = capsys.readouterr().out
    assert code == 0 and f"grading 0 of {len(STUDENTS)}" in printed and "7 unchanged" in printed
    assert (out / "grades.csv").read_text() == csv_before
    assert time.perf_counter() - start < 30
    assert _tree_digest(subs) == damaged_class["before"]
