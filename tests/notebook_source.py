"""Reading an exercise's nbgrader source as code and text: its graded cells, the names they define and read, and
the paragraphs and quoted names of its introduction.

Shared by the static checks of every exercise (``tests/test_exercise_standard.py``, ``tests/test_exerciseNN.py``).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def load_solution(stem: str) -> dict:
    """The nbgrader source ``solutions/<stem>.ipynb`` as a notebook dict."""
    return json.loads((SOLUTIONS / f"{stem}.ipynb").read_text(encoding="utf-8"))


def introduction(nb: dict) -> str:
    """The Markdown of the notebook's first cell: the exercise's title, table of parts and rules."""
    return "".join(nb["cells"][0]["source"])


def graded_cells(nb: dict, role: str) -> dict[str, str]:
    """Source by grade id of the answer cells (``role="answer"``) or the test cells (``role="test"``) of ``nb``."""
    key = "solution" if role == "answer" else "grade"
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get(key)}


def defined_names(nb: dict) -> set[str]:
    """The names that the answer cells of ``nb`` define at their top level: what the tests may call."""
    names = set()
    for source in graded_cells(nb, "answer").values():
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
    return names


def free_names(source: str) -> set[str]:
    """Names a cell reads but never binds (anywhere in the cell: imports, assignments, definitions, arguments)."""
    tree = ast.parse(source)
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - set(dir(builtins))


def used_names(source: str) -> set[str]:
    """Every name a piece of code reads (a superset of what it calls), parsed leniently as a block of statements."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def paragraph(markdown: str, title: str) -> str:
    """The paragraph of ``markdown`` that starts with ``**title**`` (up to the next bold start or the end)."""
    match = re.search(rf"^\*\*{re.escape(title)}\*\*(.*?)(?=^\*\*|\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"the introduction has no paragraph '**{title}**'"
    return match.group(1)


def quoted_names(text: str) -> set[str]:
    """The identifiers quoted in ``backticks`` in a piece of Markdown."""
    return {name for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", text)}
