"""Committed notebooks are clean (no outputs, counts or widget state), valid, and take a PROFILE parameter."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.instructor.notebooks import find_parameters_cell, hygiene_problems, is_clean, strip_outputs

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("lectures", "solutions", "exercises")
COURSE_NOTEBOOKS = sorted(p for folder in FOLDERS for p in (REPO / folder).glob("*.ipynb"))
FIXTURE_NOTEBOOKS = sorted((REPO / "tests" / "fixtures").rglob("*.ipynb"))
ALL_NOTEBOOKS = COURSE_NOTEBOOKS + FIXTURE_NOTEBOOKS


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_id)
def test_notebook_is_valid_nbformat_4(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4
    nbformat.validate(nb)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_id)
def test_notebook_has_no_outputs_execution_counts_or_widget_state(path):
    assert hygiene_problems(_load(path), _id(path)) == [], "strip the outputs (Edit > Clear Outputs of All Cells)"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_id)
def test_notebook_has_a_parameters_cell_setting_profile_to_none(path):
    nb = _load(path)
    index = find_parameters_cell(nb)
    assert index is not None, f"{_id(path)}: no code cell tagged 'parameters' (papermill injects PROFILE after it)"
    tree = ast.parse("".join(nb["cells"][index]["source"]))
    values = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    assert "PROFILE" in values, f"{_id(path)}: the parameters cell should define PROFILE"
    assert isinstance(values["PROFILE"], ast.Constant) and values["PROFILE"].value is None, (
        f"{_id(path)}: PROFILE should default to None, so that $COURSE_PROFILE or the hardware decides")


@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=_id)
def test_course_notebook_is_named_nn_topic(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{_id(path)}: expected a name like 01_topic.ipynb"


def test_every_exercise_and_solution_has_a_lecture_of_the_same_stem_once_lectures_exist():
    lectures = {p.stem for p in (REPO / "lectures").glob("*.ipynb")}
    others = {p.stem for folder in ("solutions", "exercises") for p in (REPO / folder).glob("*.ipynb")}
    if not lectures:
        pytest.skip("no lecture notebook yet")
    assert others <= lectures, f"no lecture for {sorted(others - lectures)}"


def _dirty_notebook() -> dict:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"application/vnd.jupyter.widget-state+json": {}}},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Title"},
            {"cell_type": "code", "id": "b", "metadata": {"execution": {"iopub.execute_input": "2026-01-01"}},
             "execution_count": 3, "source": "1 + 1",
             "outputs": [{"output_type": "execute_result", "execution_count": 3, "metadata": {},
                          "data": {"text/plain": "2"}}]},
        ],
    }


def test_hygiene_problems_name_outputs_counts_widget_state_and_run_metadata():
    problems = "\n".join(hygiene_problems(_dirty_notebook(), "nb"))
    assert "metadata holds 'widgets'" in problems
    assert "cell 1: has 1 output(s)" in problems
    assert "cell 1: has execution count 3" in problems
    assert "cell 1: metadata holds execution" in problems


def test_strip_outputs_leaves_a_clean_notebook_with_its_sources(tmp_path):
    nb = strip_outputs(_dirty_notebook())
    assert hygiene_problems(nb) == []
    assert [c["source"] for c in nb["cells"]] == ["# Title", "1 + 1"]
    assert nb["metadata"] == {"kernelspec": {"name": "python3"}}
    path = tmp_path / "clean.ipynb"
    path.write_text(json.dumps(nb))
    assert is_clean(path)
    path.write_text(json.dumps(_dirty_notebook()))
    assert not is_clean(path)
