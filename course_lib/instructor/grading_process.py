"""One student graded in a grading process of its own: the job, its outcome, and the processes that run them.

``course grade`` hands each student to a *grading process* (:class:`GradingProcess`, a
Python process running :func:`worker_loop`) as a :class:`GradingJob`, written to a JSON
file whose name goes down the process's stdin; the process grades it
(:func:`grade_student`) and writes back a :class:`GradingOutcome`, again as JSON. Both
records are dataclasses of JSON values (and lists of smaller dataclass records, such as
:class:`~course_lib.instructor.library_copies.LibraryUse`), serialised in one place
(:class:`JsonRecord`).
A grading process holds no student's code: every notebook runs in a kernel of its own,
which is gone when its outcome is written; importing nbgrader once serves many students.
:class:`GradingPool` keeps a few processes busy side by side.

What :func:`grade_student` does, in a private course directory that holds nothing but the
assignment's data files and that one submission (the gradebook lies in a folder of its own,
away from where a student's code would look for it):

1. set up the private course (:func:`_private_course`);
2. compare the submission with the released exercise
   (:func:`course_lib.instructor.grading.submission_warnings`), and scan its code for the
   ``course_lib`` names that implement a part (:mod:`course_lib.instructor.library_copies`);
3. run nbgrader's autograder, each cell limited to ``timeout`` seconds (nbgrader interrupts
   it and goes on), the whole notebook to ``notebook_timeout`` seconds (a watchdog thread
   then stops the kernel) (:func:`_autograde`);
4. read the scores, the autograded notebooks, the cells that timed out and those that failed
   because of the environment (:func:`course_lib.instructor.grading.environment_failures`), and,
   with ``--feedback full``, have nbgrader write its feedback pages (:func:`_collect`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from course_lib.files import atomic_write
from course_lib.instructor.grading import (
    EnvironmentFailure,
    cell_label,
    environment_failures,
    gradebook_scores,
    submission_warnings,
    timed_out_cells,
)
from course_lib.instructor.library_copies import LibraryUse, library_uses, scanned_cells
from course_lib.instructor.nbgrader_setup import gradebook_url, nbgrader_api, quiet_gradebook
from course_lib.instructor.notebooks import kernel_environment, package_root
from course_lib.instructor.stderr_output import autograde_preprocessors

WORKER_GRACE = 120.0
"""Seconds the grading of one student may run past the whole-notebook limit before its grading process is killed."""


# --------------------------------------------------------------------------- the records


def _record(kind: type, data: Any) -> Any:
    """``data`` read back from JSON as a value of dataclass ``kind``; raises ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a {kind.__name__} is a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"a {kind.__name__} has no field(s) {', '.join(unknown)}")
    hints = get_type_hints(kind)
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if get_origin(hint) is list and get_args(hint) and is_dataclass(get_args(hint)[0]) and isinstance(value, list):
            value = [_record(get_args(hint)[0], item) for item in value]
        values[key] = value
    try:
        return kind(**values)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"not a complete {kind.__name__}: {exc}") from None


class JsonRecord:
    """A dataclass of JSON values (str, numbers, bools, None, lists and dicts of them, and lists of dataclasses of
    them) that goes through JSON as is."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str):
        """The record written by :meth:`to_json`. Raises ValueError naming a key it does not know or lacks."""
        return _record(cls, json.loads(text))


@dataclass
class GradingJob(JsonRecord):
    """What a grading process needs to grade one student (paths as strings, so that it goes through JSON)."""

    student: str
    assignment: str
    template: str
    """The course directory that nbgrader generated the assignment in (``source/``, ``release/``, ``gradebook.db``)."""
    workdir: str
    """An empty private folder: this student's course directory."""
    dbdir: str
    """An empty private folder for this student's gradebook."""
    files: dict[str, str]
    """The submitted files, by the notebook name the assignment expects."""
    notebooks: list[str]
    """The assignment's notebooks (file names)."""
    result: str
    """Where the grading process writes the :class:`GradingOutcome`."""
    profile: str = "smoke"
    timeout: float = 120.0
    """Seconds one cell may run before nbgrader interrupts it."""
    notebook_timeout: float = 600.0
    """Seconds the whole notebook may run before its kernel is stopped."""
    threads: int = 1
    """CPU threads of the kernel: the smoke profile's small tensors run fastest on one; ``--jobs`` uses the cores."""
    library: dict[str, list[str]] = field(default_factory=dict)
    """The ``course_lib`` names that implement each part, to look for in the submission's code."""
    nbgrader_feedback: bool = False
    """Whether nbgrader writes its own feedback pages (``--feedback full``: they show the hidden tests)."""
    sent: float | None = None
    """When the job was handed to its grading process (``time.time()``), to measure the process's start."""

    def remove_folders(self) -> None:
        """Remove the private course and gradebook folders (once their outcome has been taken over)."""
        for folder in (self.workdir, self.dbdir):
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class GradingOutcome(JsonRecord):
    """What grading one student gave, as its grading process saw it (or as the parent found the process)."""

    student: str
    success: bool = False
    """nbgrader's autograder ran the notebook to its end."""
    crashed: bool = False
    """The grader itself failed (an exception, or its grading process died): ``error`` says how."""
    limit_hit: bool = False
    """The notebook ran past its whole-notebook limit and was stopped."""
    scores: dict[str, float] = field(default_factory=dict)
    """Points per test cell (grade id), when ``success``."""
    warnings: list[str] = field(default_factory=list)
    """How the submission departs from the released exercise (see ``submission_warnings``)."""
    library_uses: list[LibraryUse] = field(default_factory=list)
    """Uses of the ``course_lib`` names that implement a part, in the submission's code."""
    environment: list[EnvironmentFailure] = field(default_factory=list)
    """Cells that failed because of the grading environment (data, ``course_lib``, memory), not the answer."""
    last_cell: str | None = None
    """The cell that ran last (grade id, else ``cell <i>``)."""
    timed_out: list[str] = field(default_factory=list)
    """Cells that ran past the per-cell limit and were interrupted."""
    error: str | None = None
    log: str = ""
    """nbgrader's log (its last 20,000 characters)."""
    autograded: dict[str, str] = field(default_factory=dict)
    """The autograded notebooks (with outputs), by notebook name."""
    feedback: dict[str, str] = field(default_factory=dict)
    """nbgrader's feedback pages, by notebook name (``--feedback full`` only)."""
    seconds: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent starting the grading process, setting up, autograding and writing feedback."""

    @classmethod
    def crash(cls, student: str, error: str, seconds: float | None = None) -> GradingOutcome:
        """The outcome of a grader that failed, with why."""
        return cls(student, crashed=True, error=error, seconds=seconds)

    @property
    def reason(self) -> str:
        """One line saying why nbgrader failed (empty when it succeeded): the first error in its log."""
        if self.success:
            return ""
        lines = [line.strip() for line in (self.log + "\n" + (self.error or "")).splitlines() if line.strip()]
        errors = [line for line in lines
                  if re.match(r"^[\w.]*(Error|Exception)\b", line) and "NbGraderException" not in line]
        logged = [line for line in lines if line.startswith("[ERROR]")]
        return (errors or logged or lines or ["nbgrader reported a failure"])[0]


# --------------------------------------------------------------------------- in the grading process


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment variables that give a kernel ``threads`` CPU threads (none that the user has set)."""
    if not threads:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if name not in os.environ}


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


def _private_course(job: GradingJob) -> Path:
    """Fill the private course ``job.workdir``: the assignment's data files and the submission; returns the gradebook.

    The assignment's notebooks (which hold the answers) are not copied; the gradebook, holding
    just the assignment, goes to ``job.dbdir``.
    """
    root, template = Path(job.workdir), Path(job.template)
    shutil.copytree(template / "source", root / "source", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb"))
    gradebook = Path(job.dbdir) / "gradebook.db"
    shutil.copyfile(template / "gradebook.db", gradebook)
    target = root / "submitted" / job.student / job.assignment
    target.mkdir(parents=True, exist_ok=True)
    for name, path in job.files.items():
        shutil.copyfile(path, target / name)
    return gradebook


def _check_submission(job: GradingJob) -> tuple[list[str], list[LibraryUse]]:
    """How each submitted notebook departs from the released exercise, which notebooks were not submitted, and
    the uses of the ``course_lib`` names that implement a part in the submission's code."""
    import nbformat

    release = Path(job.template) / "release" / job.assignment
    found, uses = [], []
    for name, path in job.files.items():
        released = json.loads((release / name).read_text(encoding="utf-8"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            submitted = nbformat.reads(Path(path).read_text(encoding="utf-8"), as_version=4)  # older ones upgraded
        prefix = f"{name}: " if len(job.notebooks) > 1 else ""
        found += [prefix + w for w in submission_warnings(released, submitted)]
        if job.library:
            uses += library_uses(scanned_cells(released, submitted), job.library)
    found += [f"{name} was not submitted (its tests score 0)" for name in job.notebooks if name not in job.files]
    return found, uses


def _remember_cell(into: dict[str, str]):
    """A hook for nbclient's ``on_cell_start`` that keeps the label of each code cell it starts in ``into["cell"]``."""

    def on_cell_start(cell, cell_index, **_):
        if cell.get("cell_type") == "code":
            into["cell"] = cell_label(cell, cell_index)

    return on_cell_start


def _autograde(job: GradingJob, api) -> GradingOutcome:
    """Run nbgrader's autograder on the submission; stop the kernel when the whole notebook runs too long."""
    import threading

    done, limit_hit = threading.Event(), threading.Event()

    def watchdog() -> None:
        if not done.wait(job.notebook_timeout):
            limit_hit.set()
            _kill(_tree(os.getpid())[1:])  # the kernel (and whatever it started); this process goes on

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        with kernel_environment(job.profile, **thread_env(job.threads)), quiet_gradebook():
            outcome = api.autograde(job.assignment, job.student, force=True, create=True)
    finally:
        done.set()
    success = bool(outcome.get("success"))
    return GradingOutcome(job.student, success=success, limit_hit=limit_hit.is_set(),
                          error=None if success else (outcome.get("error") or "").strip(),
                          log=(outcome.get("log") or "")[-20000:])


def _collect(job: GradingJob, api, gradebook: Path, outcome: GradingOutcome) -> None:
    """Read the scores, the autograded notebooks and the cells that failed in them into ``outcome``; with
    ``job.nbgrader_feedback``, have nbgrader write its feedback pages."""
    root = Path(job.workdir)
    outcome.scores = gradebook_scores(gradebook, job.assignment, job.notebooks, job.student)
    for name in job.notebooks:
        graded = root / "autograded" / job.student / job.assignment / name
        if graded.is_file() and not graded.is_symlink():
            outcome.autograded[name] = str(graded)
            outcome.timed_out += timed_out_cells(graded)
            prefix = f"{name}: " if len(job.notebooks) > 1 else ""
            outcome.environment += [replace(f, cell=prefix + f.cell) for f in environment_failures(graded)]
    if not job.nbgrader_feedback:
        return
    feedback = api.generate_feedback(job.assignment, job.student, force=True)
    for name in job.notebooks:
        page = root / "feedback" / job.student / job.assignment / (Path(name).stem + ".html")
        if feedback.get("success") and page.is_file() and not page.is_symlink():
            outcome.feedback[name] = str(page)


def grade_student(job: GradingJob) -> GradingOutcome:
    """Autograde one student in the private course directory ``job.workdir``; returns what happened."""
    start = time.monotonic()
    gradebook = _private_course(job)
    found, uses = _check_submission(job)
    running: dict[str, str] = {}
    api = nbgrader_api(job.workdir, Execute={"timeout": max(1, int(round(job.timeout))), "interrupt_on_timeout": True,
                                             "raise_on_iopub_timeout": True, "on_cell_start": _remember_cell(running)},
                       OverwriteCells={"add_missing_cells": True}, CourseDirectory={"db_url": gradebook_url(gradebook)},
                       Autograde={"autograde_preprocessors": autograde_preprocessors()})
    setup = time.monotonic() - start
    outcome = _autograde(job, api)
    outcome.warnings, outcome.library_uses, outcome.last_cell = found, uses, running.get("cell")
    autograded = time.monotonic() - start - setup
    if outcome.success and not outcome.limit_hit:
        _collect(job, api, gradebook, outcome)
    outcome.seconds = time.monotonic() - start
    outcome.phases = {"setup": setup, "autograde": autograded, "feedback": outcome.seconds - setup - autograded}
    return outcome


def worker_loop() -> int:
    """Main loop of a grading process: grade each job whose file is named on a line of stdin, until EOF.

    The :class:`GradingOutcome` of each job is written, atomically, to ``job.result``.
    """
    import sys
    import traceback

    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        job = GradingJob.from_json(Path(line.strip()).read_text(encoding="utf-8"))
        try:
            outcome = grade_student(job)
        except Exception:  # noqa: BLE001 -- reported as this student's grader failure; the next one goes on
            outcome = GradingOutcome.crash(job.student, traceback.format_exc())
        if job.sent is not None and outcome.seconds is not None:
            waited = time.time() - job.sent - outcome.seconds  # this process's start, for its first job
            outcome.phases["start"] = round(max(0.0, waited), 3)
        atomic_write(job.result, outcome.to_json())
        print(f"graded {job.student}", flush=True)


# --------------------------------------------------------------------------- in the parent


class GradingProcess:
    """A grading process of :func:`worker_loop`, fed one job at a time; started on first use."""

    def __init__(self, run_dir: Path, index: int):
        self.run_dir = run_dir
        self.proc = None
        self.log_path = run_dir / f"grader-{index}.log"

    def _start(self) -> None:
        import subprocess
        import sys

        env = dict(os.environ)
        root = package_root()
        if root is not None:
            env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        quiet = self.run_dir / "cwd"
        quiet.mkdir(exist_ok=True)
        code = f"import sys; from {__name__} import worker_loop; sys.exit(worker_loop())"
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

    def grade(self, job: GradingJob) -> GradingOutcome:
        """Grade one student's job; returns its outcome, or why there is none (killed past its limit, crashed)."""
        result = Path(job.result)
        if not self.alive():
            self._start()
        job = replace(job, sent=time.time())
        job_file = self.run_dir / f"{job.student}.job.json"
        job_file.write_text(job.to_json(), encoding="utf-8")
        start = time.monotonic()
        try:
            self.proc.stdin.write(f"{job_file}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: reported below
        while not result.is_file():
            if not self.alive():
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                code = self.proc.returncode if self.proc is not None else None
                self.proc = None
                return GradingOutcome.crash(job.student, tail or f"the grading process ended with exit status {code}",
                                            time.monotonic() - start)
            if time.monotonic() - start > job.notebook_timeout + WORKER_GRACE:
                self.kill()
                return GradingOutcome(job.student, limit_hit=True, seconds=time.monotonic() - start)
            time.sleep(0.05)
        outcome = GradingOutcome.from_json(result.read_text(encoding="utf-8"))
        outcome.seconds = time.monotonic() - start
        return outcome


class GradingPool:
    """``size`` grading processes that grade jobs side by side; a ``with`` block stops them all at its end.

    Leaving the block by an exception (e.g. Ctrl-C) kills the processes and the notebooks
    they run; leaving it normally lets them end.
    """

    def __init__(self, size: int, run_dir: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.processes = [GradingProcess(run_dir, i) for i in range(max(1, size))]
        self._idle: queue.SimpleQueue[GradingProcess] = queue.SimpleQueue()
        for process in self.processes:
            self._idle.put(process)
        self._executor = ThreadPoolExecutor(max_workers=len(self.processes))

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            for process in self.processes:
                process.kill()
        self._executor.shutdown(wait=True)
        for process in self.processes:
            process.close()

    def _grade(self, job: GradingJob) -> GradingOutcome:
        process = self._idle.get()  # never waits: there are as many processes as threads
        try:
            return process.grade(job)
        finally:
            self._idle.put(process)

    def grade(self, jobs: Iterable[GradingJob]) -> Iterator[tuple[GradingJob, GradingOutcome]]:
        """Grade the jobs; yield each with its outcome as they finish (a grader that raised: a crash)."""
        from concurrent.futures import as_completed

        futures = {self._executor.submit(self._grade, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 -- one student's trouble must not stop the class
                outcome = GradingOutcome.crash(job.student, f"{type(exc).__name__}: {exc}")
            yield job, outcome
