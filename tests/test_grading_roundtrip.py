"""nbgrader round trips: a solution earns full marks, an untouched exercise zero, one wrong part its points.

How a part maps to its points (see ``course_lib.instructor.grading``): the answer cells of part ``<part>``
have grade ids ``<part>_answer[_<suffix>]``, its test cells ``<part>_test[_<suffix>]``; the
part is worth the points of its test cells. Replacing a part's answer cells with the
exercise's stubs must cost exactly those points and nothing else. ``autograde`` grades the
students it is given as ``course grade`` grades a class (the same steps, the same outputs).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from course_lib.instructor.class_grading import autograde, read_grades_csv
from course_lib.instructor.grading import cell_errors, convention_problems, part_scores, parts_of
from course_lib.instructor.release import render_exercises

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "00_toy_assignment.ipynb"
REPO = Path(__file__).resolve().parents[1]
REAL_SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))


def _replace_answers(solution: dict, sources: dict[str, str]) -> dict:
    """A copy of ``solution`` whose cells with the given grade ids get the given sources."""
    nb = copy.deepcopy(solution)
    found = set()
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell["source"] = sources[grade_id]
            found.add(grade_id)
    assert found == set(sources), f"no cells {set(sources) - found}"
    return nb


def _stubs(exercise_text: str) -> dict[str, str]:
    """The exercise's source of every nbgrader cell, by grade id."""
    nb = json.loads(exercise_text)
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if "nbgrader" in c["metadata"]}


def _round_trip(solution: Path, tmp: Path, extra: dict[str, dict | str] | None = None, *, stub: int = 0):
    """Grade the solution, the untouched exercise and the solution with one part stubbed out.

    ``stub`` is the index of that part (0: the first; -1: the last, which no later part builds on:
    an exercise's parts may call the functions of the parts before them).
    """
    exercise_text = render_exercises([solution])[solution.stem]
    sol = json.loads(solution.read_text(encoding="utf-8"))
    parts = parts_of(sol)
    first = list(parts.values())[stub]
    stubbed = _replace_answers(sol, {gid: _stubs(exercise_text)[gid] for gid in first.answer_ids})
    files = {"exercise": exercise_text, "part_stubbed": stubbed, **(extra or {})}
    uploads = tmp / "uploads"
    uploads.mkdir()
    submissions = {"solution": solution}
    for student, content in files.items():
        path = uploads / f"{student}.ipynb"  # any upload name: the grader files it under the source's name
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        submissions[student] = path
    return autograde(solution, submissions, tmp / "course"), parts, first


# --------------------------------------------------------------------------- the toy assignment


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    sol = json.loads(TOY.read_text())
    wrong_square = _replace_answers(sol, {"square_answer": "def square(x):\n    return 2 * x"})
    extra = {"wrong_square": wrong_square, "unreadable": "{this is not a notebook"}
    return _round_trip(TOY, tmp_path_factory.mktemp("toy"), extra)


def test_toy_parts_follow_the_grade_id_convention():
    parts = parts_of(TOY)
    assert {name: (p.answer_ids, p.test_ids, p.points) for name, p in parts.items()} == {
        "square": (["square_answer"], ["square_test"], 1.0),
        "mean": (["mean_answer"], ["mean_test", "mean_test_hidden"], 3.0),
    }


def test_the_solution_earns_full_marks(toy):
    result, parts, _ = toy
    grade = result.students["solution"]
    assert grade.graded and grade.total == result.max_total == 4.0
    assert grade.scores == {"square_test": 1.0, "mean_test": 2.0, "mean_test_hidden": 1.0}


def test_an_untouched_exercise_scores_a_real_zero(toy):
    result, _, _ = toy
    grade = result.students["exercise"]
    assert grade.graded and grade.status == "graded" and grade.message == ""
    assert grade.total == 0.0 and set(grade.scores) == set(result.max_scores)


def test_one_wrong_part_loses_exactly_that_parts_points(toy):
    result, parts, _ = toy
    grade = result.students["wrong_square"]
    assert grade.total == result.max_total - parts["square"].points == 3.0
    assert part_scores(grade.scores, parts) == {"square": 0.0, "mean": 3.0}


def test_the_first_part_stubbed_out_loses_exactly_its_points(toy):
    result, parts, first = toy
    assert first.name == "square"
    assert result.totals["part_stubbed"] == result.max_total - first.points


def test_a_submission_nbgrader_cannot_read_is_a_failure_not_a_zero(toy):
    result, _, _ = toy
    grade = result.students["unreadable"]
    assert not grade.graded and grade.status == "not-a-notebook"
    assert grade.total is None and grade.scores is None and result.totals["unreadable"] is None
    assert "JSON" in grade.message


def test_the_grading_kernel_runs_in_the_smoke_profile(toy):
    result, _, _ = toy
    graded = json.loads(result.autograded_notebook("solution").read_text())
    printed = "".join("".join(out.get("text", "")) for cell in graded["cells"] for out in cell.get("outputs", []))
    assert "profile: smoke" in printed


def test_autograde_writes_what_course_grade_writes(toy):
    result, parts, _ = toy
    rows = read_grades_csv(result.csv)
    assert list(rows["wrong_square"]) == ["student", "status", *parts, "total", "max", "message"]
    assert {s: (r["status"], r["total"]) for s, r in rows.items()} == {
        s: (g.status, "" if g.total is None else f"{g.total:g}") for s, g in result.students.items()}
    assert (rows["exercise"]["square"], rows["exercise"]["mean"], rows["exercise"]["max"]) == ("0", "0", "4")
    assert (result.out / "feedback" / "exercise.html").is_file() and (result.out / "state.json").is_file()


def test_a_missing_submission_is_refused_before_grading(tmp_path):
    with pytest.raises(FileNotFoundError, match="nobody.ipynb"):
        autograde(TOY, {"ghost": tmp_path / "nobody.ipynb"}, tmp_path / "course")


def test_a_student_id_with_a_slash_is_refused(tmp_path):
    with pytest.raises(ValueError, match="student id"):
        autograde(TOY, {"../escape": TOY}, tmp_path / "course")


# --------------------------------------------------------------------------- the convention itself


def _cell(grade_id: str, *, solution: bool, points: float = 0) -> dict:
    meta = {"grade": not solution, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if not solution:
        meta["points"] = points
    return {"cell_type": "code", "metadata": {"nbgrader": meta}, "source": "", "outputs": [], "execution_count": None}


def test_convention_problems_name_each_cell_that_breaks_it():
    nb = {"cells": [
        _cell("density_answer", solution=True),
        _cell("check_density", solution=False, points=1),  # not '<part>_test'
        _cell("sampler_answer", solution=True),  # no test
        _cell("orphan_test", solution=False, points=2),  # no answer
        _cell("zero_test", solution=False, points=0),
    ]}
    problems = "\n".join(convention_problems(nb))
    assert "'check_density'" in problems
    assert "part 'sampler' has an answer cell but no test" in problems
    assert "part 'orphan' has test cells but no answer" in problems
    assert "points > 0" in problems
    with pytest.raises(ValueError, match="grade-id convention"):
        parts_of(nb)


def test_a_part_name_may_contain_underscores_and_test():
    nb = {"cells": [_cell("t_test_answer", solution=True), _cell("t_test_test_hidden", solution=False, points=2)]}
    parts = parts_of(nb)
    assert list(parts) == ["t_test"] and parts["t_test"].points == 2.0


# --------------------------------------------------------------------------- the repository's solutions


@pytest.mark.parametrize("solution", REAL_SOLUTIONS, ids=lambda p: p.stem)
def test_real_solution_follows_the_grade_id_convention(solution):
    nb = json.loads(solution.read_text(encoding="utf-8"))
    assert convention_problems(nb, str(solution)) == []
    assert parts_of(nb), f"{solution} has no graded parts"


@pytest.fixture(scope="module", params=REAL_SOLUTIONS, ids=lambda p: p.stem)
def real(request, tmp_path_factory):
    return _round_trip(request.param, tmp_path_factory.mktemp(request.param.stem), stub=-1)


@pytest.mark.slow
def test_real_solution_earns_full_marks(real):
    result, _, _ = real
    grade = result.students["solution"]
    assert grade.graded, grade.message
    assert grade.scores == result.max_scores, (
        f"the solution fails its own tests: {cell_errors(result.autograded_notebook('solution'))}")


@pytest.mark.slow
def test_real_untouched_exercise_scores_zero(real):
    result, _, _ = real
    grade = result.students["exercise"]
    assert grade.graded, grade.message
    assert {gid: s for gid, s in grade.scores.items() if s} == {}, "tests that pass without any answer"


@pytest.mark.slow
def test_real_last_part_stubbed_out_loses_exactly_its_points(real):
    result, parts, first = real
    grade = result.students["part_stubbed"]
    assert grade.graded, grade.message
    lost = {gid: result.max_scores[gid] - s for gid, s in grade.scores.items() if s < result.max_scores[gid]}
    assert lost == {gid: result.max_scores[gid] for gid in first.test_ids}, (
        f"stubbing out part {first.name!r} should cost exactly its tests {first.test_ids};"
        f" errors: {cell_errors(result.autograded_notebook('part_stubbed'))}")
    assert part_scores(grade.scores, parts)[first.name] == 0.0
