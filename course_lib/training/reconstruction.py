"""Training autoencoders: :class:`ReconstructionTask`, a task for :func:`~course_lib.training.train`.

Any module with ``encode``, ``decode`` and ``loss(x, target=None) -> (B,)`` (the squared
error per example, summed over its values) is trained to reconstruct its input::

    task = ReconstructionTask(Autoencoder(), lr=1e-3, corruption=("mask", 0.25))
    history = train(task, train_loader, test_loader, epochs=10)
    history.eval_values["test_error"][-1]          # squared error per image on the test set

Units: squared error per image, pixels in [0, 1] (Hinton & Salakhutdinov, 2006). With a
``corruption`` the model is a denoising autoencoder (Vincent et al., 2008): each training
batch is corrupted afresh (from torch's global random stream, which checkpoints save) and the
loss compares the reconstruction of the corrupted input with the clean one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from course_lib.models.latent.autoencoder import CORRUPTIONS, check_corruption, corrupt
from course_lib.training.loop import StepContext, to_device
from course_lib.training.task_common import batch_inputs, check_lr_schedule, with_lr_schedule

__all__ = ["ReconstructionTask"]

LR_SCHEDULES = ("constant", "cosine")


class ReconstructionTask(nn.Module):
    """Train ``model`` (an autoencoder, a linear autoencoder, a sparse coder's encoder...) to reconstruct its input.

    Args:
        model: an ``nn.Module`` with ``encode``, ``decode`` and ``loss(x, target=None) -> (B,)``.
        lr: Adam's learning rate.
        weight_decay: Adam's (L2) weight decay.
        corruption: None, or ``(kind, level)`` with ``kind`` in ``CORRUPTIONS``: ``("mask", p)``
            drops each input with probability p, ``("gaussian", sigma)`` adds noise of std sigma.
        lr_schedule: ``"constant"``, or ``"cosine"``: decay to zero over ``total_steps`` optimizer
            steps, stepped after every step.
        total_steps: the number of optimizer steps of the run (``epochs * steps per epoch``),
            needed by the cosine schedule.
        eval_seed: seed of the corruption of the test data, the same at every evaluation, so
            that the denoising errors of successive epochs compare the same inputs.

    ``training_step`` logs ``loss``, the batch's mean squared error per image of the
    reconstruction (of the corrupted input, with a corruption) against the clean input.
    ``evaluate(loader)`` returns ``test_error`` (clean inputs) and, with a corruption,
    ``denoising_error`` (corrupted inputs against the clean ones), squared errors per image,
    measured in eval mode: without code noise, and from the bits of a binary code. Batches are
    ``x`` or ``(x, y, ...)``. The task's name (progress bar, checkpoints) is the model's class name.
    """

    def __init__(self, model: nn.Module, *, lr: float, weight_decay: float = 0.0,
                 corruption: tuple[str, float] | None = None, lr_schedule: str = "constant",
                 total_steps: int | None = None, eval_seed: int = 0) -> None:
        super().__init__()
        for method in ("encode", "decode", "loss"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"ReconstructionTask trains a model with encode, decode and loss(x, target=None); "
                                f"{type(model).__name__} has no {method}")
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got lr={lr!r}, weight_decay={weight_decay!r}")
        if corruption is not None:
            if not isinstance(corruption, (tuple, list)) or len(corruption) != 2:
                raise ValueError(f"corruption must be None or (kind, level) with kind in {CORRUPTIONS}, "
                                 f"got {corruption!r}")
            corruption = check_corruption(*corruption)
        check_lr_schedule(lr_schedule, total_steps, LR_SCHEDULES)
        self.model = model
        self.name = type(model).__name__
        self.lr, self.weight_decay, self.corruption = float(lr), float(weight_decay), corruption
        self.lr_schedule, self.total_steps, self.eval_seed = lr_schedule, total_steps, int(eval_seed)
        kind, level = corruption if corruption is not None else ("none", 0.0)
        self.hparams = {"corruption": kind, "corruption_level": level, "lr_schedule": lr_schedule}

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"{self.name} has no trainable parameters")
        # the fused kernel updates every parameter in one pass: ~5x faster than the default on 2 CPU cores
        fused = params[0].device.type in ("cpu", "cuda", "mps") and params[0].is_floating_point()
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=fused or None)
        return with_lr_schedule(optimizer, self.lr_schedule, self.total_steps)

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        x = batch_inputs(batch)
        inputs = x if self.corruption is None else corrupt(x, *self.corruption)
        with ctx.autocast():
            per_example = self.model.loss(inputs, target=x)  # (B,) squared error per image
        loss = per_example.mean()
        ctx.batch_size = int(per_example.shape[0])
        ctx.optimize(loss)
        return {"loss": loss.detach()}

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        device = next(self.model.parameters()).device
        generator = torch.Generator().manual_seed(self.eval_seed)  # the same corrupted test set every time
        sums = {"test_error": torch.zeros((), dtype=torch.float64, device=device)}
        if self.corruption is not None:
            sums["denoising_error"] = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for batch in loader:
            x = to_device(batch_inputs(batch), device)
            sums["test_error"] += self.model.loss(x).double().sum()
            if self.corruption is not None:
                noisy = corrupt(x, *self.corruption, generator=generator)
                sums["denoising_error"] += self.model.loss(noisy, target=x).double().sum()
            count += int(x.shape[0])
        if count == 0:
            raise ValueError("evaluate got an empty loader: no examples to measure the reconstruction error on")
        return {name: float(total) / count for name, total in sums.items()}
