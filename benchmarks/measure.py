"""What every benchmark script shares: wall-clock timing that waits for the GPU, and how figures are printed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a wall-clock time measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> tuple[Any, float]:
    """(fn(), the best wall time in seconds of ``repeats`` calls)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return out, best


def fmt(value: object) -> str:
    """A figure for a results table: floats to 3 significant digits (1 decimal from 100 on), ints with separators."""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
