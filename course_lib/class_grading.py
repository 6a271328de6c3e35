"""Grading a whole class: the ``course grade`` command.

:func:`grade_class` (the ``course grade`` command) takes what an LMS or JupyterHub gives
an instructor (see :mod:`course_lib.submissions`) and writes ``grades.csv`` and one
feedback page per student into an output folder. It builds the nbgrader course directory
``<out>/course/`` itself (the solution as source, ``gradebook.db``, and each student's
submitted and autograded notebooks), then grades several students at a time (``jobs``
grading processes, each running nbgrader for one student after another), every notebook
in a kernel of its own, in a private temporary copy of the course directory that holds
nothing but the assignment's data files and that one submission; the scores are merged
into the course's gradebook afterwards. Each cell may run ``timeout`` seconds (nbgrader
interrupts it and goes on with the next cell), the whole notebook ``notebook_timeout``
seconds (then its kernel is stopped). Every student gets one status (:data:`STATUSES`), so that a
submission that could not be graded never looks like a real zero. A second run re-grades
only the submissions that changed (``force`` re-grades all), and nothing is ever written
into the submissions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.grading import (
    STUDENT_ID,
    Part,
    StudentGrade,
    gradebook_max_scores,
    gradebook_scores,
    install_source,
    part_scores,
    parts_of,
    source_notebooks,
    thread_env,
)
from course_lib.notebooks import kernel_environment
from course_lib.release import nbgrader_api

STATUSES = ("graded", "graded-with-warnings", "timeout", "kernel-died", "not-a-notebook", "missing", "duplicate",
            "error")
"""What happened to one student's submission, as the ``status`` column of ``grades.csv`` says:

``graded``                the notebook ran to the end and every test cell was scored;
``graded-with-warnings``  likewise, but the submission was tampered with or damaged: a locked
                          cell edited or a graded cell deleted (the original was put back and
                          graded), a cell duplicated...; the ``message`` says what;
``timeout``               a cell ran past the per-cell limit and was interrupted (the other cells
                          were graded and the points are real), or the notebook could not be
                          stopped or ran past the whole-notebook limit (no points);
``kernel-died``           the notebook's kernel died (e.g. ``os._exit`` or out of memory): no points;
``not-a-notebook``        the file is not a readable notebook (truncated JSON...), or no notebook
                          was submitted: no points;
``missing``               a student of the roster submitted nothing;
``duplicate``             several notebooks for one student: none is guessed at, none graded;
``error``                 the grader itself could not grade the submission (see the message).
"""

WITH_POINTS = ("graded", "graded-with-warnings", "timeout")
"""Statuses whose row may carry points (``timeout`` only when the notebook ran to its end)."""

DEFAULT_TIMEOUT = 120.0
"""Seconds one cell may run before it is interrupted."""

DEFAULT_NOTEBOOK_TIMEOUT = 600.0
"""Seconds one student's whole notebook may run before its kernel is stopped."""

STATE_FILE = "state.json"
GRADES_FILE = "grades.csv"
_STATE_FORMAT = 1
_WORKER_GRACE = 120.0
"""Seconds the grading of one student may run past the whole-notebook limit before its grading process is killed."""


@dataclass
class StudentRow:
    """One row of ``grades.csv``: a student's status, points per test cell and total, and a message."""

    student: str
    status: str
    scores: dict[str, float] | None = None
    """Points per test cell (grade id); None where nothing was graded."""
    total: float | None = None
    message: str = ""
    seconds: float | None = None
    digest: str | None = None
    """SHA-256 of the submitted notebooks, to re-grade only what changed."""
    files: list[str] = field(default_factory=list)
    feedback: str | None = None
    """The feedback page, relative to the output folder."""
    regraded: bool = True
    """False when the row was kept from an earlier run because the submission did not change."""
    phases: dict[str, float] | None = None
    """Seconds spent starting the grading process, setting up, autograding and writing feedback."""

    _KEYS = ("status", "scores", "total", "message", "seconds", "digest", "feedback", "phases")

    def to_state(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in (*self._KEYS, "files")}

    @classmethod
    def from_state(cls, student: str, data: Mapping[str, Any]) -> StudentRow:
        return cls(student, regraded=False, files=list(data.get("files") or []),
                   **{key: data.get(key) for key in cls._KEYS})


@dataclass
class ClassGrades:
    """The outcome of :func:`grade_class`: one :class:`StudentRow` per student, and where things went."""

    assignment: str
    out: Path
    parts: dict[str, Part]
    max_scores: dict[str, float]
    rows: dict[str, StudentRow]
    layout: str = ""
    ignored: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Students graded by an earlier run who are no longer among the submissions (kept in the gradebook)."""
    roster: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def max_total(self) -> float:
        return float(sum(self.max_scores.values()))

    @property
    def csv(self) -> Path:
        return self.out / GRADES_FILE

    @property
    def course_dir(self) -> Path:
        return self.out / "course"

    def counts(self) -> dict[str, int]:
        """Students per status, in the order of :data:`STATUSES` (statuses nobody has are left out)."""
        counts = {status: 0 for status in STATUSES}
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        return {status: n for status, n in counts.items() if n}

    @property
    def errors(self) -> list[str]:
        """Students whose submission the grader itself failed on (status ``error``)."""
        return [name for name, row in self.rows.items() if row.status == "error"]

    def part_scores(self, student: str) -> dict[str, float] | None:
        row = self.rows[student]
        return None if row.scores is None else part_scores(row.scores, self.parts)

    def summary(self) -> str:
        """A few lines for the terminal: students per status, the mean total, where the results are."""
        lines = [f"{self.assignment}: {len(self.rows)} student(s) in {self.seconds:.1f} s"]
        width = max((len(s) for s in STATUSES), default=10)
        for status, n in self.counts().items():
            lines.append(f"  {status:<{width}}  {n}")
        totals = [row.total for row in self.rows.values() if row.total is not None]
        if totals:
            mean = sum(totals) / len(totals)
            lines.append(f"  mean total {mean:.2f} / {self.max_total:g} over {len(totals)} student(s) with points")
        kept = [name for name, row in self.rows.items() if not row.regraded and row.digest is not None]
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


# --------------------------------------------------------------------------- checks of a submission


def _meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader") or {}


def _text(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


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
        elif meta.get("locked") and not meta.get("solution") and _text(mine).rstrip() != _text(cell).rstrip():
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


def _cell_label(cell: Mapping[str, Any], index: int) -> str:
    return _meta(cell).get("grade_id") or f"cell {index}"


def timed_out_cells(notebook: str | Path | Mapping[str, Any]) -> list[str]:
    """The cells of an autograded notebook that ran past the per-cell limit (grade id, else ``cell <i>``)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, str | Path) else notebook
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if any(out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError"
               for out in cell.get("outputs", [])):
            found.append(_cell_label(cell, i))
    return found


# --------------------------------------------------------------------------- one student, in a grading process


def _tree(pid: int) -> list[Any]:
    """The process ``pid`` (when it still runs) and all its descendants, as psutil processes."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _kill(processes: list[Any]) -> None:
    import psutil

    for proc in processes:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)


def _grade_one(job: Mapping[str, Any]) -> dict[str, Any]:
    """Autograde one student in the private course directory ``job["workdir"]``; returns what happened.

    Runs in a grading process (see :func:`_worker_loop`): sets up a course in the
    working folder with the assignment's data files and the submission only (the gradebook,
    holding just the assignment, goes to ``job["dbdir"]``), compares the submission with
    the released exercise (:func:`submission_warnings`), runs nbgrader's autograder with the
    per-cell timeout and, from a watchdog thread, stops the kernel when the whole-notebook
    limit is reached, then reads the scores and has nbgrader write the feedback.
    """
    import threading

    import nbformat

    start = time.monotonic()
    assignment, student = job["assignment"], job["student"]
    notebooks = [Path(name) for name in job["notebooks"]]
    root, template = Path(job["workdir"]), Path(job["template"])
    # the private course: the assignment's data files (not its notebooks, which hold the answers) and the
    # submission; the gradebook lies in a folder of its own, away from where nbgrader usually keeps it
    shutil.copytree(template / "source", root / "source", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.ipynb"))
    gradebook = Path(job["dbdir"]) / "gradebook.db"
    shutil.copyfile(template / "gradebook.db", gradebook)
    target = root / "submitted" / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    for name, path in job["files"].items():
        shutil.copyfile(path, target / name)
    released = {nb.name: json.loads((template / "release" / assignment / nb.name).read_text(encoding="utf-8"))
                for nb in notebooks}
    warnings_found = []
    for name, path in job["files"].items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            submitted = nbformat.reads(Path(path).read_text(encoding="utf-8"), as_version=4)  # older ones upgraded
        prefix = f"{name}: " if len(notebooks) > 1 else ""
        warnings_found += [prefix + w for w in submission_warnings(released[name], submitted)]
    for nb in notebooks:
        if nb.name not in job["files"]:
            warnings_found.append(f"{nb.name} was not submitted (its tests score 0)")

    running: dict[str, Any] = {}

    def on_cell_start(cell, cell_index, **_):
        if cell.get("cell_type") == "code":
            running["cell"] = _cell_label(cell, cell_index)

    api = nbgrader_api(root, Execute={"timeout": max(1, int(round(job["timeout"]))), "interrupt_on_timeout": True,
                                      "raise_on_iopub_timeout": True, "on_cell_start": on_cell_start},
                       OverwriteCells={"add_missing_cells": True}, CourseDirectory={"db_url": f"sqlite:///{gradebook}"})
    done, limit_hit = threading.Event(), threading.Event()

    def watchdog() -> None:
        if not done.wait(job["notebook_timeout"]):
            limit_hit.set()
            _kill(_tree(os.getpid())[1:])  # the kernel (and whatever it started); this process goes on

    extra = thread_env(job.get("threads"))
    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    phases = {"setup": time.monotonic() - start}
    try:
        with kernel_environment(job["profile"], **extra), warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="nbgrader.api")
            outcome = api.autograde(assignment, student, force=True, create=True)
    finally:
        done.set()
    phases["autograde"] = time.monotonic() - start - phases["setup"]
    success = bool(outcome.get("success"))
    result: dict[str, Any] = {
        "student": student, "success": success, "scores": {}, "warnings": warnings_found,
        "limit_hit": limit_hit.is_set(), "last_cell": running.get("cell"), "timed_out": [],
        "error": None if success else (outcome.get("error") or "").strip(),
        "log": (outcome.get("log") or "")[-20000:], "autograded": {}, "feedback": {},
    }
    if success and not limit_hit.is_set():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="nbgrader.api")
            result["scores"] = gradebook_scores(api, assignment, notebooks, student)
        for nb in notebooks:
            graded = root / "autograded" / student / assignment / nb.name
            if graded.is_file() and not graded.is_symlink():
                result["autograded"][nb.name] = str(graded)
                result["timed_out"] += timed_out_cells(graded)
        feedback = api.generate_feedback(assignment, student, force=True)
        for nb in notebooks:
            page = root / "feedback" / student / assignment / (nb.stem + ".html")
            if feedback.get("success") and page.is_file() and not page.is_symlink():
                result["feedback"][nb.name] = str(page)
    result["seconds"] = time.monotonic() - start
    phases["feedback"] = result["seconds"] - phases["setup"] - phases["autograde"]
    result["phases"] = phases
    return result


def _worker_loop() -> int:
    """Main loop of a grading process: grade each job whose file is named on a line of stdin, until EOF.

    The result of each job is written, atomically, to ``job["result"]``. The process holds no
    student's code: every notebook runs in a kernel of its own, which is gone when its result
    is written; importing nbgrader once serves many students.
    """
    import sys
    import traceback

    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        job = json.loads(Path(line.strip()).read_text(encoding="utf-8"))
        try:
            result = _grade_one(job)
        except Exception:  # noqa: BLE001 -- reported as this student's grader failure; the next one goes on
            result = {"student": job["student"], "success": False, "crashed": True, "warnings": [], "log": "",
                      "error": traceback.format_exc()}
        if job.get("sent") is not None and result.get("seconds") is not None:
            waited = time.time() - job["sent"] - result["seconds"]  # this process's start, for its first job
            result.setdefault("phases", {})["start"] = round(max(0.0, waited), 3)
        tmp = Path(job["result"]).with_suffix(".tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        tmp.replace(job["result"])
        print(f"graded {job['student']}", flush=True)


def _classify(result: Mapping[str, Any], timeout: float, notebook_timeout: float) -> tuple[str, str]:
    """The status of one graded submission and its one-line message, from what its grading process saw."""
    where = f" in {result['last_cell']}" if result.get("last_cell") else ""
    cell = result.get("last_cell") or "a cell"
    warned = "; ".join(result.get("warnings") or [])
    if result.get("limit_hit"):
        return "timeout", (f"the notebook ran past the {notebook_timeout:g} s limit for a whole notebook and was"
                           f" stopped{where}; no points")
    if result.get("success"):
        timed_out = result.get("timed_out") or []
        if timed_out:
            message = (f"{', '.join(timed_out)} ran past the {timeout:g} s limit per cell and was interrupted;"
                       " the other cells were graded")
            return "timeout", message + (f"; {warned}" if warned else "")
        if result.get("warnings"):
            return "graded-with-warnings", warned
        return "graded", ""
    text = (result.get("log") or "") + "\n" + (result.get("error") or "")
    if "DeadKernelError" in text or "Kernel died" in text:
        return "kernel-died", f"the kernel died{where} (the code ended the process or ran out of memory); no points"
    if "CellTimeoutError" in text or "Timeout waiting for" in text:
        return "timeout", (f"{cell} ran past the {timeout:g} s limit per cell and did not stop when"
                           " interrupted; the notebook was stopped, no points")
    grade = StudentGrade(result["student"], False, {}, {}, None, 0.0, 0.0, result.get("error"), result.get("log", ""))
    return "error", f"nbgrader could not grade it: {grade.reason}"


# --------------------------------------------------------------------------- the class


def _digest_tree(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


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
    for name, row in sorted(grades.rows.items()):
        parts = grades.part_scores(name)
        message = row.message
        if grades.roster and name not in grades.roster:
            message = "; ".join(filter(None, ["not in the roster", message]))
        writer.writerow([name, row.status, *(_number(parts[p]) if parts else "" for p in grades.parts),
                         _number(row.total), _number(grades.max_total), " ".join(message.split())])
    _atomic_write(path, buffer.getvalue())
    return path


def read_grades_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """``{student: {column: text}}`` of a ``grades.csv``."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _status_page(student: str, assignment: str, status: str, message: str, files: list[str]) -> str:
    """A small feedback page for a submission that nbgrader did not grade."""
    from html import escape

    listing = "".join(f"<li><code>{escape(f)}</code></li>" for f in files)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(assignment)}: {escape(student)}"
            f"</title></head>\n<body>\n<h1>{escape(assignment)}: {escape(student)}</h1>\n"
            f"<p>Status: <strong>{escape(status)}</strong></p>\n<p>{escape(message)}</p>\n"
            + (f"<p>Files received:</p><ul>{listing}</ul>\n" if listing else "")
            + "</body></html>\n")


class _Lock:
    """An exclusive lock on the output folder, so that two runs never write into it at once."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "w")
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no fcntl (Windows): no lock
            pass
        except OSError:
            self.fh.close()
            raise ValueError(f"another `course grade` is writing into {self.path.parent}") from None
        return self

    def __exit__(self, *exc):
        self.fh.close()


def _store_in_course(course: Path, assignment: str, student: str, row: StudentRow, result: Mapping[str, Any] | None,
                     files: Mapping[str, Path], max_scores: Mapping[str, float]) -> None:
    """Put one student's outcome into the course directory: submitted and autograded notebooks, gradebook rows."""
    from nbgrader.api import Gradebook, MissingEntry

    for folder in ("submitted", "autograded"):
        target = course / folder / student / assignment
        if target.exists():
            shutil.rmtree(target)
    feedback = course / "feedback" / student / assignment
    if feedback.exists():
        shutil.rmtree(feedback)
    if files:
        target = course / "submitted" / student / assignment
        target.mkdir(parents=True)
        for name, path in files.items():
            shutil.copyfile(path, target / name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader.api")
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            try:
                gb.remove_submission(assignment, student)
            except MissingEntry:
                pass
            if row.scores is None or result is None:
                return
            gb.update_or_create_student(student)
            submission = gb.add_submission(assignment, student)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.auto_score = float(row.scores.get(grade.name, 0.0))
                    grade.manual_score = None
                    grade.needs_manual_grade = False
            gb.db.commit()
    target = course / "autograded" / student / assignment
    for name, path in (result.get("autograded") or {}).items():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / name)
    for name, path in (result.get("feedback") or {}).items():
        feedback.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, feedback / (Path(name).stem + ".html"))


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


class _Grader:
    """A grading process of :func:`_worker_loop`, fed one job at a time; started on first use."""

    def __init__(self, run_dir: Path, index: int):
        self.run_dir, self.index = run_dir, index
        self.proc = None
        self.log_path = run_dir / f"grader-{index}.log"

    def _start(self) -> None:
        import subprocess
        import sys

        from course_lib.notebooks import _package_root

        env = dict(os.environ)
        package_root = _package_root()
        if package_root is not None:
            env["PYTHONPATH"] = str(package_root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        quiet = self.run_dir / "cwd"
        quiet.mkdir(exist_ok=True)
        code = "import sys; from course_lib.class_grading import _worker_loop; sys.exit(_worker_loop())"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=quiet, env=env, stdin=subprocess.PIPE,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            _kill(_tree(self.proc.pid))
        if self.proc is not None:
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """Let the process end after its last job (it reads EOF); kill it when it does not."""
        if self.alive():
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 -- a process that will not end is killed
                self.kill()
        self.proc = None

    def grade(self, job: dict[str, Any]) -> dict[str, Any]:
        """Grade one student's job; returns its result, or why there is none (killed past its limit, crashed)."""
        student = job["student"]
        result_path = Path(job["result"])
        job_file = self.run_dir / f"{student}.job.json"
        if not self.alive():
            self._start()
        job = {**job, "sent": time.time()}
        job_file.write_text(json.dumps(job), encoding="utf-8")
        start = time.monotonic()
        limit = job["notebook_timeout"] + _WORKER_GRACE
        try:
            self.proc.stdin.write(f"{job_file}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: reported below
        while not result_path.is_file():
            if not self.alive():
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                code = self.proc.returncode if self.proc is not None else None
                self.proc = None
                return {"student": student, "success": False, "crashed": True, "warnings": [], "log": "",
                        "error": tail or f"the grading process ended with exit status {code}",
                        "seconds": time.monotonic() - start}
            if time.monotonic() - start > limit:
                self.kill()
                return {"student": student, "success": False, "limit_hit": True, "warnings": [],
                        "seconds": time.monotonic() - start}
            time.sleep(0.05)
        result = json.loads(result_path.read_text(encoding="utf-8"))
        result["seconds"] = time.monotonic() - start
        return result


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
    log=print,
) -> ClassGrades:
    """Grade a class's submissions of one assignment; write ``grades.csv`` and the feedback into ``out``.

    ``source`` is the assignment's solution notebook (or a folder of source notebooks).
    ``submissions`` is a folder or ``.zip`` in any layout of :mod:`course_lib.submissions`;
    it is only read. ``roster`` (a file of student ids, or a list) adds a ``missing`` row
    for each student without a submission. ``jobs`` students are graded at a time
    (default: the number of cores); each cell may run ``timeout`` seconds and each
    notebook ``notebook_timeout`` seconds, in ``profile``. Students whose submission did
    not change since the last run into ``out`` keep their row unless ``force``.

    ``out`` receives ``grades.csv``, ``feedback/<student>.html`` (nbgrader's feedback, or a
    page giving the status when nothing was graded), ``course/`` (the nbgrader course
    directory with ``gradebook.db``) and ``state.json`` (what was graded, for re-runs).
    ``log`` gets one line per student as they finish (None: silent).

    Raises FileNotFoundError/ValueError for unusable arguments (before anything is
    graded) and RuntimeError when nbgrader cannot generate the assignment.
    """
    import queue
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from course_lib.submissions import discover, notebook_problem, read_roster

    log = log or (lambda *_: None)
    started = time.monotonic()
    source = Path(source)
    assignment, notebooks = source_notebooks(source)
    if not STUDENT_ID.match(assignment):
        raise ValueError(f"assignment name {assignment!r} should be letters, digits and . _ @ + -")
    parts: dict[str, Part] = {}
    for nb in notebooks:
        parts.update(parts_of(nb))
    submissions, out = Path(submissions), Path(out)
    if not submissions.exists():
        raise FileNotFoundError(f"no submissions at {submissions}")
    sub_real, out_real = submissions.resolve(), out.resolve()
    if out_real == sub_real or out_real.is_relative_to(sub_real) or sub_real.is_relative_to(out_real):
        raise ValueError(f"the output folder {out} and the submissions {submissions} must not contain each other:"
                         " the submissions are never written to")
    if timeout <= 0 or notebook_timeout <= 0:
        raise ValueError("timeouts must be positive numbers of seconds")
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    roster_ids = read_roster(roster) if isinstance(roster, str | Path) else list(roster or [])
    state_path = out / STATE_FILE
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()) and not state_path.is_file():
        raise ValueError(f"{out} is not empty and was not written by `course grade`; choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    with _Lock(out), tempfile.TemporaryDirectory(prefix="course-grade-run-") as run_tmp:
        run_dir = Path(run_tmp)
        found = discover(submissions, assignment, [nb.name for nb in notebooks], roster_ids, run_dir)

        template = run_dir / "template"
        install_source(template, source, assignment)
        api = nbgrader_api(template)
        generated = api.generate_assignment(assignment, force=True, create=True)
        if not generated.get("success"):
            raise RuntimeError(f"nbgrader could not generate {assignment} from {source}:\n"
                               + ((generated.get("log") or "") + (generated.get("error") or "")).strip())
        max_scores = gradebook_max_scores(api, assignment, notebooks)
        settings = {"profile": profile, "timeout": float(timeout), "notebook_timeout": float(notebook_timeout)}
        source_digest = _digest_tree(template / "source" / assignment)

        try:
            state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
        except json.JSONDecodeError:
            state = {}
        same_setup = (state.get("format") == _STATE_FORMAT and state.get("assignment") == assignment
                      and state.get("source") == source_digest and state.get("settings") == settings)
        course = out / "course"
        if not same_setup or not (course / "gradebook.db").is_file():
            if course.exists():
                shutil.rmtree(course)
            shutil.copytree(template, course)
            previous: dict[str, Any] = {}
        else:
            previous = state.get("students", {})
        state = {"format": _STATE_FORMAT, "assignment": assignment, "source": source_digest, "settings": settings,
                 "students": dict(previous)}
        feedback_dir = out / "feedback"
        feedback_dir.mkdir(exist_ok=True)

        def feedback_path(student: str, notebook: str) -> Path:
            if len(notebooks) == 1:
                return feedback_dir / f"{student}.html"
            return feedback_dir / student / (Path(notebook).stem + ".html")

        def save_state() -> None:
            _atomic_write(state_path, json.dumps(state, indent=1, sort_keys=True) + "\n")

        grades = ClassGrades(assignment, out, parts, max_scores, {}, found.layout, found.ignored,
                             roster=roster_ids)
        todo = []
        for student, sub in found.submissions.items():
            if sub.problem is None:
                problems = [f"{name}: {why}" if len(notebooks) > 1 else why
                            for name, path in sub.files.items() if (why := notebook_problem(path))]
                if problems:
                    sub.problem, sub.message = "not-a-notebook", "; ".join(problems)
            if sub.problem is not None:
                row = StudentRow(student, sub.problem, message=sub.message, files=sub.found)
                grades.rows[student] = row
                continue
            digest = sub.digest()
            earlier = previous.get(student)
            if (not force and earlier and earlier.get("digest") == digest and earlier.get("status") != "error"
                    and (earlier.get("feedback") is None or (out / earlier["feedback"]).is_file())):
                grades.rows[student] = StudentRow.from_state(student, earlier)
                continue
            grades.rows[student] = StudentRow(student, "error", digest=digest, files=sub.found,
                                              message="not graded (the run was interrupted)")
            todo.append(sub)

        # rows that need no grading: their course entries and feedback pages are brought up to date now
        for student, row in grades.rows.items():
            if row.status in ("missing", "duplicate", "not-a-notebook"):
                _store_in_course(course, assignment, student, row, None, {}, max_scores)
                for page in [feedback_path(student, nb.name) for nb in notebooks]:
                    if page.exists():
                        page.unlink()
                if row.status != "missing":
                    page = feedback_path(student, notebooks[0].name)
                    page.parent.mkdir(parents=True, exist_ok=True)
                    page.write_text(_status_page(student, assignment, row.status, row.message, row.files),
                                    encoding="utf-8")
                    row.feedback = page.relative_to(out).as_posix()
                state["students"].pop(student, None)
        grades.dropped = sorted(set(previous) - set(found.submissions))
        for student in grades.dropped:
            state["students"].pop(student, None)
        save_state()

        threads = 1  # the smoke profile's small tensors run fastest on one thread; --jobs uses the cores
        log(f"grading {len(todo)} of {len(found.submissions)} student(s) of {assignment} with {jobs} job(s)"
            f" (per cell {timeout:g} s, per notebook {notebook_timeout:g} s, profile {profile})")
        idle: queue.SimpleQueue[_Grader] = queue.SimpleQueue()
        graders = [_Grader(run_dir, i) for i in range(min(jobs, max(1, len(todo))))]
        for grader in graders:
            idle.put(grader)

        def run(job: dict[str, Any]) -> dict[str, Any]:
            grader = idle.get()  # never waits: there are as many graders as threads
            try:
                return grader.grade(job)
            finally:
                idle.put(grader)

        workdirs = {}
        executor = ThreadPoolExecutor(max_workers=len(graders))
        try:
            futures = {}
            for sub in todo:
                workdir = Path(tempfile.mkdtemp(prefix="course-grade-"))
                dbdir = Path(tempfile.mkdtemp(prefix="course-gradebook-"))
                workdirs[sub.student] = (workdir, dbdir)
                job = {"student": sub.student, "assignment": assignment, "template": str(template),
                       "workdir": str(workdir), "dbdir": str(dbdir),
                       "files": {name: str(p.resolve()) for name, p in sub.files.items()},
                       "notebooks": [nb.name for nb in notebooks], "profile": profile, "timeout": float(timeout),
                       "notebook_timeout": float(notebook_timeout), "threads": threads,
                       "result": str(run_dir / f"{sub.student}.result.json")}
                futures[executor.submit(run, job)] = sub
            for n, future in enumerate(as_completed(futures), start=1):
                sub = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 -- one student's trouble must not stop the class
                    result = {"student": sub.student, "success": False, "crashed": True, "warnings": [],
                              "error": f"{type(exc).__name__}: {exc}", "log": ""}
                row = grades.rows[sub.student]
                if result.get("crashed"):
                    lines = [line for line in (result.get("error") or "").splitlines() if line.strip()]
                    row.status, row.message = "error", "the grader failed: " + (lines[-1] if lines else "no output")
                else:
                    row.status, row.message = _classify(result, timeout, notebook_timeout)
                row.seconds = result.get("seconds")
                row.phases = {k: round(v, 2) for k, v in (result.get("phases") or {}).items()} or None
                if row.status in WITH_POINTS and result.get("success") and not result.get("limit_hit"):
                    row.scores = _clean_scores(result.get("scores") or {}, max_scores)
                    row.total = float(sum(row.scores.values()))
                else:
                    row.scores, row.total = None, None
                _store_in_course(course, assignment, sub.student, row, result, sub.files, max_scores)
                for page in [feedback_path(sub.student, nb.name) for nb in notebooks]:
                    if page.exists():
                        page.unlink()
                pages = result.get("feedback") or {}
                if pages and row.scores is not None:
                    for name, path in pages.items():
                        page = feedback_path(sub.student, name)
                        page.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, page)
                    row.feedback = feedback_path(sub.student, notebooks[0].name).relative_to(out).as_posix()
                else:
                    if row.scores is not None:
                        row.message = "; ".join(filter(None, [row.message, "nbgrader wrote no feedback page"]))
                    page = feedback_path(sub.student, notebooks[0].name)
                    page.parent.mkdir(parents=True, exist_ok=True)
                    page.write_text(_status_page(sub.student, assignment, row.status, row.message, row.files),
                                    encoding="utf-8")
                    row.feedback = page.relative_to(out).as_posix()
                for folder in workdirs.pop(sub.student):
                    shutil.rmtree(folder, ignore_errors=True)
                state["students"][sub.student] = row.to_state()
                save_state()
                points = f"{row.total:g}/{grades.max_total:g}" if row.total is not None else "no points"
                seconds = f" in {row.seconds:.1f} s" if row.seconds is not None else ""
                log(f"[{n}/{len(todo)}] {sub.student}: {row.status}, {points}{seconds}"
                    + (f" ({row.message})" if row.message else ""))
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            for grader in graders:
                grader.kill()
            raise
        finally:
            executor.shutdown(wait=True)
            for grader in graders:
                grader.close()
            for folders in workdirs.values():
                for folder in folders:
                    shutil.rmtree(folder, ignore_errors=True)
        write_grades_csv(grades)
    grades.seconds = time.monotonic() - started
    return grades
