"""Exercise 03 follows the course's standard for exercises, read from its nbgrader source (no grading here).

Its round trip through the grader (full marks, a real zero, plausible wrong answers losing the points of their
parts, answers that call the library flagged) is in ``test_grade_command03.py``; these checks are static and fast.
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
SOLUTION = REPO / "solutions" / "03_energy_models_mcmc.ipynb"
NB = json.loads(SOLUTION.read_text(encoding="utf-8"))
INTRO = "".join(NB["cells"][0]["source"])

PARTS = ["mh", "ising", "langevin", "rbm", "cd", "pcd", "ais", "ess"]
TRAINING_PARTS = {"cd": "cd_test_2", "pcd": "pcd_test_2"}
"""The parts that train something, with the test cell that holds the trained model to a quality threshold."""

STATISTICAL_CELLS = {"mh_test_2", "ising_test_2", "cd_test", "pcd_test"}
"""Test cells that compare the distribution of many chains with an exact one by a chi-square test."""


def _called_names(source: str) -> set[str]:
    """Every name a piece of code reads (a superset of what it calls), parsed leniently as a block of statements."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def _paragraph(title: str) -> str:
    """The paragraph of the introduction that starts with ``**title**``."""
    match = re.search(rf"^\*\*{re.escape(title)}\*\*(.*?)(?=^\*\*|\Z)", INTRO, re.MULTILINE | re.DOTALL)
    assert match, f"the introduction has no paragraph '**{title}**'"
    return match.group(1)


def _quoted_names(text: str) -> set[str]:
    """The identifiers quoted in ``backticks`` in a piece of Markdown."""
    return {name for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", text)}


def test_the_exercise_has_at_least_seven_parts_thirty_points_and_two_training_parts():
    parts = parts_of(NB)
    assert list(parts) == PARTS
    assert sum(p.points for p in parts.values()) == 30
    for part, grade_id in TRAINING_PARTS.items():
        assert grade_id in parts[part].test_ids


def test_the_table_at_the_top_lists_every_part_with_its_points():
    rows = re.findall(r"^\| (\d+) \| .+? \| (\d+) \|$", INTRO, re.MULTILINE)
    parts = parts_of(NB)
    assert [int(points) for _, points in rows] == [p.points for p in parts.values()]
    assert [int(n) for n, _ in rows] == list(range(1, len(parts) + 1))
    assert f"**{sum(p.points for p in parts.values()):g}**" in INTRO


def test_every_part_heading_gives_the_points_of_its_part():
    parts = list(parts_of(NB).values())
    headings = [("".join(c["source"]).splitlines() or [""])[0] for c in NB["cells"] if c["cell_type"] == "markdown"]
    headings = [h for h in headings if h.startswith("## Part ")]
    assert len(headings) == len(parts)
    for number, (heading, part) in enumerate(zip(headings, parts, strict=True), start=1):
        assert heading.startswith(f"## Part {number} ") and heading.endswith(f"({part.points:g} points)"), heading


def test_every_declared_library_name_resolves_and_belongs_to_a_part():
    declared = NB["metadata"]["course"]["library"]
    assert set(declared) == set(PARTS), f"parts without declared names: {set(PARTS) - set(declared)}"
    for part, names in declared.items():
        for name in names:
            module, _, attribute = name.rpartition(".")
            assert module.startswith("course_lib."), name
            assert hasattr(importlib.import_module(module), attribute), f"{part}: {name} does not resolve"


def test_the_top_says_what_may_be_used_and_what_may_not_as_declared():
    """The names the introduction allows resolve in course_lib and implement no part (but the loop ``train``, which
    part 5 may not use); the names it forbids are exactly those declared for the parts, which the grader flags."""
    import course_lib
    import course_lib.data
    import course_lib.training

    declared = {name.rpartition(".")[2] for names in NB["metadata"]["course"]["library"].values() for name in names}
    allowed = _quoted_names(_paragraph("What you may use.")) - {"numpy", "torch", "scipy.stats", "matplotlib",
                                                                  "course_lib", "course_lib.data",
                                                                  "course_lib.training", "course_lib.plots"}
    assert {"load_digits", "make_loader", "train"} <= allowed
    for name in allowed:
        assert any(hasattr(module, name) for module in (course_lib, course_lib.data, course_lib.training)), name
    assert allowed & declared == {"train"}, f"allowed, yet declared for a part: {sorted(allowed & declared)}"
    forbidden = _quoted_names(_paragraph("What you may not use"))
    assert forbidden == declared - {"train"}, (
        f"forbidden but not declared: {sorted(forbidden - declared)}; declared but not forbidden: "
        f"{sorted(declared - forbidden - {'train'})}")


def test_part_6_may_use_the_course_loop_and_part_5_which_asks_for_a_loop_of_its_own_may_not():
    declared = NB["metadata"]["course"]["library"]
    assert "course_lib.training.loop.train" in declared["cd"]
    assert "course_lib.training.loop.train" not in declared["pcd"]


def test_the_answers_use_nothing_of_the_library():
    """The answers import nothing from course_lib (part 6's loop comes from the set-up cell and the test cells)."""
    for grade_id, source in graded_cells(NB, "answer").items():
        imports = [line for line in source.splitlines() if "course_lib" in line]
        assert imports == [], f"{grade_id} uses the library: {imports}"


def test_no_cell_outside_the_answers_defines_what_a_part_asks_for():
    """The set-up, demonstration and test cells hand over no answer: none of them defines a function or class that an
    answer cell defines."""
    asked = defined_names(NB)
    for cell in NB["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] != "code" or meta.get("solution"):
            continue
        source = "".join(cell["source"])
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.name not in asked, f"{meta.get('grade_id')} defines {node.name}, which a part asks for"


@pytest.mark.parametrize("grade_id", sorted(graded_cells(NB, "test")))
def test_a_test_cell_has_visible_checks_then_hidden_ones(grade_id):
    source = graded_cells(NB, "test")[grade_id]
    visible, _, hidden = source.partition("### BEGIN HIDDEN TESTS")
    assert "assert " in visible or "raise AssertionError" in visible, f"{grade_id}: no visible check"
    assert "assert " in hidden and "### END HIDDEN TESTS" in hidden, f"{grade_id}: no hidden tests"


@pytest.mark.parametrize("grade_id", sorted(graded_cells(NB, "test")))
def test_what_a_hidden_test_calls_of_the_answers_is_checked_visibly_first(grade_id):
    """Hidden tests vary the inputs, never the rules: every function or class of the answers that the hidden tests of a
    cell use is also used by the visible checks of that cell."""
    visible, _, hidden = graded_cells(NB, "test")[grade_id].partition("### BEGIN HIDDEN TESTS")
    hidden = hidden.partition("### END HIDDEN TESTS")[0]
    unchecked = (_called_names(hidden) & defined_names(NB)) - _called_names(visible)
    assert not unchecked, f"{grade_id}: the hidden tests use {sorted(unchecked)}, which no visible check uses"


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


@pytest.mark.parametrize("grade_id", sorted(STATISTICAL_CELLS))
def test_a_statistical_check_seeds_its_own_random_numbers_and_rejects_at_one_in_ten_thousand(grade_id):
    """A chi-square check draws from generators the cell seeds itself, and fails a correct sampler at a p-value
    below 1e-4 only, the level the introduction announces."""
    source = graded_cells(NB, "test")[grade_id]
    assert "manual_seed(" in source and "chi2.sf(" in source, grade_id
    levels = set(re.findall(r"> (1e-\d+)", source))
    assert levels == {"1e-4"}, f"{grade_id}: p-value thresholds {levels}"
    assert "about once in ten thousand runs" in " ".join(INTRO.split())
