"""Find each student's submission in what an LMS or JupyterHub hands an instructor.

:func:`discover` accepts a folder or a ``.zip`` of any of these shapes:

* a folder of ``<student>.ipynb`` files (one notebook per student);
* a folder of ``<student>/`` folders, each holding the student's notebook(s), at any
  depth (``.ipynb_checkpoints``, ``__MACOSX`` and hidden files are ignored);
* nbgrader's own layout, ``submitted/<student>/<assignment>/<notebook>.ipynb`` (the
  folder given may be the course directory, ``submitted/`` itself, or hold them);
* a ``.zip`` of any of these; a zip whose only entry is a folder around the class is
  opened up (but not a student's own folder).

Each student gets one :class:`Submission`. It is not guessed at when it is ambiguous: a
student with two candidate notebooks (``alice.ipynb`` and ``alice/x.ipynb``, or two
notebooks in ``alice/``) is a ``duplicate``, naming the files; a student whose files hold
no notebook at all is ``not-a-notebook``; a student of the roster (:func:`read_roster`)
with no file is ``missing``. Whether a ``.ipynb`` file is a readable notebook is checked
by :func:`notebook_problem`. Nothing here writes into the submissions: a zip is unpacked
into a separate temporary folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IGNORED_NAMES = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", "Thumbs.db", "desktop.ini"}
"""Folders and files that archivers, editors and operating systems add; never part of a submission."""

MAX_UNPACKED_BYTES = 512 * 2**20
"""The largest file taken out of a zip (a notebook with many figures is a few MB)."""

ROSTER_COLUMNS = ("student", "student_id", "id", "username", "login", "email")
"""Column names, in order of preference, that hold the student id in a roster CSV."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    """One student's files, or why there are none to grade.

    ``files`` maps the notebook name the assignment expects (``01_x.ipynb``) to the
    submitted file. ``problem`` is None when the submission can be graded, otherwise the
    status that says why not (``duplicate``, ``not-a-notebook``, ``missing``), explained
    in ``message``. ``found`` lists every file of the student, as shown to people.
    """

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    problem: str | None = None
    message: str = ""
    found: list[str] = field(default_factory=list)

    def digest(self) -> str:
        """SHA-256 of the submitted notebooks' names (as the assignment names them) and bytes."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0")
            h.update(self.files[name].read_bytes())
            h.update(b"\0")
        return h.hexdigest()


@dataclass
class Discovery:
    """What :func:`discover` found: one :class:`Submission` per student, and what it ignored."""

    submissions: dict[str, Submission]
    layout: str
    """``files`` (``<student>.ipynb``), ``folders`` (``<student>/...``), ``nbgrader`` or ``mixed``."""
    ignored: list[str] = field(default_factory=list)
    """Files that belong to no student (e.g. a README beside the notebooks)."""


# --------------------------------------------------------------------------- helpers


def student_id(name: str) -> str:
    """A file or folder name made into a student id: letters, digits and ``. _ @ + -`` only.

    Runs of other characters become ``_`` (``"Ada Lovelace"`` -> ``"Ada_Lovelace"``).
    Raises ValueError when nothing usable is left.
    """
    sid = _UNSAFE.sub("_", name.strip()).strip("_.-+@")
    if not sid or not sid[0].isalnum():
        raise ValueError(f"cannot make a student id from {name!r}")
    return sid


def _ignored(path: Path) -> bool:
    return path.name in IGNORED_NAMES or path.name.startswith((".", "~$"))


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, skipping ignored names at any depth, sorted."""
    found = []
    for path in sorted(folder.iterdir()):
        if _ignored(path) or path.is_symlink():
            continue
        if path.is_dir():
            found += _files_under(path)
        elif path.is_file():
            found.append(path)
    return found


def notebook_problem(path: str | Path) -> str | None:
    """Why the file at ``path`` is not a notebook that nbgrader can read (None: it is one).

    Reads it as UTF-8 JSON and validates it against the notebook format (version 4, older
    versions upgraded). The answer is one line, e.g. ``not valid JSON (line 3, column 5)``.
    """
    import json

    import nbformat

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "not a text file (not UTF-8), so not a notebook"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not text.strip():
        return "an empty file, not a notebook"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg}, line {exc.lineno}, column {exc.colno}): truncated or not a notebook"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. cells without ids, which nbformat still accepts
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 -- nbformat raises several kinds for a malformed notebook
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"valid JSON but not a valid notebook: {first[:200]}"
    return None


# --------------------------------------------------------------------------- rosters


def read_roster(path: str | Path) -> list[str]:
    """The student ids of a roster: one id per line, or a CSV with a ``student`` (or ``id``...) column.

    Blank lines and lines starting with ``#`` are skipped; ids are checked like folder
    names (:func:`student_id`) and must be unique. Raises ValueError naming the problem.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"the roster {path} lists no student")
    first = next(csv.reader([lines[0]]))
    header = [h.strip().lower() for h in first]
    column = next((header.index(name) for name in ROSTER_COLUMNS if name in header), None)
    if column is None and len(first) > 1:
        raise ValueError(f"the roster {path} looks like a CSV but has no column named one of"
                         f" {', '.join(ROSTER_COLUMNS)}")
    if column is None:
        raw = [line.strip() for line in lines]
    else:
        rows = csv.reader(io.StringIO("\n".join(lines[1:])))
        raw = [row[column].strip() if column < len(row) else "" for row in rows]
    ids, seen = [], set()
    for n, value in enumerate(raw, start=1):
        if not value:
            raise ValueError(f"the roster {path}: entry {n} has no student id")
        sid = student_id(value)
        if sid != value:
            raise ValueError(f"the roster {path}: {value!r} is not a usable student id (letters, digits, . _ @ + -)")
        if sid in seen:
            raise ValueError(f"the roster {path} lists {sid!r} twice")
        seen.add(sid)
        ids.append(sid)
    return ids


# --------------------------------------------------------------------------- zips


def unpack_zip(archive: str | Path, target: str | Path) -> Path:
    """Unpack ``archive`` into ``target`` (which must be empty or absent); returns ``target``.

    Skips folders, links, the archivers' extras (``__MACOSX``, hidden files) and refuses
    entries that would land outside ``target`` or unpack to more than
    :data:`MAX_UNPACKED_BYTES`. Raises ValueError for a file that is not a zip.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ValueError(f"{archive} is not a zip archive") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = Path(info.filename.replace("\\", "/")).parts
            if ".." in parts or Path(info.filename).is_absolute():
                raise ValueError(f"{archive}: the entry {info.filename!r} would unpack outside its folder")
            if not parts or any(part in IGNORED_NAMES or part.startswith(".") for part in parts):
                continue
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if is_link:
                continue
            dest = (root / Path(*parts)).resolve()
            if not dest.is_relative_to(root) or dest == root:
                raise ValueError(f"{archive}: the entry {info.filename!r} would unpack outside its folder")
            if info.file_size > MAX_UNPACKED_BYTES:
                raise ValueError(f"{archive}: the entry {info.filename!r} unpacks to {info.file_size} bytes,"
                                 f" more than the {MAX_UNPACKED_BYTES} a submission may have")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return target


# --------------------------------------------------------------------------- discovery


def _nbgrader_root(folder: Path, assignment: str) -> Path | None:
    """The ``submitted/`` folder of nbgrader's layout at or under ``folder`` (None: not that layout)."""
    if (folder / "submitted").is_dir():
        return folder / "submitted"
    children = [p for p in folder.iterdir() if p.is_dir() and not _ignored(p)] if folder.is_dir() else []
    if folder.name == "submitted" or (
            children and all((child / assignment).is_dir() for child in children)):
        return folder
    return None


def _unwrap(folder: Path, notebook_names: Iterable[str]) -> Path:
    """The folder inside a zip that holds the class: a lone top folder is opened unless it is a student's."""
    names = set(notebook_names)
    while True:
        entries = [p for p in folder.iterdir() if not _ignored(p)]
        if len(entries) != 1 or not entries[0].is_dir():
            return folder
        inner = entries[0]
        if inner.name == "submitted":
            return folder
        inner_entries = [p for p in inner.iterdir() if not _ignored(p)]
        if any(p.is_file() and p.name in names for p in inner_entries):
            return folder  # a student's own folder: it holds the assignment's notebook by name
        if len(inner_entries) == 1 and inner_entries[0].is_file():
            return folder  # a folder with a single file is one student's
        folder = inner


def _pick(student: str, candidates: list[Path], others: list[Path], notebook_names: list[str],
          shown: dict[Path, str]) -> Submission:
    """One student's :class:`Submission` from their notebook files (and other files)."""
    found = [shown[p] for p in candidates + others]
    if len(notebook_names) == 1:
        name = notebook_names[0]
        if len(candidates) == 1:
            return Submission(student, {name: candidates[0]}, found=found)
        if len(candidates) > 1:
            return Submission(student, problem="duplicate", found=found,
                              message=f"{len(candidates)} notebooks for one student, none graded: "
                                      + ", ".join(shown[p] for p in candidates))
    else:
        by_name: dict[str, list[Path]] = {}
        for path in candidates:
            by_name.setdefault(path.name, []).append(path)
        twice = {name: paths for name, paths in by_name.items() if name in notebook_names and len(paths) > 1}
        if twice:
            listing = "; ".join(", ".join(shown[p] for p in paths) for paths in twice.values())
            return Submission(student, problem="duplicate", found=found,
                              message=f"the same notebook submitted more than once, none graded: {listing}")
        files = {name: paths[0] for name, paths in by_name.items() if name in notebook_names}
        if files:
            return Submission(student, files, found=found)
        if candidates:
            return Submission(student, problem="not-a-notebook", found=found,
                              message="none of the notebooks is named as the assignment's ("
                                      + ", ".join(notebook_names) + "): " + ", ".join(shown[p] for p in candidates))
    listing = ", ".join(shown[p] for p in others) or "an empty folder"
    return Submission(student, problem="not-a-notebook", found=found,
                      message=f"no notebook (.ipynb) submitted, only {listing}")


def _discover_folder(folder: Path, assignment: str, notebook_names: list[str], shown_root: Path,
                     label: str) -> Discovery:
    def show(path: Path) -> str:
        return f"{label}/{path.relative_to(shown_root).as_posix()}"

    def is_notebook(path: Path) -> bool:
        return path.suffix.lower() == ".ipynb"

    nbgrader = _nbgrader_root(folder, assignment)
    per_student: dict[str, tuple[list[Path], list[Path]]] = {}
    """student -> (notebooks, other files)."""
    ignored: list[str] = []
    layouts = set()

    def add(name: str, files: list[Path]) -> None:
        try:
            sid = student_id(name)
        except ValueError:  # a name with no letter or digit: nobody's
            ignored.extend(show(p) for p in files)
            return
        entry = per_student.setdefault(sid, ([], []))
        entry[0].extend(p for p in files if is_notebook(p))
        entry[1].extend(p for p in files if not is_notebook(p))

    if nbgrader is not None:
        layouts.add("nbgrader")
        for student_dir in sorted(p for p in nbgrader.iterdir() if p.is_dir() and not _ignored(p)):
            target = student_dir / assignment
            if target.is_dir():
                add(student_dir.name, _files_under(target))
            else:  # another assignment's submission
                ignored.extend(show(p) for p in _files_under(student_dir))
    else:
        for entry in sorted(folder.iterdir()):
            if _ignored(entry) or entry.is_symlink():
                continue
            if entry.is_file():
                if is_notebook(entry):
                    layouts.add("files")
                    add(entry.stem, [entry])
                else:
                    ignored.append(show(entry))
            elif entry.is_dir():
                layouts.add("folders")
                add(entry.name, _files_under(entry))

    shown = {}
    submissions = {}
    for sid, (notebooks, others) in sorted(per_student.items()):
        for path in notebooks + others:
            shown[path] = show(path)
        submissions[sid] = _pick(sid, notebooks, others, notebook_names, shown)
    layout = "mixed" if len(layouts) > 1 else (layouts.pop() if layouts else "empty")
    return Discovery(submissions, layout, ignored)


def discover(path: str | Path, assignment: str, notebook_names: Iterable[str],
             roster: Iterable[str] | None = None, workdir: str | Path | None = None) -> Discovery:
    """One :class:`Submission` per student found at ``path`` (a folder or a ``.zip``; see the module).

    ``assignment`` is the assignment's name (for nbgrader's layout) and
    ``notebook_names`` its notebooks' file names (``["01_x.ipynb"]``). A zip is unpacked
    into ``workdir`` (a temporary folder that the caller removes; required for a zip).
    Students of ``roster`` that have no submission get one with problem ``missing``.
    Raises FileNotFoundError when ``path`` does not exist, ValueError for a file that is
    neither a folder nor a zip.
    """
    path = Path(path)
    notebook_names = list(notebook_names)
    if not path.exists():
        raise FileNotFoundError(f"no submissions at {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: expected a folder of submissions or a .zip of one")
        if workdir is None:
            raise ValueError("a zip of submissions needs a working folder to be unpacked into")
        unpacked = unpack_zip(path, Path(workdir) / "unpacked")
        folder = _unwrap(unpacked, notebook_names)
        found = _discover_folder(folder, assignment, notebook_names, unpacked, path.name)
    elif path.is_dir():
        found = _discover_folder(path, assignment, notebook_names, path, path.name)
    else:
        raise ValueError(f"{path}: expected a folder of submissions or a .zip of one")
    for sid in roster or []:
        if sid not in found.submissions:
            found.submissions[sid] = Submission(sid, problem="missing", message="in the roster, but nothing submitted")
    found.submissions = dict(sorted(found.submissions.items()))
    return found
