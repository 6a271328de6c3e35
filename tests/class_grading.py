"""Building a class of submissions from an exercise's nbgrader source, for the tests of ``course grade``.

A submission is the released exercise (what ``course release`` writes) with some answer cells replaced: by the
answers of the solution notebook (a perfect student), by the files of a fixture folder (wrong answers, answers that
call the library), or left as released (an untouched exercise). Shared by ``tests/test_grade_command*.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from course_lib.instructor.release import render_exercises


def cell_grade_id(cell: dict) -> str | None:
    """The nbgrader grade id of a cell, None for a cell that nbgrader does not know."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answer_sources(solution: Path) -> dict[str, str]:
    """The source of every answer cell of a solution notebook, by grade id."""
    nb = json.loads(solution.read_text(encoding="utf-8"))
    return {cell_grade_id(c): "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}


def released_exercise(solution: Path) -> dict:
    """The exercise that ``course release`` makes of a solution notebook, as a notebook dict."""
    return json.loads(render_exercises([solution])[solution.stem])


def with_sources(nb: dict, sources: Mapping[str, str]) -> dict:
    """A copy of ``nb`` whose cells with the given grade ids get the given sources (each id must exist)."""
    nb = copy.deepcopy(nb)
    found = set()
    for cell in nb["cells"]:
        if cell_grade_id(cell) in sources:
            cell["source"] = sources[cell_grade_id(cell)]
            found.add(cell_grade_id(cell))
    assert found == set(sources), set(sources) - found
    return nb


def without_cell(nb: dict, grade_id: str) -> dict:
    """A copy of ``nb`` without the cell of that grade id."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if cell_grade_id(c) != grade_id]
    return nb


def insert_cell_after(nb: dict, grade_id: str, source: str) -> dict:
    """A copy of ``nb`` with a new code cell of the student's after the cell of that grade id."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb["cells"]) if cell_grade_id(c) == grade_id)
    nb["cells"].insert(index + 1, {"cell_type": "code", "execution_count": None, "id": "added-by-student",
                                   "metadata": {}, "outputs": [], "source": source})
    return nb


def save_notebook(path: Path, nb: dict | str) -> None:
    """Write a notebook dict (or any text: a damaged file) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8")


def fixture_answers(folder: Path, parts: Iterable[str]) -> dict[str, str]:
    """The answer cell ``<part>_answer`` of each part, read from ``folder / <part>.py``."""
    return {f"{part}_answer": (folder / f"{part}.py").read_text(encoding="utf-8") for part in parts}


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and modification time of every file under ``folder``: what shows that nothing was modified."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}
