"""Shared test set-up: a quiet, deterministic, CPU-only environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_STATIC_WIDGETS", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    """The repository's root folder."""
    return REPO


@pytest.fixture
def data_dir() -> Path:
    """The folder of verified dataset copies named by COURSE_DATA_DIR (skips when unset)."""
    value = os.environ.get("COURSE_DATA_DIR")
    if not value:
        pytest.skip("COURSE_DATA_DIR is not set: the tests of the real datasets need the offline copies")
    return Path(value)
