"""What grading one notebook needs to know: an assignment's parts and points, and what a submission did.

An :class:`Assignment` is the nbgrader source to grade against: a solution notebook (or a
folder of them), its graded :class:`Part` s and the ``course_lib`` names that implement them
(:mod:`course_lib.instructor.library_copies`). :func:`reference_answer` is the released
exercise with the solution's answers filled in, which ``course grade`` grades before anyone.
For a submission, :func:`submission_warnings` says how it departs from the released exercise
(a locked cell edited, a test deleted...); :func:`timed_out_cells`, :func:`cell_errors` and
:func:`environment_failures` read an autograded notebook (the last: cells that failed because
of the environment, not the answer, see :func:`environment_reason`), and
:func:`gradebook_scores` reads the points nbgrader gave. Grading itself is
:mod:`course_lib.instructor.class_grading` (a class, or the students one names).

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

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.instructor.nbgrader_setup import gradebook_url, quiet_gradebook
from course_lib.instructor.notebooks import cell_source

PART = re.compile(r"[a-z][a-z0-9_]*")
"""A part's name: lowercase letters, digits and ``_``, starting with a letter."""

ROLE = re.compile(r"_(answer|test)(?=(?:_[A-Za-z0-9]+)?$)")
"""The role in ``<part>_answer[_<suffix>]`` / ``<part>_test[_<suffix>]``, matched at every place it fits."""

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
"""A student id (and an assignment's name): letters, digits and ``. _ @ + -``, no spaces or slashes."""


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


def parse_grade_id(grade_id: str) -> tuple[str, str] | None:
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
        parsed = parse_grade_id(grade_id)
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


def parts_of(notebook: str | Path | Mapping[str, Any], name: str | None = None) -> dict[str, Part]:
    """The graded parts of a solution (or exercise) notebook, in the order they appear.

    Raises ValueError listing the cells that break the grade-id convention (the notebook
    called ``name`` in messages: its path, by default).
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook
    name = name or (str(notebook) if isinstance(notebook, str | Path) else "notebook")
    problems = convention_problems(nb, name)
    if problems:
        raise ValueError("the notebook does not follow the grade-id convention:\n" + "\n".join(problems))
    parts: dict[str, Part] = {}
    for _, _, meta in _nbgrader_cells(nb):
        parsed = parse_grade_id(meta.get("grade_id", ""))
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


@dataclass(frozen=True)
class Assignment:
    """An assignment to grade: its name, its nbgrader source notebooks and their graded parts."""

    name: str
    source: Path
    """A solution notebook, or a folder of source notebooks."""
    notebooks: tuple[Path, ...]
    parts: dict[str, Part]
    library: dict[str, list[str]] = field(default_factory=dict)
    """The ``course_lib`` names that implement each part (``metadata.course.library`` of its notebooks)."""

    @classmethod
    def from_source(cls, source: str | Path) -> Assignment:
        """The assignment of a solution notebook (named after its stem) or a folder of them (after the folder).

        Raises FileNotFoundError when there is nothing at ``source``, ValueError when it is no
        notebook, when its name is not usable as nbgrader's, or when a notebook breaks the
        grade-id convention or declares ``course_lib`` names that do not resolve or parts it
        does not have (:func:`course_lib.instructor.library_copies.declared_library`).
        """
        from course_lib.instructor.library_copies import declared_library

        source = Path(source)
        if source.is_file():
            if source.suffix != ".ipynb":
                raise ValueError(f"{source} is not a notebook: expected a .ipynb file or a folder of them")
            name, notebooks = source.stem, [source]
        elif source.is_dir():
            name, notebooks = source.name, sorted(source.glob("*.ipynb"))
            if not notebooks:
                raise ValueError(f"no source notebook (.ipynb) in {source}")
        else:
            raise FileNotFoundError(f"no assignment source at {source}")
        if not STUDENT_ID.match(name):
            raise ValueError(f"assignment name {name!r} should be letters, digits and . _ @ + -")
        parts: dict[str, Part] = {}
        library: dict[str, list[str]] = {}
        for path in notebooks:
            nb = json.loads(path.read_text(encoding="utf-8"))
            mine = parts_of(nb, str(path))
            parts.update(mine)
            for part, names in declared_library(nb, mine, str(path)).items():
                library.setdefault(part, []).extend(names)
        return cls(name, source, tuple(notebooks), parts, library)

    @property
    def notebook_names(self) -> list[str]:
        """The file names of its notebooks, as a submission must name them (``01_x.ipynb``)."""
        return [nb.name for nb in self.notebooks]


def check_student_id(student: str) -> None:
    """Raise ValueError unless ``student`` is a usable student id (:data:`STUDENT_ID`)."""
    if not isinstance(student, str) or not STUDENT_ID.match(student):
        raise ValueError(f"student id {student!r} should be letters, digits and . _ @ + - (no spaces or slashes)")


SOLUTION_MARKERS = tuple(f"### {edge} SOLUTION" for edge in ("BEGIN", "END"))
"""nbgrader's lines around an answer in a solution cell (spelled from parts, as in ``release.LEAK_MARKERS``)."""


def reference_answer(released: Mapping[str, Any], solution: Mapping[str, Any]) -> dict[str, Any]:
    """The reference answer: a copy of the released exercise whose answer cells hold the solution's code.

    What a student who wrote the solution would hand in: each answer cell of ``released``
    (nbgrader's student version) gets the source of the cell with the same grade id in
    ``solution`` (the nbgrader source), without nbgrader's solution markers. Raises
    ValueError naming the answer cells that the solution does not have.
    """
    answers = {_meta(cell)["grade_id"]: cell_source(cell) for cell in solution.get("cells", [])
               if _meta(cell).get("solution") and _meta(cell).get("grade_id")}
    nb = copy.deepcopy(dict(released))
    missing = []
    for cell in nb.get("cells", []):
        meta = _meta(cell)
        if not meta.get("solution"):
            continue
        if meta.get("grade_id") not in answers:
            missing.append(str(meta.get("grade_id")))
            continue
        lines = answers[meta["grade_id"]].splitlines(keepends=True)
        cell["source"] = "".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)
    if missing:
        raise ValueError(f"the solution has no answer cell(s) {', '.join(missing)} of the released exercise")
    return nb


# --------------------------------------------------------------------------- a submission


def _meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader") or {}


def cell_label(cell: Mapping[str, Any], index: int) -> str:
    """How messages name a cell: its grade id, else ``cell <index>``."""
    return _meta(cell).get("grade_id") or f"cell {index}"


def submission_warnings(released: Mapping[str, Any], submitted: Mapping[str, Any]) -> list[str]:
    """How a submitted notebook departs from the released exercise in ways the grader repairs.

    Compares, by grade id, the graded, answer and locked cells of the released notebook
    (what the students got) with the submission: a locked cell edited (nbgrader grades
    the original), a test cell deleted (put back and graded), an answer or locked cell
    deleted, a cell duplicated (only the last copy is graded), a cell's type or points
    changed, a graded cell that the assignment does not have. One line each; empty when
    the submission is intact.
    """
    submitted_cells: dict[str, list[Mapping[str, Any]]] = {}
    for cell in submitted.get("cells", []):
        grade_id = _meta(cell).get("grade_id")
        if grade_id:
            submitted_cells.setdefault(grade_id, []).append(cell)
    problems, known = [], set()
    for cell in released.get("cells", []):
        meta = _meta(cell)
        grade_id = meta.get("grade_id")
        if not grade_id or not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            continue
        known.add(grade_id)
        kind = "test cell" if meta.get("grade") else "answer cell" if meta.get("solution") else "locked cell"
        copies = submitted_cells.get(grade_id, [])
        if not copies:
            if meta.get("grade"):
                problems.append(f"{kind} {grade_id} was deleted (the original was put back and graded)")
            else:
                problems.append(f"{kind} {grade_id} was deleted")
            continue
        if len(copies) > 1:
            problems.append(f"cell {grade_id} appears {len(copies)} times (only the last one was graded)")
        mine = copies[-1]
        if mine.get("cell_type") != cell.get("cell_type"):
            problems.append(f"{kind} {grade_id} was changed from {cell.get('cell_type')} to {mine.get('cell_type')}"
                            " (changed back)")
        elif (meta.get("locked") and not meta.get("solution")
              and cell_source(mine).rstrip() != cell_source(cell).rstrip()):
            problems.append(f"{kind} {grade_id} was edited (the original was graded)")
        if meta.get("grade"):
            try:
                points = float(_meta(mine).get("points") or 0)
            except (TypeError, ValueError):
                points = None
            if points != float(meta.get("points") or 0):
                problems.append(f"the points of {grade_id} were changed (the original points were used)")
    for grade_id in submitted_cells:
        if grade_id not in known:
            problems.append(f"cell {grade_id} is not part of the assignment (it ran, ungraded)")
    return problems


def timed_out_cells(notebook: str | Path | Mapping[str, Any]) -> list[str]:
    """The cells of an autograded notebook that ran past the per-cell limit (grade id, else ``cell <i>``)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if any(out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError"
               for out in cell.get("outputs", [])):
            found.append(cell_label(cell, i))
    return found


@dataclass(frozen=True)
class CellError:
    """An exception that a cell of an executed notebook raised, as its error output records it."""

    index: int
    cell: str
    """The cell's grade id, else ``cell <index>``."""
    ename: str
    evalue: str
    traceback: tuple[str, ...] = ()
    """The traceback's lines as the kernel printed them (with terminal colours)."""
    test: bool = False
    """Whether the cell is a graded test cell."""

    @property
    def summary(self) -> str:
        """``ErrorName: message`` with the message's first 3 lines."""
        return f"{self.ename}: " + "\n".join(self.evalue.splitlines()[:3])


def _load(notebook: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    return json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook


def cell_error_list(notebook: str | Path | Mapping[str, Any]) -> list[CellError]:
    """Every error that a cell of an executed notebook raised, in order (a cell has at most one)."""
    found = []
    for i, cell in enumerate(_load(notebook).get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(CellError(i, cell_label(cell, i), str(out.get("ename") or "Error"),
                                       str(out.get("evalue") or ""), tuple(map(str, out.get("traceback") or [])),
                                       bool(_meta(cell).get("grade"))))
    return found


def cell_errors(notebook: str | Path | Mapping[str, Any]) -> dict[str, str]:
    """``{grade_id: "ErrorName: message"}`` for the cells that raised in an executed notebook.

    Cells without a grade id are keyed ``cell <index>``. Messages keep their first 3 lines.
    """
    return {error.cell: error.summary for error in cell_error_list(notebook)}


# --------------------------------------------------------------------------- failures of the environment

ENVIRONMENT_ERRORS = {
    "DataFetchError": "the course's data could not be found",
    "MemoryError": "out of memory",
    "OutOfMemoryError": "out of memory",
}
"""Exceptions (by name) that say the grading environment failed, whatever the answer, and the reason they give."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LIBRARY_FRAME = re.compile(r"[/\\]course_lib[/\\][^\s:]*\.py")


def environment_reason(error: CellError) -> str | None:
    """Why ``error`` is a failure of the environment, not of the answer; None when it is not one.

    The course's data not found (``DataFetchError``), out of memory (``MemoryError``,
    ``torch.OutOfMemoryError``), or ``course_lib`` that cannot be imported: ``No module named
    'course_lib'``, or an ImportError raised inside ``course_lib``'s own files (a dependency
    missing). An import of a name that ``course_lib`` does not have, written in a cell, is the
    cell's own error, not the environment's.
    """
    if error.ename in ENVIRONMENT_ERRORS:
        return ENVIRONMENT_ERRORS[error.ename]
    if error.ename in ("ModuleNotFoundError", "ImportError"):
        if error.evalue.strip() == "No module named 'course_lib'":
            return "course_lib cannot be imported"
        if any(_LIBRARY_FRAME.search(_ANSI.sub("", line)) for line in error.traceback):
            return "course_lib cannot be imported"
    return None


@dataclass(frozen=True)
class EnvironmentFailure:
    """A cell that failed because of the grading environment, not the answer (:func:`environment_reason`)."""

    cell: str
    reason: str
    error: str
    """``ErrorName: message`` (first lines)."""

    @property
    def message(self) -> str:
        return f"{self.cell} failed because {self.reason} ({self.error.splitlines()[0] if self.error else ''})"


def environment_failures(notebook: str | Path | Mapping[str, Any]) -> list[EnvironmentFailure]:
    """The cells of an autograded notebook that failed because of the environment, in order."""
    return [EnvironmentFailure(error.cell, reason, error.summary) for error in cell_error_list(notebook)
            if (reason := environment_reason(error)) is not None]


# --------------------------------------------------------------------------- the gradebook


def gradebook_scores(gradebook: str | Path, assignment: str, notebooks: list[str], student: str) -> dict[str, float]:
    """``{grade_id: points}`` that nbgrader gave ``student``'s notebooks (by file name) in the gradebook file."""
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with quiet_gradebook(), Gradebook(gradebook_url(gradebook)) as gb:
        for name in notebooks:
            try:
                submitted = gb.find_submission_notebook(Path(name).stem, assignment, student)
            except MissingEntry:
                continue
            for grade in submitted.grades:
                scores[grade.name] = float(grade.score or 0.0)
    return scores


def gradebook_max_scores(gradebook: str | Path, assignment: str, notebooks: list[str]) -> dict[str, float]:
    """``{grade_id: maximum points}`` of every test cell of the assignment's notebooks (by file name)."""
    from nbgrader.api import Gradebook

    max_scores = {}
    with quiet_gradebook(), Gradebook(gradebook_url(gradebook)) as gb:
        for name in notebooks:
            for cell in gb.find_notebook(Path(name).stem, assignment).grade_cells:
                max_scores[cell.name] = float(cell.max_score)
    return max_scores
