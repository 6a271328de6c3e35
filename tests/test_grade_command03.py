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

from pathlib import Path

from class_grading import GradedClass, GradedClassChecks

FIXTURES = Path(__file__).parent / "fixtures"
SOLUTION = Path(__file__).resolve().parents[1] / "solutions" / "03_energy_models_mcmc.ipynb"

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


class TestGradedClass(GradedClassChecks):
    """Topic 03's class, graded once; the checks are those of every exercise's class (``GradedClassChecks``)."""

    graded = GradedClass(solution=SOLUTION, wrong=WRONG, wrong_odd=WRONG_ODD, wrong_even=WRONG_EVEN,
                         expected_parts=EXPECTED_PARTS, library=LIBRARY, library_uses=LIBRARY_USES)

    def test_each_wrong_answer_costs_points_in_its_own_part_only(self):
        """The parts of topic 03 do not build on each other's answers: a wrong part costs no other part its points."""
        for student, wrong in (("wrong_odd", WRONG_ODD), ("wrong_even", WRONG_EVEN)):
            assert set(EXPECTED_PARTS[student]) == set(wrong), student

