r"""Annealed importance sampling (Neal, 2001): the log-partition function of an energy model.

To estimate :math:`Z_1 = \sum_x f_1(x)` of a target from a base :math:`f_0` whose
:math:`Z_0` is known and which can be sampled exactly, walk through intermediate
distributions :math:`f_\beta`, :math:`0 = \beta_0 < \beta_1 < \dots < \beta_K = 1`: draw
:math:`x_1 \sim p_0`, and for :math:`k = 1, \dots, K`

.. math::  \log w \mathrel{+}= \log f_{\beta_k}(x_k) - \log f_{\beta_{k-1}}(x_k), \qquad
           x_{k+1} \sim T_k(\cdot \mid x_k),

where :math:`T_k` leaves :math:`p_{\beta_k}` invariant (a Gibbs or Metropolis step). Then
:math:`\mathbb{E}[w] = Z_1 / Z_0` exactly, for any number of steps: :math:`Z_0 \cdot
\operatorname{mean}(w)` over independent runs is unbiased for :math:`Z_1`, and its log is a
(slight) *under*-estimate of :math:`\log Z_1` on average (Jensen), so a log-likelihood
computed with it is slightly optimistic. More intermediate distributions make the
weights less spread and the estimate sharper.

For an RBM (Salakhutdinov & Murray, 2008), :func:`rbm_log_partition` anneals from a
*base-rate* model, independent pixels :math:`p_A(v) \propto e^{b_A^\top v}` (with
:math:`b_A` the log-odds of the data's pixel means, that base is already close to the
data), to the RBM, through

.. math::  \log f_\beta(v) = (1-\beta)\, b_A^\top v + \beta\, b^\top v
           + \sum_j \operatorname{softplus}\big(\beta\,(c_j + v^\top W_{:j})\big),

the joint :math:`p_\beta(v, h) \propto e^{(1-\beta) b_A^\top v - \beta E(v, h)}` with the
hidden units summed out; :math:`\log Z_0 = \sum_i \operatorname{softplus}(b_{A,i}) + H \log 2`.
The transitions are block Gibbs steps of :math:`p_\beta(v, h)`.

Conventions: log-partitions and log-weights in nats, float64; ``log_weights`` of an
:class:`AISEstimate` are the logs of the per-run estimates :math:`Z_0 w_r` of :math:`Z`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib.models.energy.rbm import RBM, sample_bernoulli

__all__ = [
    "AISEstimate",
    "RBMLogLikelihood",
    "annealed_importance_sampling",
    "annealing_betas",
    "log_mean_exp",
    "rbm_log_likelihood",
    "rbm_log_partition",
]

SCHEDULES = ("three_piece", "uniform")
"""The schedules of :func:`annealing_betas`."""

# Salakhutdinov & Murray (2008): 500 betas on [0, 0.5), 4,000 on [0.5, 0.9), 10,000 on [0.9, 1].
_PIECES = ((0.0, 0.5, 500), (0.5, 0.9, 4_000), (0.9, 1.0, 10_000))


@dataclass
class AISEstimate:
    """What annealed importance sampling measured.

    ``log_z`` is the log of the mean of the runs' estimates of Z (``log_mean_exp(log_weights)``);
    ``log_z_std`` its delta-method standard error, ``se(mean w) / mean w``, from the spread of
    the weights (NaN with a single run); ``log_z_low``/``log_z_high`` are log(mean w -/+ 3 se)
    (the low end is -inf when 3 standard errors exceed the mean), as Salakhutdinov & Murray
    (2008) report them. A large spread of ``log_weights`` means too few intermediate
    distributions: the error bar itself is then unreliable.
    """

    log_z: float
    log_weights: Tensor  # (n_runs,) float64, log of each run's estimate of Z
    log_z_std: float
    log_z_low: float
    log_z_high: float

    @property
    def n_runs(self) -> int:
        return int(self.log_weights.numel())

    def __repr__(self) -> str:
        return (f"AISEstimate(log_z={self.log_z:.4f} ± {self.log_z_std:.4f}, "
                f"3 s.e. interval [{self.log_z_low:.4f}, {self.log_z_high:.4f}], n_runs={self.n_runs})")


def log_mean_exp(x: Tensor, dim: int = 0) -> Tensor:
    """log(mean(exp(x))) along ``dim``, computed stably (through logsumexp)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    n = x.shape[dim]
    if n == 0:
        raise ValueError(f"log_mean_exp of an empty dimension {dim} (shape {tuple(x.shape)})")
    return torch.logsumexp(x, dim) - math.log(n)


def _estimate(log_weights: Tensor) -> AISEstimate:
    """The :class:`AISEstimate` of per-run log-estimates of Z (n_runs,)."""
    log_weights = log_weights.detach().double().cpu()
    if not bool(torch.isfinite(log_weights).all()):
        raise ValueError(f"AIS produced non-finite log-weights (e.g. {log_weights[~torch.isfinite(log_weights)][0]}); "
                         "check log_f and the base model's log_z0")
    n = log_weights.numel()
    shift = float(log_weights.max())
    w = (log_weights - shift).exp()  # in (0, 1]
    mean = float(w.mean())
    se = float(w.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.nan
    low = shift + math.log(mean - 3 * se) if mean - 3 * se > 0 else -math.inf
    return AISEstimate(
        log_z=shift + math.log(mean),
        log_weights=log_weights,
        log_z_std=se / mean,
        log_z_low=low if n > 1 else math.nan,
        log_z_high=shift + math.log(mean + 3 * se) if n > 1 else math.nan,
    )


def _check_betas(betas: Sequence[float] | Tensor) -> list[float]:
    values = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if values.numel() < 2:
        raise ValueError(f"betas must hold at least 2 values (0 and 1), got {values.numel()}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError("betas has non-finite values")
    if float(values[0]) != 0.0 or float(values[-1]) != 1.0:
        raise ValueError(f"betas must run from 0 to 1, got {float(values[0]):g} .. {float(values[-1]):g}")
    if not bool((values[1:] > values[:-1]).all()):
        k = int(torch.nonzero(values[1:] <= values[:-1])[0])
        raise ValueError(f"betas must increase strictly, but betas[{k + 1}] = {float(values[k + 1]):g} "
                         f"<= betas[{k}] = {float(values[k]):g}")
    return values.tolist()


def annealing_betas(n_betas: int, *, schedule: str = "three_piece") -> Tensor:
    """``n_betas`` inverse temperatures from 0 to 1 (float64, strictly increasing).

    ``"three_piece"``: linear on [0, 0.5), [0.5, 0.9) and [0.9, 1] with the proportions of
    Salakhutdinov & Murray (2008) (500, 4,000 and 10,000 of their 14,500): dense near 1, where
    the RBM's own structure appears; ``n_betas=14_500`` gives their schedule. ``"uniform"``:
    evenly spaced.
    """
    if isinstance(n_betas, bool) or not isinstance(n_betas, numbers.Integral) or n_betas < 2:
        raise ValueError(f"n_betas must be an int >= 2, got {n_betas!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "uniform":
        return torch.linspace(0.0, 1.0, int(n_betas), dtype=torch.float64)
    if n_betas < 4:
        raise ValueError(f"the three_piece schedule needs n_betas >= 4, got {n_betas}")
    total = sum(n for _, _, n in _PIECES)
    n1 = max(1, round(n_betas * _PIECES[0][2] / total))
    n2 = max(1, round(n_betas * _PIECES[1][2] / total))
    n3 = int(n_betas) - n1 - n2
    return torch.cat([
        torch.linspace(0.0, 0.5, n1 + 1, dtype=torch.float64)[:-1],
        torch.linspace(0.5, 0.9, n2 + 1, dtype=torch.float64)[:-1],
        torch.linspace(0.9, 1.0, n3, dtype=torch.float64),
    ])


@torch.no_grad()
def annealed_importance_sampling(
    log_f: Callable[[Tensor, float], Tensor],
    transition: Callable[[Tensor, float, torch.Generator | None], Tensor],
    x0: Tensor,
    betas: Sequence[float] | Tensor,
    *,
    log_z0: float,
    generator: torch.Generator | None = None,
) -> AISEstimate:
    """Estimate log Z_1 by annealed importance sampling, one run per row of ``x0``.

    Args:
        log_f: ``log_f(x, beta) -> (B,)``, the unnormalised log-density of the intermediate
            distribution at ``beta`` (a float), for a batch of states x (B, ...).
        transition: ``transition(x, beta, generator) -> x'``, a Markov step that leaves
            ``exp(log_f(., beta))`` invariant (it must not modify x in place).
        x0: (B, ...) exact, independent draws from the beta = 0 distribution, one per run.
        betas: increasing from exactly 0 to exactly 1 (see :func:`annealing_betas`).
        log_z0: log Z_0 of the beta = 0 distribution, nats.
        generator: handed to every ``transition``.

    Returns:
        an :class:`AISEstimate` whose ``log_weights`` are log Z_0 + log w of each run.
    """
    betas = _check_betas(betas)
    if isinstance(log_z0, bool) or not isinstance(log_z0, numbers.Real) or not math.isfinite(log_z0):
        raise ValueError(f"log_z0 must be a finite number, got {log_z0!r}")
    if not isinstance(x0, torch.Tensor) or x0.dim() < 1 or x0.shape[0] < 1:
        raise ValueError(f"x0 must be a tensor (B, ...) of B >= 1 runs' start states, got {getattr(x0, 'shape', x0)}")
    x = x0
    log_w = torch.zeros(x0.shape[0], dtype=torch.float64, device=x0.device)
    for k in range(1, len(betas)):
        log_w += (log_f(x, betas[k]) - log_f(x, betas[k - 1])).double()  # f_k(x_k) / f_{k-1}(x_k)
        if k < len(betas) - 1:
            x = transition(x, betas[k], generator)  # x_{k+1} ~ T_k(. | x_k), leaves p_k invariant
    return _estimate(log_w + float(log_z0))


class _AnnealedRBM:
    """log f_beta and the Gibbs transition of the path from a base-rate model to an RBM.

    Both need the hidden pre-activations c + v W of the current state; they are computed
    once per state (the loop asks for log f at two betas, then for a step, on the same v).
    """

    def __init__(self, rbm: RBM, base_visible_bias: Tensor) -> None:
        self.weight = rbm.weight.detach()
        self.visible_bias = rbm.visible_bias.detach()
        self.hidden_bias = rbm.hidden_bias.detach()
        self.base = base_visible_bias
        self._base64, self._bias64 = base_visible_bias.double(), self.visible_bias.double()
        self._v: Tensor | None = None
        self._pre: Tensor | None = None

    def pre(self, v: Tensor) -> Tensor:
        if v is not self._v:
            self._v, self._pre = v, v @ self.weight + self.hidden_bias  # (B, D) -> (B, H)
        return self._pre

    def log_f(self, v: Tensor, beta: float) -> Tensor:
        pre = self.pre(v).double()  # float64 from here: the weights' increments are small differences
        visible = v.double() @ ((1 - beta) * self._base64 + beta * self._bias64)
        return visible + F.softplus(beta * pre).sum(-1)

    def transition(self, v: Tensor, beta: float, generator: torch.Generator | None) -> Tensor:
        h = sample_bernoulli(torch.sigmoid(beta * self.pre(v)), generator)
        logits = (1 - beta) * self.base + beta * (h @ self.weight.T + self.visible_bias)
        return sample_bernoulli(torch.sigmoid(logits), generator)


@torch.no_grad()
def rbm_log_partition(
    rbm: RBM,
    *,
    n_runs: int = 100,
    n_betas: int = 10_000,
    base_visible_bias: Tensor | None = None,
    schedule: str = "three_piece",
    generator: torch.Generator | None = None,
) -> AISEstimate:
    """log Z of a binary RBM by AIS from a base-rate model (Salakhutdinov & Murray, 2008).

    Args:
        rbm: the :class:`~course_lib.models.energy.rbm.RBM`.
        n_runs: independent annealing runs (S&M: 100).
        n_betas: intermediate distributions, ends included (S&M: 14,500).
        base_visible_bias: b_A (D,) of the base model p_A(v) ∝ exp(b_A^T v); default zeros (uniform
            pixels). For MNIST pass the log-odds of the training pixel means
            (:func:`~course_lib.models.energy.rbm.pixel_log_odds`): the base is then close to the data
            and the estimate far sharper.
        schedule: ``"three_piece"`` (S&M's, see :func:`annealing_betas`) or ``"uniform"``.
        generator: the randomness of the runs, on the RBM's device.
    """
    if not isinstance(rbm, RBM):
        raise TypeError(f"rbm must be a course_lib RBM, got {type(rbm).__name__}")
    if isinstance(n_runs, bool) or not isinstance(n_runs, numbers.Integral) or n_runs < 1:
        raise ValueError(f"n_runs must be a positive int, got {n_runs!r}")
    betas = annealing_betas(n_betas, schedule=schedule)
    W = rbm.weight.detach()
    if base_visible_bias is None:
        base = torch.zeros(rbm.n_visible, dtype=W.dtype, device=W.device)
    else:
        if not isinstance(base_visible_bias, torch.Tensor) or tuple(base_visible_bias.shape) != (rbm.n_visible,):
            raise ValueError(f"base_visible_bias must be a tensor of shape ({rbm.n_visible},), got "
                             f"{tuple(getattr(base_visible_bias, 'shape', ())) or type(base_visible_bias).__name__}")
        if not bool(torch.isfinite(base_visible_bias).all()):
            raise ValueError("base_visible_bias has non-finite values (clip the pixel means before taking log-odds)")
        base = base_visible_bias.detach().to(dtype=W.dtype, device=W.device)
    x0 = sample_bernoulli(torch.sigmoid(base).expand(int(n_runs), rbm.n_visible), generator)  # exact draws of p_A
    log_z0 = float(F.softplus(base.double()).sum()) + rbm.n_hidden * math.log(2.0)
    path = _AnnealedRBM(rbm, base)
    return annealed_importance_sampling(path.log_f, path.transition, x0, betas, log_z0=log_z0, generator=generator)


@dataclass
class RBMLogLikelihood:
    """An RBM's mean log-likelihood of a data set, with log Z from repeated AIS (nats per example).

    ``log_likelihood`` is the mean of ``-F(v)`` over the examples minus the mean of the repeats'
    log Z; ``spread`` is the standard deviation of the repeats' log-likelihoods (NaN with one
    repeat): how much the figure moves when AIS is run again; ``log_zs`` the repeats' estimates.
    """

    log_likelihood: float
    spread: float
    mean_neg_free_energy: float
    estimates: list[AISEstimate]

    @property
    def log_zs(self) -> list[float]:
        return [e.log_z for e in self.estimates]


def rbm_log_likelihood(
    rbm: RBM,
    v: Tensor,
    *,
    base_visible_bias: Tensor | None = None,
    n_runs: int = 100,
    n_betas: int = 10_000,
    n_repeats: int = 1,
    schedule: str = "three_piece",
    seed: int = 0,
    batch_size: int = 2_000,
) -> RBMLogLikelihood:
    """The mean log-likelihood of the rows of ``v`` (N, n_visible) under ``rbm``, log Z by AIS.

    :func:`rbm_log_partition` runs ``n_repeats`` times, each with a generator on the RBM's
    device seeded ``seed + r``; the free energies are summed in float64 over batches of
    ``batch_size`` rows. Since the log of AIS's unbiased estimate of Z under-estimates log Z on
    average, the log-likelihood is, if anything, slightly optimistic (Salakhutdinov & Murray, 2008).
    """
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive int, got {n_repeats!r}")
    device = rbm.weight.device
    estimates = [
        rbm_log_partition(rbm, n_runs=n_runs, n_betas=n_betas, base_visible_bias=base_visible_bias,
                          schedule=schedule, generator=torch.Generator(device=device).manual_seed(seed + r))
        for r in range(int(n_repeats))
    ]
    with torch.no_grad():
        total = sum(float(-rbm.free_energy(v[i : i + batch_size].to(device)).double().sum())
                    for i in range(0, len(v), batch_size))
    neg_f = total / len(v)
    lls = torch.tensor([neg_f - e.log_z for e in estimates], dtype=torch.float64)
    return RBMLogLikelihood(log_likelihood=float(lls.mean()), spread=float(lls.std()) if len(lls) > 1 else math.nan,
                            mean_neg_free_energy=neg_f, estimates=estimates)
