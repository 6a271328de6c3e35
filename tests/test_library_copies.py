"""Library copies: the scan finds every way of writing a use of a declared ``course_lib`` name, and nothing else.

The declarations of the checked fixture assignment are read and checked (a typo is an error at
``course release`` and when grading starts); the scan of a submission's code is tested form by
form on small cells. The end-to-end grades (``--library-copies warn`` and ``zero``) are in
``test_grader_checks.py``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from course_lib.instructor.grading import Assignment
from course_lib.instructor.library_copies import declared_library, library_uses, python_source, scanned_cells
from course_lib.instructor.release import library_problems

FIXTURES = Path(__file__).parent / "fixtures"
CHECKED = FIXTURES / "solutions" / "00_checked_assignment.ipynb"

DECLARED = {
    "made": ["course_lib.models.autoregressive.made.MADE", "course_lib.models.autoregressive.made.made_masks"],
    "pixelcnn": ["course_lib.models.autoregressive.pixelcnn"],
}


def _uses(*cells: str) -> list[tuple[str, str]]:
    """``(part, name)`` of each use found in the cells, scanned in order as one notebook."""
    return [(u.part, u.name) for u in library_uses([(f"cell {i}", src) for i, src in enumerate(cells)], DECLARED)]


# --------------------------------------------------------------------------- each form of a use


@pytest.mark.parametrize("cells, used", [
    (["from course_lib.models import MADE\n"], "course_lib.models.MADE"),
    (["import course_lib.models as m\nmodel = m.MADE(4, [8])\n"], "course_lib.models.MADE"),
    (["from course_lib import models\nmasks = models.autoregressive.made.made_masks([1, 2])\n"],
     "course_lib.models.autoregressive.made.made_masks"),
    (["import course_lib\nmodel = course_lib.models.MADE(4, [8])\n"], "course_lib.models.MADE"),
    (["from course_lib.models import *\n", "model = MADE(4, [8])\n"], "course_lib.models.MADE"),
    (["from course_lib.models.autoregressive.made import made_masks as mm\nmm([1, 2])\n"],
     "course_lib.models.autoregressive.made.made_masks"),
    (["import course_lib.models.autoregressive.made\ncourse_lib.models.autoregressive.made.MADE(4, [8])\n"],
     "course_lib.models.autoregressive.made.MADE"),
    (["import course_lib.models as m\n", "Model = getattr(m, 'MADE')\n"], "course_lib.models.MADE"),
    (["import course_lib\nlib = course_lib.models\n", "lib.made_masks\n"], "course_lib.models.made_masks"),
    (["import importlib\nm = importlib.import_module('course_lib.models')\nm.MADE\n"], "course_lib.models.MADE"),
    (["import course_lib.models as m\nforward = m.MADE.forward\n"], "course_lib.models.MADE"),
    (["def build():\n    from course_lib.models import MADE\n    return MADE(4, [8])\n"], "course_lib.models.MADE"),
    (["%%time\nfrom course_lib.models import MADE\n"], "course_lib.models.MADE"),
], ids=["from-import", "module-alias", "package-then-chain", "top-package", "star-then-bare", "import-as",
        "import-a-submodule", "getattr", "assigned-alias", "import-module", "a-method", "inside-a-function",
        "cell-magic-time"])
def test_each_form_of_a_use_is_found_and_named(cells, used):
    assert _uses(*cells) == [("made", used)]


def test_a_name_inside_a_declared_module_is_a_use_of_it():
    assert _uses("from course_lib.models import PixelCNN\n") == [("pixelcnn", "course_lib.models.PixelCNN")]
    assert _uses("from course_lib.models.autoregressive.pixelcnn import MaskedConv2d\n") == [
        ("pixelcnn", "course_lib.models.autoregressive.pixelcnn.MaskedConv2d")]
    assert _uses("import course_lib.models.autoregressive.pixelcnn as p\n") == [
        ("pixelcnn", "course_lib.models.autoregressive.pixelcnn")]


def test_an_alias_set_in_one_cell_is_followed_into_later_cells():
    found = library_uses([("setup_answer", "import course_lib.models as m\n"), ("made_answer", "m.made_masks\n")],
                         DECLARED)
    assert [(u.part, u.name, u.cell) for u in found] == [("made", "course_lib.models.made_masks", "made_answer")]
    assert found[0].message == "part made: the answer uses course_lib.models.made_masks, which implements it"


def test_each_part_and_name_is_reported_once_in_the_order_found():
    assert _uses("from course_lib.models import MADE, PixelCNN\nMADE(4, [8])\nMADE(2, [4])\n") == [
        ("made", "course_lib.models.MADE"), ("pixelcnn", "course_lib.models.PixelCNN")]


# --------------------------------------------------------------------------- what is not a use


@pytest.mark.parametrize("cells", [
    ["from course_lib.training import fit\nfrom course_lib.data import load_binarized_mnist\nimport torch\n"],
    ["import course_lib.models\n"],  # the package of re-exports, not a declared name
    ["from course_lib.models import *\n", "class MADE:\n    pass\n", "MADE()\n"],
    ["from mylib import MADE\nMADE()\n"],
    ["import course_lib.models as m\n", "def f(m):\n    return m.MADE\n"],
    ["import course_lib.models as m\n", "m = 'my own'\n", "m.MADE\n"],
    ["# course_lib.models.MADE would do it, but I wrote my own\ntext = 'course_lib.models.MADE'\n"],
    ["from course_lib.models import *\n", "def MADE(d):\n    return d\n", "MADE(3)\n"],
    ["from course_lib.models import *\n", "[MADE for MADE in range(3)]\n"],
], ids=["allowed-names", "package-only", "own-class-shadows", "same-name-elsewhere", "argument-shadows",
        "rebound-alias", "comment-and-string", "own-function-shadows", "comprehension-variable"])
def test_what_is_not_a_use_is_not_flagged(cells):
    assert _uses(*cells) == []


@pytest.mark.parametrize("source", [
    "%matplotlib inline\n!pip install nothing\nfiles = !ls\nimport os\nos?\n",
    "%%bash\necho from course_lib.models import MADE\n",
    "def broken(:\n    pass\n",
    "%load_ext autoreload\n%autoreload 2\n",
    "",
])
def test_magics_shell_lines_and_broken_code_do_not_crash_the_scan(source):
    assert _uses(source, "from course_lib.models import MADE\n") == [("made", "course_lib.models.MADE")]


def test_magic_lines_are_translated_as_ipython_does():
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in python_source("%matplotlib inline\n")
    assert python_source("%%html\n<b>hi</b>\n") is None


def test_no_declared_names_means_no_scan():
    assert library_uses([("cell 0", "from course_lib.models import MADE\n")], {}) == []


# --------------------------------------------------------------------------- which cells are scanned


def _cell(source: str, grade_id: str | None = None, *, solution=False, grade=False, locked=False) -> dict:
    meta = {"nbgrader": {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked,
                         "schema_version": 3, "task": False}} if grade_id else {}
    return {"cell_type": "code", "metadata": meta, "source": source, "outputs": [], "execution_count": None}


def test_the_scan_reads_answers_and_added_cells_not_tests_or_provided_code():
    released = {"cells": [
        _cell("from course_lib.models import MADE  # provided, to compare with\n"),
        _cell("raise NotImplementedError()\n", "made_answer", solution=True),
        _cell("assert True\n", "made_test", grade=True, locked=True),
        _cell("x = 1\n", "given", locked=True),
    ]}
    submitted = copy.deepcopy(released)
    submitted["cells"][1]["source"] = "def made(): ...\n"
    submitted["cells"][2]["source"] = "from course_lib.models import MADE\n"  # restored by nbgrader before it runs
    submitted["cells"][3]["source"] = "import course_lib.models as m\n"  # a locked cell: restored too
    submitted["cells"].insert(2, _cell("extra = 2\n"))
    assert scanned_cells(released, submitted) == [("made_answer", "def made(): ...\n"), ("cell 2", "extra = 2\n")]
    submitted["cells"][0]["source"] = "from course_lib.models import MADE, made_masks\n"  # edited: the student's
    assert [label for label, _ in scanned_cells(released, submitted)] == ["cell 0", "made_answer", "cell 2"]


# --------------------------------------------------------------------------- declarations


def test_the_checked_fixture_declares_names_that_resolve():
    nb = json.loads(CHECKED.read_text())
    assert declared_library(nb, ["histogram", "units", "chars"]) == {
        "histogram": ["course_lib.models.autoregressive.histogram.histogram_mle",
                      "course_lib.models.autoregressive.histogram.Histogram"],
        "units": ["course_lib.metrics.nats_to_bits_per_dim"],
        "chars": ["course_lib.data.datasets.CharVocab"],
    }
    assert Assignment.from_source(CHECKED).library["units"] == ["course_lib.metrics.nats_to_bits_per_dim"]
    assert declared_library({"metadata": {}}, []) == {}


@pytest.mark.parametrize("library, words", [
    ({"units": ["course_lib.metrics.nats_to_bit_per_dim"]},
     "course_lib.metrics has no attribute or submodule 'nats_to_bit_per_dim'"),
    ({"units": ["course_lib.metricz.nats_to_bits_per_dim"]}, "course_lib has no attribute or submodule 'metricz'"),
    ({"units": ["numpy.log"]}, "'numpy.log' is not a dotted course_lib name"),
    ({"unit": ["course_lib.metrics.nats_to_bits_per_dim"]}, "part 'unit', which the notebook does not have"),
    ({"units": "course_lib.metrics.nats_to_bits_per_dim"}, "should map part names to lists"),
], ids=["attribute-typo", "module-typo", "not-course-lib", "unknown-part", "not-a-list"])
def test_a_declaration_that_does_not_resolve_is_an_error_at_release_and_grade_start(tmp_path, library, words):
    nb = json.loads(CHECKED.read_text())
    nb["metadata"]["course"]["library"] = library
    source = tmp_path / "00_checked_assignment.ipynb"
    source.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="metadata.course.library") as caught:
        Assignment.from_source(source)
    assert words in str(caught.value)
    problems = library_problems([source])
    assert problems and all(str(source) in p for p in problems) and words in "\n".join(problems)
    assert library_problems([CHECKED]) == []


def test_course_grade_refuses_a_typo_in_the_declarations_before_grading(tmp_path, capsys):
    from course_lib.cli import main

    nb = json.loads(CHECKED.read_text())
    nb["metadata"]["course"]["library"]["units"] = ["course_lib.metrics.nats_to_bits_per_dimm"]
    source = tmp_path / "00_checked_assignment.ipynb"
    source.write_text(json.dumps(nb))
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "ann.ipynb").write_text(json.dumps(nb))
    assert main(["grade", str(source), str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 2
    assert "nats_to_bits_per_dimm" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_course_release_reports_a_typo_in_the_declarations(tmp_path, monkeypatch, capsys):
    from course_lib.cli import main

    nb = json.loads(CHECKED.read_text())
    nb["metadata"]["course"]["library"]["chars"] = ["course_lib.data.datasets.CharVocabulary"]
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / CHECKED.name).write_text(json.dumps(nb))
    monkeypatch.chdir(tmp_path)
    assert main(["release"]) == 1
    err = capsys.readouterr().err
    assert "metadata.course.library, part 'chars'" in err and "'CharVocabulary'" in err


def test_absurdly_nested_code_does_not_crash_the_scan():
    too_deep = "x = " + "+".join(["1"] * 20000) + "\n"  # Python itself cannot build its tree
    long_chain = "y = MADE" + ".b" * 900 + "\n"
    assert _uses("from course_lib.models import MADE\n", too_deep, long_chain) == [("made", "course_lib.models.MADE")]


def test_a_use_in_a_parts_answer_counts_against_that_part_only():
    """The training loop one part must use is no shortcut there; in the part that asks for a loop of one's own it is."""
    declared = {"made_train": [], "pixelcnn_train": ["course_lib.training.fit"]}
    required = [("made_train_answer", "from course_lib.training import fit\nfit(model, loader)\n")]
    assert library_uses(required, declared) == []
    shortcut = required + [("pixelcnn_train_answer", "history = fit(model, loader)\n")]
    assert [(u.part, u.name, u.cell) for u in library_uses(shortcut, declared)] == [
        ("pixelcnn_train", "course_lib.training.fit", "pixelcnn_train_answer")]
    added = [("cell 7", "from course_lib.training import fit\n")]  # a cell the student added counts for every part
    assert [(u.part, u.cell) for u in library_uses(added, declared)] == [("pixelcnn_train", "cell 7")]
