"""One training loop for every likelihood model of the course.

Maximum likelihood on data ``x_1..x_N`` minimises the mean negative log-likelihood::

    L(theta) = -(1/N) sum_n log p_theta(x_n)      (nats per example)

:func:`fit` does this by minibatch gradient descent on ``loss_fn(model, batch)``, the
per-example NLL in nats (by default ``model.nll(x)``), and reports the result in the
field's units: nats per example (binarized MNIST papers) and bits per dimension
(``nats / (D ln 2)``, 8-bit image papers), see :mod:`course_lib.metrics`.

What the loop guarantees
------------------------
* The test NLL is measured before the first step (epoch 0) and after every epoch.
* With ``checkpoint_path`` the whole state is saved after epoch 0 and after every epoch
  (model, optimizer, scheduler, history, the Python/NumPy/torch random states and the
  data loaders' shuffling generators), written atomically. Calling :func:`fit` again
  with the same path resumes from the last completed epoch; a run that was interrupted
  (an exception, ``KeyboardInterrupt``) and resumed with the same arguments ends with
  exactly the parameters and history of a run that was never interrupted (bitwise on
  the CPU; wall-clock times aside).
* A non-finite loss stops training with :class:`NonFiniteLossError` (a
  ``FloatingPointError``) naming the epoch, the step and the value; the checkpoint keeps
  the last good state.
* On CUDA the inner loop does not wait for the GPU: losses are kept on the device and
  read at log points (every ``log_every`` steps) and at the end of each epoch.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from course_lib.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointMismatchError,
    atomic_save,
    check_model_matches,
    get_rng_state,
    load_checkpoint,
    loader_generators,
    set_rng_state,
)
from course_lib.metrics import nats_to_bits_per_dim
from course_lib.runtime import get_device, seed_everything, static_widgets

__all__ = [
    "CheckpointMismatchError",
    "History",
    "NonFiniteLossError",
    "StepInfo",
    "default_loss",
    "evaluate",
    "fit",
    "load_checkpoint",
]

LossFn = Callable[[nn.Module, Any], torch.Tensor]
"""``loss_fn(model, batch) -> (B,)``: per-example negative log-likelihood in nats."""


class NonFiniteLossError(FloatingPointError):
    """The training loss (or gradient norm) became NaN or infinite.

    Attributes: ``epoch`` (1-based), ``step`` (1-based within the epoch), ``global_step``
    (1-based over the whole run), ``value`` (the offending float) and ``quantity``.
    """

    def __init__(self, message: str, *, epoch: int, step: int, global_step: int, value: float, quantity: str):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.global_step = global_step
        self.value = value
        self.quantity = quantity


@dataclass
class StepInfo:
    """What a ``callback`` sees after every optimizer step.

    ``loss`` is the minibatch's mean NLL in nats per example, a 0-dim tensor left on the
    device: calling ``.item()`` on it waits for the GPU, so do that sparingly.
    """

    epoch: int  # 1-based epoch
    step: int  # 1-based step within the epoch
    global_step: int  # 1-based step over the whole run
    loss: torch.Tensor  # () mean NLL of the minibatch, nats per example


@dataclass
class History:
    """What :func:`fit` measured; every NLL is in nats per example unless named ``*_bpd``.

    Index ``e`` of the per-epoch lists is epoch ``e + 1``, except ``test_nats`` and
    ``eval_seconds`` whose index 0 is the measurement before the first step.
    """

    n_dims: int
    """D, the number of dimensions of one example (784 for MNIST), for bits/dim."""
    n_params: int = 0
    """Number of parameters of the model."""
    model_name: str = ""
    """The model's class name."""
    device: str = ""
    """The device the model was trained on."""
    train_nats: list[float] = field(default_factory=list)
    """Per epoch: mean training NLL over the epoch's examples (nats per example)."""
    test_nats: list[float] = field(default_factory=list)
    """Test NLL (nats per example) before training, then after each epoch: length epochs + 1.
    Empty when there is no test loader."""
    step_losses: list[float] = field(default_factory=list)
    """Per optimizer step: mean NLL of the minibatch (nats per example), for training curves."""
    step_sizes: list[int] = field(default_factory=list)
    """Per optimizer step: number of examples in the minibatch."""
    steps_per_epoch: list[int] = field(default_factory=list)
    """Per epoch: number of optimizer steps."""
    epoch_seconds: list[float] = field(default_factory=list)
    """Per epoch: wall-clock seconds of the training steps (without evaluation)."""
    eval_seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds of each test evaluation (length epochs + 1 with a test loader)."""

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_nats)

    @property
    def global_step(self) -> int:
        """Number of optimizer steps taken."""
        return len(self.step_losses)

    @property
    def train_bpd(self) -> list[float]:
        """Per-epoch training NLL in bits per dimension."""
        return [float(nats_to_bits_per_dim(v, self.n_dims)) for v in self.train_nats]

    @property
    def test_bpd(self) -> list[float]:
        """Test NLL in bits per dimension, before training then after each epoch."""
        return [float(nats_to_bits_per_dim(v, self.n_dims)) for v in self.test_nats]

    @property
    def best_test_nats(self) -> float | None:
        """The lowest test NLL measured (nats per example), None without a test loader."""
        finite = [v for v in self.test_nats if math.isfinite(v)]
        return min(finite) if finite else None

    @property
    def best_epoch(self) -> int | None:
        """The epoch (0 = before training) at which ``best_test_nats`` was measured."""
        best = self.best_test_nats
        return None if best is None else self.test_nats.index(best)

    @property
    def train_seconds(self) -> float:
        """Total wall-clock seconds spent in training steps."""
        return float(sum(self.epoch_seconds))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (JSON-serialisable), including the bits/dim and best values."""
        out = asdict(self)
        out.update(
            train_bpd=self.train_bpd,
            test_bpd=self.test_bpd,
            best_test_nats=self.best_test_nats,
            best_epoch=self.best_epoch,
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (derived entries are ignored)."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in data.items() if k in names})

    def summary(self) -> str:
        """One paragraph: model size, time, final and best NLL in nats and bits/dim."""
        name = self.model_name or "model"
        head = f"{name} ({self.n_params:,} parameters), {self.epochs} epochs, {self.global_step} steps"
        if self.device:
            head += f" on {self.device}"
        head += f", {_format_seconds(self.train_seconds)} of training"
        parts = [head]
        if self.train_nats:
            parts.append(f"train NLL {_nats_bpd(self.train_nats[-1], self.n_dims)}")
        if self.test_nats:
            parts.append(f"test NLL {_nats_bpd(self.test_nats[-1], self.n_dims)}")
            best = self.best_test_nats
            if best is not None:
                parts.append(f"best test {_nats_bpd(best, self.n_dims)} at epoch {self.best_epoch}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"History({self.summary()})"


def _format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {sec:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def _nats_bpd(nats: float, n_dims: int) -> str:
    return f"{nats:.2f} nats ({float(nats_to_bits_per_dim(nats, n_dims)):.4f} bits/dim)"


# ----------------------------------------------------------------------------- batches and losses


def _batch_x(batch: Any) -> torch.Tensor:
    """The data of a batch: the batch itself, or the first element of a tuple/list (x, y)."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 0:
            raise ValueError("got an empty tuple/list as a batch; expected a tensor x or a tuple (x, ...)")
        return batch[0]
    if isinstance(batch, dict):
        for key in ("x", "input", "inputs", "image", "images"):
            if key in batch:
                return batch[key]
        raise ValueError(f"got a dict batch with keys {sorted(batch)}; expected a key 'x' (or pass loss_fn=...)")
    return batch


def default_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """``model.nll(x)``: the per-example NLL in nats, shape (B,), of the batch's data ``x``."""
    nll = getattr(model, "nll", None)
    if not callable(nll):
        raise TypeError(
            f"{type(model).__name__} has no nll(x) method; give it one (per-example NLL in nats, shape (B,)) "
            "or pass loss_fn=lambda model, batch: ..."
        )
    return nll(_batch_x(batch))


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (nested tuples/lists/dicts) to ``device``; pinned memory copies asynchronously."""
    if isinstance(batch, torch.Tensor):
        non_blocking = device.type == "cuda" and batch.device.type == "cpu" and batch.is_pinned()
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(b, device) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _batch_size(per_example: torch.Tensor) -> int:
    return int(per_example.shape[0])


def _check_per_example(per_example: Any) -> torch.Tensor:
    if not isinstance(per_example, torch.Tensor):
        raise TypeError(
            f"loss_fn must return a tensor of per-example NLLs, shape (B,); got {type(per_example).__name__}"
        )
    if per_example.dim() != 1 or per_example.shape[0] == 0:
        raise ValueError(
            f"loss_fn must return the per-example NLL in nats with shape (B,), got shape {tuple(per_example.shape)}"
            " (a scalar? do not average over the batch; an image of losses? sum over the dimensions)"
        )
    return per_example


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 (autocast) -> float32; float32 and float64 stay as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
    max_batches: int | None = None,
) -> float:
    """Mean NLL in nats per example over ``loader`` (weighted by batch sizes).

    Runs in eval mode without gradients and in full precision, then restores the
    model's previous train/eval mode. ``device`` defaults to the model's device (a
    given device moves the model there). ``max_batches`` limits the batches used.
    """
    loss_fn = default_loss if loss_fn is None else loss_fn
    if device is None:
        dev = _model_device(model)
    else:
        dev = get_device(device)
        model.to(dev)
    was_training = model.training
    model.eval()
    sums: list[torch.Tensor] = []
    count = 0
    try:
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            per_example = _check_per_example(loss_fn(model, _to_device(batch, dev)))
            sums.append(_at_least_float32(per_example.detach()).sum())
            count += _batch_size(per_example)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate got an empty loader: no examples to average the NLL over")
    total = torch.stack(sums).cpu().double().sum().item()  # one host sync per evaluation
    return total / count


# ----------------------------------------------------------------------------- non-finite losses


class _NonFiniteMonitor:
    """Detects the first non-finite loss and names its step.

    Immediate mode (the CPU) checks every value as it comes. Deferred mode (GPUs)
    records the global step and the value of the first non-finite one on the device,
    without waiting for the GPU, and :meth:`check` raises at log points.
    """

    QUANTITIES = ("loss", "gradient norm")

    def __init__(self, device: torch.device, deferred: bool):
        self.deferred = deferred
        self._epoch_starts: list[tuple[int, int]] = []  # (epoch, global step of its first step)
        if deferred:
            # 2 * global_step + index of the quantity, -1 while everything was finite
            self._first = torch.full((), -1, dtype=torch.long, device=device)
            self._value = torch.zeros((), dtype=torch.float32, device=device)

    def observe(self, value: torch.Tensor, *, epoch: int, step: int, global_step: int, quantity: str) -> None:
        if not self.deferred:
            v = float(value.detach())
            if not math.isfinite(v):
                raise _non_finite_error(quantity, v, epoch, step, global_step)
            return
        if not self._epoch_starts or self._epoch_starts[-1][0] != epoch:
            self._epoch_starts.append((epoch, global_step - step + 1))
        code = 2 * global_step + self.QUANTITIES.index(quantity)
        new = (~torch.isfinite(value.detach())) & (self._first < 0)  # () bool, stays on the device
        self._first = torch.where(new, code, self._first)
        self._value = torch.where(new, value.detach().float(), self._value)

    def check(self) -> None:
        if not self.deferred:
            return
        first = int(self._first)  # waits for the device
        if first >= 0:
            global_step, index = divmod(first, 2)
            epoch, start = max((e, s) for e, s in self._epoch_starts if s <= global_step)
            step = global_step - start + 1
            raise _non_finite_error(self.QUANTITIES[index], float(self._value), epoch, step, global_step)


def _non_finite_error(quantity: str, value: float, epoch: int, step: int, global_step: int) -> NonFiniteLossError:
    msg = (
        f"non-finite training {quantity} {value} at epoch {epoch}, step {step} of the epoch "
        f"(global step {global_step}); lower the learning rate, clip gradients (grad_clip=...), "
        "or check the model's nll for log(0)"
    )
    return NonFiniteLossError(msg, epoch=epoch, step=step, global_step=global_step, value=value, quantity=quantity)


def _defer_nonfinite_checks(device: torch.device) -> bool:
    """Whether to check losses at log points only (accelerators) rather than every step (CPU)."""
    return device.type != "cpu"


# ----------------------------------------------------------------------------- progress


def _progress_bar(progress: bool, total: int | None, initial: int, desc: str):
    """A tqdm bar: the notebook widget in Jupyter, plain text when widgets are static (papermill) or outside."""
    if not progress:
        return None
    if static_widgets():
        from tqdm.std import tqdm as bar_cls

        return bar_cls(total=total, initial=initial, desc=desc, mininterval=10.0, dynamic_ncols=True)
    from tqdm.auto import tqdm as bar_cls

    return bar_cls(total=total, initial=initial, desc=desc, dynamic_ncols=True)


# ----------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    test_loader: Iterable[Any] | None = None,
    *,
    epochs: int,
    n_dims: int,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    seed: int | None = 0,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str | None = None,
    max_steps_per_epoch: int | None = None,
    amp: bool | None = None,
    scheduler: Any = None,
    scheduler_interval: Literal["step", "epoch"] = "epoch",
    log_every: int = 20,
    compile: bool | dict[str, Any] = False,
    callback: Callable[[StepInfo], None] | None = None,
) -> History:
    """Fit ``model`` by maximum likelihood; return the :class:`History` of NLLs in nats and bits/dim.

    Args:
        model: an ``nn.Module``; by default its ``nll(x) -> (B,)`` (nats per example) is minimised.
        train_loader: yields batches ``x`` or ``(x, ...)``; shuffling loaders should carry a seeded
            ``generator`` (``make_loader(..., generator=seed_everything(seed))``).
        test_loader: batches for the test NLL, measured before the first step and after every epoch.
        epochs: number of passes over ``train_loader`` (0: only measure the initial test NLL).
        n_dims: D, dimensions per example (784 for MNIST), to convert nats to bits/dim.
        lr: learning rate of the default optimizer, Adam.
        optimizer: an optimizer over the model's parameters, or a factory ``params -> optimizer``.
        loss_fn: ``loss_fn(model, batch) -> (B,)`` per-example NLL in nats; default ``model.nll(x)``.
        device: where to train; default :func:`course_lib.runtime.get_device` (CUDA, MPS, CPU).
        checkpoint_path: save everything after epoch 0 and every epoch; resume from it when it exists.
        seed: at the start of a fresh run, seeds Python, NumPy, torch and the loaders' shuffling
            generators (``None``: leave all random states as they are). The model's initialisation
            happens before ``fit`` and is the caller's to seed.
        grad_clip: clip the gradient's global L2 norm to this value (its norm is then also checked).
        progress: show a tqdm bar (notebook widget in Jupyter) with the running train and last test NLL.
        desc: the bar's label; default the model's class name.
        max_steps_per_epoch: cut each epoch after this many steps (quick runs, smoke profile).
        amp: bf16 autocast for the training steps; ``None``: on for CUDA GPUs with native bf16, else off.
            Test NLLs are always computed in float32.
        scheduler: an LR scheduler built on ``optimizer``, or a factory ``optimizer -> scheduler``.
        scheduler_interval: step the scheduler after every ``"epoch"`` or every optimizer ``"step"``
            (``ReduceLROnPlateau`` is stepped per epoch with the test NLL, else the train NLL).
        log_every: steps between progress updates (and, on GPUs, between checks for NaN/inf).
        compile: ``torch.compile`` the loss computation; a dict is passed to ``torch.compile``.
        callback: called with a :class:`StepInfo` after every optimizer step.

    Resuming: the shuffling of a loader without a ``generator`` comes from torch's global
    random stream, which the checkpoint also holds, so such runs resume exactly too.

    Raises:
        NonFiniteLossError: a NaN/inf loss; the message names the epoch, step and value. On the
            CPU it is caught before the step, so the model keeps its last finite parameters; on
            GPUs it is found at the next log point. The checkpoint always holds the last good epoch.
        CheckpointMismatchError: ``checkpoint_path`` holds a different model (the mismatch is named).
    """
    _validate_fit_args(epochs, n_dims, lr, grad_clip, max_steps_per_epoch, log_every, scheduler_interval)
    loss_fn = default_loss if loss_fn is None else loss_fn
    dev = get_device(device)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    model.to(dev)
    opt = _make_optimizer(model, optimizer, lr)
    sched = _make_scheduler(scheduler, opt)
    use_amp = _resolve_amp(amp, dev)
    step_loss_fn = _maybe_compile(loss_fn, compile)
    generators = loader_generators(train_loader) + loader_generators(test_loader)
    history = History(
        n_dims=n_dims,
        n_params=sum(p.numel() for p in model.parameters()),
        model_name=type(model).__name__,
        device=str(dev),
    )

    start_epoch = 0
    resumed = path is not None and path.exists()
    if resumed:
        ckpt = load_checkpoint(path)
        check_model_matches(model, ckpt, path)
        if ckpt.get("n_dims") != n_dims:
            raise CheckpointMismatchError(
                f"the checkpoint {path} was saved with n_dims={ckpt.get('n_dims')}, not n_dims={n_dims}"
            )
        start_epoch = int(ckpt["epoch"])
        if start_epoch > epochs:
            raise CheckpointMismatchError(
                f"the checkpoint {path} holds {start_epoch} completed epochs, more than epochs={epochs}; "
                f"ask for epochs >= {start_epoch} or use another checkpoint_path"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler") is not None:
            sched.load_state_dict(ckpt["scheduler"])
        history = History.from_dict(ckpt["history"])
        history.device = str(dev)
        if bool(history.test_nats) != (test_loader is not None):
            raise CheckpointMismatchError(
                f"the checkpoint {path} was written by a run "
                + ("with" if history.test_nats else "without")
                + " a test loader; resume with the same loaders"
            )
        set_rng_state(ckpt["rng"], dev)
        saved_gens = ckpt.get("loader_generators") or []
        if len(saved_gens) == len(generators):
            for gen, gen_state in zip(generators, saved_gens, strict=True):
                gen.set_state(gen_state)
        else:
            warnings.warn(
                f"the checkpoint holds {len(saved_gens)} loader generator states but the loaders have "
                f"{len(generators)}: shuffling is not restored, so the resumed run may differ",
                stacklevel=2,
            )
    elif seed is not None:
        seed_everything(seed)
        for gen in generators:
            gen.manual_seed(seed)

    saved_epoch = start_epoch if resumed else None

    def save(epoch: int) -> None:
        nonlocal saved_epoch
        if path is None:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "model_class": type(model).__name__,
            "n_dims": n_dims,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "history": history.to_dict(),
            "rng": get_rng_state(dev),
            "loader_generators": [g.get_state() for g in generators],
        }
        atomic_save(state, path)
        saved_epoch = epoch

    def measure_test() -> float:
        t0 = time.perf_counter()
        value = evaluate(model, test_loader, loss_fn=loss_fn)
        history.eval_seconds.append(time.perf_counter() - t0)
        history.test_nats.append(value)
        return value

    if not resumed:
        if test_loader is not None:
            measure_test()
        save(0)

    steps_per_epoch = _steps_per_epoch(train_loader, max_steps_per_epoch)
    bar = _progress_bar(
        progress,
        total=None if steps_per_epoch is None else steps_per_epoch * epochs,
        initial=sum(history.steps_per_epoch),
        desc=desc or type(model).__name__,
    )
    monitor = _NonFiniteMonitor(dev, deferred=_defer_nonfinite_checks(dev))
    autocast = (lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)) if use_amp else nullcontext
    params = [p for p in model.parameters() if p.requires_grad]
    global_step = history.global_step
    epoch = start_epoch

    def postfix(running: float | None) -> None:
        if bar is None:
            return
        info = {}
        if running is not None:
            info["train_nats"] = f"{running:.3f}"
        if history.test_nats:
            info["test_nats"] = f"{history.test_nats[-1]:.3f}"
        bar.set_postfix(info, refresh=False)

    try:
        if bar is not None:
            postfix(history.train_nats[-1] if history.train_nats else None)
        for epoch in range(start_epoch + 1, epochs + 1):
            if bar is not None:
                bar.set_description(f"{desc or type(model).__name__} epoch {epoch}/{epochs}", refresh=False)
            model.train()
            pending: list[torch.Tensor] = []  # per-step mean losses not yet read from the device
            epoch_losses: list[float] = []
            epoch_sizes: list[int] = []
            t0 = time.perf_counter()
            step = 0
            for batch in itertools.islice(train_loader, max_steps_per_epoch):  # None: the whole loader
                step += 1
                global_step += 1
                batch = _to_device(batch, dev)
                with autocast():
                    per_example = _check_per_example(step_loss_fn(model, batch))
                loss = _at_least_float32(per_example).mean()  # () mean NLL, nats per example
                monitor.observe(loss, epoch=epoch, step=step, global_step=global_step, quantity="loss")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
                    monitor.observe(norm, epoch=epoch, step=step, global_step=global_step, quantity="gradient norm")
                opt.step()
                if sched is not None and scheduler_interval == "step":
                    sched.step()
                pending.append(loss.detach())
                epoch_sizes.append(_batch_size(per_example))
                if callback is not None:
                    callback(StepInfo(epoch=epoch, step=step, global_step=global_step, loss=loss.detach()))
                if step % log_every == 0:
                    monitor.check()
                    epoch_losses.extend(_read(pending))
                    pending = []
                    if bar is not None:
                        postfix(_weighted_mean(epoch_losses, epoch_sizes))
                if bar is not None:
                    bar.update(1)
            monitor.check()
            epoch_losses.extend(_read(pending))  # waits for the device: the epoch's time is complete
            seconds = time.perf_counter() - t0
            if step == 0:
                raise ValueError(f"the training loader yielded no batches in epoch {epoch}")
            history.step_losses.extend(epoch_losses)
            history.step_sizes.extend(epoch_sizes)
            history.steps_per_epoch.append(step)
            history.epoch_seconds.append(seconds)
            history.train_nats.append(_weighted_mean(epoch_losses, epoch_sizes))
            if test_loader is not None:
                measure_test()
            if sched is not None and scheduler_interval == "epoch":
                _step_epoch_scheduler(sched, history)
            save(epoch)
            postfix(history.train_nats[-1])
    except BaseException as exc:
        if saved_epoch is not None:
            exc.add_note(
                f"training stopped in epoch {epoch}; the checkpoint {path} holds epoch {saved_epoch}: call fit "
                "again with the same arguments to resume from there"
            )
        raise
    finally:
        if bar is not None:
            bar.close()
    return history


def _validate_fit_args(epochs, n_dims, lr, grad_clip, max_steps_per_epoch, log_every, scheduler_interval) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(n_dims, int) or isinstance(n_dims, bool) or n_dims <= 0:
        raise ValueError(f"n_dims must be a positive int (dimensions per example, e.g. 784), got {n_dims!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
    if max_steps_per_epoch is not None and (not isinstance(max_steps_per_epoch, int) or max_steps_per_epoch <= 0):
        raise ValueError(f"max_steps_per_epoch must be a positive int or None, got {max_steps_per_epoch!r}")
    if not isinstance(log_every, int) or log_every <= 0:
        raise ValueError(f"log_every must be a positive int, got {log_every!r}")
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")


def _make_optimizer(model: nn.Module, optimizer: Any, lr: float) -> torch.optim.Optimizer:
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"{type(model).__name__} has no trainable parameters")
        # one fused kernel per step on CUDA; the reference implementation elsewhere
        return torch.optim.Adam(params, lr=lr, fused=params[0].is_cuda or None)
    if isinstance(optimizer, torch.optim.Optimizer):
        own = {id(p) for p in model.parameters()}
        foreign = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in own]
        if foreign:
            raise ValueError(
                f"the optimizer holds {len(foreign)} tensors that are not parameters of {type(model).__name__}; "
                "build it on model.parameters() (after moving the model), or pass a factory params -> optimizer"
            )
        return optimizer
    if callable(optimizer):
        return optimizer([p for p in model.parameters() if p.requires_grad])
    raise TypeError(f"optimizer must be a torch.optim.Optimizer, a factory or None, got {type(optimizer).__name__}")


def _make_scheduler(scheduler: Any, opt: torch.optim.Optimizer) -> Any:
    if scheduler is None:
        return None
    if hasattr(scheduler, "step") and hasattr(scheduler, "state_dict"):
        if getattr(scheduler, "optimizer", opt) is not opt:
            raise ValueError(
                "the scheduler was built on another optimizer than the one fit uses; pass that optimizer as "
                "optimizer=..., or pass a factory scheduler=lambda opt: ..."
            )
        return scheduler
    if callable(scheduler):
        return scheduler(opt)
    raise TypeError(f"scheduler must be an LR scheduler, a factory optimizer -> scheduler or None, got {scheduler!r}")


def _step_epoch_scheduler(sched: Any, history: History) -> None:
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(history.test_nats[-1] if history.test_nats else history.train_nats[-1])
    else:
        sched.step()


def _resolve_amp(amp: bool | None, device: torch.device) -> bool:
    if amp is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(amp)


def _maybe_compile(loss_fn: LossFn, compile: bool | dict[str, Any]) -> LossFn:
    if not compile:
        return loss_fn
    options = compile if isinstance(compile, dict) else {}
    return torch.compile(loss_fn, **options)


def _steps_per_epoch(loader: Any, max_steps: int | None) -> int | None:
    try:
        n = len(loader)
    except TypeError:
        return max_steps
    return n if max_steps is None else min(n, max_steps)


def _read(pending: list[torch.Tensor]) -> list[float]:
    """Per-step losses from the device as floats (one transfer for many steps)."""
    if not pending:
        return []
    return torch.stack(pending).cpu().tolist()


def _weighted_mean(values: Sequence[float], sizes: Sequence[int]) -> float:
    n = sum(sizes[: len(values)])
    return math.fsum(v * s for v, s in zip(values, sizes, strict=False)) / n
