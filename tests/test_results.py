import json

import pytest

from course_lib.results import RESULT_MIME, LectureResults, collect_results, record_result


def test_record_outside_a_notebook_prints_and_returns(capsys):
    rec = record_result("MADE test NLL", 88.95, "nats/image", profile="cpu")
    assert rec == {"name": "MADE test NLL", "value": 88.95, "unit": "nats/image", "profile": "cpu"}
    assert "MADE test NLL: 88.95 nats/image" in capsys.readouterr().out


def test_non_finite_result_is_refused():
    with pytest.raises(ValueError, match="not a finite number"):
        record_result("loss", float("nan"), "nats")


def test_collect_reads_records_from_executed_notebook(tmp_path):
    rec = {"name": "speed-up", "value": 3.5, "unit": "x"}
    nb = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "x"},
            {"cell_type": "code", "metadata": {}, "source": "", "execution_count": 1,
             "outputs": [{"output_type": "display_data", "metadata": {},
                          "data": {RESULT_MIME: rec, "text/plain": "speed-up: 3.5 x"}}]},
        ],
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert collect_results(path) == [rec]


def test_markdown_table_formats_escapes_and_checks_widths():
    from course_lib.results import markdown_table

    text = markdown_table(["model", "NLL"], [["MADE | 1 mask", 88.401], ["PixelCNN", None]], floatfmt=".2f")
    assert text.splitlines() == ["| model | NLL |", "|---|---|", "| MADE \\| 1 mask | 88.40 |", "| PixelCNN |  |"]
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [["x"]])


def test_lecture_results_record_each_result_and_keep_the_table_rows(capsys):
    results = LectureResults(profile="smoke", device="cpu")
    record = results.report("MADE test NLL", 91.7, "nats/image", published="88.40", epochs=2)
    results.report("a check", 1e-9, "nats", table=False)
    assert record == {"name": "MADE test NLL", "value": 91.7, "unit": "nats/image", "profile": "smoke",
                      "device": "cpu", "epochs": 2}
    assert results.rows == list(results) == [
        {"result": "MADE test NLL", "value": 91.7, "unit": "nats/image", "published": "88.40"}]
    assert len(results) == 1 and "a check" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a finite number"):
        results.report("broken", float("nan"), "nats")
    assert len(results) == 1, "a refused result is not added to the table"
