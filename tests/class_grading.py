"""Building a class of submissions from an exercise's nbgrader source, for the tests of ``course grade``.

A submission is the released exercise (what ``course release`` writes) with some answer cells replaced: by the
answers of the solution notebook (a perfect student), by the files of a fixture folder (wrong answers, answers that
call the library), or left as released (an untouched exercise). Shared by ``tests/test_grade_command*.py``.

``GradedClassChecks`` is what every exercise's graded class checks: a topic's ``tests/test_grade_commandNN.py``
gives its wrong answers and their expected scores as a ``GradedClass`` and subclasses it as ``TestGradedClass``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_lib.cli import main
from course_lib.instructor.class_grading import read_grades_csv
from course_lib.instructor.grading import parts_of
from course_lib.instructor.release import render_exercises


def cell_grade_id(cell: dict) -> str | None:
    """The nbgrader grade id of a cell, None for a cell that nbgrader does not know."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answer_sources(solution: Path) -> dict[str, str]:
    """The source of every answer cell of a solution notebook, by grade id."""
    nb = json.loads(solution.read_text(encoding="utf-8"))
    return {cell_grade_id(c): "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}


def released_exercise(solution: Path) -> dict:
    """The exercise that ``course release`` makes of a solution notebook, as a notebook dict."""
    return json.loads(render_exercises([solution])[solution.stem])


def with_sources(nb: dict, sources: Mapping[str, str]) -> dict:
    """A copy of ``nb`` whose cells with the given grade ids get the given sources (each id must exist)."""
    nb = copy.deepcopy(nb)
    found = set()
    for cell in nb["cells"]:
        if cell_grade_id(cell) in sources:
            cell["source"] = sources[cell_grade_id(cell)]
            found.add(cell_grade_id(cell))
    assert found == set(sources), set(sources) - found
    return nb


def without_cell(nb: dict, grade_id: str) -> dict:
    """A copy of ``nb`` without the cell of that grade id."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if cell_grade_id(c) != grade_id]
    return nb


def insert_cell_after(nb: dict, grade_id: str, source: str) -> dict:
    """A copy of ``nb`` with a new code cell of the student's after the cell of that grade id."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb["cells"]) if cell_grade_id(c) == grade_id)
    nb["cells"].insert(index + 1, {"cell_type": "code", "execution_count": None, "id": "added-by-student",
                                   "metadata": {}, "outputs": [], "source": source})
    return nb


def save_notebook(path: Path, nb: dict | str) -> None:
    """Write a notebook dict (or any text: a damaged file) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8")


def fixture_answers(folder: Path, parts: Iterable[str]) -> dict[str, str]:
    """The answer cell ``<part>_answer`` of each part, read from ``folder / <part>.py``."""
    return {f"{part}_answer": (folder / f"{part}.py").read_text(encoding="utf-8") for part in parts}


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and modification time of every file under ``folder``: what shows that nothing was modified."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- one exercise's class, graded once


@dataclass(frozen=True)
class GradedClass:
    """Five students of one exercise (``solution``, its nbgrader source) and the scores they should get.

    ``perfect`` has the answers of the solution notebook, ``untouched`` is the released exercise, ``wrong_odd`` and
    ``wrong_even`` have the plausible wrong answers of ``wrong / <part>.py`` for the parts ``wrong_odd`` and
    ``wrong_even`` (together every part, each once), and ``library_caller`` has the answers of ``library / <part>.py``,
    which use the library names ``library_uses[part]`` (as the grader spells them). ``expected_parts[student]`` is
    the score of every part of a wrong student that is not full marks (or that is worth stating).
    ``needs_data``: the exercise trains on a dataset of ``COURSE_DATA_DIR`` (skipped without it).
    ``cell_timeout`` is in seconds per cell.
    """

    solution: Path
    wrong: Path
    wrong_odd: tuple[str, ...]
    wrong_even: tuple[str, ...]
    expected_parts: Mapping[str, Mapping[str, float]]
    library: Path
    library_uses: Mapping[str, list[str]]
    needs_data: bool = False
    cell_timeout: int = 120
    points: float = 30

    def part_points(self) -> dict[str, float]:
        """The points of every part, in the order of the exercise."""
        return {name: part.points for name, part in parts_of(self.solution).items()}

    def expected_scores(self, student: str) -> dict[str, float]:
        """The score of every part for ``student`` (full marks but where ``expected_parts`` says otherwise)."""
        return {**self.part_points(), **self.expected_parts.get(student, {})}

    def grade(self, root: Path) -> dict:
        """Write the five submissions under ``root`` and grade them by ``course grade --jobs 2``: the output folder,
        exit code, seconds and the rows of ``grades.csv`` by student."""
        exercise = released_exercise(self.solution)
        perfect = with_sources(exercise, answer_sources(self.solution))
        subs = root / "submissions"
        save_notebook(subs / "perfect.ipynb", perfect)
        save_notebook(subs / "untouched.ipynb", exercise)
        save_notebook(subs / "wrong_odd.ipynb", with_sources(perfect, fixture_answers(self.wrong, self.wrong_odd)))
        save_notebook(subs / "wrong_even.ipynb", with_sources(perfect, fixture_answers(self.wrong, self.wrong_even)))
        save_notebook(subs / "library_caller.ipynb",
                      with_sources(perfect, fixture_answers(self.library, self.library_uses)))
        out = root / "out"
        start = time.perf_counter()
        code = main(["grade", str(self.solution), str(subs), "--out", str(out), "--jobs", "2",
                     "--timeout", str(self.cell_timeout), "--notebook-timeout", "600"])
        return {"out": out, "code": code, "seconds": time.perf_counter() - start,
                "rows": read_grades_csv(out / "grades.csv")}


class GradedClassChecks:
    """What every exercise's graded class must show; a topic's subclass sets ``graded`` (its ``GradedClass``)."""

    graded: GradedClass

    @pytest.fixture(scope="class")
    @classmethod
    def topic_class(cls, tmp_path_factory):
        """The class graded once by ``course grade --jobs 2`` (``GradedClass.grade``)."""
        from course_lib.data.download import cache_dir, data_dirs

        if cls.graded.needs_data and data_dirs() == [cache_dir()]:
            pytest.skip(f"COURSE_DATA_DIR is not set: grading {cls.graded.solution.stem} trains on a real dataset")
        return cls.graded.grade(tmp_path_factory.mktemp(cls.graded.solution.stem))

    def test_the_wrong_answers_cover_every_part_once_and_the_expected_totals_add_up(self):
        graded, parts = self.graded, self.graded.part_points()
        assert sum(parts.values()) == graded.points
        assert sorted(graded.wrong_odd + graded.wrong_even) == sorted(parts), (
            "every part is wrong in exactly one of the two students")
        assert {p.stem for p in graded.wrong.glob("*.py")} == set(parts)
        assert {p.stem for p in graded.library.glob("*.py")} == set(graded.library_uses)
        for student, wrong in (("wrong_odd", graded.wrong_odd), ("wrong_even", graded.wrong_even)):
            scores = graded.expected_scores(student)
            assert all(scores[part] < parts[part] for part in wrong), f"{student}: a wrong part that loses nothing"
            assert set(graded.expected_parts[student]) <= set(parts)

    @pytest.mark.slow
    def test_each_student_gets_the_expected_status_and_score_part_by_part(self, topic_class):
        graded, rows, parts = self.graded, topic_class["rows"], self.graded.part_points()
        assert topic_class["code"] == 0
        assert {s: r["status"] for s, r in rows.items()} == {
            "perfect": "graded", "untouched": "graded", "wrong_odd": "graded", "wrong_even": "graded",
            "library_caller": "graded-with-warnings"}
        assert list(rows["perfect"]) == ["student", "status", *parts, "total", "max", "message"]
        assert all(r["max"] == f"{graded.points:g}" for r in rows.values())
        for student in ("perfect", "wrong_odd", "wrong_even", "library_caller"):
            expected = graded.expected_scores(student)
            assert {p: float(rows[student][p]) for p in parts} == expected, student
            assert float(rows[student]["total"]) == sum(expected.values()), student
        assert {p: rows["untouched"][p] for p in parts} == {p: "0" for p in parts}
        assert rows["untouched"]["total"] == "0"

    @pytest.mark.slow
    def test_answers_that_call_the_library_pass_and_are_flagged_by_part_and_name(self, topic_class):
        row, uses = topic_class["rows"]["library_caller"], self.graded.library_uses
        for part, names in uses.items():
            for name in names:
                assert f"part {part}: the answer uses {name}, which implements it" in row["message"], row["message"]
        assert row["message"].count("which implements it") == sum(len(names) for names in uses.values())
