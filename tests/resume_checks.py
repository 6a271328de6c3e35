"""What the tests of exact resume share: stopping a run at a given step, and comparing runs bitwise."""

from __future__ import annotations

import torch

from course_lib.training import StepResult, TrainHistory


class Stop(RuntimeError):
    """Raised by :func:`stop_at`'s callback: a run interrupted as a crash would interrupt it."""


def stop_at(global_step: int):
    """A ``train`` callback that raises :class:`Stop` after step ``global_step``."""

    def callback(result: StepResult) -> None:
        if result.global_step == global_step:
            raise Stop(f"stopped at {global_step}")

    return callback


def comparable(history: TrainHistory) -> dict:
    """The history without its wall-clock times and device (what differs between equal runs)."""
    data = history.to_dict()
    for key in ("epoch_seconds", "eval_seconds", "device"):
        data.pop(key)
    return data


def assert_equal(a, b, where: str = "") -> None:
    """Nested dicts/lists/tuples of tensors and plain values are bitwise equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f"{where}[{k}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
