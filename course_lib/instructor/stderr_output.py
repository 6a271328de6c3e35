"""Keep what a test cell writes to stderr as text, without costing the student the cell's points.

nbgrader gives a test cell no points as soon as one of its outputs is a ``stderr`` stream
(``nbgrader.utils.determine_grade``), even when every assertion passed. A warning raised by a
student's correct code while a test cell calls it (PyTorch's ``UserWarning`` on
``torch.tensor(a_tensor)``, a deprecation, a progress bar) would then silently zero the cell. The
grader runs :class:`StderrAsStdout` after the execution, just before the grades are saved: each
``stderr`` stream becomes a ``stdout`` stream with the same text, so that the student still sees
the warning in the feedback and the cell is graded on what decides it, its errors. A failing
assertion or any exception is an ``error`` output and still scores 0.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor


class StderrAsStdout(NbGraderPreprocessor):
    """Turn every ``stderr`` stream of a code cell into a ``stdout`` stream with the same text."""

    def preprocess_cell(self, cell, resources, index):
        if cell.get("cell_type") == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def autograde_preprocessors() -> list[type]:
    """nbgrader's autograde preprocessors with :class:`StderrAsStdout` just before the grades are saved."""
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import SaveAutoGrades

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if SaveAutoGrades not in default:
        raise RuntimeError(f"nbgrader's autograde preprocessors no longer include SaveAutoGrades: {default}")
    at = default.index(SaveAutoGrades)
    return [*default[:at], StderrAsStdout, *default[at:]]
