import os

import pytest

from course_lib.files import atomic_file, atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "grades.csv"
    atomic_write(path, "a,b\n")
    atomic_write(path, "c,d\n")
    assert path.read_text() == "c,d\n"
    assert os.listdir(path.parent) == ["grades.csv"]


def test_atomic_write_of_bytes_and_readable_mode(tmp_path):
    path = atomic_write(tmp_path / "x.bin", b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert path.stat().st_mode & 0o044  # readable by others, unlike a raw temporary file


def test_an_error_while_writing_keeps_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_file(tmp_path / "x", "a"):
            pass
    with pytest.raises(TypeError, match="bytes or str"):
        atomic_write(tmp_path / "x", 3)


def test_atomic_path_keeps_the_suffix_and_replaces_only_on_a_clean_exit(tmp_path):
    from course_lib.files import atomic_path

    dest = tmp_path / "mnist" / "t10k.gz"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".") and tmp.name.endswith(".gz")
        tmp.write_bytes(b"verified")
    assert dest.read_bytes() == b"verified"
    with pytest.raises(ValueError, match="wrong content"):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"corrupt")
            raise ValueError("wrong content")
    assert dest.read_bytes() == b"verified"
    assert os.listdir(dest.parent) == ["t10k.gz"]
