"""Grading a class: the ``course grade`` command, and :func:`autograde` for the students one names.

:func:`grade_class` (the ``course grade`` command) takes what an LMS or JupyterHub gives
an instructor (see :mod:`course_lib.instructor.submissions`) and writes ``grades.csv`` and
one feedback page per student into an output folder. :func:`autograde` does the same for a
mapping ``{student: notebook}``; both go through the same steps (:func:`_grade`):

1. nbgrader generates the assignment from its source, in a template course directory;
2. each student is sorted out: a submission that cannot be graded gets its status at once
   (``missing``, ``duplicate``, ``not-a-notebook``), one that did not change since the last
   run into the same output folder with the same assignment and settings keeps its grade
   (unless ``force``), the others are to be graded;
3. when anyone is to be graded, the *self-check*: the reference answer (the released exercise
   with the solution's answers, :func:`course_lib.instructor.grading.reference_answer`) is
   graded first, exactly as a student is (the same grading processes, environment and
   limits). Unless it is ``graded`` with full marks, grading stops with
   :class:`SelfCheckError` naming each failing cell, and no student is graded or written
   (only ``reference/``, see :func:`grade_class`): a class graded in a broken environment
   (the data folder missing...) would otherwise lose points that are not the students' to lose;
4. the output folder's ``course/`` (the nbgrader course directory with ``gradebook.db`` and
   each student's submitted and autograded notebooks) is kept from the last run, or made
   anew when the assignment or the settings changed (``state.json`` remembers them);
5. several students are graded at a time, each in a grading process and a private course
   directory of their own (:mod:`course_lib.instructor.grading_process`), every notebook
   in a kernel of its own; each cell may run ``timeout`` seconds (nbgrader interrupts it
   and goes on with the next cell), the whole notebook ``notebook_timeout`` seconds (then
   its kernel is stopped);
6. each outcome gets a status (:func:`classify`, one of :data:`STATUSES`, so that a
   submission that could not be graded never looks like a real zero), goes into the
   course's gradebook and a feedback page (:mod:`course_lib.instructor.feedback`: no hidden
   test shown, unless ``feedback="full"``), and ``state.json`` is saved; ``grades.csv`` at
   the end.

Why the self-check runs on every run that grades anyone, and is never taken from an earlier
run: what it checks is the environment (the data folder, the installed packages, the
library in the checkout, the memory), which changes between runs in ways that no record of
the settings sees; it costs one notebook's run, about one student's time, and a re-run that
grades nobody runs no self-check.

Nothing is ever written into the submissions, and one output folder takes one run at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock, Timeout

from course_lib.files import atomic_write
from course_lib.instructor.feedback import graded_page, hidden_test_lines, status_page
from course_lib.instructor.grading import (
    Assignment,
    Part,
    cell_errors,
    check_student_id,
    gradebook_max_scores,
    part_scores,
    reference_answer,
)
from course_lib.instructor.grading_process import GradingJob, GradingOutcome, GradingPool, JsonRecord
from course_lib.instructor.nbgrader_setup import (
    generate_assignment,
    gradebook_url,
    install_source,
    nbgrader_api,
    quiet_gradebook,
)
from course_lib.instructor.submissions import Discovery, Submission, discover, notebook_problem, read_roster
from course_lib.runtime import PROFILES

STATUSES = ("graded", "graded-with-warnings", "timeout", "kernel-died", "not-a-notebook", "missing", "duplicate",
            "error")
"""What happened to one student's submission, as the ``status`` column of ``grades.csv`` says:

``graded``                the notebook ran to the end and every test cell was scored;
``graded-with-warnings``  likewise, but the submission was tampered with or damaged: a locked
                          cell edited or a graded cell deleted (the original was put back and
                          graded), a cell duplicated..., or its code uses the ``course_lib`` names
                          that implement a part (with ``library_copies="zero"`` that part scores
                          0); the ``message`` says what;
``timeout``               a cell ran past the per-cell limit and was interrupted (the other cells
                          were graded and the points are real), or the notebook could not be
                          stopped or ran past the whole-notebook limit (no points);
``kernel-died``           the notebook's kernel died (e.g. ``os._exit`` or out of memory): no points;
``not-a-notebook``        the file is not a readable notebook (truncated JSON...), or no notebook
                          was submitted: no points;
``missing``               a student of the roster submitted nothing;
``duplicate``             several notebooks for one student: none is guessed at, none graded;
``error``                 the grader itself could not grade the submission, or a cell failed
                          because of the grading environment, not the answer (the course's data
                          not found, ``course_lib`` not importable, out of memory): no points,
                          the message says which cell and why.
"""

WITH_POINTS = ("graded", "graded-with-warnings", "timeout")
"""Statuses whose row may carry points (``timeout`` only when the notebook ran to its end)."""

NOT_GRADED = ("missing", "duplicate", "not-a-notebook")
"""Statuses found before grading: such a submission is never handed to nbgrader."""

DEFAULT_TIMEOUT = 120.0
"""Seconds one cell may run before it is interrupted."""

DEFAULT_NOTEBOOK_TIMEOUT = 600.0
"""Seconds one student's whole notebook may run before its kernel is stopped."""

FEEDBACK_MODES = ("summary", "full")
"""``summary``: the course's feedback pages (points, pass or fail, messages; no test code);
``full``: nbgrader's pages, which show every test cell as it ran, hidden tests included."""

LIBRARY_COPIES = ("warn", "zero")
"""What a part whose ``course_lib`` implementation the answer uses gets: a warning, or 0 points."""

STATE_FILE = "state.json"
GRADES_FILE = "grades.csv"
LOCK_FILE = ".lock"
REFERENCE_DIR = "reference"
"""Where the self-check's autograded reference answer and its record (``selfcheck.json``) go in the output folder."""
SELFCHECK_FILE = "selfcheck.json"
REFERENCE_STUDENT = "reference"


# --------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class GradingSettings:
    """How every notebook of a run is graded: the profile its kernel runs in and its time limits (seconds)."""

    profile: str = "smoke"
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one cell may run before it is interrupted."""
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    """Seconds one student's whole notebook may run before its kernel is stopped."""
    feedback: str = "summary"
    """One of :data:`FEEDBACK_MODES`."""
    library_copies: str = "warn"
    """One of :data:`LIBRARY_COPIES`."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {', '.join(PROFILES)}")
        if self.feedback not in FEEDBACK_MODES:
            raise ValueError(f"unknown feedback {self.feedback!r}; expected one of {', '.join(FEEDBACK_MODES)}")
        if self.library_copies not in LIBRARY_COPIES:
            raise ValueError(f"unknown library_copies {self.library_copies!r};"
                             f" expected one of {', '.join(LIBRARY_COPIES)}")
        for name in ("timeout", "notebook_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"timeouts must be positive numbers of seconds, got {name}={value!r}")
            object.__setattr__(self, name, float(value))


@dataclass
class StudentGrade:
    """One student's grade, a row of ``grades.csv``: a status, points per test cell and in total, a message."""

    student: str
    status: str
    """One of :data:`STATUSES`."""
    scores: dict[str, float] | None = None
    """Points per test cell (grade id); None where nothing was graded (never a zero that looks real)."""
    total: float | None = None
    message: str = ""
    seconds: float | None = None
    digest: str | None = None
    """SHA-256 of the submitted notebooks, to re-grade only what changed."""
    files: list[str] = field(default_factory=list)
    """Every file of the student's submission, as shown to people."""
    feedback: str | None = None
    """The feedback page, relative to the output folder."""
    regraded: bool = True
    """False when the grade was kept from an earlier run because the submission did not change."""
    phases: dict[str, float] | None = None
    """Seconds spent starting the grading process, setting up, autograding and writing feedback."""

    _STATE_KEYS: ClassVar[tuple[str, ...]] = ("status", "scores", "total", "message", "seconds", "digest", "feedback",
                                              "phases", "files")

    @property
    def graded(self) -> bool:
        """Whether nbgrader scored the submission (its points are real, zeros included)."""
        return self.scores is not None

    def to_state(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._STATE_KEYS}

    @classmethod
    def from_state(cls, student: str, data: Mapping[str, Any]) -> StudentGrade:
        values = {key: data.get(key) for key in cls._STATE_KEYS}
        values["files"] = list(values["files"] or [])
        values["message"] = values["message"] or ""
        return cls(student, regraded=False, **values)


@dataclass
class ClassGrades:
    """The outcome of :func:`grade_class` or :func:`autograde`: one :class:`StudentGrade` per student, and where
    things went."""

    assignment: str
    notebooks: list[str]
    """The assignment's notebooks (file names)."""
    out: Path
    parts: dict[str, Part]
    max_scores: dict[str, float]
    """The points each test cell (grade id) is worth."""
    students: dict[str, StudentGrade] = field(default_factory=dict)
    layout: str = ""
    ignored: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Students graded by an earlier run who are no longer among the submissions (kept in the gradebook)."""
    roster: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reference: SelfCheck | None = None
    """The self-check of this run (None when nobody was graded, so none ran)."""

    @property
    def max_total(self) -> float:
        return float(sum(self.max_scores.values()))

    @property
    def totals(self) -> dict[str, float | None]:
        """``{student: total points}``; None for a submission that was not graded."""
        return {name: grade.total for name, grade in self.students.items()}

    @property
    def csv(self) -> Path:
        return self.out / GRADES_FILE

    @property
    def course_dir(self) -> Path:
        return self.out / "course"

    def feedback_page(self, student: str, notebook: str) -> Path:
        """Where a student's feedback on one notebook goes: ``feedback/<student>.html`` (one notebook) or
        ``feedback/<student>/<notebook>.html``."""
        if len(self.notebooks) == 1:
            return self.out / "feedback" / f"{student}.html"
        return self.out / "feedback" / student / (Path(notebook).stem + ".html")

    def autograded_notebook(self, student: str, notebook: str | None = None) -> Path | None:
        """The student's autograded notebook (executed, with outputs), for feedback; None when there is none.

        ``notebook`` is one of :attr:`notebooks` (default: the first).
        """
        path = self.course_dir / "autograded" / student / self.assignment / (notebook or self.notebooks[0])
        return path if path.is_file() else None

    def counts(self) -> dict[str, int]:
        """Students per status, in the order of :data:`STATUSES` (statuses nobody has are left out)."""
        counts = {status: 0 for status in STATUSES}
        for grade in self.students.values():
            counts[grade.status] = counts.get(grade.status, 0) + 1
        return {status: n for status, n in counts.items() if n}

    @property
    def errors(self) -> list[str]:
        """Students whose submission the grader itself failed on (status ``error``)."""
        return [name for name, grade in self.students.items() if grade.status == "error"]

    def part_scores(self, student: str) -> dict[str, float] | None:
        grade = self.students[student]
        return None if grade.scores is None else part_scores(grade.scores, self.parts)

    def summary(self) -> str:
        """A few lines for the terminal: students per status, the mean total, where the results are."""
        lines = [f"{self.assignment}: {len(self.students)} student(s) in {self.seconds:.1f} s"]
        if self.reference is not None:
            lines.append(f"  self-check: the reference answer scored full marks ({self.reference.seconds or 0:.1f} s)")
        width = max(len(s) for s in STATUSES)
        for status, n in self.counts().items():
            lines.append(f"  {status:<{width}}  {n}")
        totals = [grade.total for grade in self.students.values() if grade.total is not None]
        if totals:
            mean = sum(totals) / len(totals)
            lines.append(f"  mean total {mean:.2f} / {self.max_total:g} over {len(totals)} student(s) with points")
        kept = [name for name, grade in self.students.items() if not grade.regraded and grade.digest is not None]
        if kept:
            lines.append(f"  {len(kept)} unchanged since the last run, not re-graded (--force re-grades them)")
        if self.ignored:
            shown = ", ".join(self.ignored[:5]) + (", ..." if len(self.ignored) > 5 else "")
            lines.append(f"  ignored {len(self.ignored)} file(s) that belong to no student: {shown}")
        if self.dropped:
            lines.append(f"  not in this class any more (left out of {GRADES_FILE}, kept in the gradebook): "
                         + ", ".join(self.dropped))
        lines.append(f"grades: {self.csv}")
        lines.append(f"feedback: {self.out / 'feedback'}/<student>.html")
        return "\n".join(lines)


@dataclass
class GradingState:
    """``state.json`` of an output folder: what it was graded with and each student's grade, so that a re-run
    re-grades only what changed."""

    assignment: str
    source: str
    """SHA-256 of the assignment's source as nbgrader got it."""
    settings: dict[str, Any]
    """:class:`GradingSettings` as a dict."""
    students: dict[str, StudentGrade] = field(default_factory=dict)

    FORMAT: ClassVar[int] = 1

    @classmethod
    def load(cls, path: Path) -> GradingState | None:
        """The state saved at ``path``; None when there is none, or it is unreadable or of another format."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            return None
        students = {name: StudentGrade.from_state(name, row) for name, row in (data.get("students") or {}).items()}
        return cls(data.get("assignment"), data.get("source"), data.get("settings"), students)

    def save(self, path: Path) -> None:
        data = {"format": self.FORMAT, "assignment": self.assignment, "source": self.source,
                "settings": self.settings, "students": {name: g.to_state() for name, g in self.students.items()}}
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


@dataclass
class SelfCheck(JsonRecord):
    """What grading the reference answer gave (``reference/selfcheck.json``): did it score full marks, and if not,
    which cells failed and why."""

    passed: bool
    status: str
    """The reference's status, as a student's (one of :data:`STATUSES`)."""
    message: str = ""
    total: float | None = None
    max_total: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    """``{cell: why}``: each test cell that lost points (with its error), each cell that failed because of the
    environment, each part whose library names the reference uses."""
    seconds: float | None = None

    def describe(self) -> str:
        """Lines for the terminal: what the reference scored and each failing cell with its error."""
        points = "no points" if self.total is None else f"{self.total:g} of {self.max_total:g} points"
        lines = [f"the reference answer (the released exercise with the solution's answers) got status"
                 f" {self.status} and {points} in this environment; no student was graded"]
        if self.message:
            lines.append(f"  {self.message}")
        for cell, why in self.failures.items():
            first, *rest = why.splitlines() or [""]
            lines.append(f"  {cell}: {first}")
            lines += [f"    {line}" for line in rest]
        return "\n".join(lines)


class SelfCheckError(RuntimeError):
    """The reference answer did not score full marks: grading stopped before any student."""

    def __init__(self, check: SelfCheck, where: Path | None = None):
        self.check = check
        text = check.describe()
        if where is not None:
            text += f"\nthe autograded reference answer is in {where}"
        super().__init__(text)


# --------------------------------------------------------------------------- the status of an outcome


def classify(outcome: GradingOutcome, timeout: float, notebook_timeout: float,
             library_copies: str = "warn") -> tuple[str, str]:
    """The status of one graded submission and its one-line message, from what its grading process saw.

    ``library_copies`` (one of :data:`LIBRARY_COPIES`) says what the message tells of a part
    whose ``course_lib`` implementation the answer uses (the points are taken by
    :func:`_take_outcome`).
    """
    if outcome.crashed:
        lines = [line for line in (outcome.error or "").splitlines() if line.strip()]
        return "error", "the grader failed: " + (lines[-1] if lines else "no output")
    where = f" in {outcome.last_cell}" if outcome.last_cell else ""
    cell = outcome.last_cell or "a cell"
    zero = "; it scores 0" if library_copies == "zero" else ""
    warned = "; ".join([*outcome.warnings, *(use.message + zero for use in outcome.library_uses)])
    if outcome.limit_hit:
        return "timeout", (f"the notebook ran past the {notebook_timeout:g} s limit for a whole notebook and was"
                           f" stopped{where}; no points")
    if outcome.success and outcome.environment:
        return "error", ("the grading environment failed, not the answer: "
                         + "; ".join(f.message for f in outcome.environment) + "; no points")
    if outcome.success:
        if outcome.timed_out:
            message = (f"{', '.join(outcome.timed_out)} ran past the {timeout:g} s limit per cell and was interrupted;"
                       " the other cells were graded")
            return "timeout", message + (f"; {warned}" if warned else "")
        if warned:
            return "graded-with-warnings", warned
        return "graded", ""
    text = outcome.log + "\n" + (outcome.error or "")
    if "DeadKernelError" in text or "Kernel died" in text:
        return "kernel-died", f"the kernel died{where} (the code ended the process or ran out of memory); no points"
    if "CellTimeoutError" in text or "Timeout waiting for" in text:
        return "timeout", (f"{cell} ran past the {timeout:g} s limit per cell and did not stop when"
                           " interrupted; the notebook was stopped, no points")
    return "error", f"nbgrader could not grade it: {outcome.reason}"


def _clean_scores(scores: Mapping[str, Any], max_scores: Mapping[str, float]) -> dict[str, float]:
    """Points per test cell, each within [0, its maximum]; cells the assignment does not have are dropped."""
    clean = {}
    for grade_id, most in max_scores.items():
        try:
            value = float(scores.get(grade_id, 0.0) or 0.0)
        except (TypeError, ValueError):
            value = 0.0
        clean[grade_id] = min(max(value, 0.0), float(most))
    return clean


def _take_outcome(grade: StudentGrade, outcome: GradingOutcome, max_scores: Mapping[str, float],
                  parts: Mapping[str, Part], settings: GradingSettings) -> None:
    """Fill a student's grade from the outcome of grading them: status, message, points, times.

    With ``settings.library_copies == "zero"``, the test cells of each part whose ``course_lib``
    implementation the answer uses score 0.
    """
    grade.status, grade.message = classify(outcome, settings.timeout, settings.notebook_timeout,
                                           settings.library_copies)
    grade.seconds = outcome.seconds
    grade.phases = {k: round(v, 2) for k, v in outcome.phases.items()} or None
    if grade.status in WITH_POINTS and outcome.success and not outcome.limit_hit:
        grade.scores = _clean_scores(outcome.scores, max_scores)
        if settings.library_copies == "zero":
            for use in outcome.library_uses:
                for grade_id in parts[use.part].test_ids if use.part in parts else []:
                    grade.scores[grade_id] = 0.0
        grade.total = float(sum(grade.scores.values()))
    else:
        grade.scores, grade.total = None, None


# --------------------------------------------------------------------------- the output folder


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_grades_csv(grades: ClassGrades, path: str | Path | None = None) -> Path:
    """Write ``grades.csv`` atomically: student, status, points per part, total, max, message.

    Points are empty (not 0) for a student with nothing graded.
    """
    import csv
    import io

    path = Path(path) if path is not None else grades.csv
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "status", *grades.parts, "total", "max", "message"])
    for name, grade in sorted(grades.students.items()):
        parts = grades.part_scores(name)
        message = grade.message
        if grades.roster and name not in grades.roster:
            message = "; ".join(filter(None, ["not in the roster", message]))
        writer.writerow([name, grade.status, *(_number(parts[p]) if parts else "" for p in grades.parts),
                         _number(grade.total), _number(grades.max_total), " ".join(message.split())])
    return atomic_write(path, buffer.getvalue())


def read_grades_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """``{student: {column: text}}`` of a ``grades.csv``."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _write_feedback(grades: ClassGrades, grade: StudentGrade, outcome: GradingOutcome | None,
                    settings: GradingSettings, hidden: set[str]) -> None:
    """Replace a student's feedback pages: for a graded submission, the course's page of each notebook
    (:func:`course_lib.instructor.feedback.graded_page`: no hidden test shown), or nbgrader's own with
    ``feedback="full"``; else a page giving the status (none for a missing student)."""
    for name in grades.notebooks:
        grades.feedback_page(grade.student, name).unlink(missing_ok=True)
    grade.feedback = None
    if grade.status == "missing":
        return
    first = grades.feedback_page(grade.student, grades.notebooks[0])
    pages: dict[str, str] = {}
    if grade.graded and outcome is not None:
        if settings.feedback == "full":
            pages = {name: Path(path).read_text(encoding="utf-8") for name, path in outcome.feedback.items()}
        else:
            zero = settings.library_copies == "zero"
            notes = {use.part: use.message + "; it scores 0" for use in outcome.library_uses} if zero else {}
            pages = {name: graded_page(path, assignment=grades.assignment, student=grade.student, notebook=name,
                                       status=grade.status, message=grade.message, total=grade.total or 0.0,
                                       max_total=grades.max_total, scores=grade.scores or {},
                                       max_scores=grades.max_scores, parts=grades.parts, hidden=hidden,
                                       timeout=settings.timeout, notes=notes)
                     for name, path in outcome.autograded.items()}
    if pages:
        for name, page in pages.items():
            target = grades.feedback_page(grade.student, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(page, encoding="utf-8")
    else:
        if grade.graded:
            grade.message = "; ".join(filter(None, [grade.message, "no feedback page was written"]))
        first.parent.mkdir(parents=True, exist_ok=True)
        first.write_text(status_page(grade.student, grades.assignment, grade.status, grade.message, grade.files),
                         encoding="utf-8")
    grade.feedback = first.relative_to(grades.out).as_posix()


def _store_in_course(grades: ClassGrades, grade: StudentGrade, outcome: GradingOutcome | None,
                     files: Mapping[str, str | Path]) -> None:
    """Put one student's grade into the course directory: submitted and autograded notebooks, gradebook rows."""
    from nbgrader.api import Gradebook, MissingEntry

    course, assignment, student = grades.course_dir, grades.assignment, grade.student
    for folder in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course / folder / student / assignment, ignore_errors=True)
    for name, path in files.items():
        target = course / "submitted" / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / name)
    with quiet_gradebook(), Gradebook(gradebook_url(course / "gradebook.db")) as gb:
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
        if grade.scores is None or outcome is None:
            return
        gb.update_or_create_student(student)
        submission = gb.add_submission(assignment, student)
        for notebook in submission.notebooks:
            for cell in notebook.grades:
                cell.auto_score = float(grade.scores.get(cell.name, 0.0))
                cell.manual_score = None
                cell.needs_manual_grade = False
        gb.db.commit()
    for kind, copies in (("autograded", outcome.autograded), ("feedback", outcome.feedback)):
        for name, path in copies.items():
            target = course / kind / student / assignment
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / (name if kind == "autograded" else Path(name).stem + ".html"))


@contextmanager
def _output_folder(out: Path) -> Iterator[None]:
    """Hold ``out`` for one run: refuse a folder that ``course grade`` did not write, or one that another run holds."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the output of `course grade` is a folder")
    ours = (out / STATE_FILE).is_file() or (out / REFERENCE_DIR / SELFCHECK_FILE).is_file()
    if out.exists() and any(p.name != LOCK_FILE for p in out.iterdir()) and not ours:
        raise ValueError(f"{out} is not empty and was not written by `course grade`; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK_FILE)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise ValueError(f"another `course grade` is writing into {out}") from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- the steps


def _digest_tree(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _generate(assignment: Assignment, template: Path) -> dict[str, float]:
    """Have nbgrader generate the assignment in the course directory ``template``; returns its test cells' points."""
    install_source(template, assignment.source, assignment.name)
    generate_assignment(nbgrader_api(template), assignment.name, f"{assignment.name} from {assignment.source}")
    return gradebook_max_scores(template / "gradebook.db", assignment.name, assignment.notebook_names)


def _earlier_state(out: Path, template: Path, assignment: Assignment,
                   settings: GradingSettings) -> tuple[GradingState, bool]:
    """The state of ``out`` to go on from, and whether it is the last run's: the same assignment in the same
    settings, with its course directory there (then its students' grades may be kept). Writes nothing."""
    state = GradingState(assignment.name, _digest_tree(template / "source" / assignment.name), asdict(settings))
    earlier = GradingState.load(out / STATE_FILE)
    same = (earlier is not None and (earlier.assignment, earlier.source, earlier.settings)
            == (state.assignment, state.source, state.settings) and (out / "course" / "gradebook.db").is_file())
    if same:
        state.students = earlier.students
    return state, same


def _open_course(out: Path, template: Path, same: bool) -> None:
    """Keep ``out/course/`` from the last run (``same``), else make it anew from ``template``."""
    course = out / "course"
    if same:
        return
    if course.exists():
        shutil.rmtree(course)
    shutil.copytree(template, course)


def _sort_out(found: Discovery, grades: ClassGrades, earlier: Mapping[str, StudentGrade],
              force: bool) -> list[Submission]:
    """Give each student a grade in ``grades``: a status found before grading, the grade of the last run when the
    submission did not change (unless ``force``), else a placeholder; returns the submissions to grade."""
    todo = []
    for student, sub in found.submissions.items():
        if sub.problem is None:
            problems = [f"{name}: {why}" if len(grades.notebooks) > 1 else why
                        for name, path in sub.files.items() if (why := notebook_problem(path))]
            if problems:
                sub.problem, sub.message = "not-a-notebook", "; ".join(problems)
        if sub.problem is not None:
            grades.students[student] = StudentGrade(student, sub.problem, message=sub.message, files=sub.found)
            continue
        digest = sub.digest()
        last = earlier.get(student)
        if (not force and last is not None and last.digest == digest and last.status != "error"
                and (last.feedback is None or (grades.out / last.feedback).is_file())):
            grades.students[student] = last
            continue
        grades.students[student] = StudentGrade(student, "error", digest=digest, files=sub.found,
                                                message="not graded (the run was interrupted)")
        todo.append(sub)
    return todo


def _job(student: str, files: Mapping[str, str | Path], result: Path, assignment: Assignment, template: Path,
         settings: GradingSettings) -> GradingJob:
    """The job of grading one student's ``files`` (or the reference answer's), with a private course folder and
    gradebook folder of its own.

    The private folders lie outside the run's folder, so that a student's code finds neither
    the template (which holds the answers) nor the other students' submissions.
    """
    return GradingJob(student=student, assignment=assignment.name, template=str(template),
                      workdir=tempfile.mkdtemp(prefix="course-grade-"),
                      dbdir=tempfile.mkdtemp(prefix="course-gradebook-"),
                      files={name: str(Path(path).resolve()) for name, path in files.items()},
                      notebooks=assignment.notebook_names, result=str(result), profile=settings.profile,
                      timeout=settings.timeout, notebook_timeout=settings.notebook_timeout,
                      library=assignment.library, nbgrader_feedback=settings.feedback == "full")


def _self_check(assignment: Assignment, template: Path, settings: GradingSettings, pool: GradingPool, run_dir: Path,
                out: Path, max_scores: Mapping[str, float]) -> SelfCheck:
    """Grade the reference answer as a student is graded; write ``out/reference/`` (its autograded notebooks and
    ``selfcheck.json``). Returns the check when it scored full marks with status ``graded``; raises
    :class:`SelfCheckError` naming each failing cell otherwise."""
    folder = run_dir / REFERENCE_DIR
    folder.mkdir()
    files = {}
    for name in assignment.notebook_names:
        released = json.loads((template / "release" / assignment.name / name).read_text(encoding="utf-8"))
        solution = json.loads((template / "source" / assignment.name / name).read_text(encoding="utf-8"))
        files[name] = folder / name
        files[name].write_text(json.dumps(reference_answer(released, solution), indent=1), encoding="utf-8")
    job = _job(REFERENCE_STUDENT, files, folder / "result.json", assignment, template, settings)
    try:
        outcomes = [outcome for _, outcome in pool.grade([job])]
        outcome = outcomes[0] if outcomes else GradingOutcome.crash(REFERENCE_STUDENT, "the reference was not graded")
        grade = StudentGrade(REFERENCE_STUDENT, "error")
        _take_outcome(grade, outcome, max_scores, assignment.parts, settings)
        target = out / REFERENCE_DIR
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        errors: dict[str, str] = {}
        for name, path in outcome.autograded.items():
            shutil.copyfile(path, target / name)
            errors.update(cell_errors(path))
    finally:
        job.remove_folders()
    failures = {}
    for grade_id, most in max_scores.items():
        got = None if grade.scores is None else grade.scores.get(grade_id, 0.0)
        if got is not None and got < most:
            failures[grade_id] = errors.get(grade_id, f"no error shown, but it scored {got:g} of {most:g}")
    for failure in outcome.environment:
        failures[failure.cell] = f"{failure.reason}: {failure.error}"
    for use in outcome.library_uses:
        failures[use.cell] = use.message
    check = SelfCheck(passed=grade.status == "graded" and not failures and grade.total == sum(max_scores.values()),
                      status=grade.status, message=grade.message, total=grade.total,
                      max_total=float(sum(max_scores.values())), failures=failures, seconds=outcome.seconds)
    atomic_write(target / SELFCHECK_FILE, check.to_json())
    if not check.passed:
        raise SelfCheckError(check, target)
    return check


def _grade(assignment: Assignment, found: Discovery, out: Path, settings: GradingSettings, run_dir: Path, *,
           jobs: int | None, force: bool, roster: list[str], log: Callable[[str], Any]) -> ClassGrades:
    """Grade the students ``found`` into the output folder ``out`` (held by the caller); see the module's steps."""
    template = run_dir / "template"
    max_scores = _generate(assignment, template)
    state, same = _earlier_state(out, template, assignment, settings)
    grades = ClassGrades(assignment.name, assignment.notebook_names, out, assignment.parts, max_scores,
                         layout=found.layout, ignored=found.ignored, roster=roster)
    todo = _sort_out(found, grades, state.students, force)
    hidden = hidden_test_lines(assignment.notebooks)
    processes = max(1, int(jobs or os.cpu_count() or 1))
    todo_jobs = [_job(sub.student, sub.files, run_dir / f"{sub.student}.result.json", assignment, template, settings)
                 for sub in todo]
    try:
        with GradingPool(min(processes, max(1, len(todo_jobs))), run_dir) as pool:
            if todo_jobs:
                log(f"self-check: grading the reference answer of {assignment.name} (the released exercise with the"
                    " solution's answers) before anyone")
                grades.reference = _self_check(assignment, template, settings, pool, run_dir, out, max_scores)
                log(f"self-check: full marks ({grades.reference.total:g}/{grades.max_total:g})"
                    f" in {grades.reference.seconds or 0:.1f} s")
            _open_course(out, template, same)
            grades.dropped = sorted(set(state.students) - set(found.submissions))
            for student in grades.dropped:
                del state.students[student]
            for grade in grades.students.values():
                if grade.status in NOT_GRADED:
                    _store_in_course(grades, grade, None, {})
                    _write_feedback(grades, grade, None, settings, hidden)
                    state.students.pop(grade.student, None)
            state.save(out / STATE_FILE)
            log(f"grading {len(todo)} of {len(found.submissions)} student(s) of {assignment.name} with"
                f" {processes} job(s) (per cell {settings.timeout:g} s, per notebook {settings.notebook_timeout:g} s,"
                f" profile {settings.profile})")
            for n, (job, outcome) in enumerate(pool.grade(todo_jobs), start=1):
                grade = grades.students[job.student]
                _take_outcome(grade, outcome, max_scores, assignment.parts, settings)
                _store_in_course(grades, grade, outcome, job.files)
                _write_feedback(grades, grade, outcome, settings, hidden)
                job.remove_folders()
                state.students[grade.student] = grade
                state.save(out / STATE_FILE)
                points = f"{grade.total:g}/{grades.max_total:g}" if grade.total is not None else "no points"
                seconds = f" in {grade.seconds:.1f} s" if grade.seconds is not None else ""
                log(f"[{n}/{len(todo_jobs)}] {grade.student}: {grade.status}, {points}{seconds}"
                    + (f" ({grade.message})" if grade.message else ""))
    finally:
        for job in todo_jobs:
            job.remove_folders()
    write_grades_csv(grades)
    return grades


# --------------------------------------------------------------------------- the entry points


def resolve_assignment(name: str | Path, solutions_dir: str | Path = "solutions") -> Path:
    """The source of an assignment: a notebook or folder path, else ``solutions/<name>.ipynb``, else a unique prefix.

    ``01`` finds ``solutions/01_likelihood_models.ipynb``. Raises FileNotFoundError naming the candidates.
    """
    path = Path(name)
    if path.exists() and (path.suffix == ".ipynb" or path.is_dir()):
        return path
    solutions_dir = Path(solutions_dir)
    exact = solutions_dir / f"{name}.ipynb"
    if exact.is_file():
        return exact
    found = sorted(solutions_dir.glob(f"{name}*.ipynb")) if solutions_dir.is_dir() and "/" not in str(name) else []
    if len(found) == 1:
        return found[0]
    known = ", ".join(p.stem for p in sorted(solutions_dir.glob("*.ipynb"))) if solutions_dir.is_dir() else ""
    what = "is ambiguous" if found else "is not an assignment"
    raise FileNotFoundError(f"{name!r} {what}: expected a solution notebook, or one of: {known or '(none)'}")


def grade_class(
    source: str | Path,
    submissions: str | Path,
    out: str | Path,
    *,
    roster: str | Path | list[str] | None = None,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT,
    force: bool = False,
    profile: str = "smoke",
    feedback: str = "summary",
    library_copies: str = "warn",
    log: Callable[[str], Any] | None = print,
) -> ClassGrades:
    """Grade a class's submissions of one assignment; write ``grades.csv`` and the feedback into ``out``.

    ``source`` is the assignment's solution notebook (or a folder of source notebooks).
    ``submissions`` is a folder or ``.zip`` in any layout of :mod:`course_lib.instructor.submissions`;
    it is only read. ``roster`` (a file of student ids, or a list) adds a ``missing`` row
    for each student without a submission. ``jobs`` students are graded at a time
    (default: the number of cores); each cell may run ``timeout`` seconds and each
    notebook ``notebook_timeout`` seconds, in ``profile``. Students whose submission did
    not change since the last run into ``out`` keep their row unless ``force``.
    ``feedback`` is ``"summary"`` (the course's pages, no test code shown) or ``"full"``
    (nbgrader's pages, hidden tests included); ``library_copies`` is ``"warn"`` (a part whose
    ``course_lib`` implementation the answer uses is named in the message) or ``"zero"``
    (that part also scores 0).

    ``out`` receives ``grades.csv``, ``feedback/<student>.html`` (a page of points and
    messages, or a page giving the status when nothing was graded), ``course/`` (the
    nbgrader course directory with ``gradebook.db``), ``state.json`` (what was graded, for
    re-runs) and ``reference/`` (the self-check: the autograded reference answer and
    ``selfcheck.json``). ``log`` gets a line for the self-check and one per student as they
    finish (None: silent).

    Raises FileNotFoundError/ValueError for unusable arguments (before anything is
    graded), :class:`SelfCheckError` (a RuntimeError) when the reference answer does not
    score full marks (then only ``reference/`` is written, and no student is graded), and
    RuntimeError when nbgrader cannot generate the assignment.
    """
    started = time.monotonic()
    assignment = Assignment.from_source(source)
    settings = GradingSettings(profile, timeout, notebook_timeout, feedback, library_copies)
    submissions, out = Path(submissions), Path(out)
    if not submissions.exists():
        raise FileNotFoundError(f"no submissions at {submissions}")
    sub_real, out_real = submissions.resolve(), out.resolve()
    if out_real == sub_real or out_real.is_relative_to(sub_real) or sub_real.is_relative_to(out_real):
        raise ValueError(f"the output folder {out} and the submissions {submissions} must not contain each other:"
                         " the submissions are never written to")
    roster_ids = read_roster(roster) if isinstance(roster, str | Path) else list(roster or [])
    with _output_folder(out), tempfile.TemporaryDirectory(prefix="course-grade-run-") as run_dir:
        found = discover(submissions, assignment.name, assignment.notebook_names, roster_ids, run_dir)
        grades = _grade(assignment, found, out, settings, Path(run_dir), jobs=jobs, force=force, roster=roster_ids,
                        log=log or (lambda _: None))
    grades.seconds = time.monotonic() - started
    return grades


def _named_submission(student: str, path: Path, assignment: Assignment) -> Submission:
    """The :class:`Submission` of a student's notebook, or of a folder holding the assignment's notebooks."""
    check_student_id(student)
    if not path.exists():
        raise FileNotFoundError(f"no submission at {path} (student {student!r})")
    if path.is_file():
        if len(assignment.notebooks) != 1:
            raise ValueError(f"{path}: one notebook was submitted, but the assignment has {len(assignment.notebooks)};"
                             " submit a folder holding them")
        return Submission(student, {assignment.notebook_names[0]: path}, found=[str(path)])
    files = {name: path / name for name in assignment.notebook_names if (path / name).is_file()}
    if not files:
        return Submission(student, problem="not-a-notebook", found=[str(path)],
                          message=f"no notebook named {', '.join(assignment.notebook_names)} in {path}")
    return Submission(student, files, found=[str(p) for p in files.values()])


def autograde(
    source: str | Path,
    submissions: Mapping[str, str | Path],
    out: str | Path | None = None,
    *,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT,
    profile: str = "smoke",
    feedback: str = "summary",
    library_copies: str = "warn",
) -> ClassGrades:
    """Grade each named student's submission of one assignment, exactly as ``course grade`` grades a class.

    ``source`` is a solution notebook (the assignment is named after its stem) or a folder of
    source notebooks (named after the folder). ``submissions`` maps a student id to the
    submitted ``.ipynb`` (any file name: it is graded under the assignment's) or to a folder
    holding the assignment's notebooks. ``out`` receives what :func:`grade_class` writes
    (``grades.csv``, ``feedback/``, and ``course/``, which keeps the autograded notebooks:
    :meth:`ClassGrades.autograded_notebook`); None grades in a temporary folder that is
    removed afterwards. Every submission is graded, changed or not, after the self-check
    (the reference answer graded first, see :func:`grade_class`, whose ``feedback`` and
    ``library_copies`` these are).

    Raises FileNotFoundError for a submission that does not exist and ValueError for an
    unusable student id, before anything is graded; :class:`SelfCheckError` when the
    reference answer does not score full marks.
    """
    started = time.monotonic()
    assignment = Assignment.from_source(source)
    settings = GradingSettings(profile, timeout, notebook_timeout, feedback, library_copies)
    given = {student: _named_submission(student, Path(path), assignment) for student, path in submissions.items()}
    given_out = out is not None
    with ExitStack() as stack:
        out = Path(out if out is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="course-grade-")))
        stack.enter_context(_output_folder(out))
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="course-grade-run-")))
        try:
            grades = _grade(assignment, Discovery(given, layout="named"), out, settings, run_dir, jobs=jobs,
                            force=True, roster=[], log=lambda _: None)
        except SelfCheckError as exc:
            if not given_out:
                raise SelfCheckError(exc.check) from None  # its folder is about to go
            raise
    grades.seconds = time.monotonic() - started
    return grades
