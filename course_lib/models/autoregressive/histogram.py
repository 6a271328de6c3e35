r"""Histograms: the simplest likelihood model, and a two-variable autoregressive model.

A **histogram** over ``K`` bins is a categorical distribution
:math:`p_\theta(x = k) = \pi_k`. We parameterise it by unconstrained logits,
:math:`\pi = \mathrm{softmax}(\theta)`, so that it can be trained by SGD on the
negative log-likelihood

.. math::  \mathrm{NLL}(\theta) = -\frac1N \sum_{n} \log \pi_{x_n}.

Setting the gradient of the Lagrangian :math:`\sum_n \log\pi_{x_n} + \lambda(1-\sum_k\pi_k)`
to zero gives :math:`c_k / \pi_k = \lambda`, hence the closed-form **maximum-likelihood
estimate** :math:`\hat\pi_k = c_k / N` (the empirical frequencies, :math:`c_k` the counts).
Laplace smoothing adds ``alpha`` pseudo-counts to each bin:
:math:`\hat\pi_k = (c_k + \alpha) / (N + \alpha K)`.

**Sampling by the inverse CDF.** With :math:`F_k = \sum_{j\le k}\pi_j` and
:math:`u\sim U[0,1)`, the index :math:`k = \min\{k : F_k > u\}` has probability
:math:`F_k - F_{k-1} = \pi_k`; ``torch.searchsorted(F, u, right=True)`` finds it.

**Two variables, autoregressively.** A joint histogram over :math:`K^2` cells needs
:math:`K^2-1` parameters (and :math:`K^D` in :math:`D` dimensions: the curse of
dimensionality). The chain rule :math:`p(x_1, x_2) = p(x_1)\,p(x_2\mid x_1)` lets a
histogram model :math:`p(x_1)` and a small network map :math:`x_1` to the logits of
:math:`p(x_2 \mid x_1)`; sampling is *ancestral*: first :math:`x_1`, then :math:`x_2`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_categorical(x: Tensor, n_bins: int, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` holds integers in ``{0, ..., n_bins - 1}``."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of integer bin indices, got {type(x).__name__}")
    if x.dtype == torch.bool or x.dtype.is_floating_point or x.dtype.is_complex:
        raise ValueError(f"{name} must hold integer bin indices (e.g. torch.long), got dtype {x.dtype}; "
                         f"convert with x.long() if the values are whole numbers")
    if x.numel() > 0:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= n_bins:
            raise ValueError(f"{name} must lie in {{0, ..., {n_bins - 1}}} (n_bins={n_bins}), "
                             f"got values from {lo} to {hi}")


def sample_categorical(probs: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Draw one index per row of ``probs`` (..., K) by the inverse CDF; returns (...) long.

    One uniform number per row: the index is the first ``k`` whose cumulative
    probability exceeds it. Rows need not be normalised exactly (the uniform is
    scaled by the row's total).
    """
    cdf = probs.cumsum(dim=-1)  # (..., K)
    u_device = generator.device if generator is not None else cdf.device  # a CPU generator also drives GPU models
    u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=u_device, dtype=cdf.dtype).to(cdf.device)
    u = u * cdf[..., -1:]  # (..., 1), uniform on [0, total)
    k = torch.searchsorted(cdf.contiguous(), u, right=True)  # (..., 1)
    return k.squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def histogram_mle(x: Tensor, n_bins: int, alpha: float = 0.0) -> Tensor:
    """Closed-form MLE of a histogram: ``(counts + alpha) / (N + alpha * n_bins)``, shape (n_bins,).

    ``x``: integer bin indices of any shape; ``alpha >= 0`` is the Laplace pseudo-count.
    """
    check_categorical(x, n_bins)
    if alpha < 0:
        raise ValueError(f"alpha (the Laplace pseudo-count) must be >= 0, got {alpha}")
    if x.numel() == 0 and alpha == 0:
        raise ValueError("the MLE of an empty data set is undefined; pass alpha > 0 for a smoothed estimate")
    counts = torch.bincount(x.reshape(-1), minlength=n_bins).to(torch.get_default_dtype())  # (K,)
    return (counts + alpha) / (x.numel() + alpha * n_bins)


class Histogram(nn.Module):
    """A categorical distribution over ``n_bins`` values, ``probs = softmax(logits)``.

    ``n_bins``: number K of values (may be given first, by position); ``logits``: initial logits (K,)
    (default zeros: the uniform distribution). ``nll(x)`` takes integer bin indices ``x`` of shape
    (B,) and returns (B,) nats.
    """

    def __init__(self, n_bins: int, *, logits: Tensor | None = None) -> None:
        super().__init__()
        if int(n_bins) < 1:
            raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
        self.n_bins = int(n_bins)
        if logits is None:
            logits = torch.zeros(self.n_bins)  # the uniform distribution
        elif logits.shape != (self.n_bins,):
            raise ValueError(f"logits must have shape ({self.n_bins},), got {tuple(logits.shape)}")
        logits = logits.detach().clone()
        self.logits = nn.Parameter(logits if logits.is_floating_point() else logits.to(torch.get_default_dtype()))

    @classmethod
    def fit_mle(cls, x: Tensor, n_bins: int, alpha: float = 0.0) -> Histogram:
        """The maximum-likelihood histogram of the data ``x`` (empirical frequencies, see :func:`histogram_mle`).

        Empty bins get probability zero (logit ``-inf``) unless ``alpha > 0``.
        """
        return cls(n_bins, logits=histogram_mle(x, n_bins, alpha).log())

    @property
    def probs(self) -> Tensor:
        """The bin probabilities :math:`\\pi` = softmax(logits), shape (n_bins,)."""
        return F.softmax(self.logits, dim=0)

    def cdf(self) -> Tensor:
        """The cumulative distribution :math:`F_k = \\sum_{j \\le k} \\pi_j`, shape (n_bins,)."""
        return self.probs.cumsum(dim=0)

    def forward(self, x: Tensor) -> Tensor:
        """The logits broadcast to the batch: (B,) -> (B, n_bins)."""
        return self.logits.expand(x.shape[0], self.n_bins)

    def log_prob(self, x: Tensor) -> Tensor:
        """:math:`\\log \\pi_x` in nats for integer ``x`` of shape (B,); returns (B,)."""
        if x.dim() != 1:
            raise ValueError(f"x must have shape (B,) of bin indices, got {tuple(x.shape)}")
        check_categorical(x, self.n_bins)
        return F.log_softmax(self.logits, dim=0)[x.to(self.logits.device)]

    def nll(self, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats per example, (B,) -> (B,)."""
        return -self.log_prob(x)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws by the inverse CDF, shape (n,) long."""
        probs = self.probs.expand(int(n), self.n_bins)  # (n, K)
        return sample_categorical(probs, generator=generator)


class TwoVariableAR(nn.Module):
    """:math:`p(x_1, x_2) = p(x_1)\\, p(x_2 \\mid x_1)` over ``{0..K-1}^2``.

    :math:`p(x_1)` is a :class:`Histogram`; :math:`p(x_2 \\mid x_1)` is a softmax over the
    logits of an MLP applied to the one-hot code of :math:`x_1`. ``n_bins``: values K of each variable
    (may be given first, by position); ``hidden``: width of the MLP's hidden layer.
    """

    def __init__(self, n_bins: int, *, hidden: int = 64) -> None:
        super().__init__()
        if int(n_bins) < 1 or int(hidden) < 1:
            raise ValueError(f"need n_bins >= 1 and hidden >= 1, got n_bins={n_bins} and hidden={hidden}")
        self.n_bins = int(n_bins)
        self.p_x1 = Histogram(self.n_bins)
        self.conditional = nn.Sequential(  # one_hot(x1) (B, K) -> logits of x2 (B, K)
            nn.Linear(self.n_bins, hidden),
            nn.ReLU(),
            nn.Linear(hidden, self.n_bins),
        )

    def _check(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (B, 2) holding (x1, x2), got {tuple(x.shape)}")
        check_categorical(x, self.n_bins)

    def conditional_logits(self, x1: Tensor) -> Tensor:
        """Logits of :math:`p(x_2 \\mid x_1)`: (B,) long -> (B, K)."""
        one_hot = F.one_hot(x1, self.n_bins).to(self.p_x1.logits.dtype)  # (B, K)
        return self.conditional(one_hot)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of both factors: (B, 2) -> (B, 2, K); row 0 is p(x1), row 1 is p(x2 | x1)."""
        self._check(x)
        x = x.to(self.p_x1.logits.device)
        return torch.stack([self.p_x1(x), self.conditional_logits(x[:, 0])], dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        """:math:`\\log p(x_1) + \\log p(x_2 \\mid x_1)` in nats, (B, 2) -> (B,)."""
        logits = self.forward(x)  # (B, 2, K)
        log_p = F.log_softmax(logits, dim=-1).gather(-1, x.to(logits.device).unsqueeze(-1))  # (B, 2, 1)
        return log_p.squeeze(-1).sum(dim=1)

    def nll(self, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats per example, (B, 2) -> (B,)."""
        return -self.log_prob(x)

    def joint_probs(self) -> Tensor:
        """The exact table :math:`P[i, j] = p(x_1 = i, x_2 = j)`, shape (K, K); sums to one."""
        x1 = torch.arange(self.n_bins, device=self.p_x1.logits.device)
        log_p1 = F.log_softmax(self.p_x1.logits, dim=0)  # (K,)
        log_p2_given_1 = F.log_softmax(self.conditional_logits(x1), dim=-1)  # (K, K)
        return (log_p1[:, None] + log_p2_given_1).exp()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` ancestral draws, shape (n, 2) long: :math:`x_1 \\sim p(x_1)`, then :math:`x_2 \\sim p(x_2|x_1)`."""
        x1 = self.p_x1.sample(n, generator=generator)  # (n,)
        x2 = sample_categorical(F.softmax(self.conditional_logits(x1), dim=-1), generator=generator)  # (n,)
        return torch.stack([x1, x2], dim=1)
