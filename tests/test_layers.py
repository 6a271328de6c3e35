"""The student library's layers import one way, as ``course_lib/__init__.py`` draws them."""

import ast
from pathlib import Path

import course_lib

PACKAGE = Path(course_lib.__file__).parent

LAYERS = [
    {"runtime", "files", "metrics", "results"},
    {"data"},
    {"models"},
    {"training"},
    {"presets"},
    {"plots", "widgets"},
]
"""From the bottom up: a module may import from its own layer and the layers before it."""

OUTSIDE = {"__init__", "__main__", "cli", "instructor"}
"""The package's front door, the ``course`` command and the instructor's tools sit above every layer."""


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _layer(name: str) -> int:
    for i, members in enumerate(LAYERS):
        if name in members:
            return i
    raise AssertionError(f"course_lib.{name} is in no layer of this test: add it where it belongs")


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "course_lib" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_imports_only_from_its_layer_and_the_ones_below():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = _top(path)
        if top in OUTSIDE:
            continue
        for name in _imported(path) - {top}:
            if name in OUTSIDE or _layer(name) > _layer(top):
                problems.append(f"{path.relative_to(PACKAGE)} imports course_lib.{name}")
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_the_check_sees_an_import_against_the_layers(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from course_lib.training import fit\nimport course_lib.instructor.grading\n")
    assert _imported(bad) == {"training", "instructor"}
    assert _layer("training") > _layer("models")
