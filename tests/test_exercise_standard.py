"""Every exercise follows the course's standard for exercises (COURSE.md, "Notebooks"), read from its nbgrader source.

The rules are the same for every exercise and live here once, parametrized over ``EXERCISES``; what differs between
exercises (their parts, the parts that train, the cells that test a sampler statistically) is data in that table. A
new topic's exercise adds its ``Exercise`` to the table; checks that only make sense for one exercise go to that
topic's ``tests/test_exerciseNN.py``. Its round trip through the grader (full marks, a real zero, wrong answers
losing the points of their parts, answers that call the library flagged) is in ``tests/test_grade_command*.py``.
These checks are static and fast: they read the notebooks, they grade nothing.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from functools import cache

import pytest
from notebook_source import (
    defined_names,
    free_names,
    graded_cells,
    introduction,
    load_solution,
    paragraph,
    quoted_names,
    used_names,
)

from course_lib.instructor.grading import parts_of


@dataclass(frozen=True)
class Exercise:
    """What the standard needs to know of one exercise beyond its notebook ``solutions/<stem>.ipynb``.

    ``parts`` are the grade ids of the parts in their order; ``training_parts`` maps each part that trains something
    to the test cell that holds the trained model to a quality threshold; ``own_loop_part`` asks for a training loop
    of the student's own (so the course loop is declared, and flagged, for it) and ``course_loop_part`` may use the
    course loop. ``parts_without_library`` are parts that no name of ``course_lib`` implements (nothing declared).
    ``may_use`` are names that the paragraph "What you may use." must allow, and ``allowed_yet_declared`` those it
    allows although a part declares them (the course loop); ``may_use=None`` for an introduction that does not list
    the forbidden names one by one. ``statistical_cells`` compare the distribution of many chains with an exact one
    by a chi-square test.
    """

    stem: str
    parts: tuple[str, ...]
    training_parts: dict[str, str]
    own_loop_part: str
    course_loop_part: str
    points: float = 30
    parts_without_library: frozenset[str] = frozenset()
    may_use: frozenset[str] | None = None
    allowed_yet_declared: frozenset[str] = frozenset({"train"})
    statistical_cells: frozenset[str] = frozenset()

    @property
    def nb(self) -> dict:
        return _solution(self.stem)

    @property
    def intro(self) -> str:
        return introduction(self.nb)


@cache
def _solution(stem: str) -> dict:
    return load_solution(stem)


EXERCISES = {
    "01": Exercise(
        stem="01_likelihood_models",
        parts=("histogram", "logistic", "made", "made_train", "pixelcnn", "pixelcnn_train", "sampling", "rgb"),
        training_parts={"made_train": "made_train_test", "pixelcnn_train": "pixelcnn_train_test"},
        own_loop_part="pixelcnn_train", course_loop_part="made_train",
        parts_without_library=frozenset({"made_train"})),
    "02": Exercise(
        stem="02_sparse_coding_autoencoders",
        parts=("ista", "fista", "dictionary_update", "dictionary_learning", "pca", "linear_ae", "denoising",
               "retrieval"),
        training_parts={"dictionary_learning": "dictionary_learning_test_2", "linear_ae": "linear_ae_test_2",
                        "denoising": "denoising_test_2"},
        own_loop_part="linear_ae", course_loop_part="denoising",
        may_use=frozenset({"load_image_patches", "load_mnist", "make_loader", "train"})),
    "03": Exercise(
        stem="03_energy_models_mcmc",
        parts=("mh", "ising", "langevin", "rbm", "cd", "pcd", "ais", "ess"),
        training_parts={"cd": "cd_test_2", "pcd": "pcd_test_2"},
        own_loop_part="cd", course_loop_part="pcd",
        may_use=frozenset({"load_digits", "make_loader", "train"}),
        statistical_cells=frozenset({"mh_test_2", "ising_test_2", "cd_test", "pcd_test"})),
}
"""Every exercise of the course, by topic number."""

MODULES = {"numpy", "torch", "scipy.stats", "matplotlib", "course_lib", "course_lib.data", "course_lib.training",
           "course_lib.plots"}
"""Modules that an introduction may quote among what a student may use (they are not names of course_lib)."""


def _exercises(applies=lambda exercise: True) -> list:
    return [pytest.param(exercise, id=topic) for topic, exercise in EXERCISES.items() if applies(exercise)]


def _cells(cells_of) -> list:
    return [pytest.param(exercise, grade_id, id=f"{topic}-{grade_id}")
            for topic, exercise in EXERCISES.items() for grade_id in sorted(cells_of(exercise))]


TEST_CELLS = _cells(lambda exercise: graded_cells(exercise.nb, "test"))
STATISTICAL_CELLS = _cells(lambda exercise: exercise.statistical_cells)


# --------------------------------------------------------------------------- the exercise as a whole


@pytest.mark.parametrize("exercise", _exercises())
def test_the_exercise_has_at_least_seven_parts_thirty_points_and_two_training_parts(exercise):
    parts = parts_of(exercise.nb)
    assert list(parts) == list(exercise.parts)
    assert len(parts) >= 7 and len(exercise.training_parts) >= 2
    assert sum(p.points for p in parts.values()) == exercise.points >= 30
    for part, grade_id in exercise.training_parts.items():
        assert grade_id in parts[part].test_ids, f"{part}: no test cell {grade_id}"
    assert {exercise.own_loop_part, exercise.course_loop_part} <= set(exercise.training_parts)


@pytest.mark.parametrize("exercise", _exercises())
def test_the_table_at_the_top_lists_every_part_with_its_points(exercise):
    rows = re.findall(r"^\| (\d+) \| .+? \| (\d+) \|$", exercise.intro, re.MULTILINE)
    parts = parts_of(exercise.nb)
    assert [int(points) for _, points in rows] == [p.points for p in parts.values()]
    assert [int(n) for n, _ in rows] == list(range(1, len(parts) + 1))
    assert f"**{sum(p.points for p in parts.values()):g}**" in exercise.intro


@pytest.mark.parametrize("exercise", _exercises())
def test_every_part_heading_gives_the_points_of_its_part(exercise):
    parts = list(parts_of(exercise.nb).values())
    headings = [("".join(c["source"]).splitlines() or [""])[0] for c in exercise.nb["cells"]
                if c["cell_type"] == "markdown"]
    headings = [h for h in headings if h.startswith("## Part ")]
    assert len(headings) == len(parts)
    for number, (heading, part) in enumerate(zip(headings, parts, strict=True), start=1):
        assert heading.startswith(f"## Part {number} ") and heading.endswith(f"({part.points:g} points)"), heading


@pytest.mark.parametrize("exercise", _exercises())
def test_every_declared_library_name_resolves_and_belongs_to_a_part(exercise):
    declared = exercise.nb["metadata"]["course"]["library"]
    expected = set(exercise.parts) - exercise.parts_without_library
    assert set(declared) == expected, (
        f"parts without declared names: {sorted(expected - set(declared))}; not parts: "
        f"{sorted(set(declared) - expected)}")
    for part, names in declared.items():
        for name in names:
            module, _, attribute = name.rpartition(".")
            assert module.startswith("course_lib."), name
            assert hasattr(importlib.import_module(module), attribute), f"{part}: {name} does not resolve"


@pytest.mark.parametrize("exercise", _exercises(lambda exercise: exercise.may_use is not None))
def test_the_top_says_what_may_be_used_and_what_may_not_as_declared(exercise):
    """The names the introduction allows resolve in course_lib and implement no part (but the course loop, which the
    part that asks for a loop of its own may not use); the names it forbids are exactly those declared for the parts,
    which the grader flags."""
    import course_lib
    import course_lib.data
    import course_lib.training

    declared = {name.rpartition(".")[2] for names in exercise.nb["metadata"]["course"]["library"].values()
                for name in names}
    allowed = quoted_names(paragraph(exercise.intro, "What you may use.")) - MODULES
    assert exercise.may_use <= allowed, f"not allowed: {sorted(exercise.may_use - allowed)}"
    for name in allowed:
        assert any(hasattr(module, name) for module in (course_lib, course_lib.data, course_lib.training)), name
    assert allowed & declared == exercise.allowed_yet_declared, (
        f"allowed, yet declared for a part: {sorted(allowed & declared)}")
    forbidden = quoted_names(paragraph(exercise.intro, "What you may not use"))
    exempt = exercise.allowed_yet_declared
    assert forbidden == declared - exempt, (
        f"forbidden but not declared: {sorted(forbidden - declared)}; declared but not forbidden: "
        f"{sorted(declared - forbidden - exempt)}")


@pytest.mark.parametrize("exercise", _exercises())
def test_the_part_that_asks_for_a_loop_of_its_own_may_not_use_the_course_loop_and_the_other_may(exercise):
    declared = exercise.nb["metadata"]["course"]["library"]
    own, course = declared.get(exercise.own_loop_part, []), declared.get(exercise.course_loop_part, [])
    assert "course_lib.training.loop.train" in own, (
        f"{exercise.own_loop_part} asks for a loop of its own, yet the course loop is not declared for it: {own}")
    assert "course_lib.training.loop.train" not in course, (
        f"{exercise.course_loop_part} may use the course loop, yet it is declared for it: {course}")


@pytest.mark.parametrize("exercise", _exercises())
def test_the_answers_use_nothing_of_the_library(exercise):
    """The answers (the solution's) import nothing from course_lib: the loop and the loaders that some parts may use
    come from the set-up cell."""
    for grade_id, source in graded_cells(exercise.nb, "answer").items():
        imports = [line for line in source.splitlines() if "course_lib" in line]
        assert imports == [], f"{grade_id} uses the library: {imports}"


@pytest.mark.parametrize("exercise", _exercises())
def test_no_cell_outside_the_answers_defines_what_a_part_asks_for(exercise):
    """The set-up, demonstration and test cells hand over no answer: none of them defines a function or class that an
    answer cell defines."""
    asked = defined_names(exercise.nb)
    for cell in exercise.nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] != "code" or meta.get("solution"):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.name not in asked, f"{meta.get('grade_id')} defines {node.name}, which a part asks for"


# --------------------------------------------------------------------------- each test cell


@pytest.mark.parametrize(("exercise", "grade_id"), TEST_CELLS)
def test_a_test_cell_has_visible_checks_then_hidden_ones(exercise, grade_id):
    source = graded_cells(exercise.nb, "test")[grade_id]
    visible, _, hidden = source.partition("### BEGIN HIDDEN TESTS")
    assert "assert " in visible or "raise AssertionError" in visible, f"{grade_id}: no visible check"
    assert "assert " in hidden and "### END HIDDEN TESTS" in hidden, f"{grade_id}: no hidden tests"


@pytest.mark.parametrize(("exercise", "grade_id"), TEST_CELLS)
def test_what_a_hidden_test_calls_of_the_answers_is_checked_visibly_first(exercise, grade_id):
    """Hidden tests vary the inputs, never the rules: every function or class of the answers that the hidden tests of a
    cell use is also used by the visible checks of that cell."""
    visible, _, hidden = graded_cells(exercise.nb, "test")[grade_id].partition("### BEGIN HIDDEN TESTS")
    hidden = hidden.partition("### END HIDDEN TESTS")[0]
    unchecked = (used_names(hidden) & defined_names(exercise.nb)) - used_names(visible)
    assert not unchecked, f"{grade_id}: the hidden tests use {sorted(unchecked)}, which no visible check uses"


@pytest.mark.parametrize(("exercise", "grade_id"), TEST_CELLS)
def test_a_test_cell_depends_only_on_itself_and_the_names_the_answers_define(exercise, grade_id):
    """Hidden tests never use a variable that a student can change in an earlier cell: every name a test cell reads
    is bound in the cell itself (its imports, its data, its models), or is a class or function of the answers."""
    free, answers = free_names(graded_cells(exercise.nb, "test")[grade_id]), defined_names(exercise.nb)
    assert free <= answers, f"{grade_id} reads names it does not define: {sorted(free - answers)}"


@pytest.mark.parametrize(("exercise", "grade_id"), TEST_CELLS)
def test_a_test_cell_does_not_end_with_a_value(exercise, grade_id):
    """nbgrader reads a number that a test cell's last line displays as partial credit."""
    last = ast.parse(graded_cells(exercise.nb, "test")[grade_id]).body[-1]
    if isinstance(last, ast.Expr):
        assert isinstance(last.value, ast.Call) and ast.unparse(last.value.func) == "print", (
            f"{grade_id} ends with a value: {ast.unparse(last)}")


@pytest.mark.parametrize(("exercise", "grade_id"), STATISTICAL_CELLS)
def test_a_statistical_check_seeds_its_own_random_numbers_and_rejects_at_one_in_ten_thousand(exercise, grade_id):
    """A chi-square check draws from generators the cell seeds itself, and fails a correct sampler at a p-value
    below 1e-4 only, the level the introduction announces."""
    source = graded_cells(exercise.nb, "test")[grade_id]
    assert "manual_seed(" in source and "chi2.sf(" in source, grade_id
    levels = set(re.findall(r"> (1e-\d+)", source))
    assert levels == {"1e-4"}, f"{grade_id}: p-value thresholds {levels}"
    assert "about once in ten thousand runs" in " ".join(exercise.intro.split())
