r"""Training energy-based models with Langevin samples from a replay buffer: :class:`EBMTask`.

Du & Mordatch (2019), "Implicit generation and generalization in energy-based models". Each
training step

1. draws negative starting points from a **replay buffer** of past samples (a fraction
   ``reinit_prob`` of them fresh uniform noise on the box ``clamp``),
2. runs ``sgld_steps`` of **SGLD** on them, :math:`x \leftarrow \mathrm{clip}(x - \epsilon\,\nabla_x E(x)
   + \sigma\xi)` (:func:`~course_lib.models.energy.sampling.sgld`, with the gradient's entries
   clipped to ``grad_clip`` and the chains clamped to the box), and puts them back in the buffer:
   the chains persist across steps, which lets short runs reach far from the noise;
3. minimises the contrastive-divergence loss with Du & Mordatch's L2 regulariser on the energies,

   .. math::
       \mathcal L = \frac1B \sum_b \big[E(x^+_b) - E(x^-_b)\big]
                    + \alpha\,\frac1B \sum_b \big[E(x^+_b)^2 + E(x^-_b)^2\big],

   whose first term's gradient is the maximum-likelihood gradient
   :math:`\nabla_\theta(-\log p_\theta(x^+))` with the model's expectation estimated on the
   samples (which are held fixed: no gradient flows through the chains). The second keeps the
   energies near zero, since :math:`E` is only defined up to a constant.

The data may get a little Gaussian noise (``data_noise``), which smooths the data distribution
so that the energy need not grow infinitely steep between training points.

Carried state: the buffer is a registered buffer of the task, and the sampler's own
``torch.Generator`` (the only randomness of the chains, the buffer's draws and the data noise) is
saved through ``get_extra_state``, so that a run interrupted and resumed from its checkpoint ends
bitwise equal to one that was not (on the CPU).

Units: energies in nats; the box ``clamp`` is that of the data (pixels in [0, 1] for MNIST, a
square around a 2-D toy distribution).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.models.energy.ebm import grid_kl, grid_log_density
from course_lib.models.energy.sampling import ReplayBuffer, sgld
from course_lib.training.loop import StepContext, to_device
from course_lib.training.task_common import (
    TaskGenerator,
    batch_inputs,
    check_lr_schedule,
    check_number,
    with_lr_schedule,
)

__all__ = ["EBMTask"]

Range2D = tuple[tuple[float, float], tuple[float, float]]

LR_SCHEDULES = ("constant", "cosine")


def _count(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class EBMTask(nn.Module):
    """Train an energy model by SGLD from a replay buffer (Du & Mordatch, 2019) with :func:`~course_lib.training.train`.

    Args:
        energy_model: an ``nn.Module`` with ``energy(x) -> (B,)`` (e.g.
            :class:`~course_lib.models.energy.MLPEnergy`, :class:`~course_lib.models.energy.ConvEnergy`).
        lr, betas: Adam's learning rate and betas (Du & Mordatch: 1e-4, (0.0, 0.999); beta1 = 0
            because the negatives change from step to step).
        lr_schedule: ``"constant"``, or ``"cosine"``: decay to zero over ``total_steps`` optimizer
            steps, stepped after every step (it damps the step-to-step wobble of the learned density).
        total_steps: the number of optimizer steps of the run (``epochs * steps per epoch``),
            needed by the cosine schedule.
        buffer_size: examples the replay buffer holds.
        reinit_prob: the fraction of each step's starting points that are fresh uniform noise.
        sgld_steps: SGLD steps per training step.
        step_size: SGLD's gradient step :math:`\\epsilon` (Du & Mordatch decouple it from the noise).
        noise_std: SGLD's noise :math:`\\sigma` per step.
        grad_clip: SGLD clips each entry of :math:`\\nabla_x E` to [-grad_clip, grad_clip] (None: no clipping).
        alpha: the weight of the L2 regulariser on the energies.
        data_noise: std of Gaussian noise added to each training batch (then clamped to the box).
        clamp: the box (low, high): the buffer's uniform noise, and the chains are clamped to it.
        shape: the shape of one example; default the model's ``input_shape``.
        generator_seed: the seed of the task's own generator (chains, buffer draws, data noise).
        true_log_density: for 2-D models, the true density's log on a grid (``grid_log_density`` of
            ``-log_prob``, over ``grid_range`` with its own ``n``): ``evaluate`` then also reports
            ``kl``, :math:`\\mathrm{KL}(p_\\text{true} \\,\\|\\, p_\\theta)` in nats on that grid.
        grid_range: the range of ``true_log_density``'s grid.

    ``training_step`` logs ``loss``, ``energy_data`` (mean :math:`E(x^+)`), ``energy_samples`` (mean
    :math:`E(x^-)`) and ``regularizer`` (mean :math:`E(x^+)^2 + E(x^-)^2`). ``evaluate(loader)`` gives
    ``energy_test`` (mean energy of the loader's examples), ``energy_buffer`` (mean energy of up to
    1,000 of the buffer's samples), and ``kl`` when ``true_log_density`` is given. Batches are ``x``
    or ``(x, y, ...)``. The samples to look at are in ``task.buffer.samples``.
    """

    def __init__(self, energy_model: nn.Module, *, lr: float = 1e-4, betas: tuple[float, float] = (0.0, 0.999),
                 lr_schedule: str = "constant", total_steps: int | None = None, buffer_size: int = 10_000,
                 reinit_prob: float = 0.05, sgld_steps: int = 60, step_size: float = 10.0,
                 noise_std: float = 0.005, grad_clip: float | None = 0.03, alpha: float = 0.1,
                 data_noise: float = 0.0, clamp: tuple[float, float] = (0.0, 1.0),
                 shape: Sequence[int] | None = None, generator_seed: int = 0,
                 true_log_density: Tensor | None = None, grid_range: Range2D = ((-4.0, 4.0), (-4.0, 4.0))) -> None:
        super().__init__()
        if not isinstance(energy_model, nn.Module) or not callable(getattr(energy_model, "energy", None)):
            raise TypeError(f"EBMTask trains an nn.Module with energy(x) -> (B,); got {type(energy_model).__name__}")
        self.lr = check_number("lr", lr, low=0.0, strict=True)
        try:
            beta1, beta2 = (float(b) for b in betas)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}") from exc
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (beta1, beta2)
        check_lr_schedule(lr_schedule, total_steps, LR_SCHEDULES)
        self.lr_schedule, self.total_steps = lr_schedule, total_steps
        self.sgld_steps = _count(sgld_steps, "sgld_steps")
        self.step_size = check_number("step_size", step_size, low=0.0, strict=True)
        self.noise_std = check_number("noise_std", noise_std, low=0.0)
        self.grad_clip = None if grad_clip is None else check_number("grad_clip", grad_clip, low=0.0, strict=True)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.data_noise = check_number("data_noise", data_noise, low=0.0)
        reinit_prob = check_number("reinit_prob", reinit_prob, low=0.0)
        if reinit_prob > 1.0:
            raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob!r}")
        try:
            low, high = (float(c) for c in clamp)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"clamp must be a box (low, high), got {clamp!r}") from exc
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"clamp must be a finite box (low, high) with low < high, got {clamp!r}")
        self.clamp = (low, high)
        if shape is None:
            shape = getattr(energy_model, "input_shape", None)
            if shape is None:
                raise ValueError(f"{type(energy_model).__name__} has no input_shape: pass shape, the shape of one "
                                 "example, e.g. shape=(2,) or shape=(1, 28, 28)")
        shape = tuple(shape)
        for k, size in enumerate(shape):
            _count(size, f"shape[{k}]")
        self.shape = shape
        self.model = energy_model
        self.name = type(energy_model).__name__
        self.buffer = ReplayBuffer(size=_count(buffer_size, "buffer_size"), shape=shape, low=low, high=high,
                                   reinit_prob=reinit_prob)
        self.generator_seed = int(generator_seed)
        self._generator = TaskGenerator(self.generator_seed)
        if true_log_density is not None:
            if not isinstance(true_log_density, Tensor) or true_log_density.dim() != 2 or (
                    true_log_density.shape[0] != true_log_density.shape[1]):
                got = tuple(true_log_density.shape) if isinstance(true_log_density, Tensor) else true_log_density
                raise ValueError(f"true_log_density must be a square grid (n, n) of log-densities, got {got}")
            if shape != (2,):
                raise ValueError(f"true_log_density is for 2-D models (shape (2,)), got shape {shape}")
            self.register_buffer("true_log_density", true_log_density.detach().double().clone(), persistent=False)
        else:
            self.true_log_density = None
        self.grid_range = grid_range
        self.hparams = {"alpha": self.alpha, "sgld_steps": self.sgld_steps, "step_size": self.step_size,
                        "noise_std": self.noise_std, "buffer_size": buffer_size, "reinit_prob": reinit_prob,
                        "data_noise": self.data_noise, "lr_schedule": lr_schedule}

    # ----------------------------------------------------------------------------- the sampler's generator

    def generator(self, device: torch.device) -> torch.Generator:
        """The task's own generator on ``device``: seeded with ``generator_seed`` at first use, or restored
        from a checkpoint's state."""
        return self._generator.on(device)

    def get_extra_state(self) -> dict[str, Any]:
        return self._generator.state()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._generator.load(state)

    # ----------------------------------------------------------------------------- training

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"{self.name} has no trainable parameters")
        optimizer = torch.optim.Adam(params, lr=self.lr, betas=self.betas)
        return with_lr_schedule(optimizer, self.lr_schedule, self.total_steps)

    def negatives(self, n: int) -> Tensor:
        """``n`` negative samples: drawn from the buffer, moved by ``sgld_steps`` of SGLD, put back. (n, *shape)."""
        device = self.buffer.samples.device
        generator = self.generator(device)
        start, indices = self.buffer.draw(n, generator)
        samples = sgld(self.model.energy, start, step_size=self.step_size, noise_std=self.noise_std,
                       n_steps=self.sgld_steps, clamp=self.clamp, grad_clip=self.grad_clip,
                       generator=generator).state
        self.buffer.push(samples, indices)
        return samples

    def loss_terms(self, x: Tensor, samples: Tensor) -> dict[str, Tensor]:
        """The loss of data ``x`` against ``samples`` and its parts (0-dim tensors; see the module docstring)."""
        energy_data, energy_samples = self.model.energy(x), self.model.energy(samples)  # (B,), (B,)
        regularizer = (energy_data**2 + energy_samples**2).mean()
        loss = energy_data.mean() - energy_samples.mean() + self.alpha * regularizer
        return {"loss": loss, "energy_data": energy_data.mean(), "energy_samples": energy_samples.mean(),
                "regularizer": regularizer}

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, Tensor]:
        x = batch_inputs(batch)
        if not isinstance(x, Tensor) or not x.is_floating_point() or tuple(x.shape[1:]) != self.shape:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"EBMTask expects float batches (B, {', '.join(map(str, self.shape))}) in the box "
                             f"{self.clamp}, got {got}")
        if self.data_noise > 0:
            noise = torch.randn(x.shape, generator=self.generator(x.device), device=x.device, dtype=x.dtype)
            x = (x + self.data_noise * noise).clamp(*self.clamp)
        samples = self.negatives(len(x))
        with ctx.autocast():
            terms = self.loss_terms(x, samples)
        ctx.optimize(terms["loss"])
        return {name: value.detach() for name, value in terms.items()}

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        device = self.buffer.samples.device
        total, count = torch.zeros((), dtype=torch.float64, device=device), 0
        for batch in loader:
            x = to_device(batch_inputs(batch), device)
            total += self.model.energy(x).double().sum()
            count += int(x.shape[0])
        if count == 0:
            raise ValueError("evaluate got an empty loader: no examples to measure the energy of")
        shown = self.buffer.samples[:1_000]
        result = {"energy_test": float(total) / count, "energy_buffer": float(self.model.energy(shown).double().mean())}
        if self.true_log_density is not None:
            log_q, area = grid_log_density(self.model.energy, range=self.grid_range,
                                           n=int(self.true_log_density.shape[0]))
            result["kl"] = grid_kl(self.true_log_density.cpu(), log_q, area)
        return result
