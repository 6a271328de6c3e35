r"""Maximum entropy on a finite state space (topic 03): from measured moments to a Gibbs model.

A measurement :math:`\Phi : \mathcal{S} \to \mathbb{R}^k` and its mean :math:`\mu` over some
data do not fix a distribution. Of all the distributions :math:`p` on the finite set
:math:`\mathcal{S}` with :math:`\mathbb{E}_p[\Phi] = \mu`, the one of largest entropy
:math:`H(p) = -\sum_s p(s) \log p(s)` solves, with Lagrange multipliers :math:`\theta` for the
moments and :math:`\lambda` for :math:`\sum_s p(s) = 1`,

.. math:: -\log p(s) - 1 + \theta \cdot \Phi(s) + \lambda = 0
          \quad\Longrightarrow\quad
          p_\theta(s) = \frac{e^{\theta \cdot \Phi(s)}}{Z(\theta)}, \qquad
          Z(\theta) = \sum_s e^{\theta \cdot \Phi(s)},

a Gibbs (exponential-family) distribution with energy :math:`E(s) = -\theta \cdot \Phi(s)`.
The multipliers minimise the convex **dual**

.. math:: D(\theta) = \log Z(\theta) - \theta \cdot \mu, \qquad
          \nabla D = \mathbb{E}_{p_\theta}[\Phi] - \mu, \qquad
          \nabla^2 D = \mathrm{Cov}_{p_\theta}[\Phi] \succeq 0,

and :math:`D(\theta)` is also the average negative log-likelihood of data whose moments are
:math:`\mu` under :math:`p_\theta`: maximum entropy and maximum likelihood in the family are
one problem, and its optimality condition :math:`\nabla D = 0` is **moment matching**. The
gradient of :math:`\log Z` is the model's expectation of :math:`\Phi`; here the state space is
small enough to sum over, elsewhere that expectation needs samples (MCMC). The score of the
model, the Fisher vector, is :math:`\nabla_\theta \log p_\theta(s) = \Phi(s) - \mathbb{E}_{p_\theta}[\Phi]`.

:func:`fit_maxent` minimises :math:`D` by Newton's method with a backtracking line search, in
float64; :func:`gibbs_distribution` and :func:`log_partition` evaluate the model, :func:`entropy`
its entropy in nats.

Conventions: ``features`` is the (S, k) matrix whose row ``s`` is :math:`\Phi(s)`; ``theta`` is
(k,); probabilities are (S,). Entropies and log-partitions are in nats.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["entropy", "expected_features", "fit_maxent", "gibbs_distribution", "log_partition", "maxent_dual"]


def _check_features(features: Tensor) -> Tensor:
    if not isinstance(features, Tensor):
        features = torch.as_tensor(features)
    if features.dim() != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"features must be (S, k): one row Phi(s) per state, got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        features = features.double()
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or inf")
    return features


def _check_theta(features: Tensor, theta: Tensor) -> Tensor:
    # .to keeps theta differentiable when it requires grad (autograd checks of the score)
    theta = theta.to(features) if isinstance(theta, Tensor) else torch.as_tensor(theta, dtype=features.dtype)
    if theta.shape != (features.shape[1],):
        raise ValueError(f"theta must be ({features.shape[1]},), one multiplier per feature, "
                         f"got shape {tuple(theta.shape)}")
    if not torch.isfinite(theta).all():
        raise ValueError(f"theta contains NaN or inf: {theta.tolist()}")
    return theta


def log_partition(features: Tensor, theta: Tensor) -> Tensor:
    r""":math:`\log Z(\theta) = \log \sum_s e^{\theta \cdot \Phi(s)}`, a 0-dim tensor (differentiable in theta)."""
    features = _check_features(features)
    theta = _check_theta(features, theta)
    return torch.logsumexp(features @ theta, dim=0)


def gibbs_distribution(features: Tensor, theta: Tensor) -> Tensor:
    r""":math:`p_\theta(s) = e^{\theta \cdot \Phi(s)} / Z(\theta)` of every state: (S,), sums to 1.

    Differentiable in ``theta`` when it requires grad (so that autograd can check the score).
    """
    features = _check_features(features)
    theta = _check_theta(features, theta)
    return torch.softmax(features @ theta, dim=0)


def expected_features(features: Tensor, p: Tensor) -> Tensor:
    r""":math:`\mathbb{E}_p[\Phi] = \sum_s p(s) \Phi(s)`: (k,), the moments of ``p`` (S,)."""
    features = _check_features(features)
    p = torch.as_tensor(p, dtype=features.dtype, device=features.device)
    if p.shape != (features.shape[0],):
        raise ValueError(f"p must be ({features.shape[0]},), one probability per state, got shape {tuple(p.shape)}")
    return p @ features


def maxent_dual(features: Tensor, theta: Tensor, target_moments: Tensor) -> Tensor:
    r"""The dual :math:`D(\theta) = \log Z(\theta) - \theta \cdot \mu` that :func:`fit_maxent` minimises (0-dim).

    Its gradient is :math:`\mathbb{E}_{p_\theta}[\Phi] - \mu`; differentiable in ``theta``.
    """
    features = _check_features(features)
    mu = _check_moments(features, target_moments)
    return log_partition(features, theta) - _check_theta(features, theta) @ mu


def _check_moments(features: Tensor, target_moments: Tensor) -> Tensor:
    mu = torch.as_tensor(target_moments, dtype=features.dtype, device=features.device)
    if mu.shape != (features.shape[1],):
        raise ValueError(f"target_moments must be ({features.shape[1]},), one per feature, got shape "
                         f"{tuple(mu.shape)}")
    if not torch.isfinite(mu).all():
        raise ValueError(f"target_moments contain NaN or inf: {mu.tolist()}")
    return mu


def fit_maxent(features: Tensor, target_moments: Tensor, *, max_iter: int = 200, tol: float = 1e-10) -> Tensor:
    r"""The multipliers :math:`\theta` of the maximum-entropy distribution with :math:`\mathbb{E}_p[\Phi] = \mu`.

    Newton's method on the dual :math:`D(\theta) = \log Z(\theta) - \theta \cdot \mu` from
    :math:`\theta = 0` (the uniform distribution), in float64: the step solves
    :math:`\mathrm{Cov}_{p_\theta}[\Phi]\, \delta = -(\mathbb{E}_{p_\theta}[\Phi] - \mu)` (a
    pseudo-inverse, so that features with a linear dependency, e.g. a constant one, are fine) and a
    backtracking line search halves it until :math:`D` decreases enough (Armijo's condition).
    Convergence is quadratic near the optimum.

    Args:
        features: (S, k), row ``s`` is :math:`\Phi(s)`.
        target_moments: (k,), the moments :math:`\mu` to match; they must lie in the interior of the
            convex hull of the rows of ``features`` (otherwise no Gibbs distribution matches them and
            :math:`\theta` runs off to infinity).
        max_iter: Newton steps at most.
        tol: stop when :math:`\max_j |\mathbb{E}_{p_\theta}[\Phi_j] - \mu_j| \le` ``tol``.

    Returns:
        theta, float64 (k,); :func:`gibbs_distribution` gives the distribution.

    Raises:
        ValueError: bad shapes or values, or moments that no distribution on the states has (outside
            the features' range).
        RuntimeError: no convergence within ``max_iter`` steps (the moments are on, or too close to,
            the boundary of what the states can produce), with the remaining mismatch.
    """
    features = _check_features(features).double()
    mu = _check_moments(features, target_moments)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    low, high = features.min(dim=0).values, features.max(dim=0).values
    outside = (mu < low) | (mu > high)
    if outside.any():
        j = int(outside.nonzero()[0])
        raise ValueError(f"target moment {j} is {float(mu[j]):.6g}, outside the range [{float(low[j]):.6g}, "
                         f"{float(high[j]):.6g}] of feature {j} over the states: no distribution has these moments")
    theta = torch.zeros(features.shape[1], dtype=torch.float64, device=features.device)
    dual = log_partition(features, theta) - theta @ mu
    for _ in range(max_iter):
        p = torch.softmax(features @ theta, dim=0)
        mean = p @ features
        grad = mean - mu  # the moment mismatch
        if float(grad.abs().max()) <= tol:
            return theta
        centred = features - mean
        hessian = centred.T @ (p[:, None] * centred)  # Cov_p[Phi]
        step = -torch.linalg.pinv(hessian, hermitian=True, rtol=1e-13) @ grad
        slope = float(grad @ step)  # < 0: a descent direction
        if not slope < 0:
            step, slope = -grad, -float(grad @ grad)  # the Hessian lost the gradient's direction: a gradient step
        t = 1.0
        while True:
            candidate = theta + t * step
            new_dual = log_partition(features, candidate) - candidate @ mu
            if float(new_dual) <= float(dual) + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:  # no decrease possible at working precision: the current theta is as good as it gets
            break
        theta, dual = candidate, new_dual
    mismatch = float((torch.softmax(features @ theta, dim=0) @ features - mu).abs().max())
    if mismatch <= tol:
        return theta
    raise RuntimeError(f"fit_maxent did not converge in {max_iter} Newton steps: the moments are matched to "
                       f"{mismatch:.3g} > tol={tol:.3g}, with |theta| = {float(theta.norm()):.3g}. Moments on the "
                       "boundary of what the states can produce (e.g. a variance of 0) have no Gibbs distribution")


def entropy(p: Tensor) -> Tensor:
    r""":math:`H(p) = -\sum_s p(s) \log p(s)` in nats (0-dim, float64 for float64 input), with :math:`0 \log 0 = 0`.

    Args:
        p: (S,) probabilities: non-negative, summing to 1 (within 1e-6).
    """
    p = torch.as_tensor(p)
    if p.dim() != 1 or p.numel() == 0:
        raise ValueError(f"p must be a non-empty vector (S,) of probabilities, got shape {tuple(p.shape)}")
    if not p.is_floating_point():
        p = p.double()
    if not torch.isfinite(p).all():
        raise ValueError("p contains NaN or inf")
    if float(p.min()) < 0:
        raise ValueError(f"p must be non-negative, got a minimum of {float(p.min()):.3g}")
    total = float(p.sum())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"p must sum to 1, got {total:.9g}")
    return -torch.special.xlogy(p, p).sum()
