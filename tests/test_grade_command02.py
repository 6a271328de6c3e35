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

from pathlib import Path

from class_grading import GradedClass, GradedClassChecks

FIXTURES = Path(__file__).parent / "fixtures"
SOLUTION = Path(__file__).resolve().parents[1] / "solutions" / "02_sparse_coding_autoencoders.ipynb"

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


class TestGradedClass(GradedClassChecks):
    """Topic 02's class, graded once; the checks are those of every exercise's class (``GradedClassChecks``)."""

    graded = GradedClass(solution=SOLUTION, wrong=WRONG, wrong_odd=WRONG_ODD, wrong_even=WRONG_EVEN,
                         expected_parts=EXPECTED_PARTS, library=LIBRARY, library_uses=LIBRARY_USES, needs_data=True)
