"""Exercise 01 follows the course's standard for exercises, read from its nbgrader source (no grading here).

Its round trip through the grader (full marks, a real zero, each wrong part losing exactly its points, a leaking
MADE caught by the hidden tests) is in ``test_grade_command.py``; these checks are static and fast.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest
from notebook_source import defined_names, free_names, graded_cells

from course_lib.instructor.grading import parts_of

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "solutions" / "01_likelihood_models.ipynb"
NB = json.loads(SOLUTION.read_text(encoding="utf-8"))


def test_the_exercise_has_at_least_seven_parts_and_thirty_points():
    parts = parts_of(NB)
    assert len(parts) >= 7 and sum(p.points for p in parts.values()) >= 30


def test_the_table_at_the_top_lists_every_part_with_its_points():
    intro = "".join(NB["cells"][0]["source"])
    rows = re.findall(r"^\| (\d+) \| .+? \| (\d+) \|$", intro, re.MULTILINE)
    parts = parts_of(NB)
    assert [int(points) for _, points in rows] == [p.points for p in parts.values()]
    assert [int(n) for n, _ in rows] == list(range(1, len(parts) + 1))
    assert f"**{sum(p.points for p in parts.values()):g}**" in intro


def test_every_declared_library_name_resolves_and_belongs_to_a_part():
    declared = NB["metadata"]["course"]["library"]
    assert set(declared) <= set(parts_of(NB)), f"not parts: {set(declared) - set(parts_of(NB))}"
    assert {"histogram", "logistic", "made", "pixelcnn", "sampling", "rgb"} <= set(declared)
    for part, names in declared.items():
        for name in names:
            module, _, attribute = name.rpartition(".")
            assert module.startswith("course_lib."), name
            assert hasattr(importlib.import_module(module), attribute), f"{part}: {name} does not resolve"


def test_the_answers_use_nothing_of_the_library_that_the_exercise_forbids():
    """The answers (the solution's) import nothing from course_lib but the training loop and the loaders."""
    for grade_id, source in graded_cells(NB, "answer").items():
        imports = [line for line in source.splitlines() if "course_lib" in line]
        assert imports == [], f"{grade_id} uses the library: {imports}"


@pytest.mark.parametrize("grade_id", sorted(graded_cells(NB, "test")))
def test_a_test_cell_has_visible_checks_then_hidden_ones(grade_id):
    source = graded_cells(NB, "test")[grade_id]
    visible, _, hidden = source.partition("### BEGIN HIDDEN TESTS")
    assert "assert " in visible or "raise AssertionError" in visible, f"{grade_id}: no visible check"
    assert "assert " in hidden and "### END HIDDEN TESTS" in hidden, f"{grade_id}: no hidden tests"


@pytest.mark.parametrize("grade_id", sorted(graded_cells(NB, "test")))
def test_a_test_cell_depends_only_on_itself_and_the_names_the_answers_define(grade_id):
    """Hidden tests never use a variable that a student can change in an earlier cell: every name a test cell reads
    is bound in the cell itself (its imports, its data, its models), or is a class or function of the answers."""
    free = free_names(graded_cells(NB, "test")[grade_id])
    assert free <= defined_names(NB), f"{grade_id} reads names it does not define: {sorted(free - defined_names(NB))}"


@pytest.mark.parametrize("grade_id", sorted(graded_cells(NB, "test")))
def test_a_test_cell_does_not_end_with_a_value(grade_id):
    """nbgrader reads a number that a test cell's last line displays as partial credit."""
    last = ast.parse(graded_cells(NB, "test")[grade_id]).body[-1]
    if isinstance(last, ast.Expr):
        assert isinstance(last.value, ast.Call) and ast.unparse(last.value.func) == "print", (
            f"{grade_id} ends with a value: {ast.unparse(last)}")
