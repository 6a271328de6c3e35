"""``course grade`` end to end on the checked fixture assignment: the self-check, the environment, library copies,
feedback without hidden tests.

The fixture (``fixtures/solutions/00_checked_assignment.ipynb``) has three parts: ``histogram``
(3 points), ``units`` (1) and ``chars`` (3, two of them in a test cell that loads Tiny
Shakespeare with ``course_lib.data``), and declares the ``course_lib`` names that implement
each part. A small class is graded three times:

1. with the data hidden (an empty ``COURSE_DATA_DIR``, and a ``COURSE_CACHE_DIR`` that cannot
   be created, so that no download is tried): the self-check stops it, exit 1, naming the cell;
2. with the data back, into the same folder, with the defaults (``--library-copies warn``,
   ``--feedback summary``): perfect, copier (uses the library for two parts) and wrong (a wrong
   histogram);
3. with ``--library-copies zero --feedback full``: the same three and own_data, whose answer
   points the data folder to where it lies on the student's laptop.

A fourth run shows that a reference answer which uses its own declared names fails the
self-check. Students are built from the reference answer, as the grader builds it.
"""

from __future__ import annotations

import contextlib
import copy
import html
import io
import json
import re
from pathlib import Path

import pytest

from course_lib.cli import main
from course_lib.instructor.class_grading import read_grades_csv
from course_lib.instructor.feedback import hidden_test_lines
from course_lib.instructor.grading import reference_answer
from course_lib.instructor.release import render_exercises

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
CHECKED = FIXTURES / "solutions" / "00_checked_assignment.ipynb"
HIDDEN = sorted(line for line in hidden_test_lines([CHECKED]) if len(line) >= 10)
"""Every line of the hidden tests long enough to mean something, to look for in the feedback pages."""

COPIER = {
    "histogram_answer": "import course_lib.models as m\nimport torch\n\n\ndef fit_histogram(x, n_bins):\n"
                        "    return m.histogram_mle(torch.as_tensor(np.asarray(x)), n_bins).numpy()\n",
    "chars_answer": "from course_lib.data import *\n\n\ndef distinct_chars(text):\n"
                    "    return list(CharVocab(text).chars)\n",
}
WRONG = {"histogram_answer": "def fit_histogram(x, n_bins):\n    return np.full(n_bins, 1.0 / n_bins)\n"}
NOISY = {"histogram_answer": "import sys\nimport warnings\n\n\ndef fit_histogram(x, n_bins):\n"
                             "    warnings.warn('converting the data with np.asarray')\n"
                             "    print('counting the bins', file=sys.stderr)\n"
                             "    counts = np.bincount(np.asarray(x).reshape(-1), minlength=n_bins)\n"
                             "    return counts / counts.sum()\n"}
"""A right answer that writes a warning and a line to stderr each time a test cell calls it."""
OWN_DATA = {"chars_answer": "import os\n\n# where the data lies on my laptop\n"
                            "os.environ['COURSE_DATA_DIR'] = os.environ['COURSE_CACHE_DIR'] = '/dev/null/alice/data'\n"
                            "\n\ndef distinct_chars(text):\n    return sorted(set(text))\n"}


def _with(nb: dict, sources: dict[str, str]) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell["source"] = sources.pop(grade_id)
    assert not sources, f"no cells {sources}"
    return nb


def _run(*args: str | Path) -> dict:
    """``course grade`` with the arguments; its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["grade", *[str(a) for a in args]])
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def page_text(page: Path) -> str:
    """What a browser shows of a feedback page: the tags dropped, the entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from course_lib.data.download import find_local

    if find_local("tiny-shakespeare") is None:
        pytest.skip("Tiny Shakespeare is not available offline (set COURSE_DATA_DIR): the fixture's test loads it")
    root = tmp_path_factory.mktemp("checked")
    exercise = json.loads(render_exercises([CHECKED])[CHECKED.stem])
    perfect = reference_answer(exercise, json.loads(CHECKED.read_text()))
    subs, strict_subs = root / "class", root / "strict-class"
    for folder in (subs, strict_subs):
        folder.mkdir()
        (folder / "perfect.ipynb").write_text(json.dumps(perfect))
        (folder / "copier.ipynb").write_text(json.dumps(_with(perfect, dict(COPIER))))
        (folder / "wrong.ipynb").write_text(json.dumps(_with(perfect, dict(WRONG))))
    (subs / "noisy.ipynb").write_text(json.dumps(_with(perfect, dict(NOISY))))
    (strict_subs / "own_data.ipynb").write_text(json.dumps(_with(perfect, dict(OWN_DATA))))
    out, strict = root / "out", root / "strict"
    (root / "empty-data").mkdir()
    (root / "a-file").write_text("not a folder")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(root / "empty-data"))
        mp.setenv("COURSE_CACHE_DIR", str(root / "a-file" / "cache"))  # cannot be created: no download is tried
        hidden = _run(CHECKED, subs, "--out", out, "--jobs", "2", "--timeout", "60")
        hidden["files"] = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != ".lock")
    default = _run(CHECKED, subs, "--out", out, "--jobs", "2", "--timeout", "60")
    zero = _run(CHECKED, strict_subs, "--out", strict, "--jobs", "2", "--timeout", "60", "--library-copies", "zero",
                "--feedback", "full")
    return {"hidden": hidden, "default": default, "zero": zero, "out": out, "strict": strict,
            "rows": read_grades_csv(out / "grades.csv"), "strict_rows": read_grades_csv(strict / "grades.csv")}


# --------------------------------------------------------------------------- the self-check


def test_with_the_data_hidden_the_self_check_stops_before_grading_anyone_and_names_the_cell(runs):
    hidden = runs["hidden"]
    assert hidden["code"] == 1
    assert "no student was graded" in hidden["err"]
    assert "chars_test_corpus: the course's data could not be found: DataFetchError" in hidden["err"]
    assert "grading" not in hidden["out"].replace("self-check: grading", "")  # no student line, no summary
    assert hidden["files"] == ["reference", "reference/00_checked_assignment.ipynb",
                               "reference/selfcheck.json"]  # no grades.csv, feedback, course or state
    # what it wrote then was replaced by the run with the data back
    check = json.loads((runs["out"] / "reference" / "selfcheck.json").read_text())
    assert check["passed"] is True and check["total"] == check["max_total"] == 7.0


def test_with_the_data_present_the_same_folder_grades_the_class(runs):
    default = runs["default"]
    assert default["code"] == 0, default["err"]
    assert "self-check: full marks (7/7)" in default["out"]
    assert default["out"].index("self-check") < default["out"].index("grading 4 of 4")
    assert {s: (r["status"], r["total"]) for s, r in runs["rows"].items()} == {
        "perfect": ("graded", "7"), "copier": ("graded-with-warnings", "7"), "wrong": ("graded", "4"),
        "noisy": ("graded", "7")}
    assert "reference" not in runs["rows"]


def test_a_students_own_environment_failure_is_an_error_with_no_points(runs):
    row = runs["strict_rows"]["own_data"]
    assert (row["status"], row["total"], row["histogram"], row["chars"]) == ("error", "", "", "")
    assert "chars_test_corpus failed because the course's data could not be found (DataFetchError" in row["message"]
    assert runs["zero"]["code"] == 1 and "could not grade own_data" in runs["zero"]["err"]
    assert "Status: error" in page_text(runs["strict"] / "feedback" / "own_data.html")


def test_a_reference_answer_that_uses_its_declared_names_fails_the_self_check(tmp_path):
    nb = json.loads(CHECKED.read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "units_answer":
            cell["source"] = ("from course_lib.metrics import nats_to_bits_per_dim\n\n\n"
                              "def nats_to_bits(nats, n_dims):\n    ### BEGIN SOLUTION\n"
                              "    return nats_to_bits_per_dim(nats, n_dims)\n    ### END SOLUTION\n")
    source = tmp_path / "00_checked_assignment.ipynb"
    source.write_text(json.dumps(nb))
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "ann.ipynb").write_text(json.dumps(nb))
    run = _run(source, tmp_path / "class", "--out", tmp_path / "out", "--jobs", "1", "--timeout", "60")
    assert run["code"] == 1
    assert "got status graded-with-warnings and 7 of 7 points" in run["err"]
    assert ("units_answer: part units: the answer uses course_lib.metrics.nats_to_bits_per_dim, which implements it"
            in run["err"])
    assert not (tmp_path / "out" / "grades.csv").exists()


# --------------------------------------------------------------------------- library copies


def test_library_copies_warn_names_each_part_and_name_and_keeps_the_points(runs):
    row = runs["rows"]["copier"]
    assert (row["histogram"], row["units"], row["chars"]) == ("3", "1", "3")
    assert row["message"] == ("part histogram: the answer uses course_lib.models.histogram_mle, which implements it;"
                              " part chars: the answer uses course_lib.data.CharVocab, which implements it")


def test_library_copies_zero_takes_exactly_the_flagged_parts_points(runs):
    rows = runs["strict_rows"]
    copier = rows["copier"]
    assert (copier["status"], copier["histogram"], copier["units"], copier["chars"], copier["total"]) == (
        "graded-with-warnings", "0", "1", "0", "1")
    assert "course_lib.models.histogram_mle, which implements it; it scores 0" in copier["message"]
    assert {s: rows[s]["total"] for s in ("perfect", "wrong")} == {"perfect": "7", "wrong": "4"}  # the others alike


# --------------------------------------------------------------------------- feedback


def test_feedback_pages_hold_no_hidden_test_by_default(runs):
    assert HIDDEN, "the fixture should have hidden tests to look for"
    pages = sorted((runs["out"] / "feedback").glob("*.html"))
    assert [p.stem for p in pages] == ["copier", "noisy", "perfect", "wrong"]
    for page in pages:
        shown = page_text(page)
        assert [line for line in HIDDEN if line in shown] == [], page.name
    wrong = page_text(runs["out"] / "feedback" / "wrong.html")
    assert "Total: 4.0 / 7.0 points" in wrong
    assert "fit_histogram([0, 1, 1, 3], 4) should be [0.25, 0.5, 0, 0.25], got [0.25 0.25 0.25 0.25]" in wrong
    assert "2-D data, empty bins" in wrong  # the hidden assertion's own message, not its code
    assert "Total: 7.0 / 7.0 points" in page_text(runs["out"] / "feedback" / "perfect.html")


def test_a_warning_written_to_stderr_by_a_right_answer_costs_no_points(runs):
    """nbgrader alone scores a test cell 0 when anything reaches stderr; the grader keeps the text as output."""
    row = runs["rows"]["noisy"]
    assert (row["histogram"], row["total"]) == ("3", "7")
    graded = json.loads((runs["out"] / "course" / "autograded" / "noisy" / CHECKED.stem / CHECKED.name).read_text())
    test = next(c for c in graded["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "histogram_test")
    streams = [(o["name"], "".join(o["text"])) for o in test["outputs"] if o["output_type"] == "stream"]
    assert [name for name, _ in streams] == ["stdout"] * len(streams) and streams
    assert "converting the data with np.asarray" in "".join(text for _, text in streams)
    assert "counting the bins" in "".join(text for _, text in streams)


def test_feedback_full_is_nbgraders_pages_with_the_hidden_tests(runs):
    for student in ("perfect", "wrong"):
        shown = page_text(runs["strict"] / "feedback" / f"{student}.html")
        assert [line for line in HIDDEN if line not in shown] == [], student
