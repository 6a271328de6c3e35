"""Grade submissions with nbgrader's autograder, and read the points back per part.

:func:`autograde` builds an nbgrader course directory (``source/``, ``release/``,
``submitted/``, ``autograded/``, ``gradebook.db``) in a working folder, generates the
assignment from its source, copies each student's notebook into
``submitted/<student>/<assignment>/``, runs nbgrader's autograder (hidden tests
restored, the kernel in the ``smoke`` profile) and reads every grade cell's score from
the gradebook. A submission that nbgrader could not grade is marked so (``success``
False, its error kept): it is never reported as a real zero.

How points map to parts (the grade-id convention of the solution notebooks)
---------------------------------------------------------------------------
A *part* is one thing a student implements. In the nbgrader source, each part ``<part>``
(lowercase letters, digits and ``_``, e.g. ``histogram_nll``) has

* answer cell(s): code cells with ``solution: true, grade: false``, grade id
  ``<part>_answer`` (more than one: ``<part>_answer_<suffix>``);
* test cell(s): code cells with ``grade: true, solution: false, locked: true`` and
  ``points > 0``, grade id ``<part>_test`` or ``<part>_test_<suffix>`` (e.g.
  ``histogram_nll_test_hidden``); ``<suffix>`` is letters and digits, no ``_``.

A part's tests use that part's answer and nothing a student writes in another part, so
that a wrong answer costs exactly the points of its own tests. :func:`parts_of` reads
this structure and :func:`convention_problems` reports cells that break it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.notebooks import kernel_environment
from course_lib.release import add_source, nbgrader_api

PART = re.compile(r"[a-z][a-z0-9_]*")
"""A part's name: lowercase letters, digits and ``_``, starting with a letter."""

ROLE = re.compile(r"_(answer|test)(?=(?:_[A-Za-z0-9]+)?$)")
"""The role in ``<part>_answer[_<suffix>]`` / ``<part>_test[_<suffix>]``, matched at every place it fits."""

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


# --------------------------------------------------------------------------- parts


@dataclass
class Part:
    """One graded part of an assignment: its answer cells, its test cells and their points."""

    name: str
    answer_ids: list[str] = field(default_factory=list)
    test_ids: list[str] = field(default_factory=list)
    points: float = 0.0


def _nbgrader_cells(nb: Mapping[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    return [(i, cell, cell["metadata"]["nbgrader"]) for i, cell in enumerate(nb.get("cells", []))
            if cell.get("metadata", {}).get("nbgrader")]


def _parse_grade_id(grade_id: str) -> tuple[str, str] | None:
    """``(part, role)`` for a grade id following the convention (role ``answer`` or ``test``), else None.

    The part is the longest prefix that leaves a valid role (and suffix) after it, so
    ``t_test_answer`` is the answer of part ``t_test``.
    """
    found = None
    for m in ROLE.finditer(grade_id):
        part = grade_id[: m.start()]
        if PART.fullmatch(part):
            found = (part, m.group(1))
    return found


def convention_problems(nb: Mapping[str, Any], name: str = "notebook") -> list[str]:
    """Where a solution notebook breaks the grade-id convention; one line per problem (empty: follows it)."""
    problems = []
    answers: dict[str, list[str]] = {}
    tests: dict[str, list[str]] = {}
    for i, cell, meta in _nbgrader_cells(nb):
        grade_id = meta.get("grade_id", "")
        solution, grade = bool(meta.get("solution")), bool(meta.get("grade"))
        where = f"{name}, cell {i} ({grade_id!r})"
        if not solution and not grade:
            continue  # read-only or task cells carry no points
        if solution and grade:
            problems.append(f"{where}: a manually graded answer; the autograder expects answers and tests apart")
            continue
        if meta.get("task"):
            problems.append(f"{where}: a task cell cannot be autograded")
            continue
        if cell.get("cell_type") != "code":
            problems.append(f"{where}: graded cells should be code cells, found {cell.get('cell_type')}")
            continue
        parsed = _parse_grade_id(grade_id)
        role_wanted = "answer" if solution else "test"
        if parsed is None or parsed[1] != role_wanted:
            problems.append(f"{where}: expected a grade id '<part>_{role_wanted}' or '<part>_{role_wanted}_<suffix>'")
            continue
        part, _ = parsed
        if solution:
            answers.setdefault(part, []).append(grade_id)
        else:
            if not meta.get("locked"):
                problems.append(f"{where}: a test cell should be locked")
            if not float(meta.get("points") or 0) > 0:
                problems.append(f"{where}: a test cell should have points > 0, has {meta.get('points')!r}")
            tests.setdefault(part, []).append(grade_id)
    for part in sorted(set(answers) - set(tests)):
        problems.append(f"{name}: part {part!r} has an answer cell but no test cell '{part}_test...'")
    for part in sorted(set(tests) - set(answers)):
        problems.append(f"{name}: part {part!r} has test cells but no answer cell '{part}_answer'")
    return problems


def parts_of(notebook: str | Path | Mapping[str, Any]) -> dict[str, Part]:
    """The graded parts of a solution (or exercise) notebook, in the order they appear.

    Raises ValueError listing the cells that break the grade-id convention.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook
    name = str(notebook) if isinstance(notebook, str | Path) else "notebook"
    problems = convention_problems(nb, name)
    if problems:
        raise ValueError("the notebook does not follow the grade-id convention:\n" + "\n".join(problems))
    parts: dict[str, Part] = {}
    for _, _, meta in _nbgrader_cells(nb):
        parsed = _parse_grade_id(meta.get("grade_id", ""))
        if parsed is None or not (meta.get("solution") or meta.get("grade")):
            continue
        part = parts.setdefault(parsed[0], Part(parsed[0]))
        if meta.get("solution"):
            part.answer_ids.append(meta["grade_id"])
        else:
            part.test_ids.append(meta["grade_id"])
            part.points += float(meta.get("points") or 0)
    return parts


def part_scores(scores: Mapping[str, float], parts: Mapping[str, Part]) -> dict[str, float]:
    """Points per part from points per test cell (``{grade_id: score}``)."""
    return {name: sum(float(scores.get(grade_id, 0.0)) for grade_id in part.test_ids) for name, part in parts.items()}


# --------------------------------------------------------------------------- grading


def cell_errors(notebook: str | Path) -> dict[str, str]:
    """``{grade_id: "ErrorName: message"}`` for the nbgrader cells that raised in an executed notebook.

    Cells without a grade id are keyed ``cell <index>``. Messages keep their first 3 lines.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    errors = {}
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                key = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i}"
                message = "\n".join(str(out.get("evalue", "")).splitlines()[:3])
                errors[key] = f"{out.get('ename', 'Error')}: {message}"
    return errors


@dataclass
class StudentGrade:
    """One student's autograded submission.

    ``scores`` and ``max_scores`` are keyed by grade id (one entry per graded test cell).
    When ``success`` is False nbgrader could not grade the submission: ``scores`` is
    empty, ``total`` is None and ``error`` says why; this is not a score of zero.
    """

    student: str
    success: bool
    scores: dict[str, float]
    max_scores: dict[str, float]
    total: float | None
    max_total: float
    seconds: float
    error: str | None = None
    log: str = ""
    notebook: str | None = None
    """The autograded notebook (executed, with outputs), for feedback."""

    @property
    def status(self) -> str:
        return "graded" if self.success else "failed"

    @property
    def reason(self) -> str:
        """One line saying why grading failed (empty when it succeeded)."""
        if self.success:
            return ""
        lines = [line.strip() for line in (self.log + "\n" + (self.error or "")).splitlines() if line.strip()]
        errors = [line for line in lines
                  if re.match(r"^[\w.]*(Error|Exception)\b", line) and "NbGraderException" not in line]
        logged = [line for line in lines if line.startswith("[ERROR]")]
        return (errors or logged or lines or ["nbgrader reported a failure"])[0]


@dataclass
class GradingResult:
    """The autograder's verdict for one assignment: one :class:`StudentGrade` per student."""

    assignment: str
    max_scores: dict[str, float]
    students: dict[str, StudentGrade]
    course_dir: str

    @property
    def scores(self) -> dict[str, dict[str, float]]:
        """``{student: {grade_id: points}}`` (empty for a submission that could not be graded)."""
        return {name: dict(grade.scores) for name, grade in self.students.items()}

    @property
    def totals(self) -> dict[str, float | None]:
        """``{student: total points}``; None for a submission that could not be graded."""
        return {name: grade.total for name, grade in self.students.items()}

    @property
    def max_total(self) -> float:
        return float(sum(self.max_scores.values()))


def _check_student_id(student: str) -> None:
    if not isinstance(student, str) or not STUDENT_ID.match(student):
        raise ValueError(f"student id {student!r} should be letters, digits and . _ @ + - (no spaces or slashes)")


def source_notebooks(source: Path) -> tuple[str, list[Path]]:
    """The assignment name and its source notebooks, from a notebook or a folder of them."""
    if source.is_file():
        if source.suffix != ".ipynb":
            raise ValueError(f"{source} is not a notebook: expected a .ipynb file or a folder of them")
        return source.stem, [source]
    if source.is_dir():
        notebooks = sorted(source.glob("*.ipynb"))
        if not notebooks:
            raise ValueError(f"no source notebook (.ipynb) in {source}")
        return source.name, notebooks
    raise FileNotFoundError(f"no assignment source at {source}")


def _copy_submission(path: Path, target: Path, notebooks: list[Path]) -> None:
    """Copy one student's submission into ``submitted/<student>/<assignment>/``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if path.is_file():
        if len(notebooks) != 1:
            raise ValueError(f"{path}: one notebook was submitted, but the assignment has {len(notebooks)};"
                             " submit a folder holding them")
        shutil.copyfile(path, target / notebooks[0].name)  # named as nbgrader expects, whatever the upload's name
    elif path.is_dir():
        shutil.copytree(path, target, dirs_exist_ok=True)
    else:
        raise FileNotFoundError(f"no submission at {path}")


def install_source(root: Path, source: Path, assignment: str) -> None:
    """Put the assignment's nbgrader source into the course directory ``root`` (``source/<assignment>/``).

    ``source`` is a solution notebook (copied with its declared data files only) or a folder
    of them (copied without ``.py`` files, which could be paired copies holding the answers).
    """
    if source.is_file():
        add_source(root, source, assignment)
        return
    target = root / "source" / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", ".ipynb_checkpoints"))


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment variables that give a kernel ``threads`` CPU threads (none that the user has set)."""
    if not threads:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if name not in os.environ}


def gradebook_scores(api, assignment: str, notebooks: list[Path], student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(api.coursedir.db_url) as gb:
        for nb in notebooks:
            try:
                submitted = gb.find_submission_notebook(nb.stem, assignment, student)
            except MissingEntry:
                continue
            for grade in submitted.grades:
                scores[grade.name] = float(grade.score or 0.0)
    return scores


def gradebook_max_scores(api, assignment: str, notebooks: list[Path]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    max_scores = {}
    with Gradebook(api.coursedir.db_url) as gb:
        for nb in notebooks:
            for cell in gb.find_notebook(nb.stem, assignment).grade_cells:
                max_scores[cell.name] = float(cell.max_score)
    return max_scores


def autograde(
    source: str | Path,
    submissions: Mapping[str, str | Path],
    workdir: str | Path | None = None,
    *,
    profile: str = "smoke",
    timeout: int = 300,
) -> GradingResult:
    """Autograde each student's submission of one assignment with nbgrader.

    ``source`` is a solution notebook (``solutions/01_x.ipynb``: the assignment is named
    after its stem; it is copied with its declared files only) or a folder of source
    notebooks (named after the folder; copied without its ``.py`` files, which may be
    paired notebooks holding the answers).
    ``submissions`` maps a student id to the submitted ``.ipynb`` (any file name) or to a
    folder holding the assignment's notebooks. ``workdir`` becomes the nbgrader course
    directory and is kept (the autograded notebooks, with outputs, are there); None uses
    a temporary folder that is removed afterwards. The kernel runs in ``profile``, on one
    CPU thread unless ``OMP_NUM_THREADS`` says otherwise; ``timeout`` is the seconds one
    cell may run.

    Returns a :class:`GradingResult`: per student, the points of every test cell (grade
    id -> points), the total, and whether nbgrader could grade the submission at all.
    """
    source = Path(source)
    assignment, notebooks = source_notebooks(source)
    for student, path in submissions.items():
        _check_student_id(student)
        if not Path(path).exists():
            raise FileNotFoundError(f"no submission at {path} (student {student!r})")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
            result = autograde(source, submissions, tmp, profile=profile, timeout=timeout)
            result.course_dir = ""
            for grade in result.students.values():
                grade.notebook = None
            return result

    root = Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    install_source(root, source, assignment)

    api = nbgrader_api(root, Execute={"timeout": timeout})
    generated = api.generate_assignment(assignment, force=True, create=True)
    if not generated.get("success"):
        raise RuntimeError(f"nbgrader could not generate {assignment} from {source}:\n"
                           + ((generated.get("log") or "") + (generated.get("error") or "")).strip())
    max_scores = gradebook_max_scores(api, assignment, notebooks)

    students = {}
    for student, path in submissions.items():
        _copy_submission(Path(path), root / "submitted" / student / assignment, notebooks)
        start = time.perf_counter()
        with kernel_environment(profile, **thread_env(1)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="nbgrader.api")  # SQLAlchemy's notes on nbgrader's sessions
            outcome = api.autograde(assignment, student, force=True, create=True)
        seconds = time.perf_counter() - start
        success = bool(outcome.get("success"))
        scores = gradebook_scores(api, assignment, notebooks, student) if success else {}
        autograded = root / "autograded" / student / assignment / notebooks[0].name
        students[student] = StudentGrade(
            student=student,
            success=success,
            scores=scores,
            max_scores=dict(max_scores),
            total=float(sum(scores.values())) if success else None,
            max_total=float(sum(max_scores.values())),
            seconds=seconds,
            error=None if success else (outcome.get("error") or "nbgrader reported a failure").strip(),
            log=outcome.get("log") or "",
            notebook=str(autograded) if autograded.is_file() else None,
        )
    return GradingResult(assignment, max_scores, students, str(root))
