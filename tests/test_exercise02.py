"""Exercise 02's own static checks, beyond the standard that every exercise follows (``test_exercise_standard.py``).

Its round trip through the grader (full marks, a real zero, plausible wrong answers losing the points of their
parts, answers that call the library flagged) is in ``test_grade_command02.py``.
"""

from __future__ import annotations

from notebook_source import graded_cells, load_solution

NB = load_solution("02_sparse_coding_autoencoders")


def test_the_reference_objectives_of_dictionary_learning_hold_on_the_patches_the_library_gives_today():
    """The visible and hidden tests of part 4 compare with the objectives of a correct run on the whitened patches of
    ``course_lib.data.load_image_patches``; a change of those patches fails here, in seconds, not only in the slow
    runs of the whole notebook. (The references are regenerated from the answers of the solution notebook.)"""
    import math

    import torch
    from torch import nn

    namespace = {"math": math, "torch": torch, "nn": nn}
    answers = graded_cells(NB, "answer")
    for part in ("ista", "fista", "dictionary_update", "dictionary_learning"):
        exec(answers[f"{part}_answer"], namespace)
    exec(graded_cells(NB, "test")["dictionary_learning_test"], namespace)
