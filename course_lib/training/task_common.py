"""What the course's task classes share: a batch's inputs, checked settings, the learning-rate decay.

:class:`~course_lib.training.ReconstructionTask`, :class:`~course_lib.training.EBMTask` and
:class:`~course_lib.training.ContrastiveDivergenceTask` read their batches, check their numbers
and decay their learning rates with these, and :func:`course_lib.presets.scheduler_factory`
builds ``fit``'s schedules with :func:`lr_decay`, so that a cosine or linear schedule means the
same everywhere: the learning rate decays to zero over ``total_steps`` optimizer steps, stepped
after every step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch

DECAYS = ("cosine", "linear")
"""Learning-rate decays to zero: cosine (Loshchilov & Hutter 2017) or linear (the RBMs' schedule, Tieleman 2008)."""


def batch_inputs(batch: Any) -> torch.Tensor:
    """The inputs of a batch: the batch itself, or the first element of ``(x, y)``."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("got an empty tuple/list as a batch; expected a tensor x or a tuple (x, ...)")
        return batch[0]
    return batch


def check_number(name: str, value: Any, *, low: float | None = None, strict: bool = False) -> float:
    """``value`` as a float, after checking that it is a finite number at least (``strict``: above) ``low``."""
    bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (low is not None and (value <= low if strict else value < low)):
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_lr_schedule(lr_schedule: str, total_steps: Any, allowed: Sequence[str]) -> None:
    """Check that ``lr_schedule`` is one of ``allowed`` and that a decay has its ``total_steps``."""
    if lr_schedule not in allowed:
        raise ValueError(f"lr_schedule must be one of {tuple(allowed)}, got {lr_schedule!r}")
    if lr_schedule != "constant" and (isinstance(total_steps, bool) or not isinstance(total_steps, int)
                                      or total_steps < 1):
        raise ValueError(f"lr_schedule={lr_schedule!r} needs total_steps, the run's number of optimizer steps "
                         f"(epochs * steps per epoch), a positive int; got {total_steps!r}")


def lr_decay(optimizer: torch.optim.Optimizer, decay: str, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler that decays the learning rate to zero over ``total_steps`` steps (``decay`` in :data:`DECAYS`)."""
    if decay == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if decay == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
    raise ValueError(f"unknown learning-rate decay {decay!r}; expected one of {DECAYS}")


def with_lr_schedule(optimizer: torch.optim.Optimizer, lr_schedule: str, total_steps: int | None) -> Any:
    """What ``configure_optimizers`` returns: the optimizer alone (``"constant"``), or with its decay stepped
    after every step."""
    if lr_schedule == "constant":
        return optimizer
    return optimizer, {"scheduler": lr_decay(optimizer, lr_schedule, total_steps), "interval": "step"}
