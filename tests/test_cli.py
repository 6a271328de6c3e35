"""The ``course`` command: running notebooks into a results table, releasing, data, exit statuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``course run --profile smoke`` in a folder whose lectures/ holds a failing and a reporting notebook.

    The failing notebook sorts first, so the reporting one runs only if a failure does not stop the rest.
    """
    root = tmp_path_factory.mktemp("course")
    (root / "lectures").mkdir()
    for name in ("fails.ipynb", "records_result.ipynb"):
        shutil.copy(FIXTURES / "run" / name, root / "lectures" / name)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        code = main(["run", "--profile", "smoke"])
    finally:
        os.chdir(cwd)
    return root, code


def test_run_writes_the_executed_notebook_with_its_recorded_result(smoke_run):
    root, _ = smoke_run
    executed = root / "build" / "smoke" / "lectures" / "records_result.ipynb"
    assert executed.is_file()
    nb = json.loads(executed.read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"PROFILE": "smoke"}
    # the notebook's own asserts (profile in the environment, cwd = its folder) passed, and it recorded 42
    from course_lib.results import collect_results

    recorded = [(r["name"], r["value"], r["unit"]) for r in collect_results(executed)]
    assert recorded == [("toy answer", 42.0, "nats/image")]


def test_run_writes_a_results_table_with_the_recorded_value(smoke_run):
    root, _ = smoke_run
    table = (root / "build" / "smoke" / "results.md").read_text()
    row = next(line for line in table.splitlines() if "records_result" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["lectures/records_result.ipynb", "ok", "toy answer", "42", "nats/image"]
    assert float(cells[5]) > 0 and cells[6] == "smoke" and "torch" in cells[7]
    payload = json.loads((root / "build" / "smoke" / "results.json").read_text())
    assert [run["status"] for run in payload["runs"]] == ["failed", "ok"]


def test_a_failing_notebook_is_reported_failed_and_the_run_exits_1_while_the_others_still_run(smoke_run):
    root, code = smoke_run
    assert code == 1
    payload = json.loads((root / "build" / "smoke" / "results.json").read_text())
    failed, ok = payload["runs"]
    assert failed["notebook"] == "lectures/fails.ipynb"
    assert failed["error"].startswith("ValueError: deliberate failure in a test notebook")
    assert ok["status"] == "ok" and ok["results"][0]["value"] == 42.0
    assert (root / "build" / "smoke" / "lectures" / "fails.ipynb").is_file()  # kept, to see the error in context


def test_results_prints_the_table_of_an_earlier_run(smoke_run, capsys):
    root, _ = smoke_run
    assert main(["results", str(root / "build")]) == 0
    out = capsys.readouterr().out
    assert "| lectures/records_result.ipynb | ok | toy answer | 42 | nats/image |" in out
    assert "failed: ValueError: deliberate failure" in out


def test_a_cell_running_past_the_timeout_fails_its_notebook(tmp_path, capsys):
    nb = json.loads((FIXTURES / "run" / "fails.ipynb").read_text())
    nb["cells"][2]["source"] = "import time\ntime.sleep(60)"
    (tmp_path / "slow.ipynb").write_text(json.dumps(nb))
    assert main(["run", str(tmp_path / "slow.ipynb"), "--profile", "smoke", "--timeout", "2",
                 "--out", str(tmp_path / "build")]) == 1
    (run,) = json.loads((tmp_path / "build" / "smoke" / "results.json").read_text())["runs"]
    assert run["status"] == "failed" and "timed out" in run["error"] and run["seconds"] < 50


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run", "--profile", "huge"],
        ["run", "--timeout", "-3", "x.ipynb"],
        ["run", "no_such_notebook.ipynb"],
        ["results", "no_such_build_dir"],
        ["release", "--check"],  # no solutions/ in an empty folder
        ["data"],
    ],
    ids=["no-command", "unknown-profile", "negative-timeout", "missing-notebook", "missing-build", "no-solutions",
         "data-without-action"],
)
def test_wrong_usage_exits_2_with_a_message(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_run_without_notebooks_in_lectures_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--profile", "smoke"]) == 2
    assert "lectures/" in capsys.readouterr().err


def test_release_then_check_passes_and_check_fails_after_a_hand_edit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "solutions").mkdir()
    shutil.copy(FIXTURES / "solutions" / "00_toy_assignment.ipynb", tmp_path / "solutions")
    assert main(["release"]) == 0
    exercise = tmp_path / "exercises" / "00_toy_assignment.ipynb"
    assert exercise.is_file()
    assert main(["release", "--check"]) == 0
    exercise.write_text(exercise.read_text().replace("Two small graded parts", "Two graded parts"))
    before = exercise.read_bytes()
    capsys.readouterr()
    assert main(["release", "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert exercise.read_bytes() == before  # --check changes nothing


def test_data_list_names_every_dataset(capsys):
    from course_lib.data import download

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in download.DATASETS:
        assert name in out


def test_data_fetch_prints_the_verified_path(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(data_dir))
    assert main(["data", "fetch", "tiny-shakespeare"]) == 0
    out = capsys.readouterr().out
    assert str(data_dir / "tinyshakespeare" / "input.txt") in out


def test_data_fetch_of_an_unknown_name_exits_2_naming_it(capsys):
    assert main(["data", "fetch", "no-such-dataset"]) == 2
    assert "no-such-dataset" in capsys.readouterr().err


def test_python_dash_m_course_lib_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "course_lib", "run", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--profile" in done.stdout and "--timeout" in done.stdout


# --------------------------------------------------------------------------- the repository's lectures

REPO = Path(__file__).resolve().parents[1]
LECTURES = sorted((REPO / "lectures").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lecture_runs_headless_in_the_smoke_profile_and_reports_results(lecture, tmp_path):
    from course_lib.instructor.notebooks import run_notebooks

    (run,) = run_notebooks([lecture], out_dir=tmp_path, profile="smoke", log=None)
    assert run.status == "ok", f"{lecture.name} failed in the smoke profile: {run.error} (see {run.output})"
    assert run.results, f"{lecture.name} records no headline result (course_lib.record_result)"


SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs_headless_in_the_smoke_profile_with_every_test_passing(solution, tmp_path):
    """The worked solution is what self-learners re-run: under papermill, top to bottom, every assert holds."""
    from course_lib.instructor.notebooks import run_notebooks

    (run,) = run_notebooks([solution], out_dir=tmp_path, profile="smoke", log=None)
    assert run.status == "ok", f"{solution.name} failed in the smoke profile: {run.error} (see {run.output})"
