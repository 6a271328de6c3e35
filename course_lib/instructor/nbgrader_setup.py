"""Setting nbgrader up: the one place that builds its API and fills a course directory.

nbgrader works on a *course directory*: ``source/<assignment>/`` holds the instructor's
notebooks, ``release/``, ``submitted/``, ``autograded/`` and ``feedback/`` what it makes of
them, and ``gradebook.db`` the points. :func:`nbgrader_api` opens such a folder with the
course's settings (nbgrader's own configuration files are not read), after two
workarounds that every caller needs: this interpreter's ``bin/`` goes first on ``PATH``
(nbgrader runs ``alembic`` from there to set up a gradebook), and the gradebook's schema
version is found in this process instead of a subprocess that costs seconds each time.

:func:`install_source` puts an assignment's source into a course directory: a solution
notebook with the data files it declares in its metadata, ``{"course": {"files":
["relative/path", ...]}}`` (paths relative to the notebook's folder), and nothing else (never,
e.g., a paired jupytext ``.py``, which holds the answers).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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

    ``config`` holds extra traitlets sections, e.g. ``Execute={"timeout": 60}`` or
    ``CourseDirectory={"db_url": ...}`` for a gradebook kept elsewhere. nbgrader's own
    configuration files are not read: the course directory is set explicitly.
    """
    _with_venv_on_path()
    _alembic_head_in_process()
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    root = Path(root).resolve()
    (root / "exchange").mkdir(parents=True, exist_ok=True)  # unused, but nbgrader complains when it is absent
    cfg = Config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.db_url = gradebook_url(root / "gradebook.db")
    cfg.Exchange.root = str(root / "exchange")
    cfg.NbGraderAPI.log_level = "WARN"
    for section, values in config.items():
        for key, value in values.items():
            setattr(getattr(cfg, section), key, value)
    return NbGraderAPI(config=cfg)


def gradebook_url(path: str | Path) -> str:
    """The database URL of the gradebook file ``path``, as nbgrader's ``Gradebook`` takes it."""
    return f"sqlite:///{Path(path)}"


@contextmanager
def quiet_gradebook() -> Iterator[None]:
    """Silence the notes that SQLAlchemy makes about how nbgrader uses its sessions (harmless, and many)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader.api")
        yield


def generate_assignment(api, assignment: str, what: str) -> None:
    """Have nbgrader generate ``assignment`` (its release and gradebook entries) from its source.

    Raises RuntimeError saying that ``what`` could not be generated, with nbgrader's log.
    """
    outcome = api.generate_assignment(assignment, force=True, create=True)
    if not outcome.get("success"):
        details = ((outcome.get("log") or "") + (outcome.get("error") or "")).strip()
        raise RuntimeError(f"nbgrader could not generate {what}:\n{details}")


# --------------------------------------------------------------------------- sources


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


def install_source(root: str | Path, source: str | Path, assignment: str) -> None:
    """Put the assignment's nbgrader source into the course directory ``root`` (``source/<assignment>/``).

    ``source`` is a solution notebook (copied with its declared data files only, see
    :func:`add_source`) or a folder of them (copied without ``.py`` files, which could be
    paired copies holding the answers).
    """
    source = Path(source)
    if source.is_file():
        add_source(root, source, assignment)
        return
    target = Path(root) / "source" / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", ".ipynb_checkpoints"))
