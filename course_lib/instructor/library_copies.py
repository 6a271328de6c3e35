"""Library copies: an answer that calls the ``course_lib`` code implementing its part, found from the code as written.

Students get ``course_lib``, which holds the course's own MADE, masks and losses; an
answer that imports them passes the tests without the work. Each graded part may
declare, in the solution notebook's metadata, the ``course_lib`` names that implement it::

    {"course": {"library": {"made": ["course_lib.models.autoregressive.made.MADE",
                                     "course_lib.models.autoregressive.made.made_masks"],
                            "pixelcnn": ["course_lib.models.autoregressive.pixelcnn"]}}}

Each key is a part of the grade-id convention (:mod:`course_lib.instructor.grading`), each
entry the dotted path of a ``course_lib`` module, class or function.
:func:`declared_library` reads and checks them (a name that does not resolve or an
unknown part is an error at ``course release`` and when grading starts).

:func:`library_uses` scans a submission's code as written (Python's :mod:`ast`, after
IPython's own translation of magics and shell lines) and follows what each name is bound
to through the cells, in order: ``import course_lib.models as m`` then ``m.MADE``, ``from
course_lib import models`` then ``models.autoregressive.made.made_masks``, ``from
course_lib.models import *`` then a bare ``MADE``, ``from ... import made_masks as mm``,
``x = course_lib.models``, ``getattr(m, "MADE")``, ``importlib.import_module("course_lib.models")``.
A reference *matches* a declared name when it resolves (by following attributes) to the
same object, or lies inside a declared module (a module under it, or a class or function
defined in it). Names a student binds themselves (a ``def``, an assignment, a function's
argument) shadow an import, as in Python. Code built at run time (``exec`` of a string) is
not seen: this flags the usual shortcut, it is not a sandbox.

Resolving a reference never imports a module: it follows attributes of the modules that
are already imported (the declared names' own, imported when they are read), so that the
scan runs no code a submission names.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from course_lib.instructor.grading import cell_label, parse_grade_id
from course_lib.instructor.notebooks import cell_source

PACKAGE = "course_lib"

DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")
"""Cell magics whose body is Python code that runs in the notebook's namespace: scanned like a cell."""


@dataclass(frozen=True)
class LibraryUse:
    """A submission's use of a ``course_lib`` name that implements a graded part."""

    part: str
    name: str
    """The ``course_lib`` name the code refers to, spelled through its aliases (``course_lib.models.MADE``)."""
    cell: str
    """The cell where it is used first (grade id, else ``cell <index>``)."""

    @property
    def message(self) -> str:
        return f"part {self.part}: the answer uses {self.name}, which implements it"


# --------------------------------------------------------------------------- declarations


def resolve_declared(name: str) -> Any:
    """The object a declared dotted name stands for, importing its modules as needed.

    Raises ValueError naming ``name`` when it is not a ``course_lib`` name or does not resolve.
    """
    if not isinstance(name, str) or not DOTTED.fullmatch(name) or name.split(".")[0] != PACKAGE:
        raise ValueError(f"{name!r} is not a dotted course_lib name (e.g. course_lib.models.autoregressive.made.MADE)")
    parts = name.split(".")
    obj: Any = importlib.import_module(PACKAGE)
    for i in range(1, len(parts)):
        if hasattr(obj, parts[i]):
            obj = getattr(obj, parts[i])
            continue
        missing = f"{name!r} does not resolve: {'.'.join(parts[:i])} has no attribute or submodule {parts[i]!r}"
        if not isinstance(obj, types.ModuleType) or parts[i] == "__main__":
            raise ValueError(missing)
        try:
            obj = importlib.import_module(".".join(parts[: i + 1]))
        except ModuleNotFoundError as exc:
            if exc.name != ".".join(parts[: i + 1]):
                raise
            raise ValueError(missing) from None
    return obj


def declared_library(nb: Mapping[str, Any], parts: Iterable[str], name: str = "notebook") -> dict[str, list[str]]:
    """The ``course_lib`` names that implement each part, from ``metadata.course.library`` (``{}`` when absent).

    Raises ValueError naming each problem: not a mapping of part names to lists of names, a
    part the notebook does not have (``parts``), a name that does not resolve.
    """
    declared = nb.get("metadata", {}).get("course", {}).get("library", {})
    if not isinstance(declared, Mapping) or not all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in declared.values()):
        raise ValueError(f"{name}: metadata.course.library should map part names to lists of course_lib names,"
                         f" got {declared!r}")
    known = list(parts)
    problems = []
    for part, names in declared.items():
        if part not in known:
            problems.append(f"{name}: metadata.course.library names part {part!r}, which the notebook does not have"
                            f" (its parts: {', '.join(known) or 'none'})")
        for entry in names:
            try:
                resolve_declared(entry)
            except (ValueError, ImportError) as exc:
                problems.append(f"{name}: metadata.course.library, part {part!r}: {exc}")
    if problems:
        raise ValueError("\n".join(problems))
    return {part: list(names) for part, names in declared.items()}


# --------------------------------------------------------------------------- resolving references


def _module_of(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else ""


def _inside(module: str, outer: str) -> bool:
    return module == outer or module.startswith(outer + ".")


_UNRESOLVED = object()


def _resolve_imported(path: str) -> Any:
    """What ``path`` stands for among the modules already imported, following attributes; ``_UNRESOLVED`` if not."""
    parts = path.split(".")
    obj = sys.modules.get(parts[0])
    if obj is None:
        return _UNRESOLVED
    for i in range(1, len(parts)):
        try:
            obj = getattr(obj, parts[i])
        except Exception:  # noqa: BLE001 -- any attribute that cannot be read is simply not followed
            obj = sys.modules.get(".".join(parts[: i + 1]), _UNRESOLVED)
            if obj is _UNRESOLVED:
                return _UNRESOLVED
    return obj


class _Declared:
    """The declared names of an assignment, resolved once: which parts a reference matches."""

    def __init__(self, declared: Mapping[str, Sequence[str]]):
        self.entries = [(part, name, resolve_declared(name)) for part, names in declared.items() for name in names]

    def _parts(self, path: str) -> list[str]:
        obj = _resolve_imported(path)
        found = []
        for part, name, target in self.entries:
            if obj is not _UNRESOLVED and obj is target:
                found.append(part)
            elif isinstance(target, types.ModuleType) and (
                    _inside(path, name) or (obj is not _UNRESOLVED and _inside(_module_of(obj), name))):
                found.append(part)
        return found

    def matches(self, path: str) -> dict[str, str]:
        """``{part: name used}`` for the parts a reference to ``path`` uses: ``path`` itself or the longest of
        its prefixes that matches (``course_lib.models.MADE.forward`` uses ``course_lib.models.MADE``)."""
        found: dict[str, str] = {}
        pieces = path.split(".")
        for n in range(len(pieces), 0, -1):
            prefix = ".".join(pieces[:n])
            for part in self._parts(prefix):
                found.setdefault(part, prefix)
        return found


# --------------------------------------------------------------------------- the scan


def _public_names(module_path: str) -> list[str]:
    module = _resolve_imported(module_path)
    if not isinstance(module, types.ModuleType):
        return []
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if isinstance(n, str)]


def _is_ours(module: str | None) -> bool:
    return module is not None and (module == PACKAGE or module.startswith(PACKAGE + "."))


class _Scanner(ast.NodeVisitor):
    """Follows what each name stands for (a ``course_lib`` dotted path, or None: the student's own) and
    records every reference to a ``course_lib`` path."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, str | None]] = [{}]
        self.references: list[str] = []

    # names and scopes

    def _lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def _bind(self, name: str, path: str | None) -> None:
        self.scopes[-1][name] = path

    def _refer(self, path: str) -> None:
        self.references.append(path)

    def _path(self, node: ast.AST) -> str | None:
        """The ``course_lib`` path an expression stands for (a name, an attribute chain, getattr, import_module)."""
        if isinstance(node, ast.Name):
            return self._lookup(node.id)
        if isinstance(node, ast.Attribute):
            base = self._path(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0]
            if (called == "getattr" and isinstance(func, ast.Name) and self._lookup("getattr") is None
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)):
                base = self._path(first)
                return f"{base}.{node.args[1].value}" if base is not None else None
            if (called == "import_module" and isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and _is_ours(first.value)):
                return first.value
        return None

    def _scoped(self, visit_body, *names: str) -> None:
        self.scopes.append({name: None for name in names})
        try:
            visit_body()
        finally:
            self.scopes.pop()

    # imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _is_ours(alias.name):
                self._refer(alias.name)
                self._bind(alias.asname or PACKAGE, alias.name if alias.asname else PACKAGE)
            else:
                self._bind(alias.asname or alias.name.split(".")[0], None)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        ours = node.level == 0 and _is_ours(node.module)
        for alias in node.names:
            if alias.name == "*":
                if ours:
                    self._refer(node.module)
                    for name in _public_names(node.module):
                        self._bind(name, f"{node.module}.{name}")
                continue
            if ours:
                path = f"{node.module}.{alias.name}"
                self._refer(path)
                self._bind(alias.asname or alias.name, path)
            else:
                self._bind(alias.asname or alias.name, None)

    # references

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            path = self._lookup(node.id)
            if path is not None:
                self._refer(path)
        else:
            self._bind(node.id, None)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self._path(node) if isinstance(node.ctx, ast.Load) else None
        if path is not None:
            self._refer(path)
            return
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        path = self._path(node)
        if path is not None:
            self._refer(path)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        path = self._path(node.value)
        for target in node.targets:
            if path is not None and isinstance(target, ast.Name):
                self._bind(target.id, path)
            else:
                self.visit(target)

    # definitions: a new scope for their bodies

    def _arguments(self, args: ast.arguments) -> list[str]:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        return [a.arg for a in every if a is not None]

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(default)
        if isinstance(node, ast.Lambda):
            self._scoped(lambda: self.visit(node.body), *self._arguments(node.args))
            return
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._bind(node.name, None)

        def body() -> None:
            for statement in node.body:
                self.visit(statement)

        self._scoped(body, *self._arguments(node.args))

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *[k.value for k in node.keywords]]:
            self.visit(expr)
        self._bind(node.name, None)

        def body() -> None:
            for statement in node.body:
                self.visit(statement)

        self._scoped(body)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        def body() -> None:
            for generator in node.generators:
                self.visit(generator)
            for field in ("elt", "key", "value"):
                if hasattr(node, field):
                    self.visit(getattr(node, field))

        self._scoped(body)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name, None)
        for statement in node.body:
            self.visit(statement)


def python_source(cell_source: str) -> str | None:
    """A cell's code as Python: IPython's translation of its magics and shell lines; None if it is no Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = cell_source.lstrip().splitlines()
    if lines and lines[0].startswith("%%"):
        magic = lines[0][2:].split()
        if magic and magic[0] in PYTHON_CELL_MAGICS:
            return python_source("\n".join(lines[1:]))
        return None  # another language (%%bash, %%html...), or a magic that takes text
    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 -- what IPython cannot translate cannot run either
        return None


def library_uses(cells: Iterable[tuple[str, str]], declared: Mapping[str, Sequence[str]]) -> list[LibraryUse]:
    """The uses of declared ``course_lib`` names in code cells ``(label, source)``, scanned in order.

    ``declared`` maps a part to the names that implement it (:func:`declared_library`).
    A use in the answer cell of a part (grade id ``<part>_answer``) counts against that part
    only, so that a name one part must write and another part must use (the training loop,
    say) is flagged only where it is a shortcut; a use in any other cell (one the student
    added, or a provided cell they changed) counts against every part that declares the name.
    Aliases carry across cells: an alias bound anywhere and used in a part's answer counts.
    Returns one :class:`LibraryUse` per part and name used (the first cell that uses it),
    in the order found. A cell that is not valid Python is skipped, as it cannot run; one nested
    too deeply to read whole counts for what was read of it.
    """
    if not declared:
        return []
    names = _Declared(declared)
    scanner = _Scanner()
    uses: list[LibraryUse] = []
    seen: set[tuple[str, str]] = set()
    for label, source in cells:
        code = python_source(source)
        if code is None:
            continue
        start = len(scanner.references)
        try:
            for statement in ast.parse(code).body:
                scanner.visit(statement)
        except (SyntaxError, ValueError):
            continue  # it cannot run either
        except RecursionError:  # absurdly nested code: what was read of the cell so far still counts
            pass
        own = parse_grade_id(label)
        own_part = own[0] if own is not None and own[1] == "answer" else None
        for path in scanner.references[start:]:
            for part, used in names.matches(path).items():
                if own_part is not None and part != own_part:
                    continue  # another part's answer may use what this part must write (a required fit, say)
                if (part, used) not in seen:
                    seen.add((part, used))
                    uses.append(LibraryUse(part, used, label))
    return uses


def scanned_cells(released: Mapping[str, Any], submitted: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The code cells of a submission that hold the student's code, as ``(label, source)`` in order.

    Left out: the cells that nbgrader restores from the released exercise before they run
    (graded test cells and other locked cells, by grade id), and code cells the student
    did not change (the same source as a code cell of the release that is not an answer cell).
    """
    restored, provided = set(), set()
    for cell in released.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if meta.get("solution"):
            continue
        if meta.get("grade_id") and (meta.get("grade") or meta.get("locked")):
            restored.add(meta["grade_id"])
        if cell.get("cell_type") == "code":
            provided.add(cell_source(cell).strip())
    found = []
    for i, cell in enumerate(submitted.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        source = cell_source(cell)
        if meta.get("grade_id") in restored or source.strip() in provided:
            continue
        found.append((cell_label(cell, i), source))
    return found
