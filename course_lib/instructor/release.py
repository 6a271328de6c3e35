"""Generate the student exercises from the nbgrader sources, check that they are in sync, bundle them.

``solutions/<stem>.ipynb`` is the nbgrader source of one topic: full answers and hidden
tests between nbgrader's delimiters (:data:`LEAK_MARKERS`; the README shows them).
:func:`generate_exercises` runs
nbgrader's ``generate_assignment`` on each of them in a temporary course directory and
writes the student version to ``exercises/<stem>.ipynb``, normalised (no outputs,
execution counts or widget state; nbformat's JSON with indent 1 and a final newline),
so that generating twice gives the same bytes. :func:`check_exercises` reports exercises
that are missing, extra or stale, any answer, hidden test or the words
"solution"/"instructor" that leaked into an exercise, and ``course_lib`` names declared in a
solution's metadata (for :mod:`course_lib.instructor.library_copies`) that do not resolve.
:func:`build_bundle` zips what students get: the exercises, the lectures, the student's ``course_lib`` (without this
``course_lib.instructor`` package) and the environment files.

Only the notebook and the data files it declares reach the nbgrader course
(:func:`course_lib.instructor.nbgrader_setup.add_source`).
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from course_lib.files import atomic_file
from course_lib.instructor.grading import parts_of
from course_lib.instructor.library_copies import declared_library
from course_lib.instructor.nbgrader_setup import add_source, declared_files, generate_assignment, nbgrader_api
from course_lib.instructor.notebooks import cell_source, strip_outputs

LEAK_MARKERS = tuple(f"### {edge} {block}" for block in ("SOLUTION", "HIDDEN TESTS", "MARK SCHEME")
                     for edge in ("BEGIN", "END"))
"""nbgrader's delimiters (``### BEGIN`` / ``### END`` around a solution, hidden tests or a mark
scheme): none may survive into a student's notebook. Built from parts, so that no file of the
course's library spells them out (a search for leaks finds only the notebooks' own)."""

LEAK_WORDS = re.compile(r"\b(solutions?|instructors?)\b", re.IGNORECASE)
"""Words that give away an instructor's version; checked in cell sources only (not nbgrader's metadata)."""


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
            generate_assignment(api, stem, str(notebook))
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


def find_leaks(nb: Any, name: str = "exercise") -> list[str]:
    """Answers, hidden tests or giveaway words in a student notebook's cell sources; one line each."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        source = cell_source(cell)
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


def library_problems(solutions: Iterable[str | Path]) -> list[str]:
    """Where a solution's ``metadata.course.library`` names a part it does not have or a name that does not resolve
    (:func:`course_lib.instructor.library_copies.declared_library`); one line each."""
    problems = []
    for path in solutions:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            declared_library(nb, parts_of(nb, str(path)), str(path))
        except ValueError as exc:
            problems += str(exc).splitlines()
    return problems


def check_exercises(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises") -> list[str]:
    """What is wrong with ``exercises/``: missing, extra or stale exercises, leaks, and a solution's declared
    library names that do not resolve (:func:`library_problems`). Changes nothing.

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
    problems += library_problems(solutions)
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

INSTRUCTOR_PACKAGE = "instructor"
"""The subpackage of ``course_lib`` that holds the instructor's tools: left out of the bundle."""

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
        inside = path.relative_to(package)
        if (path.is_file() and inside.parts[0] != INSTRUCTOR_PACKAGE and "__pycache__" not in inside.parts
                and path.suffix not in (".pyc", ".pyo")):
            members[f"course_lib/{inside.as_posix()}"] = path
    for name in BUNDLE_FILES:
        if (root / name).is_file():
            members[name] = root / name
    members["README.md"] = STUDENT_README.encode("utf-8")
    return members


def bundle_leaks(members: dict[str, Path | bytes]) -> list[str]:
    """What in a bundle gives answers away: a ``solutions`` or ``tests`` path, the instructor's tools, nbgrader's
    delimiters in any file."""
    problems = []
    for name, content in members.items():
        parts = name.split("/")
        if "solutions" in parts or "tests" in parts:
            problems.append(f"{name}: instructor material (a solutions or tests folder)")
        if parts[:2] == ["course_lib", INSTRUCTOR_PACKAGE]:
            problems.append(f"{name}: instructor material (the course_lib.{INSTRUCTOR_PACKAGE} package)")
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
    ``lectures/``, the ``course_lib`` package without ``course_lib/instructor/`` (its ``course data``
    command works, the instructor's commands say that they are not there), the environment files
    (``pyproject.toml``, ``constraints.txt``, ``environment.yml``, ``Makefile``) and a README for
    students; never ``solutions/`` or ``tests/``. Entries are sorted and dated 1980-01-01, so that the same
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
    with atomic_file(out, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            content = members[name]
            data = content if isinstance(content, bytes) else content.read_bytes()
            info = zipfile.ZipInfo(f"{BUNDLE_NAME}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out
