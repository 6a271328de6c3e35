"""Finding each student's submission in the shapes an LMS or JupyterHub hands an instructor."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from course_lib.instructor.submissions import discover, notebook_problem, read_roster, student_id, unpack_zip

NB = "01_x.ipynb"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _found(path: Path, tmp: Path, roster=None, names=(NB,)) -> dict:
    found = discover(path, "01_x", list(names), roster, tmp / "work")
    return {sid: (sorted(n for n in s.files), s.problem) for sid, s in found.submissions.items()}


def test_a_folder_of_student_notebooks(tmp_path):
    root = _write(tmp_path / "class", {"alice.ipynb": NOTEBOOK, "bob.ipynb": NOTEBOOK, "README.txt": "hi"})
    found = discover(root, "01_x", [NB])
    assert {sid: s.files[NB].name for sid, s in found.submissions.items()} == {"alice": "alice.ipynb",
                                                                                "bob": "bob.ipynb"}
    assert found.layout == "files" and found.ignored == ["class/README.txt"]


def test_a_folder_of_student_folders_with_any_notebook_name(tmp_path):
    root = _write(tmp_path / "class", {"alice/01_x.ipynb": NOTEBOOK, "bob/attempt 2/my work.ipynb": NOTEBOOK,
                                       "bob/.ipynb_checkpoints/01_x-checkpoint.ipynb": NOTEBOOK,
                                       "carol/notes.pdf": "%PDF"})
    assert _found(root, tmp_path) == {"alice": ([NB], None), "bob": ([NB], None), "carol": ([], "not-a-notebook")}
    found = discover(root, "01_x", [NB])
    assert "class/carol/notes.pdf" in found.submissions["carol"].message


def test_nbgraders_submitted_layout_at_the_course_or_submitted_folder(tmp_path):
    course = _write(tmp_path / "course", {"submitted/alice/01_x/01_x.ipynb": NOTEBOOK,
                                          "submitted/bob/01_x/01_x.ipynb": NOTEBOOK,
                                          "submitted/bob/02_other/02_other.ipynb": NOTEBOOK,
                                          "source/01_x/01_x.ipynb": NOTEBOOK})
    for path in (course, course / "submitted"):
        found = discover(path, "01_x", [NB])
        assert found.layout == "nbgrader"
        assert {sid: s.files[NB] for sid, s in found.submissions.items()} == {
            "alice": course / "submitted/alice/01_x/01_x.ipynb", "bob": course / "submitted/bob/01_x/01_x.ipynb"}


@pytest.mark.parametrize("wrapper", ["", "export/", "export/inner/"])
def test_a_zip_of_any_layout_is_unpacked_elsewhere_and_a_wrapping_folder_opened(tmp_path, wrapper):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{wrapper}alice.ipynb", NOTEBOOK)
        zf.writestr(f"{wrapper}bob/01_x.ipynb", NOTEBOOK)
        zf.writestr(f"__MACOSX/{wrapper}._alice.ipynb", "junk")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _found(archive, tmp_path) == {"alice": ([NB], None), "bob": ([NB], None)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "work"])  # unpacked into the workdir


def test_a_zip_of_one_students_folder_is_that_student(tmp_path):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice/01_x.ipynb", NOTEBOOK)
    assert _found(archive, tmp_path) == {"alice": ([NB], None)}


def test_a_zip_entry_that_escapes_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.ipynb", NOTEBOOK)
    # zipfile keeps the name as written; unpacking must not follow it out of the target
    with pytest.raises(ValueError, match="outside"):
        unpack_zip(archive, tmp_path / "target")
    assert not (tmp_path / "outside.ipynb").exists()


def test_two_notebooks_for_one_student_are_a_duplicate_naming_both(tmp_path):
    root = _write(tmp_path / "class", {"alice.ipynb": NOTEBOOK, "alice/01_x.ipynb": NOTEBOOK,
                                       "bob/a.ipynb": NOTEBOOK, "bob/b.ipynb": NOTEBOOK, "carol.ipynb": NOTEBOOK})
    found = discover(root, "01_x", [NB])
    assert {sid: s.problem for sid, s in found.submissions.items()} == {
        "alice": "duplicate", "bob": "duplicate", "carol": None}
    assert "class/alice.ipynb" in found.submissions["alice"].message
    assert "class/alice/01_x.ipynb" in found.submissions["alice"].message
    assert found.layout == "mixed"


def test_names_become_ids_and_names_that_collide_are_a_duplicate(tmp_path):
    assert student_id("Ada Lovelace") == "Ada_Lovelace" and student_id("bob@uni.edu") == "bob@uni.edu"
    with pytest.raises(ValueError):
        student_id("  ..  ")
    root = _write(tmp_path / "class", {"Ada Lovelace.ipynb": NOTEBOOK, "Ada_Lovelace.ipynb": NOTEBOOK})
    assert _found(root, tmp_path) == {"Ada_Lovelace": ([], "duplicate")}


def test_a_roster_adds_missing_students(tmp_path):
    root = _write(tmp_path / "class", {"alice.ipynb": NOTEBOOK, "zoe.ipynb": NOTEBOOK})
    assert _found(root, tmp_path, roster=["alice", "bob"]) == {
        "alice": ([NB], None), "bob": ([], "missing"), "zoe": ([NB], None)}


def test_rosters_as_lines_or_csv(tmp_path):
    (tmp_path / "plain.txt").write_text("# the class\nalice\n\nbob\n")
    assert read_roster(tmp_path / "plain.txt") == ["alice", "bob"]
    (tmp_path / "lms.csv").write_text("Name,Student,Email\nAlice A,alice,a@x\nBob B,bob,b@x\n")
    assert read_roster(tmp_path / "lms.csv") == ["alice", "bob"]
    (tmp_path / "twice.txt").write_text("alice\nalice\n")
    with pytest.raises(ValueError, match="twice"):
        read_roster(tmp_path / "twice.txt")
    (tmp_path / "nocol.csv").write_text("name,group\nA,1\n")
    with pytest.raises(ValueError, match="no column"):
        read_roster(tmp_path / "nocol.csv")


def test_notebook_problem_tells_a_notebook_from_other_files(tmp_path):
    good = tmp_path / "good.ipynb"
    good.write_text(NOTEBOOK)
    assert notebook_problem(good) is None
    truncated = tmp_path / "cut.ipynb"
    truncated.write_text(NOTEBOOK[: len(NOTEBOOK) // 2])
    assert "not valid JSON" in notebook_problem(truncated)
    not_nb = tmp_path / "list.ipynb"
    not_nb.write_text("[1, 2]")
    assert "not a valid notebook" in notebook_problem(not_nb)
    empty = tmp_path / "empty.ipynb"
    empty.write_text("")
    assert "empty" in notebook_problem(empty)
    binary = tmp_path / "bin.ipynb"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text file" in notebook_problem(binary)


def test_discovery_only_reads_the_submissions(tmp_path):
    root = _write(tmp_path / "class", {"alice.ipynb": NOTEBOOK, "bob/01_x.ipynb": NOTEBOOK})
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}
    discover(root, "01_x", [NB], ["carol"])
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()} == before
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["alice.ipynb", "bob", "bob/01_x.ipynb"]
