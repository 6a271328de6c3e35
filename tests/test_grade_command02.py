"""``course grade`` on topic 02's exercise: a small class graded end to end, each student's score checked part by part.

Five students: the reference answers (the released exercise with the answers of the solution notebook filled in),
the untouched exercise, two students with plausible wrong answers whose parts together cover every part (ISTA
without the step 1/L, FISTA with a wrong momentum, a dictionary update that forgets to renormalise, dictionary
learning without the warm start, PCA without centring, a training loop that never zeroes its gradients, a
denoising autoencoder trained to reproduce its corrupted input, precision at k that counts the query itself),
and one whose answers call the library's implementation of three parts. What damaged, endless or hostile
submissions do to the grader does not depend on the exercise: ``test_grade_command.py`` checks it on the toy
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
TOPIC = REPO / "solutions" / "02_sparse_coding_autoencoders.ipynb"
CELL_TIMEOUT = 120
"""Seconds per cell: far above the slowest cell of topic 02 (a few seconds), even on a busy machine."""

WRONG = FIXTURES / "exercise02_wrong"
"""A plausible wrong answer to each part of topic 02, one file per part."""

LIBRARY = FIXTURES / "exercise02_library"
"""Answers to three parts of topic 02 that call the library's implementation of the part, in three forms."""
LIBRARY_USES = {"ista": ["course_lib.models.latent.sparse_coding.soft_threshold",
                         "course_lib.models.latent.sparse_coding.lipschitz_constant",
                         "course_lib.models.latent.sparse_coding.lasso_objective",
                         "course_lib.models.latent.sparse_coding.ista"],
                "pca": ["course_lib.models.PCA", "course_lib.metrics.principal_angles"],
                "retrieval": ["course_lib.metrics.hamming_distances", "course_lib.metrics.precision_at_k"]}
"""The library names each of those answers uses, as the grader spells them (through the answer's own imports)."""

WRONG_ODD = ("ista", "dictionary_update", "linear_ae", "retrieval")
WRONG_EVEN = ("fista", "dictionary_learning", "pca", "denoising")

EXPECTED_PARTS = {
    # points per part: ista 3, fista 4, dictionary_update 4, dictionary_learning 4, pca 4, linear_ae 4, denoising 4,
    # retrieval 3
    "wrong_odd": {
        "ista": 1,  # soft thresholding is right (ista_test, 1); the step without 1/L fails ista_test_2 (2)
        "fista": 0,  # the student's FISTA calls the wrong ISTA step: it diverges
        "dictionary_update": 0,  # atoms that are not rescaled fail both cells
        "dictionary_learning": 0,  # codes by the diverging FISTA, atoms that are not renormalised
        "pca": 4,
        "linear_ae": 1,  # the module is right (linear_ae_test, 1); its training diverges (linear_ae_test_2, 3)
        "denoising": 4,
        "retrieval": 1,  # Hamming distances are right (retrieval_test, 1); precision with exclude_self is not (2)
    },
    "wrong_even": {
        "ista": 3,
        "fista": 0,  # the iterates differ from step 2 on (fista_test), and 3000 steps do not reach the minimum
        "dictionary_update": 4,
        "dictionary_learning": 2,  # the objectives differ without the warm start (and FISTA's momentum is wrong
        # too); the planted dictionary is found all the same (dictionary_learning_test_2, 2)
        "pca": 2,  # without centring the directions are wrong (pca_test, 2); the principal angles are right (2)
        "linear_ae": 4,
        "denoising": 1,  # the corruption and the module are right (denoising_test, 1); the denoising error is not
    },
}
"""The score of every part for the two students with wrong answers (parts not listed: full marks)."""


# --------------------------------------------------------------------------- building submissions


def _points() -> dict[str, float]:
    return {name: part.points for name, part in parts_of(TOPIC).items()}


def _expected_scores(student: str) -> dict[str, float]:
    return {**_points(), **EXPECTED_PARTS.get(student, {})}


@pytest.fixture(scope="module")
def topic_class(tmp_path_factory):
    """Topic 02's class, graded once by ``course grade --jobs 2``: the folders, exit code, seconds and rows."""
    from course_lib.data.download import cache_dir, data_dirs

    if data_dirs() == [cache_dir()]:
        pytest.skip("COURSE_DATA_DIR is not set: grading topic 02 trains on MNIST")
    root = tmp_path_factory.mktemp("topic02")
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
        assert set(EXPECTED_PARTS[student]) <= set(parts)


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
