"""The grader checks itself: the reference answer, failures of the environment, and what they make of a grade.

Unit tests on notebooks and outcomes written by hand; the self-check and the environment's
failures in a graded class are in ``test_grader_checks.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib.instructor.class_grading import (
    GradingSettings,
    SelfCheck,
    SelfCheckError,
    StudentGrade,
    _take_outcome,
    classify,
)
from course_lib.instructor.grading import (
    CellError,
    EnvironmentFailure,
    environment_failures,
    environment_reason,
    parts_of,
    reference_answer,
)
from course_lib.instructor.grading_process import GradingJob, GradingOutcome
from course_lib.instructor.library_copies import LibraryUse
from course_lib.instructor.release import render_exercises

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "00_toy_assignment.ipynb"


def _sources(nb: dict) -> dict[str, str]:
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade_id")}


# --------------------------------------------------------------------------- the reference answer


def test_the_reference_answer_is_the_released_exercise_with_the_solutions_answers():
    released = json.loads(render_exercises([TOY])[TOY.stem])
    reference = reference_answer(released, json.loads(TOY.read_text()))
    mine, theirs = _sources(reference), _sources(released)
    assert mine["square_answer"] == 'def square(x):\n    """Return x squared."""\n    return x * x\n'
    assert "NotImplementedError" not in mine["mean_answer"] and "BEGIN" not in mine["mean_answer"]
    assert {k: v for k, v in mine.items() if not k.endswith("_answer")} == {
        k: v for k, v in theirs.items() if not k.endswith("_answer")}  # the released tests, hidden ones left out
    assert len(reference["cells"]) == len(released["cells"]) and reference["metadata"] == released["metadata"]
    assert "NotImplementedError" in _sources(released)["square_answer"]  # the release itself is not changed


def test_a_solution_without_an_answer_of_the_release_is_refused():
    released = json.loads(render_exercises([TOY])[TOY.stem])
    solution = json.loads(TOY.read_text())
    solution["cells"] = [c for c in solution["cells"]
                         if c["metadata"].get("nbgrader", {}).get("grade_id") != "mean_answer"]
    with pytest.raises(ValueError, match="mean_answer"):
        reference_answer(released, solution)


# --------------------------------------------------------------------------- failures of the environment

IMPORT_TRACEBACK = (
    "\x1b[0;31mModuleNotFoundError\x1b[0m                       Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;28;01mfrom\x1b[39;00m course_lib",
    "File \x1b[0;32m/home/me/course/course_lib/models/__init__.py:25\x1b[0m\n\x1b[0;32m---> 25\x1b[0m import torch",
    "\x1b[0;31mModuleNotFoundError\x1b[0m: No module named 'torch'",
)


@pytest.mark.parametrize("error, reason", [
    (CellError(5, "chars_test", "DataFetchError", "could not get a verified copy of 'tiny-shakespeare'"),
     "the course's data could not be found"),
    (CellError(5, "made_test", "MemoryError", ""), "out of memory"),
    (CellError(5, "made_test", "OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB"), "out of memory"),
    (CellError(1, "setup", "ModuleNotFoundError", "No module named 'course_lib'"), "course_lib cannot be imported"),
    (CellError(1, "setup", "ModuleNotFoundError", "No module named 'torch'", IMPORT_TRACEBACK),
     "course_lib cannot be imported"),
    (CellError(4, "made_answer", "ImportError", "cannot import name 'MyMADE' from 'course_lib.models'"
               " (/home/me/course/course_lib/models/__init__.py)", ("Cell In[4], line 1",)), None),
    (CellError(4, "made_answer", "ModuleNotFoundError", "No module named 'course_lib.mine'"), None),
    (CellError(4, "made_answer", "ModuleNotFoundError", "No module named 'sklearn'", ("Cell In[4], line 1",)), None),
    (CellError(6, "made_test", "AssertionError", "the masks leak the future"), None),
    (CellError(6, "made_test", "RuntimeError", "could not get a verified copy"), None),
], ids=["data", "memory", "torch-oom", "no-course-lib", "course-lib-dependency", "students-import-of-a-name",
        "students-own-module", "students-own-dependency", "a-failed-test", "a-runtime-error"])
def test_an_error_is_the_environments_only_when_the_answer_is_not_to_blame(error, reason):
    assert environment_reason(error) == reason


def test_environment_failures_are_read_from_an_autograded_notebook():
    nb = json.loads(TOY.read_text())
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    cells["mean_test"]["outputs"] = [{"output_type": "error", "ename": "DataFetchError", "traceback": [],
                                      "evalue": "could not get a verified copy of 'mnist'\nSearched: /nowhere."}]
    cells["square_test"]["outputs"] = [{"output_type": "error", "ename": "AssertionError", "evalue": "",
                                        "traceback": []}]
    found = environment_failures(nb)
    assert found == [EnvironmentFailure(
        "mean_test", "the course's data could not be found",
        "DataFetchError: could not get a verified copy of 'mnist'\nSearched: /nowhere.")]
    assert found[0].message == ("mean_test failed because the course's data could not be found"
                                " (DataFetchError: could not get a verified copy of 'mnist')")


# --------------------------------------------------------------------------- what they make of a grade

DATA = EnvironmentFailure("mean_test", "the course's data could not be found", "DataFetchError: not found")
COPY = LibraryUse("square", "course_lib.models.histogram_mle", "square_answer")


@pytest.mark.parametrize("outcome, mode, status, words", [
    (GradingOutcome("a", success=True, scores={"mean_test": 0.0}, environment=[DATA]), "warn", "error",
     "mean_test failed because the course's data could not be found (DataFetchError: not found); no points"),
    (GradingOutcome("a", success=True, timed_out=["x_answer"], warnings=["w"], environment=[DATA]), "warn", "error",
     "the grading environment failed, not the answer"),
    (GradingOutcome("a", success=True, library_uses=[COPY]), "warn", "graded-with-warnings",
     "part square: the answer uses course_lib.models.histogram_mle, which implements it"),
    (GradingOutcome("a", success=True, library_uses=[COPY]), "zero", "graded-with-warnings",
     "which implements it; it scores 0"),
    (GradingOutcome("a", success=True, timed_out=["mean_answer"], library_uses=[COPY]), "warn", "timeout",
     "the other cells were graded; part square: the answer uses"),
], ids=["data", "data-beats-timeout", "library-warn", "library-zero", "library-and-timeout"])
def test_environment_failures_and_library_uses_set_the_status(outcome, mode, status, words):
    got, message = classify(outcome, timeout=20, notebook_timeout=300, library_copies=mode)
    assert got == status and words in message


MAX = {"square_test": 1.0, "mean_test": 2.0, "mean_test_hidden": 1.0}


@pytest.mark.parametrize("mode, total", [("warn", 4.0), ("zero", 3.0)])
def test_library_copies_zero_takes_exactly_the_flagged_parts_points(mode, total):
    outcome = GradingOutcome("a", success=True, scores=dict(MAX), library_uses=[COPY])
    grade = StudentGrade("a", "error")
    _take_outcome(grade, outcome, MAX, parts_of(TOY), GradingSettings(library_copies=mode))
    assert grade.status == "graded-with-warnings" and grade.total == total
    assert grade.scores == {**MAX, "square_test": 0.0 if mode == "zero" else 1.0}


def test_an_environment_failure_gives_no_points():
    outcome = GradingOutcome("a", success=True, scores=dict(MAX), environment=[DATA])
    grade = StudentGrade("a", "error")
    _take_outcome(grade, outcome, MAX, parts_of(TOY), GradingSettings())
    assert (grade.status, grade.scores, grade.total) == ("error", None, None)


def test_settings_name_a_mode_they_do_not_know():
    with pytest.raises(ValueError, match="unknown feedback 'nbgrader'"):
        GradingSettings(feedback="nbgrader")
    with pytest.raises(ValueError, match="unknown library_copies 'forbid'"):
        GradingSettings(library_copies="forbid")


# --------------------------------------------------------------------------- records


def test_new_records_go_through_json_unchanged(tmp_path):
    job = GradingJob(student="ann", assignment="a", template="t", workdir="w", dbdir="d", files={"a.ipynb": "/x"},
                     notebooks=["a.ipynb"], result="r", library={"square": ["course_lib.models.histogram_mle"]},
                     nbgrader_feedback=True)
    assert GradingJob.from_json(job.to_json()) == job
    outcome = GradingOutcome("ann", success=True, library_uses=[COPY], environment=[DATA])
    back = GradingOutcome.from_json(outcome.to_json())
    assert back == outcome and isinstance(back.library_uses[0], LibraryUse)
    with pytest.raises(ValueError, match="a LibraryUse has no field.*line"):
        GradingOutcome.from_json(json.dumps({"student": "ann", "library_uses": [{"part": "p", "name": "n",
                                                                                 "cell": "c", "line": 3}]}))
    check = SelfCheck(passed=False, status="graded", total=3.0, max_total=4.0, seconds=1.5,
                      failures={"mean_test_hidden": "DataFetchError: could not get a verified copy\nSearched: /x"})
    assert SelfCheck.from_json(check.to_json()) == check


def test_a_failed_self_check_names_each_failing_cell_with_its_error():
    check = SelfCheck(passed=False, status="error", message="the grading environment failed, not the answer",
                      max_total=7.0, failures={"chars_test_corpus": "the course's data could not be found:"
                                                                   " DataFetchError: no copy\nSearched: /empty"})
    text = str(SelfCheckError(check, Path("/out/reference")))
    assert "got status error and no points" in text and "no student was graded" in text
    assert "  chars_test_corpus: the course's data could not be found: DataFetchError: no copy" in text
    assert "    Searched: /empty" in text and text.endswith("the autograded reference answer is in /out/reference")
