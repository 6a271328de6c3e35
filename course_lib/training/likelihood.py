"""Maximum likelihood: :func:`fit`, a thin layer on the general loop :func:`~course_lib.training.train`.

Maximum likelihood on data ``x_1..x_N`` minimises the mean negative log-likelihood::

    L(theta) = -(1/N) sum_n log p_theta(x_n)      (nats per example)

:func:`fit` does this by minibatch gradient descent on ``loss_fn(model, batch)``, the
per-example NLL in nats (by default ``model.nll(x)``), and reports the result in the
field's units: nats per example (binarized MNIST papers) and bits per dimension
(``nats / (D ln 2)``, 8-bit image papers), see :mod:`course_lib.metrics`.

It wraps the model in a one-optimizer task whose training step logs ``train_nats`` and
whose evaluation returns ``test_nats``, and hands it to :func:`train`, which brings what
every run of the course gets:

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

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from course_lib.metrics import nats_to_bits_per_dim
from course_lib.runtime import get_device
from course_lib.training.history import format_seconds
from course_lib.training.loop import StepContext, StepResult, to_device, train

__all__ = ["History", "StepInfo", "default_loss", "evaluate", "fit"]

LossFn = Callable[[nn.Module, Any], torch.Tensor]
"""``loss_fn(model, batch) -> (B,)``: per-example negative log-likelihood in nats."""


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
        head += f", {format_seconds(self.train_seconds)} of training"
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
            per_example = _check_per_example(loss_fn(model, to_device(batch, dev)))
            sums.append(_at_least_float32(per_example.detach()).sum())
            count += _batch_size(per_example)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate got an empty loader: no examples to average the NLL over")
    total = torch.stack(sums).cpu().double().sum().item()  # one host sync per evaluation
    return total / count


# ----------------------------------------------------------------------------- fit


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
        compile: ``torch.compile`` the loss computation (the update runs eagerly); a dict is passed to
            ``torch.compile``.
        callback: called with a :class:`StepInfo` after every optimizer step.

    Resuming: the shuffling of a loader without a ``generator`` comes from torch's global
    random stream, which the checkpoint also holds, so such runs resume exactly too.

    Raises:
        NonFiniteLossError: a NaN/inf loss; the message names the epoch, step and value. On the
            CPU it is caught before the step, so the model keeps its last finite parameters; on
            GPUs it is found at the next log point. The checkpoint always holds the last good epoch.
        CheckpointMismatchError: ``checkpoint_path`` holds a different model (the mismatch is named).
    """
    _validate_fit_args(epochs, n_dims, lr, grad_clip, scheduler_interval)
    task = _LikelihoodTask(
        model,
        default_loss if loss_fn is None else loss_fn,
        n_dims=n_dims,
        lr=lr,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_interval=scheduler_interval,
        monitor="test_nats" if test_loader is not None else "train_nats",
    )
    n_params = sum(p.numel() for p in model.parameters())

    def on_step(result: StepResult) -> None:
        callback(StepInfo(result.epoch, result.step, result.global_step, loss=result.logged["train_nats"]))

    general = train(
        task,
        train_loader,
        test_loader,
        epochs=epochs,
        device=device,
        checkpoint_path=checkpoint_path,
        seed=seed,
        progress=progress,
        desc=desc,
        max_steps_per_epoch=max_steps_per_epoch,
        amp=amp,
        compile=compile,
        log_every=log_every,
        grad_clip=grad_clip,
        callback=None if callback is None else on_step,
    )
    return History(
        n_dims=n_dims,
        n_params=n_params,
        model_name=type(model).__name__,
        device=general.device,
        train_nats=list(general.epoch_means.get("train_nats", [])),
        test_nats=list(general.eval_values.get("test_nats", [])),
        step_losses=list(general.step_values.get("train_nats", [])),
        step_sizes=list(general.step_sizes),
        steps_per_epoch=list(general.steps_per_epoch),
        epoch_seconds=list(general.epoch_seconds),
        eval_seconds=list(general.eval_seconds),
    )


class _LikelihoodTask:
    """The task that :func:`fit` trains: one optimizer minimising the mean NLL of ``loss_fn(model, batch)``.

    Not a module of its own: its state is the model's, so that a checkpoint's ``model`` entry
    is ``model.state_dict()`` and the model's class names the checkpoint.
    """

    def __init__(self, model, loss_fn, *, n_dims, lr, optimizer, scheduler, scheduler_interval, monitor):
        self.model = model
        self.loss_fn = loss_fn
        self.name = type(model).__name__
        self.hparams = {"n_dims": n_dims}
        self._lr, self._optimizer, self._scheduler = lr, optimizer, scheduler
        self._schedule = {"interval": scheduler_interval, "monitor": monitor}

    # the parts of an nn.Module that the loop uses, delegated to the model
    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True) -> _LikelihoodTask:
        self.model.train(mode)
        return self

    def to(self, device: torch.device) -> _LikelihoodTask:
        self.model.to(device)
        return self

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)

    def configure_optimizers(self) -> Any:
        opt = _make_optimizer(self.model, self._optimizer, self._lr)  # after the loop moved the model
        sched = _make_scheduler(self._scheduler, opt)
        if sched is None:
            return opt
        return opt, {"scheduler": sched, **self._schedule}

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            per_example = _check_per_example(self.loss_fn(self.model, batch))
        loss = _at_least_float32(per_example).mean()  # () mean NLL, nats per example
        ctx.batch_size = _batch_size(per_example)
        ctx.optimize(loss)
        return {"train_nats": loss.detach()}

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        return {"test_nats": evaluate(self.model, loader, loss_fn=self.loss_fn)}


def _validate_fit_args(epochs, n_dims, lr, grad_clip, scheduler_interval) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(n_dims, int) or isinstance(n_dims, bool) or n_dims <= 0:
        raise ValueError(f"n_dims must be a positive int (dimensions per example, e.g. 784), got {n_dims!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
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
    if not isinstance(scheduler, type) and hasattr(scheduler, "step") and hasattr(scheduler, "state_dict"):
        if getattr(scheduler, "optimizer", opt) is not opt:
            raise ValueError(
                "the scheduler was built on another optimizer than the one fit uses; pass that optimizer as "
                "optimizer=..., or pass a factory scheduler=lambda opt: ..."
            )
        return scheduler
    if callable(scheduler):  # a factory, or a scheduler class
        return scheduler(opt)
    raise TypeError(f"scheduler must be an LR scheduler, a factory optimizer -> scheduler or None, got {scheduler!r}")
