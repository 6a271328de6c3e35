r"""Training RBMs by contrastive divergence: :class:`ContrastiveDivergenceTask`, a task for
:func:`~course_lib.training.train`.

The gradient of the mean log-likelihood of an RBM is, for its weights,

.. math::  \frac{\partial}{\partial W} \langle \log p(v) \rangle_{\text{data}}
           = \langle v\, p(h{=}1 \mid v)^\top \rangle_{\text{data}}
           - \langle v\, p(h{=}1 \mid v)^\top \rangle_{\text{model}},

and likewise for the biases. The model's term needs samples of :math:`p(v)`; contrastive
divergence (CD-k, Hinton 2002) takes them from k block Gibbs steps started at the batch,
persistent CD (PCD, Tieleman 2008) from chains that carry on from one update to the next.
With those samples :math:`v^-` held fixed (no gradient through the sampler), the loss

.. math::  \mathcal L = \operatorname{mean}_{\text{batch}} F(v) - \operatorname{mean}_{\text{samples}} F(v^-)

has exactly that gradient (with a minus sign), since :math:`\partial F(v) / \partial W = -v\,
p(h{=}1 \mid v)^\top`. Its value, the *free-energy gap*, is not a likelihood: it is logged to
watch, not to compare runs.

::

    rbm = RBM(n_visible=784, n_hidden=500)
    rbm.init_visible_bias(train_images)
    task = ContrastiveDivergenceTask(rbm, k=1, persistent=True, n_chains=100, lr=0.05)
    history = train(task, train_loader, test_loader, epochs=20)

Units: free energies, pseudo-log-likelihoods and log-likelihoods in nats per image; the
reconstruction error is the squared error per image of the mean-field reconstruction.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from course_lib.models.energy.rbm import RBM, sample_bernoulli
from course_lib.training.loop import StepContext, to_device
from course_lib.training.task_common import (
    TaskGenerator,
    batch_inputs,
    check_lr_schedule,
    check_number,
    with_lr_schedule,
)

__all__ = ["EXACT_EVAL_MAX_UNITS", "LR_SCHEDULES", "ContrastiveDivergenceTask"]

LR_SCHEDULES = ("constant", "linear")
"""``constant``, or ``linear``: decay to zero over ``total_steps`` optimizer steps (Tieleman, 2008)."""

EXACT_EVAL_MAX_UNITS = 16
"""``evaluate`` also gives the exact test log-likelihood when the RBM's smaller layer has at most this many units."""

DEFAULT_CHAINS = 100
"""Persistent chains when ``n_chains`` is not given: the usual batch size."""


class ContrastiveDivergenceTask(nn.Module):
    """Train an :class:`~course_lib.models.energy.rbm.RBM` by CD-k or persistent CD, with SGD and momentum.

    Args:
        rbm: the RBM to train (trained in place).
        k: Gibbs steps per update (CD-k; for PCD, steps of the persistent chains per update).
        persistent: PCD: the negative samples come from ``n_chains`` chains carried across updates
            (a registered buffer, so checkpoints hold it), which start as independent draws of
            sigmoid(visible_bias): build the task after :meth:`RBM.init_visible_bias`. Else CD-k:
            chains start at the batch.
        n_chains: PCD's chains (default 100); not used by CD-k (one chain per example).
        lr: SGD's learning rate for the mean gradient over the batch.
        momentum: SGD's momentum (Hinton's practical guide: 0.5, then 0.9).
        weight_decay: L2 penalty on the weights (not on the biases), as in Hinton's guide.
        lr_schedule: ``"constant"`` or ``"linear"`` (to zero over ``total_steps`` optimizer steps,
            stepped after every step).
        total_steps: the run's number of optimizer steps (epochs * steps per epoch), for ``"linear"``.
        generator_seed: seed of the sampler's own ``torch.Generator``, the only randomness of the
            chains; its state is carried in checkpoints (``get_extra_state``), so a resumed run
            draws the same samples as one never interrupted.
        eval_seed: seed of the units that the evaluation's pseudo-likelihood flips, the same at
            every evaluation.
        monitor_every: log the reconstruction error every this many steps (the first step, then
            every ``monitor_every``-th): it costs two more products with W, a sixth of a PCD-1 step.

    ``training_step`` logs ``free_energy_gap`` (the loss, nats) at every step and
    ``reconstruction_error`` (the batch's mean squared error per image) every ``monitor_every``
    steps. ``evaluate(loader)`` returns, per image, ``pseudo_log_likelihood`` (nats, one random
    unit per image, see
    :meth:`RBM.pseudo_log_likelihood`), ``reconstruction_error`` and, when the RBM's smaller layer
    has at most ``EXACT_EVAL_MAX_UNITS`` units, ``log_likelihood`` (nats, exact). Batches are ``v``
    or ``(v, y, ...)`` with v (B, D) or images (B, 1, H, W) of zeros and ones.
    """

    def __init__(self, rbm: RBM, *, k: int = 1, persistent: bool = False, n_chains: int | None = None,
                 lr: float = 0.01, momentum: float = 0.5, weight_decay: float = 0.0,
                 lr_schedule: str = "constant", total_steps: int | None = None,
                 generator_seed: int = 0, eval_seed: int = 0, monitor_every: int = 10) -> None:
        super().__init__()
        if not isinstance(rbm, RBM):
            raise TypeError(f"ContrastiveDivergenceTask trains a course_lib RBM, got {type(rbm).__name__}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k (Gibbs steps per update) must be a positive int, got {k!r}")
        if not isinstance(persistent, bool):
            raise TypeError(f"persistent must be True or False, got {persistent!r}")
        if n_chains is None:
            n_chains = DEFAULT_CHAINS
        if isinstance(n_chains, bool) or not isinstance(n_chains, numbers.Integral) or n_chains < 1:
            raise ValueError(f"n_chains must be a positive int, got {n_chains!r}")
        if isinstance(monitor_every, bool) or not isinstance(monitor_every, numbers.Integral) or monitor_every < 1:
            raise ValueError(f"monitor_every must be a positive int, got {monitor_every!r}")
        self.lr = check_number("lr", lr, low=0.0, strict=True)
        self.momentum = check_number("momentum", momentum, low=0.0, strict=False)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.weight_decay = check_number("weight_decay", weight_decay, low=0.0, strict=False)
        check_lr_schedule(lr_schedule, total_steps, LR_SCHEDULES)
        self.rbm = rbm
        self.k, self.persistent = int(k), persistent
        self.lr_schedule, self.total_steps = lr_schedule, total_steps
        self.generator_seed, self.eval_seed = int(generator_seed), int(eval_seed)
        self.monitor_every = int(monitor_every)
        self.name = f"RBM {'PCD' if persistent else 'CD'}-{self.k}"
        self.hparams = {"k": self.k, "persistent": persistent, "n_chains": int(n_chains) if persistent else 0,
                        "lr_schedule": lr_schedule}
        if persistent:  # independent draws of sigmoid(visible_bias), from a generator of their own
            start = torch.Generator().manual_seed(self.generator_seed + 1)
            probs = torch.sigmoid(rbm.visible_bias.detach().cpu()).expand(int(n_chains), rbm.n_visible)
            self.register_buffer("chains", sample_bernoulli(probs, start).to(rbm.weight.device))
        self._sampler = TaskGenerator(self.generator_seed)

    # ------------------------------------------------------------------------- carried state

    def sampler(self, device: torch.device) -> torch.Generator:
        """The chains' own generator on ``device``: seeded with ``generator_seed``, or restored from a checkpoint."""
        return self._sampler.on(device)

    def get_extra_state(self) -> dict[str, Any]:
        return self._sampler.state()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._sampler.load(state)

    # ------------------------------------------------------------------------- the loop's protocol

    def configure_optimizers(self) -> Any:
        groups = [{"params": [self.rbm.weight], "weight_decay": self.weight_decay},
                  {"params": [self.rbm.visible_bias, self.rbm.hidden_bias], "weight_decay": 0.0}]
        optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)
        return with_lr_schedule(optimizer, self.lr_schedule, self.total_steps)

    def negative_samples(self, v: torch.Tensor) -> torch.Tensor:
        """The model's samples for the update on batch ``v`` (B, D).

        CD-k: k Gibbs steps from the batch; PCD: the persistent chains, moved on k steps (in place).
        """
        generator = self.sampler(v.device)
        if not self.persistent:
            return self.rbm.gibbs(v, self.k, generator)
        self.chains.copy_(self.rbm.gibbs(self.chains, self.k, generator))
        return self.chains

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        v = self.rbm.check_visible(batch_inputs(batch), "batch")
        negatives = self.negative_samples(v)  # no gradient flows through the sampler
        # full precision even when the run uses bf16: the gap is a small difference of free energies of ~100s of nats
        free = self.rbm.free_energy(torch.cat([v, negatives]))  # (B + n_negatives,), one product with W
        loss = free[: len(v)].mean() - free[len(v):].mean()
        ctx.batch_size = int(v.shape[0])
        ctx.optimize(loss)
        logged = {"free_energy_gap": loss.detach()}
        if (ctx.global_step - 1) % self.monitor_every == 0:
            with torch.no_grad():
                logged["reconstruction_error"] = self.rbm.reconstruction_error(v).mean()
        return logged

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        device = self.rbm.weight.device
        generator = torch.Generator(device=device).manual_seed(self.eval_seed)  # the same units every time
        exact = min(self.rbm.n_visible, self.rbm.n_hidden) <= EXACT_EVAL_MAX_UNITS
        log_z = self.rbm.exact_log_partition() if exact else None
        sums = {"pseudo_log_likelihood": 0.0, "reconstruction_error": 0.0}
        if exact:
            sums["log_likelihood"] = 0.0
        count = 0
        for batch in loader:
            v = self.rbm.check_visible(to_device(batch_inputs(batch), device), "batch")
            sums["pseudo_log_likelihood"] += float(self.rbm.pseudo_log_likelihood(v, generator).double().sum())
            sums["reconstruction_error"] += float(self.rbm.reconstruction_error(v).double().sum())
            if exact:
                sums["log_likelihood"] += float(self.rbm.log_likelihood(v, log_z).double().sum())
            count += int(v.shape[0])
        if count == 0:
            raise ValueError("evaluate got an empty loader: no examples to measure the RBM on")
        return {name: total / count for name, total in sums.items()}
