"""``course grade``: a whole class graded with one command, every student with a status, nothing lost.

A synthetic class is built from topic 01's notebooks (the exercise with the answers of the solution notebook
filled in, the untouched exercise, two students whose wrong parts together cover every part, a MADE that leaks
only where the hidden tests look, a truncated file, a duplicate and a missing student) and graded end to end
through the command; each student's exact score and status is checked, part by part. What damaged, endless or
hostile submissions do to the grader is checked on the toy assignment, which also covers the rest cheaply:
layouts, zips, re-runs, limits, usage errors. The student bundle of ``course release --zip`` is checked for leaks.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from class_grading import (
    answer_sources,
    cell_grade_id,
    fixture_answers,
    insert_cell_after,
    released_exercise,
    save_notebook,
    tree_digest,
    with_sources,
    without_cell,
)

from course_lib.cli import main
from course_lib.instructor.class_grading import classify, read_grades_csv, resolve_assignment
from course_lib.instructor.grading import cell_errors, parts_of, reference_answer, submission_warnings
from course_lib.instructor.grading_process import GradingJob, GradingOutcome

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "00_toy_assignment.ipynb"
REPO = Path(__file__).resolve().parents[1]
TOPIC = REPO / "solutions" / "01_likelihood_models.ipynb"
CELL_TIMEOUT = 60
"""Seconds per cell in the class run: far above the slowest cell of topic 01 (a few seconds), even on a busy machine."""


# --------------------------------------------------------------------------- building submissions


def _grade(*args: str | Path) -> int:
    return main(["grade", *[str(a) for a in args]])


ENDLESS = "while True:  # never ends\n    pass\n"


# --------------------------------------------------------------------------- topic 01: the class

WRONG = FIXTURES / "exercise01_wrong"
"""Wrong answers to the parts of topic 01, one file per part (``made_leaks.py``: a MADE whose only mistake leaks)."""

LIBRARY = FIXTURES / "exercise01_library"
"""Answers to three parts of topic 01 that call the library's implementation of the part, in three forms."""
LIBRARY_PARTS = {"histogram": "course_lib.models.histogram_mle",
                 "logistic": "course_lib.models.autoregressive.logistic_mixture.discretized_logistic_mixture_log_prob",
                 "rgb": "course_lib.models.pixelcnn_mask"}

WRONG_ODD = ("histogram", "made", "pixelcnn_train", "sampling")
WRONG_EVEN = ("logistic", "made_train", "pixelcnn", "rgb")
DEPENDS_ON = {"made_train": "made", "pixelcnn_train": "pixelcnn"}
"""A training part trains the student's own model of the part before it, so a wrong model costs both parts."""


def _wrong(*parts: str) -> dict[str, str]:
    return fixture_answers(WRONG, parts)


def _library_answers() -> dict[str, str]:
    return fixture_answers(LIBRARY, LIBRARY_PARTS)


def _lost_with(wrong: tuple[str, ...]) -> set[str]:
    """The parts that answers wrong in ``wrong`` cost: those parts, and the training parts of their models."""
    return set(wrong) | {part for part, model in DEPENDS_ON.items() if model in wrong}


@pytest.fixture(scope="module")
def topic_class(tmp_path_factory):
    """Topic 01's synthetic class, graded once by ``course grade --jobs 2``; (folders, exit code, seconds).

    Five students are graded in full: the reference answers (the released exercise with the answers of the
    solution notebook), the untouched exercise, two students with complementary wrong parts (``WRONG_ODD``,
    ``WRONG_EVEN``: every part is wrong in exactly one of them) and one whose MADE leaks only for orderings that
    the visible checks do not try. The others cost no grading: a truncated file, a student with two notebooks, a
    student of the roster who handed in nothing. What a damaged, endless or hostile submission does to the
    grader needs no real exercise: ``damaged_class`` checks it on the toy assignment.
    """
    from course_lib.data.download import cache_dir, data_dirs

    if data_dirs() == [cache_dir()]:
        pytest.skip("COURSE_DATA_DIR is not set: grading topic 01 trains on binarized MNIST")
    root = tmp_path_factory.mktemp("topic01")
    exercise = released_exercise(TOPIC)
    perfect = with_sources(exercise, answer_sources(TOPIC))
    subs = root / "submissions"
    save_notebook(subs / "perfect.ipynb", perfect)
    save_notebook(subs / "untouched.ipynb", exercise)
    save_notebook(subs / "wrong_odd.ipynb", with_sources(perfect, _wrong(*WRONG_ODD)))
    save_notebook(subs / "wrong_even.ipynb", with_sources(perfect, _wrong(*WRONG_EVEN)))
    save_notebook(subs / "leaky_made.ipynb",
                  with_sources(perfect, {"made_answer": (WRONG / "made_leaks.py").read_text()}))
    save_notebook(subs / "library_caller.ipynb", with_sources(perfect, _library_answers()))
    text = json.dumps(perfect, indent=1)
    save_notebook(subs / "truncated.ipynb", text[: len(text) // 2])
    save_notebook(subs / "dup.ipynb", perfect)
    save_notebook(subs / "dup" / "01_likelihood_models.ipynb", perfect)
    roster = root / "roster.csv"
    roster.write_text("student,name\n" + "".join(f"{s},Student {s}\n" for s in (
        "perfect", "untouched", "wrong_odd", "wrong_even", "leaky_made", "library_caller", "truncated", "dup",
        "absent")))
    before = tree_digest(subs)
    out = root / "out"
    start = time.perf_counter()
    code = _grade(TOPIC, subs, "--out", out, "--jobs", "2", "--timeout", CELL_TIMEOUT, "--notebook-timeout", "300",
                  "--roster", roster)
    seconds = time.perf_counter() - start
    return {"root": root, "subs": subs, "out": out, "code": code, "seconds": seconds, "before": before,
            "rows": read_grades_csv(out / "grades.csv"), "roster": roster}


def _points(parts: set[str] | tuple[str, ...] = ()) -> float:
    """Topic 01's points of the given parts (all parts by default)."""
    return sum(part.points for name, part in parts_of(TOPIC).items() if not parts or name in parts)


EXPECTED = {
    # student: (status, total); topic 01 has 30 points
    "perfect": ("graded", "30"),
    "untouched": ("graded", "0"),
    "wrong_odd": ("graded", "12"),  # loses histogram 3, made 5 and made_train 4, pixelcnn_train 3, sampling 3
    "wrong_even": ("graded", "11"),  # loses logistic 4, made_train 4, pixelcnn 5 and pixelcnn_train 3, rgb 3
    "leaky_made": ("graded", "27"),  # loses the 3 points of made_test_2, where the hidden causality test is
    "library_caller": ("graded-with-warnings", "30"),  # passes through the library in 3 parts: flagged, not zeroed
    "truncated": ("not-a-notebook", ""),
    "dup": ("duplicate", ""),
    "absent": ("missing", ""),
}


def test_library_calls_in_three_parts_are_flagged_by_part_and_name(topic_class):
    row = topic_class["rows"]["library_caller"]
    assert row["status"] == "graded-with-warnings", row
    for part, name in LIBRARY_PARTS.items():
        assert f"part {part}: the answer uses {name}, which implements it" in row["message"], row["message"]
    assert row["message"].count("which implements it") == len(LIBRARY_PARTS), row["message"]


@pytest.mark.slow
def test_with_library_copies_zero_exactly_the_three_parts_that_call_the_library_score_0(tmp_path):
    from course_lib.instructor.class_grading import autograde

    perfect = with_sources(released_exercise(TOPIC), answer_sources(TOPIC))
    submission = tmp_path / "library_caller.ipynb"
    save_notebook(submission, with_sources(perfect, _library_answers()))
    grades = autograde(TOPIC, {"library_caller": submission}, tmp_path / "out", jobs=1, timeout=CELL_TIMEOUT,
                       library_copies="zero")
    assert grades.students["library_caller"].status == "graded-with-warnings"
    full = {name: float(part.points) for name, part in parts_of(TOPIC).items()}
    assert grades.part_scores("library_caller") == {**full, **{part: 0.0 for part in LIBRARY_PARTS}}


def test_the_topic_01_exercise_has_eight_parts_and_30_points():
    parts = parts_of(TOPIC)
    assert list(parts) == ["histogram", "logistic", "made", "made_train", "pixelcnn", "pixelcnn_train", "sampling",
                           "rgb"]
    assert _points() == 30
    assert sorted(WRONG_ODD + WRONG_EVEN) == sorted(parts), "every part is wrong in exactly one of the two students"
    assert {p.stem for p in WRONG.glob("*.py")} == set(parts) | {"made_leaks"}
    assert 30 - _points(_lost_with(WRONG_ODD)) == float(EXPECTED["wrong_odd"][1])
    assert 30 - _points(_lost_with(WRONG_EVEN)) == float(EXPECTED["wrong_even"][1])


@pytest.mark.slow
def test_the_class_is_graded_with_each_students_exact_score_and_status(topic_class):
    rows = topic_class["rows"]
    assert topic_class["code"] == 0
    assert {s: (r["status"], r["total"]) for s, r in rows.items()} == EXPECTED
    assert all(r["max"] == "30" for r in rows.values())


@pytest.mark.slow
def test_grades_csv_has_a_column_per_part_and_a_wrong_part_loses_exactly_its_points(topic_class):
    """Each part is wrong in exactly one of wrong_odd and wrong_even; each loses its wrong parts' points and those of
    the training parts whose model it got wrong (``DEPENDS_ON``), nothing else. A wrong training part with a right
    model (made_train in wrong_even, pixelcnn_train in wrong_odd) costs only its own points."""
    rows = topic_class["rows"]
    parts = parts_of(TOPIC)
    assert list(rows["perfect"]) == ["student", "status", *parts, "total", "max", "message"]
    full = {p: f"{part.points:g}" for p, part in parts.items()}
    assert {p: rows["perfect"][p] for p in parts} == full
    assert {p: rows["untouched"][p] for p in parts} == {p: "0" for p in parts}
    for student, wrong in (("wrong_odd", WRONG_ODD), ("wrong_even", WRONG_EVEN)):
        assert {p: rows[student][p] for p in parts} == {**full, **{p: "0" for p in _lost_with(wrong)}}, student
    assert {p: rows["leaky_made"][p] for p in parts} == {**full, "made": "2"}
    # not graded: empty, not a zero that looks real
    assert {p: rows["truncated"][p] for p in parts} == {p: "" for p in parts}


@pytest.mark.slow
def test_a_made_that_leaks_fails_the_hidden_causality_test(topic_class):
    """made_leaks.py passes every visible check (the orderings they try are their own inverses); the hidden test of
    random orderings finds an output that depends on a later input."""
    graded = topic_class["out"] / "course" / "autograded" / "leaky_made" / "01_likelihood_models" / TOPIC.name
    errors = cell_errors(graded)
    assert list(errors) == ["made_test_2"]
    assert "which is generated at the same time or later" in errors["made_test_2"]
    released = json.dumps(released_exercise(TOPIC))
    assert "generated at the same time or later" not in released  # the message comes from the hidden tests


@pytest.mark.slow
def test_a_truncated_file_and_a_duplicate_are_named_so(topic_class):
    rows = topic_class["rows"]
    assert "not valid JSON" in rows["truncated"]["message"]
    assert "dup.ipynb" in rows["dup"]["message"] and "dup/01_likelihood_models.ipynb" in rows["dup"]["message"]


@pytest.mark.slow
def test_the_gradebook_and_feedback_hold_every_graded_student(topic_class):
    from nbgrader.api import Gradebook, MissingEntry

    out, rows = topic_class["out"], topic_class["rows"]
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        for student, row in rows.items():
            if row["total"]:
                assert gb.find_submission("01_likelihood_models", student).score == float(row["total"])
            else:
                with pytest.raises(MissingEntry):
                    gb.find_submission("01_likelihood_models", student)
    for student, row in rows.items():
        page = out / "feedback" / f"{student}.html"
        assert page.is_file() == (row["status"] != "missing"), student
    assert "30.0" in (out / "feedback" / "perfect.html").read_text()  # nbgrader's feedback, with the score
    assert "not-a-notebook" in (out / "feedback" / "truncated.html").read_text()


@pytest.mark.slow
def test_the_submissions_are_never_modified_and_a_rerun_regrades_nothing(topic_class, capsys):
    subs, out = topic_class["subs"], topic_class["out"]
    assert tree_digest(subs) == topic_class["before"]
    csv_before = (out / "grades.csv").read_text()
    start = time.perf_counter()
    capsys.readouterr()
    code = _grade(TOPIC, subs, "--out", out, "--jobs", "2", "--timeout", CELL_TIMEOUT, "--notebook-timeout", "300",
                  "--roster", topic_class["roster"])
    printed = capsys.readouterr().out
    graded = sum(status.startswith("graded") for status, _ in EXPECTED.values())
    assert code == 0 and f"grading 0 of {len(EXPECTED)}" in printed and f"{graded} unchanged" in printed, printed
    assert (out / "grades.csv").read_text() == csv_before
    assert time.perf_counter() - start < 60
    assert tree_digest(subs) == topic_class["before"]


# --------------------------------------------------------------------------- the toy assignment: damaged submissions
#
# What a damaged, endless or hostile submission does to the grader does not depend on what an exercise asks: a class of
# the toy assignment (square, 1 point; mean, 3 points), graded in seconds, shows it. Its students edit a locked test,
# loop forever, swallow the interrupt, kill their kernel, hand in half a file, delete a test cell, tamper with the files
# of the grading, hand in two notebooks or nothing.

TOY_ASSIGNMENT = TOY.stem
TOY_CELL_TIMEOUT = 10
"""Seconds per cell in the damaged class: far above what the toy's cells take, so that only endless loops reach it."""
TOY_NOTEBOOK_TIMEOUT = 120

SWALLOWS = ("while True:\n    try:\n        while True:\n            pass\n"
            "    except:  # also catches the interrupt\n        pass\n")
KILLS = "import os\n\nos._exit(1)\n"
TAMPERS = """\
import pathlib

# where an nbgrader course keeps the gradebook and the other students' notebooks, relative to a notebook it grades
guesses = ["../../../gradebook.db", "../../../submitted/perfect/{a}/{a}.ipynb", "../../perfect/{a}/{a}.ipynb",
           "../../../autograded/perfect/{a}/{a}.ipynb"]
clobbered = []
for guess in guesses:
    path = pathlib.Path(guess.format(a="ASSIGNMENT"))
    if path.exists():
        path.write_text("overwritten by a student")
        clobbered.append(guess)
pathlib.Path("../../../gradebook.db").write_text("not a gradebook")  # inside the private copy, harmless
print("clobbered:", clobbered)
print("solution visible:", pathlib.Path("../../../source/ASSIGNMENT/ASSIGNMENT.ipynb").exists())
""".replace("ASSIGNMENT", TOY_ASSIGNMENT)

DAMAGED = ("perfect", "edited_test", "endless", "swallowed", "exits", "truncated", "deleted_test", "hostile", "dup",
           "absent")


@pytest.fixture(scope="module")
def damaged_class(tmp_path_factory):
    """The toy class graded once by ``course grade --jobs 2``; (folders, exit code, rows)."""
    root = tmp_path_factory.mktemp("damaged")
    answers = answer_sources(TOY)
    perfect = with_sources(released_exercise(TOY), answers)
    wrong_square = {"square_answer": "def square(x):\n    return 2 * x\n"}
    subs = root / "submissions"
    save_notebook(subs / "perfect.ipynb", perfect)
    edited = {**wrong_square, "square_test": "pass\n", "mean_test": "assert True\n"}
    save_notebook(subs / "edited_test.ipynb", with_sources(perfect, edited))
    save_notebook(subs / "endless.ipynb", with_sources(perfect, {"square_answer": ENDLESS + answers["square_answer"]}))
    save_notebook(subs / "swallowed.ipynb",
                  with_sources(perfect, {"square_answer": SWALLOWS + answers["square_answer"]}))
    save_notebook(subs / "exits.ipynb", with_sources(perfect, {"square_answer": KILLS}))
    text = json.dumps(perfect, indent=1)
    save_notebook(subs / "truncated.ipynb", text[: len(text) // 2])
    save_notebook(subs / "deleted_test.ipynb", without_cell(perfect, "mean_test_hidden"))
    save_notebook(subs / "hostile.ipynb", insert_cell_after(perfect, "intro", TAMPERS))
    save_notebook(subs / "dup.ipynb", perfect)
    save_notebook(subs / "dup" / f"{TOY_ASSIGNMENT}.ipynb", perfect)
    roster = root / "roster.csv"
    roster.write_text("student,name\n" + "".join(f"{s},Student {s}\n" for s in DAMAGED))
    before = tree_digest(subs)
    out = root / "out"
    args = (TOY, subs, "--out", out, "--jobs", "2", "--timeout", TOY_CELL_TIMEOUT,
            "--notebook-timeout", TOY_NOTEBOOK_TIMEOUT, "--roster", roster)
    code = _grade(*args)
    return {"subs": subs, "out": out, "code": code, "before": before, "args": args,
            "rows": read_grades_csv(out / "grades.csv")}


EXPECTED_DAMAGED = {
    # student: (status, total); the toy has 4 points, square 1 and mean 3
    "perfect": ("graded", "4"),
    "edited_test": ("graded-with-warnings", "3"),  # square wrong, its edited test restored: 0 of 1
    "endless": ("timeout", "3"),  # square never defined: 0 of 1; mean graded after it
    "swallowed": ("timeout", ""),
    "exits": ("kernel-died", ""),
    "truncated": ("not-a-notebook", ""),
    "deleted_test": ("graded-with-warnings", "4"),
    "hostile": ("graded", "4"),
    "dup": ("duplicate", ""),
    "absent": ("missing", ""),
}


@pytest.mark.slow
def test_each_damaged_submission_gets_its_status_and_exact_score(damaged_class):
    rows = damaged_class["rows"]
    assert damaged_class["code"] == 0
    assert {s: (r["status"], r["total"]) for s, r in rows.items()} == EXPECTED_DAMAGED
    assert all(r["max"] == "4" for r in rows.values())
    # not graded: empty, not a zero that looks real
    assert (rows["exits"]["square"], rows["exits"]["mean"]) == ("", "")


@pytest.mark.slow
def test_an_edited_locked_test_is_restored_and_the_original_runs(damaged_class):
    row = damaged_class["rows"]["edited_test"]
    assert (row["square"], row["mean"]) == ("0", "3")  # the original test ran against the wrong answer
    assert "square_test was edited" in row["message"] and "mean_test was edited" in row["message"]


@pytest.mark.slow
def test_a_deleted_test_cell_is_put_back_and_graded(damaged_class):
    row = damaged_class["rows"]["deleted_test"]
    assert row["mean"] == "3" and "mean_test_hidden was deleted" in row["message"]


@pytest.mark.slow
def test_an_endless_loop_times_out_and_the_later_cells_are_still_graded(damaged_class):
    row = damaged_class["rows"]["endless"]
    assert (row["square"], row["mean"]) == ("0", "3") and "square_answer" in row["message"]


@pytest.mark.slow
def test_a_loop_that_swallows_the_interrupt_is_stopped_and_the_run_finishes(damaged_class):
    row = damaged_class["rows"]["swallowed"]
    assert "did not stop when interrupted" in row["message"] and "square_answer" in row["message"]
    state = json.loads((damaged_class["out"] / "state.json").read_text())
    assert state["students"]["swallowed"]["seconds"] < TOY_NOTEBOOK_TIMEOUT  # stopped by the per-cell limit


@pytest.mark.slow
def test_a_kernel_that_dies_a_truncated_file_and_a_duplicate_are_named_so(damaged_class):
    rows = damaged_class["rows"]
    assert "kernel died" in rows["exits"]["message"] and "square_answer" in rows["exits"]["message"]
    assert "not valid JSON" in rows["truncated"]["message"]
    assert "dup.ipynb" in rows["dup"]["message"] and f"dup/{TOY_ASSIGNMENT}.ipynb" in rows["dup"]["message"]


@pytest.mark.slow
def test_a_tampering_student_reaches_neither_the_gradebook_nor_another_students_notebook(damaged_class):
    from nbgrader.api import Gradebook

    out = damaged_class["out"]
    hostile = out / "course" / "autograded" / "hostile" / TOY_ASSIGNMENT / f"{TOY_ASSIGNMENT}.ipynb"
    graded = json.loads(hostile.read_text())
    printed = "".join("".join(o.get("text", "")) for c in graded["cells"] for o in c.get("outputs", []))
    assert "clobbered: []" in printed and "solution visible: False" in printed
    perfect = out / "course" / "autograded" / "perfect" / TOY_ASSIGNMENT / f"{TOY_ASSIGNMENT}.ipynb"
    assert json.loads(perfect.read_text())["cells"]  # still a notebook
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(TOY_ASSIGNMENT, s).score for s in ("perfect", "hostile", "endless")}
    assert scores == {"perfect": 4.0, "hostile": 4.0, "endless": 3.0}


@pytest.mark.slow
def test_the_gradebook_and_feedback_hold_every_damaged_submission_that_was_graded(damaged_class):
    from nbgrader.api import Gradebook, MissingEntry

    out, rows = damaged_class["out"], damaged_class["rows"]
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        for student, row in rows.items():
            if row["total"]:
                assert gb.find_submission(TOY_ASSIGNMENT, student).score == float(row["total"])
            else:
                with pytest.raises(MissingEntry):
                    gb.find_submission(TOY_ASSIGNMENT, student)
    for student, row in rows.items():
        page = out / "feedback" / f"{student}.html"
        assert page.is_file() == (row["status"] != "missing"), student
    assert "4.0" in (out / "feedback" / "perfect.html").read_text()  # nbgrader's feedback, with the score
    assert "kernel-died" in (out / "feedback" / "exits.html").read_text()


@pytest.mark.slow
def test_damaged_submissions_are_never_modified_and_a_rerun_regrades_none(damaged_class, capsys):
    subs, out = damaged_class["subs"], damaged_class["out"]
    assert tree_digest(subs) == damaged_class["before"]
    csv_before = (out / "grades.csv").read_text()
    start = time.perf_counter()
    capsys.readouterr()
    code = _grade(*damaged_class["args"])
    printed = capsys.readouterr().out
    assert code == 0 and f"grading 0 of {len(DAMAGED)}" in printed and "7 unchanged" in printed
    assert (out / "grades.csv").read_text() == csv_before
    assert time.perf_counter() - start < 30
    assert tree_digest(subs) == damaged_class["before"]


# --------------------------------------------------------------------------- the toy assignment: the rest


@pytest.fixture(scope="module")
def toy_perfect() -> dict:
    return reference_answer(released_exercise(TOY), json.loads(TOY.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory, toy_perfect):
    """The toy class graded once: ann (perfect, a file), ben (untouched, in a folder), cat (in the roster only)."""
    root = tmp_path_factory.mktemp("toy")
    subs = root / "class"
    save_notebook(subs / "ann.ipynb", toy_perfect)
    save_notebook(subs / "ben" / "my work.ipynb", released_exercise(TOY))
    (root / "roster.txt").write_text("ann\nben\ncat\n")
    out = root / "out"
    code = _grade(TOY, subs, "--out", out, "--jobs", "2", "--timeout", "30", "--roster", root / "roster.txt")
    return {"root": root, "subs": subs, "out": out, "code": code, "csv": (out / "grades.csv").read_text()}


def test_toy_class_grades_csv(toy_class):
    assert toy_class["code"] == 0
    check = json.loads((toy_class["out"] / "reference" / "selfcheck.json").read_text())
    assert (check["passed"], check["status"], check["total"], check["failures"]) == (True, "graded", 4.0, {})
    assert toy_class["csv"].splitlines() == [
        "student,status,square,mean,total,max,message",
        "ann,graded,1,3,4,4,",
        "ben,graded,0,0,0,4,",
        "cat,missing,,,,4,\"in the roster, but nothing submitted\"",
    ]


def test_a_rerun_regrades_only_what_changed_and_force_regrades_all(toy_class, toy_perfect, capsys):
    subs, out, roster = toy_class["subs"], toy_class["out"], toy_class["root"] / "roster.txt"
    args = (TOY, subs, "--out", out, "--jobs", "2", "--timeout", "30", "--roster", roster)
    capsys.readouterr()
    assert _grade(*args) == 0
    printed = capsys.readouterr().out
    assert "grading 0 of 3" in printed and "self-check" not in printed  # nobody graded: no self-check either
    assert (out / "grades.csv").read_text() == toy_class["csv"]
    save_notebook(subs / "ben" / "my work.ipynb", toy_perfect)  # ben hands in again
    assert _grade(*args) == 0
    printed = capsys.readouterr().out
    assert "grading 1 of 3" in printed and "ben: graded, 4/4" in printed and "ann:" not in printed
    assert "self-check: full marks (4/4)" in printed  # run again: the environment may have changed since
    assert read_grades_csv(out / "grades.csv")["ben"]["total"] == "4"
    assert _grade(*args, "--force") == 0
    assert "grading 2 of 3" in capsys.readouterr().out


def test_a_zip_of_nbgraders_layout_is_graded(tmp_path, toy_perfect):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/submitted/dan/00_toy_assignment/00_toy_assignment.ipynb", json.dumps(toy_perfect))
        zf.writestr("export/submitted/dan/other_assignment/x.ipynb", "{}")
    assert _grade(TOY, archive, "--out", tmp_path / "out", "--jobs", "1", "--timeout", "30") == 0
    rows = read_grades_csv(tmp_path / "out" / "grades.csv")
    assert {s: (r["status"], r["total"]) for s, r in rows.items()} == {"dan": ("graded", "4")}
    assert (tmp_path / "out" / "feedback" / "dan.html").is_file()


def test_a_notebook_past_the_whole_notebook_limit_is_stopped(tmp_path, toy_perfect):
    save_notebook(tmp_path / "class" / "eve.ipynb", with_sources(toy_perfect, {"square_answer": ENDLESS}))
    start = time.perf_counter()
    assert _grade(TOY, tmp_path / "class", "--out", tmp_path / "out", "--timeout", "120",
                  "--notebook-timeout", "5") == 0
    assert time.perf_counter() - start < 60
    row = read_grades_csv(tmp_path / "out" / "grades.csv")["eve"]
    assert (row["status"], row["total"], row["square"]) == ("timeout", "", "")
    assert "5 s limit for a whole notebook" in row["message"]


def test_a_submission_the_grader_cannot_grade_is_an_error_exits_1_and_is_retried(tmp_path, toy_perfect, capsys):
    broken = copy.deepcopy(toy_perfect)
    for cell in broken["cells"]:
        if cell_grade_id(cell) == "square_test":
            cell["metadata"]["nbgrader"]["points"] = "lots"  # nbgrader's metadata, damaged
    save_notebook(tmp_path / "class" / "fay.ipynb", broken)
    args = (TOY, tmp_path / "class", "--out", tmp_path / "out", "--jobs", "1")
    assert _grade(*args) == 1
    row = read_grades_csv(tmp_path / "out" / "grades.csv")["fay"]
    assert (row["status"], row["total"]) == ("error", "") and "could not convert string to float" in row["message"]
    assert "could not grade fay" in capsys.readouterr().err
    assert _grade(*args) == 1
    assert "grading 1 of 1" in capsys.readouterr().out  # an error is never kept as a result


def test_a_second_grade_into_the_same_folder_is_refused_while_the_first_runs(tmp_path, toy_perfect, capsys):
    from filelock import FileLock

    save_notebook(tmp_path / "class" / "ann.ipynb", toy_perfect)
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(out / ".lock"):  # what a `course grade` writing into out holds
        assert _grade(TOY, tmp_path / "class", "--out", out) == 2
        assert f"another `course grade` is writing into {out}" in capsys.readouterr().err
        assert not (out / "grades.csv").exists()
    assert _grade(TOY, tmp_path / "class", "--out", out, "--jobs", "1") == 0  # once it is done, the folder is free
    assert read_grades_csv(out / "grades.csv")["ann"]["total"] == "4"


def test_grading_jobs_and_outcomes_go_through_json_unchanged(tmp_path):
    job = GradingJob(student="ann", assignment="00_toy_assignment", template=str(tmp_path / "template"),
                     workdir=str(tmp_path / "w"), dbdir=str(tmp_path / "db"), files={"00_toy.ipynb": "/x/ann.ipynb"},
                     notebooks=["00_toy.ipynb"], result=str(tmp_path / "ann.result.json"), timeout=30.0,
                     notebook_timeout=90.0, sent=1.5)
    assert GradingJob.from_json(job.to_json()) == job
    outcome = GradingOutcome("ann", success=True, scores={"square_test": 1.0}, warnings=["cell x was edited"],
                             last_cell="mean_test", timed_out=["cell 3"], autograded={"00_toy.ipynb": "/a"},
                             feedback={"00_toy.ipynb": "/f"}, seconds=2.5, phases={"setup": 0.5})
    assert GradingOutcome.from_json(outcome.to_json()) == outcome
    assert GradingOutcome.from_json('{"student": "ben"}') == GradingOutcome("ben")
    with pytest.raises(ValueError, match="no field.*points"):
        GradingOutcome.from_json('{"student": "ben", "points": 3}')
    with pytest.raises(ValueError, match="not a complete GradingJob"):
        GradingJob.from_json('{"student": "ben"}')


@pytest.mark.parametrize("outcome, status, words", [
    (GradingOutcome("a", success=True), "graded", ""),
    (GradingOutcome("a", success=True, warnings=["test cell t was edited"]), "graded-with-warnings", "t was edited"),
    (GradingOutcome("a", success=True, timed_out=["loop_answer"]), "timeout", "loop_answer ran past the 20 s"),
    (GradingOutcome("a", limit_hit=True, last_cell="loop_answer"), "timeout", "300 s limit for a whole notebook"),
    (GradingOutcome("a", log="DeadKernelError: Kernel died", last_cell="x_answer"), "kernel-died", "in x_answer"),
    (GradingOutcome("a", error="CellTimeoutError", last_cell="x_answer"), "timeout", "did not stop when interrupted"),
    (GradingOutcome("a", log="[ERROR] boom\nValueError: bad points"), "error", "could not grade it: ValueError"),
    (GradingOutcome.crash("a", "Traceback...\nOSError: disk full\n"), "error", "grader failed: OSError: disk full"),
], ids=["graded", "warnings", "cell-timeout", "notebook-timeout", "kernel-died", "stuck", "nbgrader-error", "crash"])
def test_each_outcome_gets_its_status(outcome, status, words):
    assert classify(outcome, timeout=20, notebook_timeout=300)[0] == status
    assert words in classify(outcome, timeout=20, notebook_timeout=300)[1]


def test_submission_warnings_name_what_was_tampered_with(toy_perfect):
    released = released_exercise(TOY)
    assert submission_warnings(released, toy_perfect) == []
    tampered = with_sources(toy_perfect, {"square_test": "pass"})
    tampered["cells"].append(copy.deepcopy(tampered["cells"][4]))  # square_answer twice
    tampered = without_cell(tampered, "mean_test_hidden")
    for cell in tampered["cells"]:
        if cell_grade_id(cell) == "mean_test":
            cell["metadata"]["nbgrader"]["points"] = 20
    assert submission_warnings(released, tampered) == [
        "cell square_answer appears 2 times (only the last one was graded)",
        "test cell square_test was edited (the original was graded)",
        "the points of mean_test were changed (the original points were used)",
        "test cell mean_test_hidden was deleted (the original was put back and graded)",
    ]


def test_usage_errors_exit_2_before_grading(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    save_notebook(tmp_path / "class" / "ann.ipynb", released_exercise(TOY))
    assert _grade("no_such_assignment", tmp_path / "class", "--solutions", REPO / "solutions") == 2
    assert _grade(TOY, tmp_path / "nowhere") == 2
    assert _grade(TOY, tmp_path / "class", "--out", tmp_path / "class" / "grades") == 2  # inside the submissions
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert _grade(TOY, tmp_path / "class", "--out", tmp_path / "mine") == 2  # not an output folder of ours
    assert _grade(TOY, tmp_path / "class", "--jobs", "0") == 2
    err = capsys.readouterr().err
    assert "not an assignment" in err and "no submissions" in err and "contain each other" in err
    assert "not written by `course grade`" in err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "class").iterdir()) == ["ann.ipynb"]


def test_grade_help_names_the_self_check_and_the_new_options(capsys):
    assert main(["grade", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "self-check" in text and "reference answer" in text
    assert "--feedback {summary,full}" in text and "--library-copies {warn,zero}" in text
    assert "1 the reference answer did not score full marks" in text


def test_an_assignment_is_named_by_its_stem_a_prefix_or_a_path():
    solutions = REPO / "solutions"
    assert resolve_assignment("01_likelihood_models", solutions) == solutions / "01_likelihood_models.ipynb"
    assert resolve_assignment("01", solutions) == solutions / "01_likelihood_models.ipynb"
    assert resolve_assignment(TOY, solutions) == TOY
    with pytest.raises(FileNotFoundError, match="01_likelihood_models"):
        resolve_assignment("99", solutions)


# --------------------------------------------------------------------------- the student bundle


def test_release_zip_holds_what_students_need_and_no_answers(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    bundle = tmp_path / "bundle.zip"
    assert main(["release", "--check", "--zip", str(bundle)]) == 0
    assert f"wrote the student bundle {bundle}" in capsys.readouterr().out
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        texts = {name: zf.read(name).decode("utf-8", errors="replace") for name in names}
    assert all(name.startswith("dgm-course/") for name in names)
    inside = {name.removeprefix("dgm-course/") for name in names}
    for wanted in ("exercises/01_likelihood_models.ipynb", "lectures/01_likelihood_models.ipynb", "README.md",
                   "course_lib/__init__.py", "course_lib/cli.py", "pyproject.toml", "constraints.txt",
                   "environment.yml", "Makefile"):
        assert wanted in inside, wanted
    assert not [n for n in inside if n.startswith(("solutions/", "tests/", "course_lib/instructor/"))
                or "/solutions/" in n]
    for name, text in texts.items():
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
    assert texts["dgm-course/exercises/01_likelihood_models.ipynb"] == (
        REPO / "exercises" / "01_likelihood_models.ipynb").read_text(encoding="utf-8")
    first = bundle.read_bytes()
    shutil.move(bundle, tmp_path / "first.zip")
    assert main(["release", "--check", "--zip", str(bundle)]) == 0
    assert bundle.read_bytes() == first  # the same files give the same bytes
