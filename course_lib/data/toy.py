"""Seeded toy distributions with known densities, for testing density models by eye and by number.

Every distribution has ``sample(n, seed)`` (the same seed gives the same samples)
and ``log_prob(x)``; the discrete ones also have ``pmf()``.

1-D
    ``"bimodal_discrete"``  :class:`DiscretizedGaussianMixture`: two Gaussians rounded to
                            {0, ..., 99} (the histogram model's first data set); exact pmf.
    ``"gaussian_mixture"``  :class:`GaussianMixture1D`: a continuous mixture; exact density.

2-D
    ``"eight_gaussians"``   eight Gaussians on a circle; exact density.
    ``"checkerboard"``      uniform on 8 of the 16 unit squares of [-2, 2]^2; exact density.
    ``"two_moons"``         two noisy half circles; density integrated along the curves.
    ``"spiral"``            two noisy spiral arms; density integrated along the arms.
    ``"smiley"``            :class:`SmileyGrid`: a discrete joint of (x1, x2) on a K x K grid
                            shaped like a face (for two-variable autoregressive models); exact pmf.

Continuous samples are float32; discrete ones int64.

For the noisy curves (moons, spiral), a point is ``c(t) + noise * eps`` with ``t``
drawn along the curve and ``eps ~ N(0, I)``; its density ``E_t[N(x; c(t), noise^2 I)]``
is integrated along the curve with Simpson's rule (see :class:`NoisyCurves`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "Checkerboard",
    "DiscretizedGaussianMixture",
    "EightGaussians",
    "GaussianMixture1D",
    "NoisyCurves",
    "SmileyGrid",
    "TOY_1D",
    "TOY_2D",
    "checkerboard",
    "eight_gaussians",
    "sample_toy_1d",
    "sample_toy_2d",
    "smiley_grid",
    "spiral",
    "toy_distribution",
    "two_moons",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n (the number of samples) must be a non-negative int, got {n!r}")
    return n


def _categorical(probs: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` independent draws of an index with the given probabilities: int64 (n,)."""
    if _check_n(n) == 0:
        return torch.zeros(0, dtype=torch.long)
    return torch.multinomial(probs, n, replacement=True, generator=g)


def _check_points(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Validate continuous points: (N,) for dim 1, (N, 2) for dim 2; returns float64."""
    shape = "(N,)" if dim == 1 else f"(N, {dim})"
    ok = isinstance(x, torch.Tensor) and (x.dim() == 1 if dim == 1 else (x.dim() == 2 and x.shape[1] == dim))
    if not ok:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected points of shape {shape}, got {got}")
    return x.double()


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float64


# ---------------------------------------------------------------------------------------------
# 1-D
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscretizedGaussianMixture:
    """A mixture of Gaussians rounded to the nearest integer and clipped to {0, ..., K-1}.

    ``x = clip(round(z), 0, K-1)`` with ``z ~ sum_j w_j N(mu_j, sigma_j^2)``, so

    ``P(x = v) = sum_j w_j [Phi((v + 1/2 - mu_j) / sigma_j) - Phi((v - 1/2 - mu_j) / sigma_j)]``

    where the end values absorb the tails (``v - 1/2 = -inf`` for v = 0,
    ``v + 1/2 = +inf`` for v = K-1). The default is the classic two-bump data set of
    the histogram model on 100 values.
    """

    k: int = 100
    weights: tuple[float, ...] = (0.5, 0.5)
    means: tuple[float, ...] = (30.0, 80.0)
    stds: tuple[float, ...] = (10.0, 5.0)

    def __post_init__(self) -> None:
        if not (len(self.weights) == len(self.means) == len(self.stds) >= 1):
            raise ValueError("weights, means and stds must have the same (non-zero) length")
        if abs(sum(self.weights) - 1.0) > 1e-9 or min(self.weights) < 0 or min(self.stds) <= 0:
            raise ValueError(f"weights must be >= 0 and sum to 1 and stds > 0, got {self.weights}, {self.stds}")
        if self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")

    def pmf(self) -> torch.Tensor:
        """Exact probabilities of 0..K-1: float64 (K,), summing to one."""
        edges = torch.arange(self.k - 1, dtype=torch.float64) + 0.5  # (K-1,) boundaries between values
        w, mu, sigma = (torch.tensor(v, dtype=torch.float64) for v in (self.weights, self.means, self.stds))
        cdf = torch.special.ndtr((edges[None, :] - mu[:, None]) / sigma[:, None])  # (J, K-1)
        zeros, ones = torch.zeros(len(w), 1, dtype=torch.float64), torch.ones(len(w), 1, dtype=torch.float64)
        cdf = torch.cat([zeros, cdf, ones], dim=1)  # (J, K-1) -> (J, K+1): the tails go to the end values
        return (w[:, None] * cdf.diff(dim=1)).sum(0)  # (J, K) -> (K,)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x): x int64 (N,) in 0..K-1 -> float64 (N,)."""
        if not isinstance(x, torch.Tensor) or x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"expected an integer tensor of values in 0..{self.k - 1}, got {getattr(x, 'dtype', x)!r}")
        if x.numel() and (x.min() < 0 or x.max() >= self.k):
            raise ValueError(f"values must lie in 0..{self.k - 1}, got range {int(x.min())}..{int(x.max())}")
        return self.pmf().log()[x.long()]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent draws: int64 (n,) in 0..K-1."""
        g = _generator(seed)
        component = _categorical(torch.tensor(self.weights), n, g)
        mu = torch.tensor(self.means, dtype=torch.float64)[component]
        sigma = torch.tensor(self.stds, dtype=torch.float64)[component]
        z = mu + sigma * torch.randn(n, generator=g, dtype=torch.float64)
        return torch.floor(z + 0.5).clamp(0, self.k - 1).long()


@dataclass(frozen=True)
class GaussianMixture1D:
    """A continuous mixture of Gaussians on the real line, ``sum_j w_j N(mu_j, sigma_j^2)``."""

    weights: tuple[float, ...] = (0.35, 0.65)
    means: tuple[float, ...] = (-2.0, 1.5)
    stds: tuple[float, ...] = (0.5, 1.0)

    def __post_init__(self) -> None:
        if not (len(self.weights) == len(self.means) == len(self.stds) >= 1):
            raise ValueError("weights, means and stds must have the same (non-zero) length")
        if abs(sum(self.weights) - 1.0) > 1e-9 or min(self.weights) < 0 or min(self.stds) <= 0:
            raise ValueError(f"weights must be >= 0 and sum to 1 and stds > 0, got {self.weights}, {self.stds}")

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tuple(torch.tensor(v, dtype=torch.float64) for v in (self.weights, self.means, self.stds))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density: x (N,) -> (N,) (in x's float dtype)."""
        z = _check_points(x, 1)
        w, mu, sigma = self._params()
        log_normal = -0.5 * ((z[:, None] - mu) / sigma) ** 2 - sigma.log() - 0.5 * _LOG_2PI  # (N, J)
        return torch.logsumexp(w.log() + log_normal, dim=1).to(_out_dtype(x))

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """Exact cumulative distribution function: x (N,) -> (N,)."""
        z = _check_points(x, 1)
        w, mu, sigma = self._params()
        return (w * torch.special.ndtr((z[:, None] - mu) / sigma)).sum(1).to(_out_dtype(x))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent draws: float32 (n,)."""
        g = _generator(seed)
        w, mu, sigma = self._params()
        component = _categorical(w, n, g)
        z = mu[component] + sigma[component] * torch.randn(n, generator=g, dtype=torch.float64)
        return z.float()


# ---------------------------------------------------------------------------------------------
# 2-D, continuous
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EightGaussians:
    """Eight equally weighted isotropic Gaussians, centred on a circle at angles k * pi/4."""

    radius: float = 2.0 * math.sqrt(2.0)
    std: float = 0.5 / math.sqrt(2.0)

    def centers(self) -> torch.Tensor:
        """The eight means: float64 (8, 2)."""
        angle = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        return self.radius * torch.stack([angle.cos(), angle.sin()], dim=1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density: x (N, 2) -> (N,)."""
        z = _check_points(x, 2)
        sq = ((z[:, None, :] - self.centers()[None]) ** 2).sum(-1)  # (N, 8)
        log_normal = -0.5 * sq / self.std**2 - 2 * math.log(self.std) - _LOG_2PI
        return (torch.logsumexp(log_normal, dim=1) - math.log(8)).to(_out_dtype(x))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent draws: float32 (n, 2)."""
        g = _generator(seed)
        k = torch.randint(0, 8, (_check_n(n),), generator=g)
        x = self.centers()[k] + self.std * torch.randn(n, 2, generator=g, dtype=torch.float64)
        return x.float()


@dataclass(frozen=True)
class Checkerboard:
    """Uniform on the 8 unit squares ``[i, i+1) x [j, j+1)`` of [-2, 2)^2 with i + j even: density 1/8 there."""

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density: x (N, 2) -> (N,): log(1/8) on the black squares, -inf elsewhere."""
        z = _check_points(x, 2)
        cell = torch.floor(z)
        inside = ((z >= -2) & (z < 2)).all(1) & ((cell.sum(1) % 2) == 0)
        out = torch.full((len(z),), -math.inf, dtype=torch.float64)
        out[inside] = -math.log(8.0)
        return out.to(_out_dtype(x))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent draws: float32 (n, 2)."""
        g = _generator(seed)
        x1 = torch.rand(_check_n(n), generator=g, dtype=torch.float64) * 4 - 2  # uniform on [-2, 2)
        row = 2 * torch.randint(0, 2, (n,), generator=g) - 2  # -2 or 0
        # x2's cell j must have the parity of x1's cell i, so that i + j is even
        x2 = row + (torch.floor(x1) % 2) + torch.rand(n, generator=g, dtype=torch.float64)
        return torch.stack([x1, x2], dim=1).float()


@dataclass(frozen=True)
class NoisyCurves:
    """Points near parametric curves: ``x = c_a(t) + noise * eps`` with arm ``a`` uniform, ``t ~ U(0, 1)``.

    ``kind`` is ``"two_moons"`` (two interleaved half circles, centred) or ``"spiral"``
    (two arms of a spiral, ``c(t) = +-(phi cos phi, phi sin phi) / 3`` with ``phi = 3 pi sqrt(t)``,
    so that points spread evenly along the arms).

    The density is the integral along the curves

    ``p(x) = 1/2 sum_a int_0^1 N(x; c_a(t), noise^2 I) dt``,

    computed with Simpson's rule on ``n_intervals`` intervals per arm (in ``v = sqrt(t)`` for
    the spiral, where the integrand ``2 v N(x; c_a(v^2), noise^2 I)`` is smooth). Nodes lie
    well under ``noise`` apart along the curve, so the error is of order
    ``(spacing * d / noise^2)^4 / 180`` for a point at distance ``d`` beyond an end of a curve.
    With the defaults, the relative error is below 1e-4 where the samples lie and a few 1e-4
    at three noise widths from the curves; it grows in the far tails.
    """

    kind: str = "two_moons"
    noise: float = 0.1
    n_intervals: int = 256

    def __post_init__(self) -> None:
        if self.kind not in ("two_moons", "spiral"):
            raise ValueError(f"kind must be 'two_moons' or 'spiral', got {self.kind!r}")
        if self.noise <= 0:
            raise ValueError(f"noise must be positive (the density needs it), got {self.noise}")
        if self.n_intervals < 2 or self.n_intervals % 2:
            raise ValueError(f"Simpson's rule needs an even number of intervals >= 2, got {self.n_intervals}")

    def curve(self, arm: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Points on the curves: arm (M,) in {0, 1}, t (M,) in [0, 1] -> (M, 2) float64."""
        t = t.double()
        if self.kind == "two_moons":
            angle = math.pi * t
            upper = torch.stack([angle.cos(), angle.sin()], 1)
            lower = torch.stack([1 - angle.cos(), 0.5 - angle.sin()], 1)
            points = torch.where(arm[:, None] == 0, upper, lower)
            return points - torch.tensor([0.5, 0.25], dtype=torch.float64)  # centre the pair at the origin
        phi = 3 * math.pi * t.sqrt()
        sign = 1.0 - 2.0 * arm[:, None].double()
        return sign * torch.stack([phi * phi.cos(), phi * phi.sin()], 1) / 3

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent draws: float32 (n, 2)."""
        g = _generator(seed)
        arm = torch.randint(0, 2, (_check_n(n),), generator=g)
        t = torch.rand(n, generator=g, dtype=torch.float64)
        x = self.curve(arm, t) + self.noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
        return x.float()

    def _nodes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Quadrature nodes on both arms (S, 2) and their log-weights (S,), S = 2 (M + 1)."""
        m = self.n_intervals
        v = torch.arange(m + 1, dtype=torch.float64) / m
        weight = torch.full((m + 1,), 2.0, dtype=torch.float64)
        weight[1::2] = 4.0
        weight[[0, -1]] = 1.0
        weight = weight / (3 * m)  # Simpson: h/3 * (1, 4, 2, 4, ..., 4, 1)
        t = v
        if self.kind == "spiral":
            t, weight = v.square(), weight * 2 * v  # t = v^2, dt = 2 v dv
        nodes = self.curve(torch.arange(2).repeat_interleave(m + 1), t.repeat(2))
        return nodes, (weight / 2).log().repeat(2)  # each arm has probability 1/2

    def log_prob(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Log density (see the class docstring): x (N, 2) -> (N,)."""
        z = _check_points(x, 2)
        nodes, log_weight = self._nodes()
        log_const = log_weight - 2 * math.log(self.noise) - _LOG_2PI  # (S,)
        out = []
        for block in z.split(chunk):
            # squared distances |x - c|^2 = |x|^2 + |c|^2 - 2 x.c, one matrix product: (chunk, 2) x (2, S)
            sq = (block.square().sum(1, keepdim=True) + nodes.square().sum(1) - 2 * block @ nodes.T).clamp_min(0)
            out.append(torch.logsumexp(log_const - 0.5 * sq / self.noise**2, dim=1))  # (chunk, S) -> (chunk,)
        result = torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
        return result.to(_out_dtype(x))


# ---------------------------------------------------------------------------------------------
# 2-D, discrete: a joint distribution on a K x K grid
# ---------------------------------------------------------------------------------------------


def smiley_grid(k: int = 32, floor: float = 0.01) -> torch.Tensor:
    """An image of a smiling face on a K x K grid, as unnormalised weights float64 (K, K).

    Row index = x1 (top to bottom), column index = x2. Every cell gets at least
    ``floor`` (relative to the face's strokes, weight 1), so every pair has
    non-zero probability.
    """
    if k < 8:
        raise ValueError(f"the face needs a grid of at least 8 x 8, got k={k}")
    centre = (torch.arange(k, dtype=torch.float64) + 0.5) / k * 2 - 1  # cell centres in [-1, 1]
    v, u = torch.meshgrid(centre, centre, indexing="ij")  # v: down the rows, u: across the columns
    r = (u**2 + v**2).sqrt()
    face = (r - 0.82).abs() < 0.09
    eyes = ((u - 0.32) ** 2 + (v + 0.28) ** 2 < 0.14**2) | ((u + 0.32) ** 2 + (v + 0.28) ** 2 < 0.14**2)
    mouth = ((r - 0.5).abs() < 0.08) & (v > 0.18)
    image = (face | eyes | mouth).double()
    return image + floor


@dataclass(frozen=True)
class SmileyGrid:
    """A discrete joint distribution p(x1, x2) on {0..K-1}^2 proportional to :func:`smiley_grid`."""

    k: int = 32
    floor: float = 0.01

    def pmf(self) -> torch.Tensor:
        """Exact joint probabilities: float64 (K, K), entry [i, j] = P(x1 = i, x2 = j)."""
        weights = smiley_grid(self.k, self.floor)
        return weights / weights.sum()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x1, x2): x int64 (N, 2) in 0..K-1 -> float64 (N,)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2 or x.is_floating_point():
            raise ValueError(f"expected integer pairs of shape (N, 2), got {getattr(x, 'shape', type(x).__name__)}")
        if x.numel() and (x.min() < 0 or x.max() >= self.k):
            raise ValueError(f"values must lie in 0..{self.k - 1}, got range {int(x.min())}..{int(x.max())}")
        return self.pmf().log()[x[:, 0].long(), x[:, 1].long()]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` independent pairs: int64 (n, 2), columns (x1, x2)."""
        flat = _categorical(self.pmf().flatten(), n, _generator(seed))  # (n,) indices i * K + j
        return torch.stack([flat // self.k, flat % self.k], dim=1)  # (n,) -> (n, 2)


# ---------------------------------------------------------------------------------------------
# By name
# ---------------------------------------------------------------------------------------------

Toy = DiscretizedGaussianMixture | GaussianMixture1D | EightGaussians | Checkerboard | NoisyCurves | SmileyGrid

TOY_1D: dict[str, Toy] = {
    "bimodal_discrete": DiscretizedGaussianMixture(),
    "gaussian_mixture": GaussianMixture1D(),
}
"""The 1-D toy distributions by name (default parameters)."""

TOY_2D: dict[str, Toy] = {
    "two_moons": NoisyCurves("two_moons", noise=0.1),
    "eight_gaussians": EightGaussians(),
    "checkerboard": Checkerboard(),
    "spiral": NoisyCurves("spiral", noise=0.1, n_intervals=1024),
    "smiley": SmileyGrid(),
}
"""The 2-D toy distributions by name (default parameters)."""


def toy_distribution(name: str) -> Toy:
    """The toy distribution called ``name`` (a key of :data:`TOY_1D` or :data:`TOY_2D`)."""
    if name in TOY_1D:
        return TOY_1D[name]
    if name in TOY_2D:
        return TOY_2D[name]
    raise ValueError(f"unknown toy distribution {name!r}; expected one of {', '.join([*TOY_1D, *TOY_2D])}")


def sample_toy_1d(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of a 1-D toy distribution: int64 (n,) if discrete, float32 (n,) if continuous."""
    if name not in TOY_1D:
        raise ValueError(f"unknown 1-D toy distribution {name!r}; expected one of {', '.join(TOY_1D)}")
    return TOY_1D[name].sample(n, seed)


def sample_toy_2d(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of a 2-D toy distribution: float32 (n, 2), or int64 (n, 2) for ``"smiley"``."""
    if name not in TOY_2D:
        raise ValueError(f"unknown 2-D toy distribution {name!r}; expected one of {', '.join(TOY_2D)}")
    return TOY_2D[name].sample(n, seed)


def two_moons(n: int, seed: int = 0, noise: float = 0.1) -> torch.Tensor:
    """Two interleaved noisy half circles: float32 (n, 2)."""
    return NoisyCurves("two_moons", noise=noise).sample(n, seed)


def eight_gaussians(n: int, seed: int = 0) -> torch.Tensor:
    """Eight Gaussians on a circle of radius 2*sqrt(2): float32 (n, 2)."""
    return EightGaussians().sample(n, seed)


def checkerboard(n: int, seed: int = 0) -> torch.Tensor:
    """Uniform on the black squares of a 4 x 4 checkerboard on [-2, 2)^2: float32 (n, 2)."""
    return Checkerboard().sample(n, seed)


def spiral(n: int, seed: int = 0, noise: float = 0.1) -> torch.Tensor:
    """Two noisy spiral arms: float32 (n, 2)."""
    return NoisyCurves("spiral", noise=noise, n_intervals=1024).sample(n, seed)
