"""NaN/inf checks that name the bad value, without waiting for the GPU at every step.

The loop observes every loss given to ``ctx.optimize``, every clipped gradient norm and
every logged quantity. On the CPU each is checked as it comes, so a bad loss stops
training before its optimizer steps. On a GPU, reading a value waits for the device, so
the values stay there and are read together at log points: the error then names the
first bad one, a few steps after it happened.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["NonFiniteLossError", "NonFiniteMonitor", "to_host"]


class NonFiniteLossError(FloatingPointError):
    """A training loss, gradient norm or logged quantity became NaN or infinite.

    Attributes: ``quantity`` (``"loss"``, ``"gradient norm"`` or the logged quantity's name),
    ``optimizer`` (the optimizer's name when the task has several, else None), ``epoch``
    (1-based), ``step`` (1-based within the epoch), ``global_step`` (1-based over the run)
    and ``value`` (the offending float).
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        step: int,
        global_step: int,
        value: float,
        quantity: str,
        optimizer: str | None = None,
    ):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.global_step = global_step
        self.value = value
        self.quantity = quantity
        self.optimizer = optimizer


class NonFiniteMonitor:
    """Finds the first NaN/inf among the values it observes, and names it.

    Immediate mode checks each value as it comes. Deferred mode keeps the values on their
    device, without waiting for it, and :meth:`check` reads them all at once.
    """

    def __init__(self, deferred: bool):
        self.deferred = deferred
        self._pending: list[tuple[torch.Tensor, dict[str, Any]]] = []

    def observe(
        self,
        value: torch.Tensor,
        *,
        epoch: int,
        step: int,
        global_step: int,
        quantity: str,
        optimizer: str | None = None,
        logged: bool = False,
    ) -> None:
        """Check (or, deferred, keep) a 0-dim ``value``; ``logged``: it came from ``training_step``'s dict."""
        where = dict(epoch=epoch, step=step, global_step=global_step, quantity=quantity, optimizer=optimizer)
        if self.deferred:
            self._pending.append((value.detach(), {**where, "logged": logged}))
            return
        v = float(value.detach())
        if not math.isfinite(v):
            raise _non_finite_error(v, **where, logged=logged)

    def check(self) -> None:
        """Read the kept values (waits for the device) and raise for the first NaN/inf among them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for v, (_, where) in zip(to_host([t for t, _ in pending]), pending, strict=True):
            if not math.isfinite(v):
                raise _non_finite_error(v, **where)


def _non_finite_error(
    value: float, *, epoch: int, step: int, global_step: int, quantity: str, optimizer: str | None, logged: bool
) -> NonFiniteLossError:
    if logged:
        what, hint = f"logged quantity {quantity!r}:", "look for a log(0) or a division by zero where it is computed"
    else:
        what = f"training {quantity}" + (f" of optimizer {optimizer!r}:" if optimizer is not None else "")
        hint = "lower the learning rate, clip gradients (grad_clip=...), or look for a log(0) in the loss"
    msg = f"non-finite {what} {value} at epoch {epoch}, step {step} of the epoch (global step {global_step}); {hint}"
    return NonFiniteLossError(
        msg, epoch=epoch, step=step, global_step=global_step, value=value, quantity=quantity, optimizer=optimizer
    )


def to_host(tensors: list[torch.Tensor]) -> list[float]:
    """0-dim tensors as floats, in order: one transfer per device and dtype (float64 stays exact)."""
    out = [math.nan] * len(tensors)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    for index in groups.values():
        for i, v in zip(index, torch.stack([tensors[i] for i in index]).cpu().tolist(), strict=True):
            out[i] = float(v)
    return out
