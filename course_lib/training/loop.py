"""The course's training loop, for any model that says what one training step computes.

A *task* is an object, usually an ``nn.Module`` (a model, or a small module holding a
generator and a critic), with these methods::

    configure_optimizers(self)      -> an optimizer, or {name: optimizer}, optionally with schedulers:
                                       (optimizers, scheduler) or (optimizers, {name: scheduler})
    training_step(self, batch, ctx) -> {name: 0-dim tensor} of quantities to log
    evaluate(self, loader)          -> {name: float}            (optional)

``training_step`` computes its losses and optimises itself with ``ctx.optimize(loss, name)``
(zero the gradients, backpropagate, clip, step the optimizer ``name`` and its per-step
scheduler), as many times as it likes: a GAN takes a generator step once every five
critic steps, an energy model runs its Langevin chains first. The loop does the rest:
epochs, devices, bf16 autocast, the progress bar, evaluation, the history of every
logged quantity, NaN/inf checks, checkpoints and exact resume. A WGAN, for example::

    class WGAN(nn.Module):
        def __init__(self, generator, critic, n_critic=5):
            super().__init__()
            self.generator, self.critic, self.n_critic = generator, critic, n_critic

        def configure_optimizers(self):
            return {"critic": torch.optim.RMSprop(self.critic.parameters(), lr=5e-5),
                    "generator": torch.optim.RMSprop(self.generator.parameters(), lr=5e-5)}

        def training_step(self, batch, ctx):
            x = batch[0]
            with ctx.autocast():                                   # bf16 when amp is on
                fake = self.generator.sample(len(x))
                wasserstein = self.critic(x).mean() - self.critic(fake.detach()).mean()
            ctx.optimize(-wasserstein, "critic")                   # the critic maximises it
            logged = {"wasserstein": wasserstein.detach()}
            if ctx.global_step % self.n_critic == 0:               # 1 generator step per 5 critic steps
                with ctx.autocast():
                    generator_loss = -self.critic(self.generator.sample(len(x))).mean()
                ctx.optimize(generator_loss, "generator")
                logged["generator_loss"] = generator_loss.detach()
            return logged

    history = train(WGAN(g, c), loader, epochs=10)

Conventions
-----------
* **Optimizers** have names: those of the dict that ``configure_optimizers`` returns (a
  lone optimizer is called ``"optimizer"``, and ``ctx.optimize(loss)`` needs no name).
* **Schedulers** are keyed like the optimizers they drive. Each is a scheduler (stepped
  after every epoch) or a dict ``{"scheduler": s, "interval": "step" | "epoch", "monitor": q}``;
  ``"step"`` steps it after every step of its optimizer, and ``monitor`` names the quantity
  that a ``ReduceLROnPlateau`` is stepped with (its evaluated value, else its epoch mean).
* **Carried state** (persistent Markov chains, a replay buffer, a sampler's own
  ``torch.Generator``) lives in the task's ``state_dict()``: registered buffers, or
  ``get_extra_state``/``set_extra_state`` for anything else. Checkpoints hold it.
* **Batch sizes** weight the epoch means: the leading dimension of the batch's first
  tensor, unless ``training_step`` sets ``ctx.batch_size``.
* An optional ``hparams`` dict on the task is saved in checkpoints; resuming with other
  values is refused. An optional ``name`` labels the task (default: its class name).

What the loop guarantees
------------------------
* ``evaluate(eval_loader)`` runs before the first step (epoch 0) and after every epoch, in
  eval mode, without gradients, in full precision.
* With ``checkpoint_path`` everything is saved after epoch 0 and after every epoch, written
  atomically: the task's state, every optimizer and scheduler, the history, the Python/
  NumPy/torch random states and the loaders' shuffling generators. Calling :func:`train`
  again with the same path resumes from the last completed epoch; a run interrupted (an
  exception, ``KeyboardInterrupt``) and resumed with the same arguments ends bitwise equal
  to a run that was never interrupted on the CPU (wall-clock times aside).
* A NaN/inf loss, gradient norm or logged quantity stops training with
  :class:`NonFiniteLossError`, naming the quantity (and optimizer), epoch and step. On the
  CPU a loss is checked before its optimizer steps, so the parameters stay finite.
* On CUDA the inner loop never waits for the GPU: logged values stay on the device until
  a log point (every ``log_every`` steps) or the end of the epoch.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.runtime import get_device, seed_everything, static_widgets
from course_lib.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointMismatchError,
    atomic_save,
    check_hparams_match,
    check_names_match,
    check_state_matches,
    get_rng_state,
    load_checkpoint,
    loader_generators,
    set_rng_state,
)
from course_lib.training.history import TrainHistory, weighted_mean

__all__ = ["NonFiniteLossError", "StepContext", "StepResult", "to_device", "train"]

INTERVALS = ("step", "epoch")


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


@dataclass
class StepResult:
    """What :func:`train`'s ``callback`` sees after every training step.

    ``logged`` holds the 0-dim tensors that ``training_step`` returned, still on the device:
    calling ``.item()`` waits for the GPU, so do that sparingly.
    """

    epoch: int  # 1-based epoch
    step: int  # 1-based step within the epoch
    global_step: int  # 1-based step over the whole run
    logged: dict[str, torch.Tensor]


@dataclass
class _Scheduled:
    scheduler: Any
    interval: str  # "step" or "epoch"
    monitor: str | None  # the quantity a ReduceLROnPlateau is stepped with


class StepContext:
    """The ``ctx`` of ``training_step(batch, ctx)``: where the step is, and how to optimise.

    Attributes: ``epoch``, ``step`` (within the epoch) and ``global_step``, all 1-based;
    ``device``; ``optimizers`` (by name); ``batch_size`` (set it if the loop's guess, the
    leading dimension of the batch's first tensor, is not the number of examples).
    """

    def __init__(self, optimizers, schedulers, grad_clip, device, amp, monitor):
        self.optimizers: dict[str, torch.optim.Optimizer] = optimizers
        self.device: torch.device = device
        self.epoch = self.step = self.global_step = 0
        self.batch_size: int | None = None
        self._schedulers: dict[str, _Scheduled] = schedulers
        self._grad_clip: dict[str, float] = grad_clip
        self._amp = amp
        self._monitor = monitor
        self._params = {n: [p for g in o.param_groups for p in g["params"]] for n, o in optimizers.items()}

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast when the run uses ``amp``, else nothing. Wrap the forward computations in it
        (``with ctx.autocast(): loss = ...``), not ``ctx.optimize``."""
        if self._amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def optimize(self, loss: torch.Tensor, name: str | None = None) -> None:
        """One update of optimizer ``name`` to lower ``loss``, a 0-dim tensor.

        Zeroes that optimizer's gradients, backpropagates, clips their norm (``grad_clip``),
        steps the optimizer and its per-step scheduler. The loss (and the gradient norm) are
        checked for NaN/inf first: on the CPU at once, before the update.
        """
        name = self._optimizer_name(name)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"ctx.optimize({name!r}) needs a 0-dim loss tensor, got {shape}; average it first")
        if not loss.requires_grad:
            raise ValueError(
                f"the loss given to ctx.optimize({name!r}) does not depend on any parameter (requires_grad is "
                "False): was it computed under torch.no_grad() or detached?"
            )
        shown = name if len(self.optimizers) > 1 else None  # name the optimizer when there is a choice
        self._observe(loss, "loss", shown)
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if name in self._grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self._params[name], self._grad_clip[name])
            self._observe(norm, "gradient norm", shown)
        optimizer.step()
        scheduled = self._schedulers.get(name)
        if scheduled is not None and scheduled.interval == "step":
            scheduled.scheduler.step()

    def _observe(self, value: torch.Tensor, quantity: str, optimizer: str | None) -> None:
        self._monitor.observe(
            value,
            epoch=self.epoch,
            step=self.step,
            global_step=self.global_step,
            quantity=quantity,
            optimizer=optimizer,
        )

    def _optimizer_name(self, name: str | None) -> str:
        if name is None:
            if len(self.optimizers) == 1:
                return next(iter(self.optimizers))
            raise ValueError(
                f"the task has the optimizers {_quoted(self.optimizers)}: name one, ctx.optimize(loss, name)"
            )
        if name not in self.optimizers:
            raise KeyError(f"no optimizer named {name!r}; configure_optimizers returned {_quoted(self.optimizers)}")
        return name


# ----------------------------------------------------------------------------- the loop


def train(
    task: Any,
    train_loader: Iterable[Any],
    eval_loader: Any = None,
    *,
    epochs: int,
    device: str | torch.device | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    seed: int | None = 0,
    progress: bool = True,
    desc: str | None = None,
    max_steps_per_epoch: int | None = None,
    amp: bool | None = None,
    compile: bool | dict[str, Any] = False,
    log_every: int = 20,
    grad_clip: float | Mapping[str, float] | None = None,
    callback: Callable[[StepResult], None] | None = None,
) -> TrainHistory:
    """Train ``task`` for ``epochs`` passes over ``train_loader``; return the :class:`TrainHistory`.

    Args:
        task: has ``configure_optimizers()``, ``training_step(batch, ctx)`` and optionally
            ``evaluate(loader)`` (see the module's docstring). It is moved to ``device`` first.
        train_loader: yields the batches given to ``training_step``, moved to the device.
            Shuffling loaders should carry a seeded ``generator``, which checkpoints save.
        eval_loader: what ``task.evaluate`` receives before the first step and after every
            epoch (usually a loader of test data); None: no evaluation.
        epochs: passes over ``train_loader`` (0: only evaluate).
        device: where to train; default :func:`course_lib.runtime.get_device` (CUDA, MPS, CPU).
        checkpoint_path: save everything after epoch 0 and every epoch; resume from it when it exists.
        seed: at the start of a fresh run, seeds Python, NumPy, torch and the loaders' shuffling
            generators (None: leave them as they are). The task's initialisation is the caller's.
        progress: show a tqdm bar (a widget in Jupyter) with the running means of the logged
            quantities and the last evaluation.
        desc: the bar's label; default the task's name.
        max_steps_per_epoch: cut each epoch after this many steps (quick runs, smoke profile).
        amp: what ``ctx.autocast()`` does: bf16 autocast when True; None: on for CUDA GPUs with
            native bf16. Evaluation always runs in full precision.
        compile: ``torch.compile`` the training step (``ctx.optimize`` runs eagerly); a dict is
            passed to ``torch.compile``.
        log_every: steps between progress updates (and, on accelerators, NaN/inf checks).
        grad_clip: clip each optimizer's gradient norm to this value, or ``{name: value}``.
        callback: called with a :class:`StepResult` after every training step.

    Raises:
        NonFiniteLossError: a NaN/inf loss, gradient norm or logged quantity. The checkpoint
            keeps the last good epoch.
        CheckpointMismatchError: ``checkpoint_path`` holds another task, optimizers or hparams.
    """
    _check_train_args(train_loader, epochs, seed, max_steps_per_epoch, log_every, callback, compile)
    dev = get_device(device)
    name = task_name(task)
    if callable(getattr(task, "to", None)):
        task.to(dev)  # before the optimizers are built on its parameters
    optimizers, schedulers = _configure_optimizers(task, name)
    clip = _grad_clip_by_optimizer(grad_clip, optimizers)
    training_step = _method(task, "training_step", name, "(batch, ctx) -> {name: 0-dim tensor} of logged values")
    if eval_loader is not None:
        _method(task, "evaluate", name, "(loader) -> {name: float}, as eval_loader was given")
    step_fn = _maybe_compile(training_step, compile)
    generators = loader_generators(train_loader) + loader_generators(eval_loader)
    hparams = dict(getattr(task, "hparams", None) or {})
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    history = TrainHistory(task_name=name, n_params=_count_parameters(task, optimizers), device=str(dev))

    def save(epoch: int) -> None:
        nonlocal saved_epoch
        if path is None:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "model_class": name,
            "hparams": hparams,
            "epoch": epoch,
            "model": task.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
            "schedulers": {n: s.scheduler.state_dict() for n, s in schedulers.items()},
            "history": history.to_dict(),
            "rng": get_rng_state(dev),
            "loader_generators": [g.get_state() for g in generators],
        }
        atomic_save(state, path)
        saved_epoch = epoch

    def run_evaluation() -> None:
        values, seconds = _evaluate(task, eval_loader, name)
        history.record_eval(values, seconds)

    saved_epoch: int | None = None
    start_epoch = 0
    if path is not None and path.exists():
        start_epoch, history = _resume(path, task, name, hparams, optimizers, schedulers, generators, dev, epochs)
        if bool(history.eval_seconds) != (eval_loader is not None):
            raise CheckpointMismatchError(
                f"the checkpoint {path} was written by a run "
                + ("with" if history.eval_seconds else "without")
                + " an evaluation (eval_loader); resume with the same loaders"
            )
        saved_epoch = start_epoch
    else:
        if seed is not None:
            seed_everything(seed)
            for gen in generators:
                gen.manual_seed(seed)
        if eval_loader is not None:
            run_evaluation()
        save(0)

    steps_per_epoch = _steps_per_epoch(train_loader, max_steps_per_epoch)
    label = desc or name
    bar = _progress_bar(
        progress,
        total=None if steps_per_epoch is None else steps_per_epoch * epochs,
        initial=sum(history.steps_per_epoch),
        desc=label,
    )
    monitor = _NonFiniteMonitor(dev)
    ctx = StepContext(optimizers, schedulers, clip, dev, _resolve_amp(amp, dev), monitor)
    if compile:  # the training step's forward pass is compiled; the update runs eagerly, as written
        ctx.optimize = torch.compiler.disable(ctx.optimize)
    global_step = history.global_step
    epoch = start_epoch
    try:
        _show(bar, history, {k: v[-1] for k, v in history.epoch_means.items()})
        for epoch in range(start_epoch + 1, epochs + 1):
            if bar is not None:
                bar.set_description(f"{label} epoch {epoch}/{epochs}", refresh=False)
            _set_training(task, True)
            sizes: list[int] = []  # per step: examples in the batch
            pending: list[tuple[int, str, torch.Tensor]] = []  # (global step, name, value) still on the device
            values: dict[str, list[tuple[int, float]]] = {}  # (global step, value) read from the device
            t0 = time.perf_counter()
            step = 0
            for batch in itertools.islice(train_loader, max_steps_per_epoch):  # None: the whole loader
                step += 1
                global_step += 1
                ctx.epoch, ctx.step, ctx.global_step = epoch, step, global_step
                batch = to_device(batch, dev)
                ctx.batch_size = _leading_size(batch)
                logged = _check_logged(step_fn(batch, ctx), name)
                sizes.append(_batch_size(ctx, batch))
                for q, value in logged.items():
                    monitor.observe(value, epoch=epoch, step=step, global_step=global_step, quantity=q, logged=True)
                    pending.append((global_step, q, value))
                if callback is not None:
                    callback(StepResult(epoch=epoch, step=step, global_step=global_step, logged=logged))
                if step % log_every == 0:  # a log point: the only place the loop waits for the device
                    monitor.check()
                    _read(pending, values)
                    _show(bar, history, _running_means(values, sizes, global_step - step + 1))
                if bar is not None:
                    bar.update(1)
            monitor.check()
            _read(pending, values)  # waits for the device: the epoch's time is complete
            seconds = time.perf_counter() - t0
            if step == 0:
                raise ValueError(f"the training loader yielded no batches in epoch {epoch}")
            history.record_epoch(sizes, values, seconds)
            if eval_loader is not None:
                run_evaluation()
            for scheduled in schedulers.values():
                if scheduled.interval == "epoch":
                    _step_epoch_scheduler(scheduled, history)
            save(epoch)
            _show(bar, history, {k: v[-1] for k, v in history.epoch_means.items()})
    except BaseException as exc:
        if saved_epoch is not None:
            exc.add_note(
                f"training stopped in epoch {epoch}; the checkpoint {path} holds epoch {saved_epoch}: "
                "make the same call again to resume from there"
            )
        raise
    finally:
        if bar is not None:
            bar.close()
    return history


# ----------------------------------------------------------------------------- the task's parts


def task_name(task: Any) -> str:
    """How the progress bar, the history and checkpoints call a task: its ``name``, else its class name."""
    name = getattr(task, "name", None)
    return name if isinstance(name, str) and name else type(task).__name__


def _method(task: Any, method: str, name: str, signature: str) -> Callable[..., Any]:
    fn = getattr(task, method, None)
    if not callable(fn):
        raise TypeError(f"{name} has no {method} method; a task needs {method}{signature}")
    return fn


def _configure_optimizers(task: Any, name: str) -> tuple[dict[str, torch.optim.Optimizer], dict[str, _Scheduled]]:
    """``task.configure_optimizers()`` as ``{name: optimizer}`` and ``{name: _Scheduled}``, checked."""
    out = _method(task, "configure_optimizers", name, "() -> an optimizer or {name: optimizer}")()
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
            f"{name} has the optimizers {_quoted(optimizers)}: give its schedulers as a dict keyed by those names"
        )
    return optimizers, {n: _scheduled(n, s, optimizers) for n, s in by_name.items()}


def _is_schedule(value: Any) -> bool:
    """Whether a dict is one scheduler's settings ``{"scheduler": s, "interval": ..., "monitor": ...}``."""
    return isinstance(value, Mapping) and hasattr(value.get("scheduler"), "state_dict")


def _scheduled(name: str, value: Any, optimizers: dict[str, torch.optim.Optimizer]) -> _Scheduled:
    if name not in optimizers:
        raise ValueError(f"a scheduler is keyed {name!r}, but the optimizers are {_quoted(optimizers)}")
    settings = dict(value) if _is_schedule(value) else {"scheduler": value}
    unknown = sorted(set(settings) - {"scheduler", "interval", "monitor"})
    if unknown:
        raise ValueError(
            f"unknown settings {unknown} of the scheduler of {name!r}; expected scheduler, interval, monitor"
        )
    sched, interval, monitor = settings["scheduler"], settings.get("interval", "epoch"), settings.get("monitor")
    if not (hasattr(sched, "step") and hasattr(sched, "state_dict")):
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
    return _Scheduled(sched, interval, monitor)


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


def _count_parameters(task: Any, optimizers: dict[str, torch.optim.Optimizer]) -> int:
    if callable(getattr(task, "parameters", None)):
        params = list(task.parameters())
    else:
        params = [p for o in optimizers.values() for g in o.param_groups for p in g["params"]]
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def _grad_clip_by_optimizer(grad_clip: Any, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    if grad_clip is None:
        return {}
    values = dict(grad_clip) if isinstance(grad_clip, Mapping) else dict.fromkeys(optimizers, grad_clip)
    for opt_name, value in values.items():
        if opt_name not in optimizers:
            raise ValueError(
                f"grad_clip names the optimizer {opt_name!r}, but the optimizers are {_quoted(optimizers)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"grad_clip must be positive, or a dict of positive values, got {grad_clip!r}")
    return {k: float(v) for k, v in values.items()}


def _set_training(task: Any, mode: bool) -> None:
    if callable(getattr(task, "train", None)):
        task.train(mode)


def _evaluate(task: Any, loader: Any, name: str) -> tuple[dict[str, float], float]:
    """``task.evaluate(loader)`` in eval mode without gradients, as floats; and its seconds."""
    t0 = time.perf_counter()
    was_training = bool(getattr(task, "training", True))
    _set_training(task, False)
    try:
        with torch.no_grad():
            out = task.evaluate(loader)
    finally:
        _set_training(task, was_training)
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


def _check_logged(logged: Any, name: str) -> dict[str, torch.Tensor]:
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


def _leading_size(batch: Any) -> int | None:
    """The leading dimension of the batch's first tensor (nested tuples, lists, dicts), None without one."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else None
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    for item in items:
        size = _leading_size(item)
        if size is not None:
            return size
    return None


def _batch_size(ctx: StepContext, batch: Any) -> int:
    size = ctx.batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(
            f"cannot tell the number of examples of a {type(batch).__name__} batch (ctx.batch_size is {size!r}); "
            "set ctx.batch_size to a positive int in training_step"
        )
    return size


def _step_epoch_scheduler(scheduled: _Scheduled, history: TrainHistory) -> None:
    if not isinstance(scheduled.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduled.scheduler.step()
        return
    q = scheduled.monitor
    source = history.eval_values if q in history.eval_values else history.epoch_means
    if q not in source:
        raise KeyError(f"ReduceLROnPlateau watches {q!r}, which is neither logged nor evaluated: {history.quantities}")
    scheduled.scheduler.step(source[q][-1])


# ----------------------------------------------------------------------------- checkpoints


def _resume(path, task, name, hparams, optimizers, schedulers, generators, dev, epochs):
    """Load the checkpoint at ``path`` into the task, optimizers, schedulers, random states; (epoch, history)."""
    ckpt = load_checkpoint(path)
    check_state_matches(task.state_dict(), ckpt, path, name)
    check_hparams_match(hparams, ckpt, path)
    check_names_match("optimizers", list(optimizers), list(ckpt["optimizers"]), path)
    check_names_match("schedulers", list(schedulers), list(ckpt["schedulers"]), path)
    epoch = int(ckpt["epoch"])
    if epoch > epochs:
        raise CheckpointMismatchError(
            f"the checkpoint {path} holds {epoch} completed epochs, more than epochs={epochs}; "
            f"ask for epochs >= {epoch} or use another checkpoint_path"
        )
    task.load_state_dict(ckpt["model"])
    for opt_name, opt in optimizers.items():
        try:
            opt.load_state_dict(ckpt["optimizers"][opt_name])
        except ValueError as exc:
            raise CheckpointMismatchError(f"the checkpoint {path} does not fit optimizer {opt_name!r}: {exc}") from exc
    for sched_name, scheduled in schedulers.items():
        scheduled.scheduler.load_state_dict(ckpt["schedulers"][sched_name])
    history = TrainHistory.from_dict(ckpt["history"])
    history.device = str(dev)
    set_rng_state(ckpt["rng"], dev)
    saved = ckpt.get("loader_generators") or []
    if len(saved) == len(generators):
        for gen, gen_state in zip(generators, saved, strict=True):
            gen.set_state(gen_state)
    else:
        warnings.warn(
            f"the checkpoint holds {len(saved)} loader generator states but the loaders have {len(generators)}: "
            "shuffling is not restored, so the resumed run may differ",
            stacklevel=3,
        )
    return epoch, history


# ----------------------------------------------------------------------------- non-finite values


class _NonFiniteMonitor:
    """Finds the first NaN/inf among the values it observes, and names it.

    Immediate mode (the CPU) checks each value as it comes. Deferred mode (accelerators)
    keeps the values on the device, without waiting for it, and :meth:`check` reads them
    all at once at log points.
    """

    def __init__(self, device: torch.device, deferred: bool | None = None):
        self.deferred = _defer_nonfinite_checks(device) if deferred is None else deferred
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
        where = dict(
            epoch=epoch, step=step, global_step=global_step, quantity=quantity, optimizer=optimizer, logged=logged
        )
        if self.deferred:
            self._pending.append((value.detach(), where))
            return
        v = float(value.detach())
        if not math.isfinite(v):
            raise _non_finite_error(v, **where)

    def check(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for v, (_, where) in zip(_to_host([t for t, _ in pending]), pending, strict=True):  # waits for the device
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


def _defer_nonfinite_checks(device: torch.device) -> bool:
    """Whether to check values at log points only (accelerators) rather than as they come (CPU)."""
    return device.type != "cpu"


# ----------------------------------------------------------------------------- devices and progress


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (nested tuples/lists/dicts) to ``device``; pinned memory copies asynchronously."""
    if isinstance(batch, torch.Tensor):
        non_blocking = device.type == "cuda" and batch.device.type == "cpu" and batch.is_pinned()
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(b, device) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _to_host(tensors: list[torch.Tensor]) -> list[float]:
    """0-dim tensors as floats, in order: one transfer per device and dtype (float64 stays exact)."""
    out = [math.nan] * len(tensors)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    for index in groups.values():
        for i, v in zip(index, torch.stack([tensors[i] for i in index]).cpu().tolist(), strict=True):
            out[i] = float(v)
    return out


def _read(pending: list[tuple[int, str, torch.Tensor]], values: dict[str, list[tuple[int, float]]]) -> None:
    """Move the pending logged values to ``values`` as floats (waits for the device), emptying ``pending``."""
    for (global_step, q, _), v in zip(pending, _to_host([t for _, _, t in pending]), strict=True):
        values.setdefault(q, []).append((global_step, v))
    pending.clear()


def _running_means(values: dict[str, list[tuple[int, float]]], sizes: list[int], first: int) -> dict[str, float]:
    """Each quantity's batch-weighted mean so far in the epoch whose first global step is ``first``."""
    return {q: weighted_mean([v for _, v in p], [sizes[g - first] for g, _ in p]) for q, p in values.items() if p}


def _show(bar: Any, history: TrainHistory, running: dict[str, float]) -> None:
    """The bar's postfix: running means of the logged quantities, then the last evaluation (``eval_`` when a name
    is both logged and evaluated)."""
    if bar is None:
        return
    info = {q: f"{v:.4g}" for q, v in running.items()}
    for q, v in history.eval_values.items():
        info[f"eval_{q}" if q in history.step_values or q in running else q] = f"{v[-1]:.4g}"
    bar.set_postfix(info, refresh=False)


def _progress_bar(progress: bool, total: int | None, initial: int, desc: str):
    """A tqdm bar: the notebook widget in Jupyter, plain text when widgets are static (papermill) or outside."""
    if not progress:
        return None
    if static_widgets():
        from tqdm.std import tqdm as bar_cls

        return bar_cls(total=total, initial=initial, desc=desc, mininterval=10.0, dynamic_ncols=True)
    from tqdm.auto import tqdm as bar_cls

    return bar_cls(total=total, initial=initial, desc=desc, dynamic_ncols=True)


# ----------------------------------------------------------------------------- arguments


def _check_train_args(train_loader, epochs, seed, max_steps_per_epoch, log_every, callback, compile) -> None:
    if train_loader is None:
        raise ValueError("train_loader is None; pass an iterable of batches (e.g. a DataLoader)")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if max_steps_per_epoch is not None and (
        not isinstance(max_steps_per_epoch, int) or isinstance(max_steps_per_epoch, bool) or max_steps_per_epoch <= 0
    ):
        raise ValueError(f"max_steps_per_epoch must be a positive int or None, got {max_steps_per_epoch!r}")
    if not isinstance(log_every, int) or isinstance(log_every, bool) or log_every <= 0:
        raise ValueError(f"log_every must be a positive int, got {log_every!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {callback!r}")
    if not isinstance(compile, (bool, dict)):
        raise TypeError(f"compile must be True, False or a dict of torch.compile options, got {compile!r}")


def _resolve_amp(amp: bool | None, device: torch.device) -> bool:
    if amp is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(amp)


def _maybe_compile(fn: Callable[..., Any], compile: bool | dict[str, Any]) -> Callable[..., Any]:
    if not compile:
        return fn
    return torch.compile(fn, **(compile if isinstance(compile, dict) else {}))


def _steps_per_epoch(loader: Any, max_steps: int | None) -> int | None:
    try:
        n = len(loader)
    except TypeError:
        return max_steps
    return n if max_steps is None else min(n, max_steps)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)
