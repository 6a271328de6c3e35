"""Headline results that a notebook reports and ``course run`` collects.

A notebook calls ``record_result("MADE test NLL", 88.9, "nats/image")``. The value is
shown in the notebook and stored in the cell's output under a course-specific MIME
type, so that the executed notebook itself carries its results: ``collect_results``
reads them back from any executed ``.ipynb`` without side files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULT_MIME = "application/vnd.course-result+json"


def record_result(name: str, value: float, unit: str, **details: Any) -> dict:
    """Show a headline result and store it in the notebook's output. Returns the record."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a result needs a non-empty name")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"result {name!r} is not a finite number: {value}")
    record = {"name": name, "value": value, "unit": unit, **details}
    text = f"{name}: {value:.4g} {unit}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({RESULT_MIME: record, "text/plain": text}, raw=True)
            return record
    except ImportError:
        pass
    print(text)
    return record


class LectureResults:
    """A lecture's headline results: each is recorded with :func:`record_result` as it is measured (with the
    profile and device) and kept, unless ``table=False``, as a row of the results table at the end.

    >>> results = LectureResults(profile="smoke", device="cpu")
    >>> report = results.report
    >>> report("MADE test NLL", 91.7, "nats/image", published="88.40 (Germain et al. 2015)")  # doctest: +SKIP
    >>> results.rows  # doctest: +SKIP
    [{'result': 'MADE test NLL', 'value': 91.7, 'unit': 'nats/image', 'published': '88.40 (Germain et al. 2015)'}]
    """

    def __init__(self, *, profile: str, device: Any) -> None:
        self.profile, self.device = profile, str(device)
        self.rows: list[dict] = []

    def report(self, name: str, value: float, unit: str, published: str | None = None, table: bool = True,
               **details: Any) -> dict:
        """Record a headline result (shown, stored in the notebook's output) and keep it for the table."""
        record = record_result(name, value, unit, profile=self.profile, device=self.device, **details)
        if table:
            self.rows.append({"result": name, "value": value, "unit": unit,
                              "published": "" if published is None else published})
        return record

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def collect_results(notebook: str | Path) -> list[dict]:
    """The results recorded in an executed notebook, in the order they were recorded."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data", {})
            if RESULT_MIME in data:
                rec = data[RESULT_MIME]
                found.append(json.loads(rec) if isinstance(rec, str) else dict(rec))
    return found


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], floatfmt: str = ".4g") -> str:
    """A Markdown table: a header of ``columns``, then one line per row (a sequence of cells).

    Floats use ``floatfmt``, ``None`` is blank, ``|`` and newlines in a cell are escaped.
    Every row must have one cell per column. Ends with a newline.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("markdown_table needs at least one column")

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} cells for {len(columns)} columns: {row!r}")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
