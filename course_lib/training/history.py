"""What :func:`course_lib.training.train` measured: every logged quantity, per step and per epoch.

A task's ``training_step`` returns named quantities (``{"critic_loss": ..., "wasserstein": ...}``)
and its ``evaluate`` returns named values (``{"fid": ...}``); the history keeps them all,
under those names, as plain floats (JSON-serialisable with :meth:`TrainHistory.to_dict`):

* ``step_values[q]``: the value of ``q`` at each step where it was logged, and
  ``step_numbers[q]`` the global step (1-based) of each: a generator loss logged every
  fifth step has a fifth as many values as the critic's;
* ``epoch_means[q]``: per epoch, the mean of ``q`` over the steps that logged it, weighted
  by their batch sizes (``nan`` for an epoch in which it was never logged);
* ``eval_values[q]``: before the first step (index 0), then after each epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TrainHistory", "format_seconds", "weighted_mean"]


@dataclass
class TrainHistory:
    """The measurements of a run of :func:`~course_lib.training.train`, by the names the task gave them.

    Index ``e`` of the per-epoch lists is epoch ``e + 1``, except ``eval_values`` and
    ``eval_seconds``, whose index 0 is the evaluation before the first step.
    """

    task_name: str = ""
    """The task's name (its class name unless it has a ``name``)."""
    n_params: int = 0
    """Number of parameters of the task."""
    device: str = ""
    """The device it was trained on."""
    step_values: dict[str, list[float]] = field(default_factory=dict)
    """Per logged quantity: its value at each step where ``training_step`` returned it."""
    step_numbers: dict[str, list[int]] = field(default_factory=dict)
    """Per logged quantity: the global step (1-based) of each of its ``step_values``."""
    step_sizes: list[int] = field(default_factory=list)
    """Per step: the number of examples in its batch (the weights of the epoch means)."""
    epoch_means: dict[str, list[float]] = field(default_factory=dict)
    """Per logged quantity: its batch-size-weighted mean over each epoch (nan where never logged)."""
    eval_values: dict[str, list[float]] = field(default_factory=dict)
    """Per evaluated quantity: before training, then after each epoch (length epochs + 1)."""
    steps_per_epoch: list[int] = field(default_factory=list)
    """Per epoch: number of training steps."""
    epoch_seconds: list[float] = field(default_factory=list)
    """Per epoch: wall-clock seconds of the training steps (without evaluation)."""
    eval_seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds of each evaluation (length epochs + 1 when there is one)."""

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.steps_per_epoch)

    @property
    def global_step(self) -> int:
        """Number of training steps taken."""
        return len(self.step_sizes)

    @property
    def train_seconds(self) -> float:
        """Total wall-clock seconds spent in training steps."""
        return float(sum(self.epoch_seconds))

    @property
    def quantities(self) -> list[str]:
        """The names of every logged and evaluated quantity, logged ones first."""
        return list(self.step_values) + [q for q in self.eval_values if q not in self.step_values]

    def record_epoch(self, sizes: Sequence[int], values: Mapping[str, Sequence[tuple[int, float]]], seconds: float):
        """Add one epoch: its steps' batch sizes, ``{name: [(global step, value), ...]}``, and its duration."""
        first = self.global_step + 1  # global step of the epoch's first step
        done = self.epochs
        for name in _union(self.epoch_means, values):
            pairs = values.get(name, ())
            self.step_values.setdefault(name, []).extend(v for _, v in pairs)
            self.step_numbers.setdefault(name, []).extend(g for g, _ in pairs)
            mean = weighted_mean([v for _, v in pairs], [sizes[g - first] for g, _ in pairs]) if pairs else math.nan
            self.epoch_means.setdefault(name, [math.nan] * done).append(mean)
        self.step_sizes.extend(int(s) for s in sizes)
        self.steps_per_epoch.append(len(sizes))
        self.epoch_seconds.append(float(seconds))

    def record_eval(self, values: Mapping[str, float], seconds: float) -> None:
        """Add one evaluation (before training, or after an epoch)."""
        done = len(self.eval_seconds)
        for name in _union(self.eval_values, values):
            self.eval_values.setdefault(name, [math.nan] * done).append(float(values.get(name, math.nan)))
        self.eval_seconds.append(float(seconds))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainHistory:
        """Inverse of :meth:`to_dict`."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: _copy(v) for k, v in data.items() if k in names})

    def summary(self) -> str:
        """One paragraph: size, time, and the last value of every quantity."""
        head = f"{self.task_name or 'task'} ({self.n_params:,} parameters), {self.epochs} epochs, "
        head += f"{self.global_step} steps" + (f" on {self.device}" if self.device else "")
        parts = [head + f", {format_seconds(self.train_seconds)} of training"]
        if self.epoch_means:
            parts.append("train " + ", ".join(f"{q} {_last(v):.4g}" for q, v in self.epoch_means.items()))
        if self.eval_values:
            parts.append("eval " + ", ".join(f"{q} {_last(v):.4g}" for q, v in self.eval_values.items()))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"TrainHistory({self.summary()})"


def weighted_mean(values: Sequence[float], sizes: Sequence[int]) -> float:
    """``sum(v * n) / sum(n)``, summed exactly (``math.fsum``): the mean per example over batches."""
    return math.fsum(v * s for v, s in zip(values, sizes, strict=True)) / sum(sizes)


def format_seconds(seconds: float) -> str:
    """``12.3 s``, ``4 min 5 s`` or ``1 h 2 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {sec:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """The names of both, in order of first appearance."""
    return list(dict.fromkeys([*first, *second]))


def _last(values: Sequence[float]) -> float:
    return values[-1] if values else math.nan


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: list(v) for k, v in value.items()}
    return list(value) if isinstance(value, (list, tuple)) else value
