"""Generate the student exercises from the nbgrader sources, check that they are in sync, bundle them.

``solutions/<stem>.ipynb`` is the nbgrader source of one topic: full answers and hidden
tests between nbgrader's delimiters (:data:`LEAK_MARKERS`; the README shows them).
:func:`generate_exercises` runs
nbgrader's ``generate_assignment`` on each of them in a temporary course directory and
writes the student version to ``exercises/<stem>.ipynb``, normalised (no outputs,
execution counts or widget state; nbformat's JSON with indent 1 and a final newline),
so that generating twice gives the same bytes. :func:`check_exercises` reports exercises
that are missing, extra or stale, and any answer, hidden test or the words
"solution"/"instructor" that leaked into an exercise. :func:`build_bundle` zips what
students get: the exercises, the lectures, ``course_lib`` and the environment files.

Only the notebook is copied into the nbgrader course (never, e.g., a paired jupytext
``.py``, which holds the answers), plus the data files that the notebook declares in
its metadata: ``{"course": {"files": ["relative/path", ...]}}``, paths relative to the
notebook's folder.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from course_lib.notebooks import strip_outputs

LEAK_MARKERS = tuple(f"### {edge} {block}" for block in ("SOLUTION", "HIDDEN TESTS", "MARK SCHEME")
                     for edge in ("BEGIN", "END"))
"""nbgrader's delimiters (``### BEGIN`` / ``### END`` around a solution, hidden tests or a mark
scheme): none may survive into a student's notebook. Built from parts, so that this file, which
students get with ``course_lib``, does not spell them out."""

LEAK_WORDS = re.compile(r"\b(solutions?|instructors?)\b", re.IGNORECASE)
"""Words that give away an instructor's version; checked in cell sources only (not nbgrader's metadata)."""


# --------------------------------------------------------------------------- nbgrader plumbing


def _with_venv_on_path() -> None:
    """Put this interpreter's ``bin/`` first on PATH: nbgrader's gradebook runs ``alembic`` from there."""
    bin_dir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in parts if p and p != bin_dir]])


def _alembic_head_in_process() -> None:
    """Let nbgrader find its gradebook schema version in this process.

    nbgrader asks a subprocess (``alembic heads``) for the version of a new gradebook,
    which re-imports nbgrader and costs seconds per course directory; alembic's Python
    API gives the same answer at once. Falls back to nbgrader's own way on any error.
    """
    import nbgrader.api

    original = nbgrader.api.get_alembic_version
    if getattr(original, "in_process", False):
        return

    @functools.cache
    def get_alembic_version() -> str:
        try:
            from alembic.config import Config as AlembicConfig
            from alembic.script import ScriptDirectory
            from nbgrader.dbutil import ALEMBIC_DIR

            cfg = AlembicConfig()
            cfg.set_main_option("script_location", ALEMBIC_DIR)
            head = ScriptDirectory.from_config(cfg).get_current_head()
            if head:
                return head
        except Exception:  # noqa: BLE001 -- any trouble: ask alembic the slow way
            pass
        return original()

    get_alembic_version.in_process = True
    nbgrader.api.get_alembic_version = get_alembic_version


def nbgrader_api(root: str | Path, **config: dict[str, Any]):
    """An ``nbgrader.apps.NbGraderAPI`` for the course directory ``root`` (gradebook ``root/gradebook.db``).

    ``config`` holds extra traitlets sections, e.g. ``Execute={"timeout": 60}``. nbgrader's
    own configuration files are not read: the course directory is set explicitly.
    """
    _with_venv_on_path()
    _alembic_head_in_process()
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    root = Path(root).resolve()
    (root / "exchange").mkdir(parents=True, exist_ok=True)  # unused, but nbgrader complains when it is absent
    cfg = Config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    cfg.Exchange.root = str(root / "exchange")
    cfg.NbGraderAPI.log_level = "WARN"
    for section, values in config.items():
        for key, value in values.items():
            setattr(getattr(cfg, section), key, value)
    return NbGraderAPI(config=cfg)


def declared_files(notebook: str | Path) -> list[Path]:
    """The data files a notebook declares in ``metadata.course.files`` (relative to its folder).

    Raises ValueError when a declared file is missing or lies outside the notebook's folder.
    """
    notebook = Path(notebook)
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    names = nb.get("metadata", {}).get("course", {}).get("files", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{notebook}: metadata.course.files should be a list of paths, got {names!r}")
    folder = notebook.resolve().parent
    files = []
    for name in names:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder):
            raise ValueError(f"{notebook}: declared file {name!r} lies outside the notebook's folder")
        if not path.exists():
            raise ValueError(f"{notebook}: declared file {name!r} does not exist")
        files.append(path)
    return files


def add_source(root: str | Path, notebook: str | Path, assignment: str | None = None) -> Path:
    """Copy a source notebook (and its declared files, nothing else) into ``root/source/<assignment>/``.

    The assignment and the notebook are both named after the notebook's stem unless
    ``assignment`` is given. Replaces an earlier copy. Returns the assignment's folder.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no source notebook at {notebook}")
    assignment = assignment or notebook.stem
    target = Path(root) / "source" / assignment
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(notebook, target / notebook.name)
    folder = notebook.resolve().parent
    for path in declared_files(notebook):
        dest = target / path.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, dest)
        else:
            shutil.copyfile(path, dest)
    return target


def _raise_on_failure(result: dict[str, Any], what: str) -> None:
    if not result.get("success"):
        details = (result.get("log") or "") + (result.get("error") or "")
        raise RuntimeError(f"nbgrader could not {what}:\n{details.strip()}")


# --------------------------------------------------------------------------- generation


def normalise_notebook(nb: Any) -> str:
    """The committed form of a generated notebook: stripped, nbformat JSON (indent 1), final newline."""
    import nbformat

    nb = strip_outputs(nbformat.from_dict(nb))
    text = nbformat.writes(nb, version=4)  # sorted keys, indent 1
    return text if text.endswith("\n") else text + "\n"


def _solution_notebooks(solutions_dir: str | Path) -> list[Path]:
    solutions_dir = Path(solutions_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(f"no solutions folder at {solutions_dir}")
    return sorted(solutions_dir.glob("*.ipynb"))


def render_exercises(solutions: Iterable[str | Path]) -> dict[str, str]:
    """Generate the student version of each source notebook; returns ``{stem: normalised JSON text}``.

    Runs nbgrader in a temporary course directory (gradebook included) that is removed
    afterwards. Raises RuntimeError with nbgrader's log when a source cannot be generated.
    """
    solutions = [Path(p) for p in solutions]
    if not solutions:
        return {}
    texts = {}
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        root = Path(tmp)
        for notebook in solutions:
            add_source(root, notebook)
        api = nbgrader_api(root)
        for notebook in solutions:
            stem = notebook.stem
            _raise_on_failure(api.generate_assignment(stem, force=True, create=True), f"generate {notebook}")
            released = root / "release" / stem / notebook.name
            texts[stem] = normalise_notebook(json.loads(released.read_text(encoding="utf-8")))
    return texts


def generate_exercises(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises") -> list[Path]:
    """Regenerate ``exercises/<stem>.ipynb`` from every ``solutions/<stem>.ipynb``; returns the files written.

    A file is rewritten only when its content changes. Exercises without a source are
    left alone (:func:`check_exercises` reports them).
    """
    texts = render_exercises(_solution_notebooks(solutions_dir))
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, text in texts.items():
        path = exercises_dir / f"{stem}.ipynb"
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


# --------------------------------------------------------------------------- checks


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def find_leaks(nb: Any, name: str = "exercise") -> list[str]:
    """Answers, hidden tests or giveaway words in a student notebook's cell sources; one line each."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        source = _source(cell)
        for marker in LEAK_MARKERS:
            if marker in source:
                problems.append(f"{name}, cell {i}: leaks nbgrader's {marker!r} block")
        words = sorted({m.group(0).lower() for m in LEAK_WORDS.finditer(source)})
        if words:
            problems.append(f"{name}, cell {i}: contains the word(s) {', '.join(map(repr, words))}")
    return problems


def _first_difference(committed: str, fresh: str) -> str:
    a, b = json.loads(committed), json.loads(fresh)
    if len(a.get("cells", [])) != len(b.get("cells", [])):
        return f"{len(a.get('cells', []))} cells instead of {len(b.get('cells', []))}"
    for i, (x, y) in enumerate(zip(a["cells"], b["cells"], strict=True)):
        if x != y:
            return f"cell {i} differs"
    return "metadata or formatting differs"


def check_exercises(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises") -> list[str]:
    """What is wrong with ``exercises/``: missing, extra or stale exercises, and leaks. Changes nothing.

    Stale means different, byte for byte, from a fresh generation (run ``course release``).
    Returns one line per problem (empty: in sync and clean).
    """
    solutions = _solution_notebooks(solutions_dir)
    exercises_dir = Path(exercises_dir)
    problems = []
    try:
        fresh = render_exercises(solutions)
    except RuntimeError as exc:
        return [str(exc)]
    stems = {p.stem for p in solutions}
    for stem, text in fresh.items():
        path = exercises_dir / f"{stem}.ipynb"
        if not path.is_file():
            problems.append(f"{path}: missing (generate it with `course release`)")
        elif path.read_bytes() != text.encode("utf-8"):
            committed = path.read_text(encoding="utf-8")
            try:
                detail = _first_difference(committed, text)
            except json.JSONDecodeError:
                detail = "not valid JSON"
            source = Path(solutions_dir) / f"{stem}.ipynb"
            problems.append(f"{path}: stale, differs from a fresh generation of {source} ({detail};"
                            " regenerate with `course release`)")
    for path in sorted(exercises_dir.glob("*.ipynb")) if exercises_dir.is_dir() else []:
        if path.stem not in stems:
            problems.append(f"{path}: extra, no source {Path(solutions_dir) / path.name} to generate it from")
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: not valid JSON ({exc})")
            continue
        problems += find_leaks(nb, str(path))
    return problems


# --------------------------------------------------------------------------- the student bundle

BUNDLE_NAME = "dgm-course"
"""The name of the student bundle: its zip is ``<name>.zip`` with one top folder ``<name>/``."""

BUNDLE_FILES = ("pyproject.toml", "constraints.txt", "environment.yml", "Makefile")
"""Files of the repository's root that students get as they are."""

STUDENT_README = """\
# Deep generative models: the exercises

One graded **exercise** notebook per topic in `exercises/`, the **lectures** that go with
them in `lectures/`, and `course_lib`, the course's library that both import.

## Set up (once)

With Python 3.11 and `make`:

```bash
make lab    # creates .venv with the pinned environment and opens JupyterLab
```

Conda users: `conda env create -f environment.yml && conda activate dgm-course`, then
`pip install -e . --no-deps` and `jupyter lab`. The data sets are downloaded and verified
on first use; to work offline later, fetch them once with `course data fetch`.

## Work on an exercise

Open `exercises/NN_name.ipynb` and write your code where it says `raise NotImplementedError()`.
The cells after each answer test it; they are locked. Do not edit or delete them (a
changed test cell is replaced by the original when your notebook is graded, and the
change is reported). Hidden tests check the same functions on other inputs when it is
graded, in a small, fast setting (`PROFILE = "smoke"`): keep each cell to a minute or
two, and avoid endless loops (a cell that runs too long is interrupted).

## Hand it in

Restart the kernel and run all cells: every visible test should pass without an error.
Save, and hand in the `.ipynb` file as your course asks (any file name will do).
"""


def _bundle_members(root: Path, exercises_dir: Path, solutions_dir: Path) -> dict[str, Path | bytes]:
    """``{path in the bundle: file or content}`` of the student bundle, in a stable order."""
    members: dict[str, Path | bytes] = {}
    exercises = sorted(exercises_dir.glob("*.ipynb"))
    if not exercises:
        raise FileNotFoundError(f"no exercise notebook in {exercises_dir}: run `course release` first")
    for exercise in exercises:
        members[f"exercises/{exercise.name}"] = exercise
        source = solutions_dir / exercise.name
        if source.is_file():  # the data files the notebook declares go beside it, as nbgrader releases them
            folder = source.resolve().parent
            for path in declared_files(source):
                files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
                for file in files:
                    members[f"exercises/{file.relative_to(folder).as_posix()}"] = file
    for lecture in sorted((root / "lectures").glob("*.ipynb")):
        members[f"lectures/{lecture.name}"] = lecture
    package = root / "course_lib"
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"no course_lib package in {root.resolve()}: run from the repository's root")
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            members[f"course_lib/{path.relative_to(package).as_posix()}"] = path
    for name in BUNDLE_FILES:
        if (root / name).is_file():
            members[name] = root / name
    members["README.md"] = STUDENT_README.encode("utf-8")
    return members


def bundle_leaks(members: dict[str, Path | bytes]) -> list[str]:
    """What in a bundle gives answers away: a ``solutions`` or ``tests`` path, nbgrader's delimiters in any file."""
    problems = []
    for name, content in members.items():
        parts = name.split("/")
        if "solutions" in parts or "tests" in parts:
            problems.append(f"{name}: instructor material (a solutions or tests folder)")
        data = content if isinstance(content, bytes) else content.read_bytes()
        text = data.decode("utf-8", errors="replace")
        for marker in LEAK_MARKERS:
            if marker in text:
                problems.append(f"{name}: holds nbgrader's {marker!r} block")
        if name.endswith(".ipynb") and name.startswith("exercises/"):
            problems += find_leaks(json.loads(text), name)
    return problems


def build_bundle(out: str | Path | None = None, root: str | Path = ".", exercises_dir: str | Path = "exercises",
                 solutions_dir: str | Path = "solutions") -> Path:
    """Write the student bundle, a zip of ``<BUNDLE_NAME>/`` holding what students need, and return its path.

    The bundle holds ``exercises/`` (with the data files each exercise declares),
    ``lectures/``, the ``course_lib`` package, the environment files (``pyproject.toml``,
    ``constraints.txt``, ``environment.yml``, ``Makefile``) and a README for students; never
    ``solutions/`` or ``tests/``. Entries are sorted and dated 1980-01-01, so that the same
    files give the same bytes. ``out`` defaults to ``build/release/<BUNDLE_NAME>.zip``
    under ``root``. Raises RuntimeError, writing nothing, when anything in it would give
    answers away (:func:`bundle_leaks`).
    """
    root = Path(root)
    exercises_dir = Path(exercises_dir) if Path(exercises_dir).is_absolute() else root / exercises_dir
    solutions_dir = Path(solutions_dir) if Path(solutions_dir).is_absolute() else root / solutions_dir
    out = Path(out) if out is not None else root / "build" / "release" / f"{BUNDLE_NAME}.zip"
    members = _bundle_members(root, exercises_dir, solutions_dir)
    problems = bundle_leaks(members)
    if problems:
        raise RuntimeError("the student bundle would give answers away:\n" + "\n".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            content = members[name]
            data = content if isinstance(content, bytes) else content.read_bytes()
            info = zipfile.ZipInfo(f"{BUNDLE_NAME}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(out)
    return out
