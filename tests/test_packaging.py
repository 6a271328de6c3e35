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
