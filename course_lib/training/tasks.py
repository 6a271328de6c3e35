"""How the loop reads a task: its optimizers and schedulers, what its steps log, its evaluation.

Each function checks what the task gave and names the mistake (an optimizer over another
module's parameters, a scheduler keyed by an unknown name, a logged value that is not a
number), so that a student's first ``train`` call fails with a sentence, not a traceback
from deep inside PyTorch. The conventions are described in :mod:`course_lib.training.loop`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from course_lib.training.history import TrainHistory

INTERVALS = ("step", "epoch")
"""When a scheduler steps: after every step of its optimizer, or after every epoch."""


@dataclass
class Scheduled:
    """A scheduler with its settings."""

    scheduler: Any
    interval: str  # "step" or "epoch"
    monitor: str | None  # the quantity a ReduceLROnPlateau is stepped with


def task_name(task: Any) -> str:
    """How the progress bar, the history and checkpoints call a task: its ``name``, else its class name."""
    name = getattr(task, "name", None)
    return name if isinstance(name, str) and name else type(task).__name__


def task_method(task: Any, method: str, name: str, signature: str) -> Callable[..., Any]:
    """The task's bound ``method``; a TypeError saying what it should be when the task has none."""
    fn = getattr(task, method, None)
    if not callable(fn):
        raise TypeError(f"{name} has no {method} method; a task needs {method}{signature}")
    return fn


def configure_optimizers(task: Any, name: str) -> tuple[dict[str, torch.optim.Optimizer], dict[str, Scheduled]]:
    """``task.configure_optimizers()`` as ``{name: optimizer}`` and ``{name: Scheduled}``, checked."""
    out = task_method(task, "configure_optimizers", name, "() -> an optimizer or {name: optimizer}")()
    schedulers: Any = None
    if isinstance(out, tuple):
        if len(out) != 2:
            raise TypeError(
                f"{name}.configure_optimizers returned a tuple of {len(out)}; expected (optimizers, schedulers)"
            )
        out, schedulers = out
    if isinstance(out, torch.optim.Optimizer):
        optimizers = {"optimizer": out}
    elif (
        isinstance(out, Mapping)
        and out
        and all(isinstance(k, str) and isinstance(o, torch.optim.Optimizer) for k, o in out.items())
    ):
        optimizers = dict(out)
    else:
        raise TypeError(
            f"{name}.configure_optimizers must return an optimizer or a non-empty {{name: optimizer}} dict, "
            f"optionally with schedulers as (optimizers, schedulers); got {out!r}"
        )
    _check_parameters(task, name, optimizers)
    if schedulers is None:
        by_name: dict[str, Any] = {}
    elif isinstance(schedulers, Mapping) and not _is_schedule(schedulers):
        by_name = dict(schedulers)
    elif len(optimizers) == 1:
        by_name = {next(iter(optimizers)): schedulers}
    else:
        raise TypeError(
            f"{name} has the optimizers {quoted(optimizers)}: give its schedulers as a dict keyed by those names"
        )
    return optimizers, {n: _scheduled(n, s, optimizers) for n, s in by_name.items()}


def _is_schedule(value: Any) -> bool:
    """Whether a dict is one scheduler's settings ``{"scheduler": s, "interval": ..., "monitor": ...}``."""
    return isinstance(value, Mapping) and hasattr(value.get("scheduler"), "state_dict")


def _scheduled(name: str, value: Any, optimizers: dict[str, torch.optim.Optimizer]) -> Scheduled:
    if name not in optimizers:
        raise ValueError(f"a scheduler is keyed {name!r}, but the optimizers are {quoted(optimizers)}")
    settings = dict(value) if _is_schedule(value) else {"scheduler": value}
    unknown = sorted(set(settings) - {"scheduler", "interval", "monitor"})
    if unknown:
        raise ValueError(
            f"unknown settings {unknown} of the scheduler of {name!r}; expected scheduler, interval, monitor"
        )
    sched, interval, monitor = settings["scheduler"], settings.get("interval", "epoch"), settings.get("monitor")
    if isinstance(sched, type) or not (hasattr(sched, "step") and hasattr(sched, "state_dict")):
        raise TypeError(f"the scheduler of {name!r} must be an LR scheduler, got {sched!r}")
    if getattr(sched, "optimizer", optimizers[name]) is not optimizers[name]:
        raise ValueError(f"the scheduler keyed {name!r} was built on another optimizer than the one named {name!r}")
    if interval not in INTERVALS:
        raise ValueError(f"the interval of the scheduler of {name!r} must be 'step' or 'epoch', got {interval!r}")
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if interval != "epoch" or not isinstance(monitor, str):
            raise ValueError(
                f"the ReduceLROnPlateau of {name!r} steps per epoch with a quantity to watch: give it as "
                '{"scheduler": s, "interval": "epoch", "monitor": "<name of a logged or evaluated quantity>"}'
            )
    return Scheduled(sched, interval, monitor)


def _check_parameters(task: Any, name: str, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Every optimized tensor is a parameter of the task, and of one optimizer only."""
    own = {id(p) for p in task.parameters()} if callable(getattr(task, "parameters", None)) else None
    owner: dict[int, str] = {}
    for opt_name, opt in optimizers.items():
        params = [p for g in opt.param_groups for p in g["params"]]
        if own is not None:
            foreign = [p for p in params if id(p) not in own]
            if foreign:
                raise ValueError(
                    f"optimizer {opt_name!r} holds {len(foreign)} tensors that are not parameters of {name}; build "
                    "it in configure_optimizers from the task's own parameters"
                )
        for p in params:
            if owner.setdefault(id(p), opt_name) != opt_name:
                raise ValueError(
                    f"a parameter of shape {tuple(p.shape)} is in both optimizers {owner[id(p)]!r} and {opt_name!r}; "
                    "give each optimizer its own part of the task (e.g. the critic's and the generator's parameters)"
                )


def count_parameters(task: Any, optimizers: dict[str, torch.optim.Optimizer]) -> int:
    if callable(getattr(task, "parameters", None)):
        params = list(task.parameters())
    else:
        params = [p for o in optimizers.values() for g in o.param_groups for p in g["params"]]
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def grad_clip_by_optimizer(grad_clip: Any, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    if grad_clip is None:
        return {}
    values = dict(grad_clip) if isinstance(grad_clip, Mapping) else dict.fromkeys(optimizers, grad_clip)
    for opt_name, value in values.items():
        if opt_name not in optimizers:
            raise ValueError(f"grad_clip names the optimizer {opt_name!r}, but the optimizers are {quoted(optimizers)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"grad_clip must be positive, or a dict of positive values, got {grad_clip!r}")
    return {k: float(v) for k, v in values.items()}


def set_training(task: Any, mode: bool) -> None:
    if callable(getattr(task, "train", None)):
        task.train(mode)


def evaluate_task(task: Any, loader: Any, name: str) -> tuple[dict[str, float], float]:
    """``task.evaluate(loader)`` in eval mode without gradients, as floats; and its seconds."""
    t0 = time.perf_counter()
    was_training = bool(getattr(task, "training", True))
    set_training(task, False)
    try:
        with torch.no_grad():
            out = task.evaluate(loader)
    finally:
        set_training(task, was_training)
    if not isinstance(out, Mapping) or not all(isinstance(k, str) for k in out):
        raise TypeError(f"{name}.evaluate must return a dict {{name: float}}, got {type(out).__name__}")
    values = {k: _as_float(v, f"{name}.evaluate's {k!r}") for k, v in out.items()}  # waits for the device
    return values, time.perf_counter() - t0


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{what} must be a number or a 0-dim tensor, got {value!r}")


def check_logged(logged: Any, name: str) -> dict[str, torch.Tensor]:
    """The step's ``{name: 0-dim tensor}``, detached (numbers become CPU tensors); None logs nothing."""
    if logged is None:
        return {}
    if not isinstance(logged, Mapping):
        raise TypeError(f"{name}.training_step must return a dict {{name: 0-dim tensor}} (or None), got {logged!r}")
    out = {}
    for key, value in logged.items():
        if not isinstance(key, str):
            raise TypeError(f"{name}.training_step returned the key {key!r}; name each logged quantity with a str")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value), dtype=torch.float64)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name}.training_step logged {key!r} as {shape}; log 0-dim tensors (e.g. loss.detach())")
        out[key] = value.detach()
    return out


def step_epoch_scheduler(scheduled: Scheduled, history: TrainHistory) -> None:
    if not isinstance(scheduled.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduled.scheduler.step()
        return
    q = scheduled.monitor
    source = history.eval_values if q in history.eval_values else history.epoch_means
    if q not in source:
        raise ValueError(
            f"ReduceLROnPlateau watches {q!r}, which is neither logged nor evaluated: {history.quantities}"
        )
    scheduled.scheduler.step(source[q][-1])


def quoted(names: Iterable[str]) -> str:
    """``'a', 'b'``: names for a message."""
    return ", ".join(repr(n) for n in names)
