"""The environment is pinned in one place and the other descriptions agree with it."""

import re
import tomllib


def _pins(lines):
    pins = {}
    for line in lines:
        m = re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_direct_dependencies_are_pinned_exactly_and_torch_is_2_13(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    assert all("==" in d for d in deps), [d for d in deps if "==" not in d]
    assert "torch==2.13.0" in deps


def test_environment_yml_and_lock_agree_with_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    conda = _pins((repo / "environment.yml").read_text().splitlines())
    lock = _pins((repo / "constraints.txt").read_text().splitlines())
    assert conda == wanted
    for name, version in wanted.items():
        assert lock.get(name) == version, f"constraints.txt pins {name}=={lock.get(name)}, pyproject {version}"


def _imported_packages(folder) -> set[str]:
    """The top-level names of the packages that the Python files under ``folder`` import (relative imports left out)."""
    import ast

    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_third_party_package_that_is_imported_is_declared(repo):
    import sys
    from importlib.metadata import packages_distributions

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = set(_pins(project["dependencies"]))
    with_tests = declared | set(_pins(project["optional-dependencies"]["test"]))
    distributions = packages_distributions()
    for folder, allowed in (("course_lib", declared), ("benchmarks", declared), ("tests", with_tests)):
        local = {path.stem for path in (repo / folder).glob("*.py")}  # a folder's own modules, e.g. tests' helpers
        third_party = sorted(name for name in _imported_packages(repo / folder)
                             if name not in sys.stdlib_module_names and name not in ("course_lib", "__future__")
                             and name not in local)
        assert third_party, folder
        undeclared = {}
        for name in third_party:
            dists = {d.lower().replace("_", "-") for d in distributions.get(name, [])}
            if not dists & allowed:
                undeclared[name] = sorted(dists) or "no installed distribution"
        assert not undeclared, f"{folder}/ imports packages that pyproject.toml does not declare: {undeclared}"
