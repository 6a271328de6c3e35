"""What the course's task classes share: a batch's inputs, checked settings, the learning-rate decay, and a
sampler's own generator carried in checkpoints (:class:`TaskGenerator`).

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
import warnings
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


class TaskGenerator:
    """A task's own ``torch.Generator`` (its sampler's randomness), carried in checkpoints.

    ``on(device)`` gives the generator on ``device``, created at first use and seeded with ``seed``, or
    restored from the state that :meth:`load` read from a checkpoint; :meth:`state` is what the task's
    ``get_extra_state`` saves. A state saved on another device type cannot be restored (CPU and CUDA
    generators differ), and a task that moves to another device type starts a fresh stream: both say
    so with a warning rather than silently changing the run.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._generator: torch.Generator | None = None
        self._pending: tuple[str, torch.Tensor] | None = None  # (device type, state), restored at first use

    def on(self, device: str | torch.device) -> torch.Generator:
        if self._generator is not None and self._generator.device.type == torch.device(device).type:
            return self._generator
        generator = torch.Generator(device=device).manual_seed(self.seed)
        if self._pending is not None:
            saved_on, state = self._pending
            if saved_on == generator.device.type:
                generator.set_state(state)
            else:
                warnings.warn(f"the sampler's random state was saved on {saved_on} and cannot be restored on "
                              f"{generator.device.type}: the chains continue with a fresh stream (seed {self.seed})",
                              stacklevel=3)
            self._pending = None
        elif self._generator is not None:
            warnings.warn(f"the task moved from {self._generator.device.type} to {generator.device.type}: the "
                          f"sampler's generator starts afresh (seed {self.seed})", stacklevel=3)
        self._generator = generator
        return generator

    def state(self) -> dict[str, Any]:
        """``{"device": device type, "generator": state}``; both None before the first draw (the seed decides)."""
        if self._generator is not None:
            return {"device": self._generator.device.type, "generator": self._generator.get_state()}
        if self._pending is not None:
            return {"device": self._pending[0], "generator": self._pending[1]}
        return {"device": None, "generator": None}

    def load(self, state: dict[str, Any]) -> None:
        """Take a :meth:`state` from a checkpoint; it is applied when the generator is next used."""
        self._generator = None
        self._pending = None if state["generator"] is None else (state["device"], state["generator"])
