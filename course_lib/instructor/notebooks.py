"""Run the course's notebooks headless and collect their headline results.

``course run`` executes each notebook with papermill in one profile, writes the executed
copy to ``build/<profile>/<folder>/<stem>.ipynb`` and gathers what the notebooks reported
with :func:`course_lib.results.record_result` into ``build/<profile>/results.md`` and
``results.json``. A notebook that fails is reported with its error and does not stop
the others.

The notebooks' kernel gets the profile twice: as the papermill parameter ``PROFILE``
and as ``$COURSE_PROFILE``; it also gets ``COURSE_STATIC_WIDGETS=1`` (widgets draw a
static figure; matplotlib keeps ipykernel's inline backend, so figures land in the
outputs), and runs in the notebook's own folder, so that relative paths work as they
do in JupyterLab.

The hygiene helpers (:func:`strip_outputs`, :func:`hygiene_problems`, :func:`is_clean`)
keep committed notebooks free of outputs, execution counts and widget state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import course_lib
from course_lib.files import atomic_write
from course_lib.results import collect_results, markdown_table
from course_lib.runtime import PROFILE_ENV, STATIC_WIDGETS_ENV, describe_hardware, resolve_profile

KERNEL_ENV = {STATIC_WIDGETS_ENV: "1"}
"""Environment variables that every headless kernel of the course gets (besides the profile)."""

CELL_METADATA_NOISE = ("execution", "papermill", "widgets", "ExecuteTime")
"""Cell metadata that records one session (timings, view state), removed by :func:`strip_outputs`."""

NOTEBOOK_METADATA_NOISE = ("widgets", "papermill")
"""Notebook metadata that records one session (widget state, papermill's run), removed likewise."""


# --------------------------------------------------------------------------- kernel set-up


def package_root() -> Path | None:
    """The folder that holds ``course_lib`` when it runs from a checkout (None when installed)."""
    root = Path(course_lib.__file__).resolve().parent.parent
    return None if root.name in ("site-packages", "dist-packages") else root


@contextmanager
def kernel_environment(profile: str, **extra: str) -> Iterator[dict[str, str]]:
    """Set the environment that a notebook kernel started inside this block inherits.

    Sets ``COURSE_PROFILE=profile``, ``COURSE_STATIC_WIDGETS=1`` and any
    ``extra`` variables, and puts this checkout of ``course_lib`` first on ``PYTHONPATH``
    (so the kernel imports the same library as the runner). Restores the previous
    environment on exit. Yields the variables that were set.
    """
    wanted = {PROFILE_ENV: resolve_profile(profile), **KERNEL_ENV, **extra}
    root = package_root()
    if root is not None:
        old = os.environ.get("PYTHONPATH")
        wanted["PYTHONPATH"] = str(root) + (os.pathsep + old if old else "")
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield wanted
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --------------------------------------------------------------------------- running


@dataclass
class NotebookRun:
    """The outcome of running one notebook: where it went, how long it took, what it reported."""

    notebook: str
    """The notebook as given (a path, relative to the working directory where possible)."""
    output: str
    """The executed copy."""
    profile: str
    status: str
    """``"ok"`` or ``"failed"``."""
    seconds: float
    """Wall-clock time of the execution, kernel start included."""
    error: str | None = None
    """The error's first line (``ValueError: ...``) when the notebook failed."""
    results: list[dict[str, Any]] = field(default_factory=list)
    """The results recorded with ``record_result``, in order (also from a failed run, up to the failure)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _describe_error(exc: BaseException) -> str:
    """One line naming a notebook's failure: ``ValueError: boom (cell 3)`` for a cell's exception."""
    ename = getattr(exc, "ename", None)
    if ename is not None:  # papermill's PapermillExecutionError carries the kernel's exception
        where = getattr(exc, "exec_count", None)
        suffix = f" (cell [{where}])" if where is not None else ""
        return f"{ename}: {_first_line(getattr(exc, 'evalue', ''))}{suffix}"
    return f"{type(exc).__name__}: {_first_line(str(exc))}"


def run_notebook(
    path: str | Path,
    out_path: str | Path,
    profile: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    kernel_name: str = "python3",
) -> Path:
    """Execute one notebook with papermill in a profile and write the executed copy.

    ``parameters`` are injected after the notebook's ``parameters`` cell together with
    ``PROFILE=profile``; ``timeout`` is the number of seconds any single cell may run
    (None: no limit). The kernel runs in the notebook's folder. Raises papermill's
    ``PapermillExecutionError`` when a cell fails (the executed copy, with the error, is
    written all the same). Returns ``out_path``.
    """
    import papermill as pm  # imported here: papermill is slow to import

    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    if path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook: expected a .ipynb file")
    profile = resolve_profile(profile)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, **(dict(parameters) if parameters else {})}
    with kernel_environment(profile):
        pm.execute_notebook(
            str(path),
            str(out_path),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(path.resolve().parent),
            execution_timeout=timeout,
            progress_bar=False,
        )
    return out_path


def output_path(notebook: str | Path, out_dir: str | Path, profile: str) -> Path:
    """Where the executed copy of ``notebook`` goes: ``<out_dir>/<profile>/<folder>/<stem>.ipynb``."""
    notebook = Path(notebook)
    folder = notebook.resolve().parent.name
    return Path(out_dir) / profile / folder / notebook.name


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_notebooks(
    paths: Iterable[str | Path],
    out_dir: str | Path = "build",
    profile: str | None = None,
    *,
    timeout: float | None = None,
    parameters: Mapping[str, Any] | None = None,
    log=print,
) -> list[NotebookRun]:
    """Execute notebooks one after the other in one profile and write the results table.

    Each notebook goes to ``<out_dir>/<profile>/<folder>/<stem>.ipynb``; a failing notebook
    is recorded as ``failed`` with its error's first line and the others still run. Writes
    ``<out_dir>/<profile>/results.md`` and ``results.json`` (see :func:`write_results`).
    ``log`` receives one line per notebook (None: silent). Returns the runs, in order.
    """
    profile = resolve_profile(profile)
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no notebook at {', '.join(missing)}")
    runs = []
    for path in paths:
        out = output_path(path, out_dir, profile)
        if log:
            log(f"running {_display_path(path)} (profile {profile}) ...")
        start = time.perf_counter()
        try:
            run_notebook(path, out, profile, parameters=parameters, timeout=timeout)
            status, error = "ok", None
        except Exception as exc:  # noqa: BLE001 -- one failing notebook must not stop the others
            status, error = "failed", _describe_error(exc)
        seconds = time.perf_counter() - start
        results = collect_results(out) if out.is_file() else []
        run = NotebookRun(_display_path(path), _display_path(out), profile, status, seconds, error, results)
        runs.append(run)
        if log:
            log(f"  {status} in {seconds:.1f} s" + (f": {error}" if error else "") + f" -> {run.output}")
    write_results(runs, Path(out_dir) / profile)
    return runs


# --------------------------------------------------------------------------- the results table


RESULTS_COLUMNS = ("notebook", "status", "result", "value", "unit", "seconds", "profile", "hardware")
"""The columns of ``results.md``."""


def results_table(runs: Iterable[NotebookRun], hardware: str | None = None) -> str:
    """A markdown table with one row per recorded result (one row for a notebook with none).

    Columns: :data:`RESULTS_COLUMNS`; values to 4 significant digits, seconds to 0.1 s.
    """
    hardware = describe_hardware() if hardware is None else hardware
    rows = []
    for run in runs:
        status = run.status if run.error is None else f"{run.status}: {run.error}"
        for rec in run.results or [{"name": "", "value": None, "unit": ""}]:
            rows.append([run.notebook, status, rec.get("name", ""), rec.get("value"), rec.get("unit", ""),
                         f"{run.seconds:.1f}", run.profile, hardware])
    return markdown_table(RESULTS_COLUMNS, rows, floatfmt=".4g")


def write_results(runs: list[NotebookRun], folder: str | Path, hardware: str | None = None) -> tuple[Path, Path]:
    """Write ``results.md`` (the table of :func:`results_table`) and ``results.json`` into ``folder``."""
    folder = Path(folder)
    hardware = describe_hardware() if hardware is None else hardware
    md = atomic_write(folder / "results.md", results_table(runs, hardware))
    payload = {"hardware": hardware, "runs": [asdict(run) for run in runs]}
    js = atomic_write(folder / "results.json", json.dumps(payload, indent=1) + "\n")
    return md, js


def load_runs(build_dir: str | Path) -> tuple[list[NotebookRun], str]:
    """Read back the runs (and the hardware line) of every ``results.json`` under ``build_dir``.

    ``build_dir`` is one profile's folder (``build/cpu``) or the folder above them
    (``build``). Raises FileNotFoundError when there is no ``results.json`` there.
    """
    build_dir = Path(build_dir)
    files = [build_dir / "results.json"] if (build_dir / "results.json").is_file() else sorted(
        build_dir.glob("*/results.json"))
    if not files:
        raise FileNotFoundError(f"no results.json in {build_dir} or its subfolders: run `course run` first")
    runs, hardware = [], []
    for file in files:
        payload = json.loads(file.read_text(encoding="utf-8"))
        runs += [NotebookRun(**run) for run in payload.get("runs", [])]
        if payload.get("hardware") and payload["hardware"] not in hardware:
            hardware.append(payload["hardware"])
    return runs, " / ".join(hardware)


# --------------------------------------------------------------------------- hygiene


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def strip_outputs(nb: Any) -> Any:
    """Remove outputs, execution counts, widget state and per-session metadata, in place.

    ``nb`` is a notebook as nbformat reads it (or the same structure as plain dicts).
    Returns ``nb``.
    """
    metadata = nb.get("metadata", {})
    for key in NOTEBOOK_METADATA_NOISE:
        metadata.pop(key, None)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in CELL_METADATA_NOISE:
            cell.get("metadata", {}).pop(key, None)
    return nb


def hygiene_problems(nb: Any, name: str = "notebook") -> list[str]:
    """What keeps a notebook from being committed: outputs, execution counts, widget state.

    Returns one line per problem (empty: clean).
    """
    problems = []
    for key in NOTEBOOK_METADATA_NOISE:
        if key in nb.get("metadata", {}):
            problems.append(f"{name}: notebook metadata holds {key!r} (run-time state)")
    for i, cell in enumerate(nb.get("cells", [])):
        where = f"{name}, cell {i}"
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                problems.append(f"{where}: has {len(cell['outputs'])} output(s)")
            if cell.get("execution_count") is not None:
                problems.append(f"{where}: has execution count {cell['execution_count']}")
        noise = [key for key in CELL_METADATA_NOISE if key in cell.get("metadata", {})]
        if noise:
            problems.append(f"{where}: metadata holds {', '.join(noise)} (run-time state)")
    return problems


def is_clean(path: str | Path) -> bool:
    """Whether the notebook file at ``path`` has no outputs, execution counts or widget state."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return not hygiene_problems(nb, str(path))


def find_parameters_cell(nb: Any) -> int | None:
    """The index of the code cell tagged ``parameters`` (papermill's convention), or None."""
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    return None
