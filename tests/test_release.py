"""Exercises generated from the nbgrader sources: deterministic, in sync, and leaking nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
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


# --------------------------------------------------------------------------- the student bundle

STUDENT_PYTHON = """\
import runpy
import sys

# a student's environment has no editable install of the course's repository: drop its finder, which would
# otherwise find modules that the bundle lacks in the checkout
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
module = sys.argv.pop(1)  # python student_python.py MODULE ARGS...: like python -m MODULE ARGS...
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory) -> Path:
    """The student bundle of the repository, built and unzipped; its top folder."""
    from course_lib.instructor.release import BUNDLE_NAME, build_bundle

    folder = tmp_path_factory.mktemp("bundle")
    bundle = build_bundle(folder / "bundle.zip", root=REPO)
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder / "unzipped")
    return folder / "unzipped" / BUNDLE_NAME


def _as_student(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python <args>`` with nothing but the unzipped bundle on the path, in its folder."""
    script = root.parent / "student_python.py"
    script.write_text(STUDENT_PYTHON)
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, str(script), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_bundle_leaves_the_instructors_tools_out(student_copy):
    course_lib = student_copy / "course_lib"
    assert (course_lib / "cli.py").is_file() and (course_lib / "data" / "download.py").is_file()
    assert not (course_lib / "instructor").exists()
    assert (REPO / "course_lib" / "instructor" / "class_grading.py").is_file()  # it is there to be left out


def test_the_bundle_check_refuses_the_instructors_tools():
    from course_lib.instructor.release import bundle_leaks

    problems = bundle_leaks({"course_lib/instructor/grading.py": b"def grade(): ...\n", "course_lib/cli.py": b""})
    assert problems == ["course_lib/instructor/grading.py: instructor material (the course_lib.instructor package)"]


def test_in_the_bundle_course_data_works_and_the_instructors_commands_say_they_are_not_there(student_copy):
    listing = _as_student(student_copy, "course_lib", "data", "list")
    assert listing.returncode == 0, listing.stderr
    assert "binarized-mnist" in listing.stdout and "tiny-shakespeare" in listing.stdout
    for command in (["grade", "01", "submissions", "--jobs", "2"], ["release", "--check"], ["run", "--help"]):
        done = _as_student(student_copy, "course_lib", *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "the instructor's tools are not part of the student bundle" in done.stderr, done.stderr


def test_every_module_of_the_student_library_imports_without_the_instructors_tools(student_copy):
    check = student_copy.parent / "import_all.py"
    check.write_text(
        "import importlib, pkgutil, sys\n"
        "import course_lib\n"
        f"assert course_lib.__file__.startswith({str(student_copy)!r}), course_lib.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(course_lib.__path__, 'course_lib.')]\n"
        "for name in names:\n"
        "    if name != 'course_lib.__main__':  # that one runs the command\n"
        "        importlib.import_module(name)\n"
        "assert 'course_lib.data.download' in names and 'course_lib.cli' in names, names\n"
        "assert not [m for m in sys.modules if m.startswith('course_lib.instructor')]\n"
        "print(len(names), 'modules')\n")
    done = _as_student(student_copy, "import_all")
    assert done.returncode == 0, done.stderr
    assert "modules" in done.stdout


def test_no_module_of_the_student_library_imports_the_instructors_tools():
    """Only ``course_lib.cli`` names the instructor's package, to load its commands where they are."""
    import ast

    found = []
    for path in sorted((REPO / "course_lib").rglob("*.py")):
        inside = path.relative_to(REPO / "course_lib")
        if inside.parts[0] == "instructor":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(name == "course_lib.instructor" or name.startswith("course_lib.instructor.") for name in names):
                found.append(f"{inside}:{node.lineno}")
    assert [where.split(":")[0] for where in found] == ["cli.py"], found
