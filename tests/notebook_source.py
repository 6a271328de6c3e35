"""Reading an exercise's nbgrader source as code: its graded cells and the names they define and read.

Shared by the static checks of every exercise (``tests/test_exerciseNN.py``).
"""

from __future__ import annotations

import ast
import builtins


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
