r"""The discretised logistic mixture likelihood of PixelCNN++ (Salimans et al., 2017).

A softmax over 256 intensities spends 255 parameters per pixel and does not know that
intensity 127 is close to 128. PixelCNN++ instead puts a continuous mixture of
logistics on the line and gives each integer the mass of its bin.

**Bins.** An integer :math:`x \in \{0, \dots, n-1\}` (``n = n_bins``) is mapped to the
centre :math:`c = 2x/(n-1) - 1 \in [-1, 1]`; its bin is :math:`[c - h, c + h]` with
half-width :math:`h = 1/(n-1)`, except that the two end bins reach to :math:`\mp\infty`
so that the masses sum to one:

.. math::
    P(x \mid \mu, s) = \begin{cases}
      \sigma\big((c + h - \mu)/s\big) & x = 0,\\
      1 - \sigma\big((c - h - \mu)/s\big) & x = n - 1,\\
      \sigma\big((c + h - \mu)/s\big) - \sigma\big((c - h - \mu)/s\big) & \text{otherwise,}
    \end{cases}

with :math:`\sigma` the logistic sigmoid (the CDF of the logistic distribution), and the
mixture :math:`P(x) = \sum_k \pi_k P(x \mid \mu_k, s_k)`, :math:`\pi = \mathrm{softmax}(\text{logit\_pi})`.

**Stable logarithms.** Write :math:`a = (c + h - \mu)/s`, :math:`b = (c - h - \mu)/s`. Then
:math:`\log\sigma(a) = -\mathrm{softplus}(-a)` and :math:`\log(1 - \sigma(b)) = \log\sigma(-b)`.
For the interior the identity
:math:`\sigma(a) - \sigma(b) = \sigma(a)\,\sigma(-b)\,(1 - e^{-(a - b)})` gives

.. math::  \log P = \log\sigma(a) + \log\sigma(-b) + \log\big(1 - e^{-2h/s}\big),

which never subtracts two nearly equal numbers (PixelCNN++'s code instead falls back
to the density at the centre when the difference underflows). The mixture is
combined in log space with ``logsumexp``. As in PixelCNN++, :math:`\log s` is clamped
below at ``log_s_min = -7`` so that :math:`1/s` stays finite.

**Sampling.** Pick :math:`k \sim \pi`, draw :math:`y = \mu_k + s_k \log\frac{u}{1-u}` with
:math:`u \sim U(0,1)` (the inverse logistic CDF), and return the bin containing
:math:`y`, i.e. :math:`\mathrm{round}\big((y + 1)(n-1)/2\big)` clipped to :math:`\{0..n-1\}`;
this is exactly the discretised distribution above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.autoregressive.histogram import check_categorical, sample_categorical

LOG_S_MIN = -7.0
"""Lower clamp of the log-scale, as in PixelCNN++ (1/s <= e^7 ~ 1100)."""


def _check_params(x: Tensor, logit_pi: Tensor, mu: Tensor, log_s: Tensor, n_bins: int) -> None:
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    check_categorical(x, n_bins)
    if not (logit_pi.shape == mu.shape == log_s.shape):
        raise ValueError(f"logit_pi, mu and log_s must have the same shape (B, K, ...), got "
                         f"{tuple(logit_pi.shape)}, {tuple(mu.shape)} and {tuple(log_s.shape)}")
    if mu.dim() != x.dim() + 1 or mu.shape[0] != x.shape[0] or mu.shape[2:] != x.shape[1:]:
        raise ValueError(f"for x of shape {tuple(x.shape)} the parameters must have shape "
                         f"(B, K, ...) = {(x.shape[0], 'K', *x.shape[1:])}, got {tuple(mu.shape)}")


def discretized_logistic_log_prob(x: Tensor, mu: Tensor, log_s: Tensor, n_bins: int = 256,
                                  log_s_min: float = LOG_S_MIN) -> Tensor:
    """Log-mass in nats of integers ``x`` under one discretised logistic per entry (shapes broadcast)."""
    x_c = 2.0 * x.to(mu.dtype) / (n_bins - 1) - 1.0  # bin centre in [-1, 1]
    h = 1.0 / (n_bins - 1)  # half-width of a bin
    log_s = log_s.clamp(min=log_s_min)
    inv_s = torch.exp(-log_s)
    a = inv_s * (x_c + h - mu)  # standardised upper bin edge
    b = inv_s * (x_c - h - mu)  # standardised lower bin edge
    log_cdf_plus = F.logsigmoid(a)  # log sigma(a): mass of (-inf, c + h]
    log_one_minus_cdf_min = F.logsigmoid(-b)  # log(1 - sigma(b)): mass of [c - h, inf)
    bin_width = (2.0 * h * inv_s).clamp(min=torch.finfo(mu.dtype).tiny)  # a - b > 0
    log_delta = log_cdf_plus + log_one_minus_cdf_min + torch.log(-torch.expm1(-bin_width))
    return torch.where(x == 0, log_cdf_plus, torch.where(x == n_bins - 1, log_one_minus_cdf_min, log_delta))


def discretized_logistic_mixture_log_prob(x: Tensor, logit_pi: Tensor, mu: Tensor, log_s: Tensor,
                                          n_bins: int = 256, log_s_min: float = LOG_S_MIN) -> Tensor:
    """:math:`\\log \\sum_k \\pi_k P(x \\mid \\mu_k, s_k)` in nats.

    ``x``: (B, ...) integers in ``{0, ..., n_bins - 1}``; ``logit_pi``, ``mu``, ``log_s``: (B, K, ...)
    with ``mu`` and ``s = exp(log_s)`` on the [-1, 1] scale of the bin centres. Returns (B, ...).
    """
    _check_params(x, logit_pi, mu, log_s, n_bins)
    x = x.to(mu.device).unsqueeze(1)  # (B, ...) -> (B, 1, ...)
    log_p_k = discretized_logistic_log_prob(x, mu, log_s, n_bins, log_s_min)  # (B, K, ...)
    return torch.logsumexp(F.log_softmax(logit_pi, dim=1) + log_p_k, dim=1)  # (B, K, ...) -> (B, ...)


@torch.no_grad()
def sample_discretized_logistic_mixture(logit_pi: Tensor, mu: Tensor, log_s: Tensor, n_bins: int = 256, *,
                                        generator: torch.Generator | None = None,
                                        log_s_min: float = LOG_S_MIN) -> Tensor:
    """One draw per position from the mixture with parameters (B, K, ...); returns (B, ...) long."""
    if not (logit_pi.shape == mu.shape == log_s.shape) or mu.dim() < 2:
        raise ValueError(f"logit_pi, mu and log_s must share one shape (B, K, ...), got "
                         f"{tuple(logit_pi.shape)}, {tuple(mu.shape)} and {tuple(log_s.shape)}")
    k = sample_categorical(F.softmax(logit_pi, dim=1).movedim(1, -1), generator=generator)  # (B, ...)
    mu_k = mu.gather(1, k.unsqueeze(1)).squeeze(1)  # (B, K, ...) -> (B, ...)
    log_s_k = log_s.clamp(min=log_s_min).gather(1, k.unsqueeze(1)).squeeze(1)
    eps = torch.finfo(mu.dtype).eps
    u = torch.rand(mu_k.shape, generator=generator, device=mu.device, dtype=mu.dtype).clamp(eps, 1 - eps)
    y = mu_k + log_s_k.exp() * (u.log() - torch.log1p(-u))  # inverse logistic CDF
    return torch.round((y + 1) * (n_bins - 1) / 2).clamp(0, n_bins - 1).long()


class DiscretizedLogisticMixture(nn.Module):
    """A 1-D model: one mixture of ``n_components`` discretised logistics over ``{0..n_bins-1}``.

    ``n_components``: logistics K in the mixture; ``n_bins``: number of values (256 for 8-bit data).
    ``nll(x)`` takes (B,) integers and returns (B,) nats; ``sample(n)`` returns (n,) long.
    """

    def __init__(self, *, n_components: int = 4, n_bins: int = 256) -> None:
        super().__init__()
        if n_components < 1 or n_bins < 2:
            raise ValueError(f"need n_components >= 1 and n_bins >= 2, got {n_components} and {n_bins}")
        self.n_components, self.n_bins = int(n_components), int(n_bins)
        k = self.n_components
        self.logit_pi = nn.Parameter(torch.zeros(k))
        self.mu = nn.Parameter(torch.linspace(-1 + 1 / k, 1 - 1 / k, k))  # spread over [-1, 1]
        self.log_s = nn.Parameter(torch.full((k,), -torch.log(torch.tensor(2.0 * k)).item()))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The mixture parameters broadcast to the batch: (B,) -> three tensors (B, K)."""
        shape = (x.shape[0], self.n_components)
        return self.logit_pi.expand(shape), self.mu.expand(shape), self.log_s.expand(shape)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-mass in nats, (B,) -> (B,)."""
        if x.dim() != 1:
            raise ValueError(f"x must have shape (B,) of integers in [0, {self.n_bins}), got {tuple(x.shape)}")
        return discretized_logistic_mixture_log_prob(x, *self.forward(x), n_bins=self.n_bins)

    def nll(self, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats per example, (B,) -> (B,)."""
        return -self.log_prob(x)

    def probs(self) -> Tensor:
        """The probability of every value ``0..n_bins-1``, shape (n_bins,); sums to one."""
        return self.log_prob(torch.arange(self.n_bins, device=self.mu.device)).exp()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws, shape (n,) long in ``{0..n_bins-1}``."""
        dummy = torch.empty(int(n), device=self.mu.device)
        return sample_discretized_logistic_mixture(*self.forward(dummy), n_bins=self.n_bins, generator=generator)
