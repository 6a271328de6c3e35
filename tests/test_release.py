"""Exercises generated from the nbgrader sources: deterministic, in sync, and leaking nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from course_lib.instructor.nbgrader_setup import add_source
from course_lib.instructor.release import check_exercises, find_leaks, generate_exercises, render_exercises

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "00_toy_assignment.ipynb"
REPO = Path(__file__).resolve().parents[1]
REAL_SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))
REAL_EXERCISES = sorted((REPO / "exercises").glob("*.ipynb"))


@pytest.fixture
def course(tmp_path):
    """A course folder with the toy source in solutions/ and its freshly generated exercise in exercises/."""
    (tmp_path / "solutions").mkdir()
    shutil.copy(TOY, tmp_path / "solutions")
    generate_exercises(tmp_path / "solutions", tmp_path / "exercises")
    return tmp_path


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _by_grade_id(path: Path) -> dict[str, str]:
    return {c["metadata"]["nbgrader"]["grade_id"]: _source(c) for c in _cells(path) if "nbgrader" in c["metadata"]}


def test_generation_is_deterministic_byte_for_byte(course, tmp_path):
    first = (course / "exercises" / "00_toy_assignment.ipynb").read_bytes()
    generate_exercises(course / "solutions", tmp_path / "again")
    assert (tmp_path / "again" / "00_toy_assignment.ipynb").read_bytes() == first
    text = first.decode()
    assert text.startswith('{\n "cells": [\n') and text.endswith("}\n")  # nbformat's indent 1, final newline


def test_exercise_keeps_visible_tests_and_replaces_answers_and_hidden_tests(course):
    cells = _by_grade_id(course / "exercises" / "00_toy_assignment.ipynb")
    assert "raise NotImplementedError" in cells["square_answer"] and "x * x" not in cells["square_answer"]
    assert "sum(values)" not in cells["mean_answer"]
    assert "square(3) == 9" in cells["square_test"]  # the visible test stays
    assert "square(-2)" not in cells["square_test"]  # the hidden test goes
    assert "mean([0.5, 1.5, 4.0])" not in cells["mean_test_hidden"]


def test_exercise_has_no_outputs_counts_or_widget_state(course):
    from course_lib.instructor.notebooks import hygiene_problems

    nb = json.loads((course / "exercises" / "00_toy_assignment.ipynb").read_text())
    assert hygiene_problems(nb) == []


def test_check_passes_on_a_fresh_generation_although_the_metadata_says_solution(course):
    exercise = course / "exercises" / "00_toy_assignment.ipynb"
    assert '"solution": true' in exercise.read_text()  # nbgrader's metadata key is not a leak
    assert check_exercises(course / "solutions", course / "exercises") == []


def test_check_reports_an_exercise_edited_by_hand_as_stale(course):
    exercise = course / "exercises" / "00_toy_assignment.ipynb"
    exercise.write_text(exercise.read_text().replace("returns $x^2$", "returns x squared"))
    problems = check_exercises(course / "solutions", course / "exercises")
    assert len(problems) == 1 and "stale" in problems[0] and "cell 3 differs" in problems[0]


def test_check_reports_an_exercise_older_than_its_source_as_stale(course):
    source = course / "solutions" / "00_toy_assignment.ipynb"
    source.write_text(source.read_text().replace("returns $x^2$", "returns the square $x^2$"))
    problems = check_exercises(course / "solutions", course / "exercises")
    assert len(problems) == 1 and "stale" in problems[0]


def test_check_reports_a_missing_exercise(course):
    (course / "exercises" / "00_toy_assignment.ipynb").unlink()
    problems = check_exercises(course / "solutions", course / "exercises")
    assert len(problems) == 1 and "missing" in problems[0]


def test_check_reports_an_exercise_without_a_source(course):
    shutil.copy(course / "exercises" / "00_toy_assignment.ipynb", course / "exercises" / "99_orphan.ipynb")
    problems = check_exercises(course / "solutions", course / "exercises")
    assert len(problems) == 1 and "99_orphan.ipynb: extra" in problems[0]


@pytest.mark.parametrize(
    "leak, expected",
    [
        ("### BEGIN SOLUTION\nreturn x * x\n### END SOLUTION", "### BEGIN SOLUTION"),
        ("### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS", "### BEGIN HIDDEN TESTS"),
        ("# The Solution is to multiply x by itself.", "'solution'"),
        ("# See the solutions folder.", "'solutions'"),
        ("# Note for the INSTRUCTOR: award half points.", "'instructor'"),
    ],
    ids=["solution-block", "hidden-tests", "word-solution", "word-solutions", "word-instructor"],
)
def test_check_reports_each_kind_of_leak(course, leak, expected):
    exercise = course / "exercises" / "00_toy_assignment.ipynb"
    nb = json.loads(exercise.read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "square_test")
    cell["source"] = _source(cell) + "\n" + leak
    exercise.write_text(json.dumps(nb, indent=1) + "\n")
    problems = check_exercises(course / "solutions", course / "exercises")
    leaks = [p for p in problems if "stale" not in p]
    assert leaks and all("cell 5" in p for p in leaks) and any(expected in p for p in leaks), problems


def test_words_that_merely_contain_solution_are_not_leaks():
    text = "Image resolution; a dissolution; solutionist"
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": text}]}
    assert find_leaks(nb) == []


def test_only_the_notebook_and_its_declared_files_reach_the_nbgrader_course(tmp_path):
    sources = tmp_path / "solutions"
    (sources / "data").mkdir(parents=True)
    nb = json.loads(TOY.read_text())
    nb["metadata"]["course"] = {"files": ["data/table.csv"]}
    (sources / "00_toy_assignment.ipynb").write_text(json.dumps(nb))
    (sources / "00_toy_assignment.py").write_text("### BEGIN SOLUTION\n")  # a paired jupytext file: never copied
    (sources / "data" / "table.csv").write_text("x,y\n1,2\n")
    (sources / "data" / "other.csv").write_text("not declared\n")
    folder = add_source(tmp_path / "course", sources / "00_toy_assignment.ipynb")
    copied = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert copied == ["00_toy_assignment.ipynb", "data/table.csv"]


def test_a_declared_file_that_does_not_exist_is_an_error(tmp_path):
    nb = json.loads(TOY.read_text())
    nb["metadata"]["course"] = {"files": ["missing.csv"]}
    (tmp_path / "00_toy_assignment.ipynb").write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="missing.csv"):
        add_source(tmp_path / "course", tmp_path / "00_toy_assignment.ipynb")


# --------------------------------------------------------------------------- the repository's own exercises


@pytest.fixture(scope="module")
def fresh_exercises() -> dict[str, str]:
    return render_exercises(REAL_SOLUTIONS)


@pytest.mark.parametrize("solution", REAL_SOLUTIONS, ids=lambda p: p.stem)
def test_committed_exercise_equals_a_fresh_generation(solution, fresh_exercises):
    exercise = REPO / "exercises" / solution.name
    assert exercise.is_file(), f"{exercise} is missing: run `course release`"
    assert exercise.read_text(encoding="utf-8") == fresh_exercises[solution.stem], (
        f"{exercise} differs from a fresh generation of {solution}: run `course release`")


@pytest.mark.parametrize("exercise", REAL_EXERCISES, ids=lambda p: p.stem)
def test_committed_exercise_leaks_nothing_and_has_a_source(exercise):
    assert (REPO / "solutions" / exercise.name).is_file(), f"{exercise} has no source in solutions/"
    assert find_leaks(json.loads(exercise.read_text(encoding="utf-8")), str(exercise)) == []
