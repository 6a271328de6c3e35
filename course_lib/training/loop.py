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
            for p in self.critic.parameters():                      # WGAN's weight clipping
                p.data.clamp_(-0.01, 0.01)
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
  Each optimizer holds its own part of the task's parameters.
* **Alternating updates**: count steps with ``ctx.global_step`` as above (it continues
  across epochs and resumes), or loop inside one ``training_step`` (five critic updates
  on one batch, then one generator update). Code between updates (weight clipping, a
  sampler's moves) is the task's own.
* **Schedulers** are keyed like the optimizers they drive. Each is a scheduler (stepped
  after every epoch) or a dict ``{"scheduler": s, "interval": "step" | "epoch", "monitor": q}``;
  ``"step"`` steps it after every step of its optimizer, and ``monitor`` names the quantity
  that a ``ReduceLROnPlateau`` is stepped with (its evaluated value, else its epoch mean).
* **Carried state** (persistent Markov chains, a replay buffer, a sampler's own
  ``torch.Generator``) lives in the task's ``state_dict()``: registered buffers, or
  ``get_extra_state``/``set_extra_state`` for anything else. Checkpoints hold it.
* **Batch sizes** weight the epoch means: the leading dimension of the batch's first
  tensor, unless ``training_step`` sets ``ctx.batch_size``.
* ``evaluate(loader)`` moves its batches to the task's device itself (:func:`to_device`).
* An optional ``hparams`` dict of plain values (numbers, strings) on the task is saved in
  checkpoints; resuming with other values is refused. An optional ``name`` labels the
  task (default: its class name).

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
from course_lib.training.nonfinite import NonFiniteLossError, NonFiniteMonitor, to_host
from course_lib.training.tasks import (
    Scheduled,
    check_logged,
    configure_optimizers,
    count_parameters,
    evaluate_task,
    grad_clip_by_optimizer,
    quoted,
    set_training,
    step_epoch_scheduler,
    task_method,
    task_name,
)

__all__ = ["NonFiniteLossError", "StepContext", "StepResult", "to_device", "train"]


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
        self._schedulers: dict[str, Scheduled] = schedulers
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
            raise ValueError(f"ctx.optimize(loss, {name!r}) needs a 0-dim loss tensor, got {shape}; average it first")
        if not loss.requires_grad:
            raise ValueError(
                f"the loss given to ctx.optimize(loss, {name!r}) does not depend on any parameter (requires_grad is "
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
                f"the task has the optimizers {quoted(self.optimizers)}: name one, ctx.optimize(loss, name)"
            )
        if name not in self.optimizers:
            raise ValueError(f"no optimizer named {name!r}; configure_optimizers returned {quoted(self.optimizers)}")
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
    optimizers, schedulers = configure_optimizers(task, name)
    clip = grad_clip_by_optimizer(grad_clip, optimizers)
    training_step = task_method(task, "training_step", name, "(batch, ctx) -> {name: 0-dim tensor} of logged values")
    if eval_loader is not None:
        task_method(task, "evaluate", name, "(loader) -> {name: float}, as eval_loader was given")
    if checkpoint_path is not None:
        for method in ("state_dict", "load_state_dict"):
            task_method(task, method, name, " (as an nn.Module has) to be checkpointed")
    step_fn = _maybe_compile(training_step, compile)
    generators = loader_generators(train_loader) + loader_generators(eval_loader)
    hparams = dict(getattr(task, "hparams", None) or {})
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    history = TrainHistory(task_name=name, n_params=count_parameters(task, optimizers), device=str(dev))

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
        values, seconds = evaluate_task(task, eval_loader, name)
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
    monitor = NonFiniteMonitor(deferred=_defer_nonfinite_checks(dev))
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
            set_training(task, True)
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
                logged = check_logged(step_fn(batch, ctx), name)
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
                    step_epoch_scheduler(scheduled, history)
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


# ----------------------------------------------------------------------------- batches, devices and progress


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


def _defer_nonfinite_checks(device: torch.device) -> bool:
    """Whether to check values at log points only (accelerators) rather than as they come (CPU)."""
    return device.type != "cpu"


def _read(pending: list[tuple[int, str, torch.Tensor]], values: dict[str, list[tuple[int, float]]]) -> None:
    """Move the pending logged values to ``values`` as floats (waits for the device), emptying ``pending``."""
    for (global_step, q, _), v in zip(pending, to_host([t for _, _, t in pending]), strict=True):
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
