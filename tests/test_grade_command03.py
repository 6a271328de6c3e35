"""``course grade`` on topic 03's exercise: a small class graded end to end, each student's score checked part by part.

Five students, graded in one ``course grade`` run: the reference answers (the released exercise with the answers of
the solution notebook filled in), the untouched exercise, two students with plausible wrong answers whose parts
together cover every part (an acceptance probability without the proposal's ratio, a "parallel" Ising update of all
sites at once, MALA accepting as if its proposal were symmetric, a free energy that overflows, a CD loss of the wrong
sign, persistent chains that are never stored back, an AIS estimate from the mean log-weight, an ESS without Geyer's
truncation), and one whose answers call the library's implementation of three parts. What damaged, endless or
hostile submissions do to the grader does not depend on the exercise: ``test_grade_command.py`` checks it on the toy
assignment.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from class_grading import answer_sources, fixture_answers, released_exercise, save_notebook, with_sources

from course_lib.cli import main
from course_lib.instructor.class_grading import read_grades_csv
from course_lib.instructor.grading import parts_of

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
TOPIC = REPO / "solutions" / "03_energy_models_mcmc.ipynb"
CELL_TIMEOUT = 120
"""Seconds per cell: far above the slowest cell of topic 03 (a few seconds), even on a busy machine."""

WRONG = FIXTURES / "exercise03_wrong"
"""A plausible wrong answer to each part of topic 03, one file per part."""

LIBRARY = FIXTURES / "exercise03_library"
"""Answers to three parts of topic 03 that call the library's implementation of the part, in three forms."""
LIBRARY_USES = {"mh": ["course_lib.models.energy.sampling.acceptance_probability"],
                "rbm": ["course_lib.models.RBM"],
                "ess": ["course_lib.metrics.autocorrelation"]}
"""The library names each of those answers uses, as the grader spells them (through the answer's own imports)."""

WRONG_ODD = ("mh", "langevin", "cd", "ais")
WRONG_EVEN = ("ising", "rbm", "pcd", "ess")

EXPECTED_PARTS = {
    # points per part: mh 4, ising 4, langevin 4, rbm 4, cd 4, pcd 4, ais 3, ess 3
    "wrong_odd": {
        "mh": 0,  # the probability without q's ratio fails mh_test; the chains drift from the target (mh_test_2)
        "langevin": 2,  # ULA and its variance are right (langevin_test, 2); MALA is biased (langevin_test_2, 2)
        "cd": 0,  # the loss of the wrong sign fails cd_test, and training lowers the likelihood (cd_test_2)
        "ais": 0,  # the geometric mean of the weights fails ais_test and is biased for importance sampling
    },
    "wrong_even": {
        "ising": 2,  # the neighbour sums are right (ising_test, 2); the parallel update is no sweep (ising_test_2, 2)
        "rbm": 2,  # the free energy overflows (rbm_test, 2); the conditionals and samplers are right (rbm_test_2, 2)
        "pcd": 0,  # chains that restart from noise follow neither p(v) (pcd_test) nor train well (pcd_test_2)
        "ess": 1,  # the autocorrelations are right (ess_test, 1); the untruncated sum is not an ESS (ess_test_2, 2)
    },
}
"""The score of every part for the two students with wrong answers (parts not listed: full marks)."""


def _points() -> dict[str, float]:
    return {name: part.points for name, part in parts_of(TOPIC).items()}


def _expected_scores(student: str) -> dict[str, float]:
    return {**_points(), **EXPECTED_PARTS.get(student, {})}


@pytest.fixture(scope="module")
def topic_class(tmp_path_factory):
    """Topic 03's class, graded once by ``course grade --jobs 2``: the folders, exit code, seconds and rows."""
    root = tmp_path_factory.mktemp("topic03")
    exercise = released_exercise(TOPIC)
    perfect = with_sources(exercise, answer_sources(TOPIC))
    subs = root / "submissions"
    save_notebook(subs / "perfect.ipynb", perfect)
    save_notebook(subs / "untouched.ipynb", exercise)
    save_notebook(subs / "wrong_odd.ipynb", with_sources(perfect, fixture_answers(WRONG, WRONG_ODD)))
    save_notebook(subs / "wrong_even.ipynb", with_sources(perfect, fixture_answers(WRONG, WRONG_EVEN)))
    save_notebook(subs / "library_caller.ipynb", with_sources(perfect, fixture_answers(LIBRARY, LIBRARY_USES)))
    out = root / "out"
    start = time.perf_counter()
    code = main(["grade", str(TOPIC), str(subs), "--out", str(out), "--jobs", "2", "--timeout", str(CELL_TIMEOUT),
                 "--notebook-timeout", "600"])
    return {"out": out, "code": code, "seconds": time.perf_counter() - start,
            "rows": read_grades_csv(out / "grades.csv")}


def test_the_wrong_answers_cover_every_part_once_and_the_expected_totals_add_up():
    parts = _points()
    assert sum(parts.values()) == 30
    assert sorted(WRONG_ODD + WRONG_EVEN) == sorted(parts), "every part is wrong in exactly one of the two students"
    assert {p.stem for p in WRONG.glob("*.py")} == set(parts)
    assert {p.stem for p in LIBRARY.glob("*.py")} == set(LIBRARY_USES)
    for student, wrong in (("wrong_odd", WRONG_ODD), ("wrong_even", WRONG_EVEN)):
        scores = _expected_scores(student)
        assert all(scores[part] < parts[part] for part in wrong), f"{student}: a wrong part that loses nothing"
        assert set(EXPECTED_PARTS[student]) == set(wrong)


@pytest.mark.slow
def test_each_student_gets_the_expected_status_and_score_part_by_part(topic_class):
    rows = topic_class["rows"]
    parts = _points()
    assert topic_class["code"] == 0
    assert {s: r["status"] for s, r in rows.items()} == {
        "perfect": "graded", "untouched": "graded", "wrong_odd": "graded", "wrong_even": "graded",
        "library_caller": "graded-with-warnings"}
    assert list(rows["perfect"]) == ["student", "status", *parts, "total", "max", "message"]
    assert all(r["max"] == "30" for r in rows.values())
    for student in ("perfect", "wrong_odd", "wrong_even", "library_caller"):
        expected = _expected_scores(student)
        assert {p: float(rows[student][p]) for p in parts} == expected, student
        assert float(rows[student]["total"]) == sum(expected.values()), student
    assert {p: rows["untouched"][p] for p in parts} == {p: "0" for p in parts}
    assert rows["untouched"]["total"] == "0"


@pytest.mark.slow
def test_answers_that_call_the_library_pass_and_are_flagged_by_part_and_name(topic_class):
    row = topic_class["rows"]["library_caller"]
    for part, names in LIBRARY_USES.items():
        for name in names:
            assert f"part {part}: the answer uses {name}, which implements it" in row["message"], row["message"]
    assert row["message"].count("which implements it") == sum(len(names) for names in LIBRARY_USES.values())
