"""Maximum entropy on a grid: the fitted Gibbs distribution matches the moments and has the largest entropy."""

import math

import pytest
import torch

from course_lib.models.energy.maxent import (
    entropy,
    expected_features,
    fit_maxent,
    gibbs_distribution,
    log_partition,
    maxent_dual,
)


def _die_features() -> torch.Tensor:
    """A six-sided die with the features (x, x^2, [x even]): (6, 3)."""
    x = torch.arange(1, 7, dtype=torch.float64)
    return torch.stack([x, x**2, (x % 2 == 0).double()], dim=1)


def _random_problem(seed: int, n_states: int = 40, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features and the moments of a random strictly positive distribution (so they are feasible)."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n_states, k, generator=g, dtype=torch.float64)
    q = torch.softmax(torch.randn(n_states, generator=g, dtype=torch.float64), dim=0)
    return features, q @ features


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fitted_distribution_matches_the_moments_to_1e_8(seed):
    features, mu = _random_problem(seed)
    theta = fit_maxent(features, mu)
    p = gibbs_distribution(features, theta)
    assert theta.dtype == torch.float64 and theta.shape == (4,)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(p @ features, mu, atol=1e-8, rtol=0)


def test_a_die_with_a_mean_of_4_5_is_the_textbook_exponential_tilt():
    """Jaynes's dice: with only the mean fixed, p(x) is proportional to r^x, r solving the mean equation."""
    features = _die_features()[:, :1]
    theta = fit_maxent(features, torch.tensor([4.5]))
    p = gibbs_distribution(features, theta)
    r = math.exp(float(theta[0]))
    x = torch.arange(1, 7, dtype=torch.float64)
    assert torch.allclose(p, r**x / (r**x).sum(), atol=1e-12)
    assert float(p @ x) == pytest.approx(4.5, abs=1e-10)
    assert torch.all(p[1:] > p[:-1])  # a mean above 3.5 tilts the die towards the large faces


def test_no_other_distribution_with_the_same_moments_has_more_entropy():
    """Move p along directions that keep the total mass and every moment: the entropy only drops."""
    features, mu = _random_problem(3, n_states=30, k=3)
    p = gibbs_distribution(features, fit_maxent(features, mu))
    constraints = torch.cat([torch.ones(1, 30, dtype=torch.float64), features.T])  # (1 + k, S)
    null_space = torch.linalg.svd(constraints).Vh[constraints.shape[0]:]  # (S - 1 - k, S), orthonormal rows
    g = torch.Generator().manual_seed(0)
    h_max = float(entropy(p))
    for _ in range(20):
        d = torch.randn(null_space.shape[0], generator=g, dtype=torch.float64) @ null_space
        assert torch.allclose(constraints @ d, torch.zeros(4, dtype=torch.float64), atol=1e-12)
        t_max = float((p / d.abs().clamp_min(1e-300)).min())  # p + t d >= 0 for |t| <= t_max
        for fraction in (0.01, 0.5, 0.999):
            for sign in (1, -1):
                q = p + sign * fraction * t_max * d
                assert torch.allclose(q @ features, mu, atol=1e-10)
                assert float(entropy(q)) < h_max
    # near the optimum the loss of entropy is quadratic: H(p + t d) = H(p) - t^2/2 sum d^2/p + O(t^3)
    t = 1e-4 * t_max
    drop = h_max - float(entropy(p + t * d))
    assert drop == pytest.approx(0.5 * t**2 * float((d**2 / p).sum()), rel=1e-3)


def test_with_features_x_and_x_squared_the_answer_is_a_discretised_gaussian():
    x = torch.linspace(-12.0, 12.0, 2401, dtype=torch.float64)  # wide enough that the tails are below 1e-16
    features = torch.stack([x, x**2], dim=1)
    mean, std = 0.7, 1.3
    theta = fit_maxent(features, torch.tensor([mean, mean**2 + std**2], dtype=torch.float64))
    # exp(theta1 x + theta2 x^2) with theta = (mean / std^2, -1 / (2 std^2)): the Gaussian N(mean, std^2)
    assert float(theta[0]) == pytest.approx(mean / std**2, rel=1e-7)
    assert float(theta[1]) == pytest.approx(-1 / (2 * std**2), rel=1e-7)
    gaussian = torch.exp(-((x - mean) ** 2) / (2 * std**2))
    assert torch.allclose(gibbs_distribution(features, theta), gaussian / gaussian.sum(), atol=1e-10)
    # and its entropy is that of the Gaussian minus the log of the grid's spacing (a density on cells of width dx)
    dx = float(x[1] - x[0])
    assert float(entropy(gibbs_distribution(features, theta))) == pytest.approx(
        0.5 * math.log(2 * math.pi * math.e * std**2) - math.log(dx), abs=1e-8)


def test_the_gradient_of_the_log_partition_is_the_expectation_of_the_features():
    features, mu = _random_problem(4)
    theta = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    (grad_log_z,) = torch.autograd.grad(log_partition(features, theta), theta)
    p = gibbs_distribution(features, theta.detach())
    assert torch.allclose(grad_log_z, expected_features(features, p), atol=1e-12)
    # so the dual's gradient is the moment mismatch, model minus target
    (grad_dual,) = torch.autograd.grad(maxent_dual(features, theta, mu), theta)
    assert torch.allclose(grad_dual, p @ features - mu, atol=1e-12)


def test_the_score_of_a_gibbs_model_is_phi_minus_its_expectation():
    """The Fisher vector: d/dtheta log p_theta(s) = Phi(s) - E_p[Phi], for every state s."""
    features, _ = _random_problem(5, n_states=12, k=3)
    theta = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    log_p = torch.log(gibbs_distribution(features, theta))
    mean = gibbs_distribution(features, theta.detach()) @ features
    for s in range(12):
        (score,) = torch.autograd.grad(log_p[s], theta, retain_graph=True)
        assert torch.allclose(score, features[s] - mean, atol=1e-12)


def test_the_dual_at_the_optimum_is_the_maximum_entropy():
    """Strong duality: min D = log Z - theta . mu = -sum p log p = H(p*), and D is above H(p*) elsewhere."""
    features, mu = _random_problem(6)
    theta = fit_maxent(features, mu)
    h_max = float(entropy(gibbs_distribution(features, theta)))
    assert float(maxent_dual(features, theta, mu)) == pytest.approx(h_max, abs=1e-10)
    assert float(maxent_dual(features, theta + 0.1, mu)) > h_max


def test_features_with_a_linear_dependency_still_fit():
    """A constant feature (and a copy of another) makes the Hessian singular; the pseudo-inverse copes."""
    features, mu = _random_problem(7, k=2)
    features = torch.cat([features, torch.ones(40, 1, dtype=torch.float64), 2 * features[:, :1]], dim=1)
    mu = torch.cat([mu, torch.tensor([1.0], dtype=torch.float64), 2 * mu[:1]])
    p = gibbs_distribution(features, fit_maxent(features, mu))
    assert torch.allclose(p @ features, mu, atol=1e-8, rtol=0)


def test_moments_no_distribution_has_are_refused_with_the_feature_named():
    features = _die_features()
    with pytest.raises(ValueError, match=r"target moment 0 is 7.*outside the range \[1, 6\]"):
        fit_maxent(features, torch.tensor([7.0, 20.0, 0.5]))
    # a mean of exactly 6 needs all the mass on one face: no Gibbs distribution, theta runs away
    # (slowly: it takes about 25 steps to come within 1e-10); too few steps are reported
    with pytest.raises(RuntimeError, match=r"did not converge in 5 Newton steps: the moments are matched to"):
        fit_maxent(features[:, :1], torch.tensor([6.0]), max_iter=5)


def test_bad_shapes_and_values_are_named():
    features = _die_features()
    with pytest.raises(ValueError, match=r"features must be \(S, k\)"):
        fit_maxent(torch.ones(6), torch.ones(1))
    with pytest.raises(ValueError, match=r"target_moments must be \(3,\)"):
        fit_maxent(features, torch.ones(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_maxent(features, torch.tensor([3.0, float("nan"), 0.5]))
    with pytest.raises(ValueError, match=r"theta must be \(3,\)"):
        gibbs_distribution(features, torch.zeros(2))
    with pytest.raises(ValueError, match="max_iter"):
        fit_maxent(features, torch.tensor([3.5, 15.0, 0.5]), max_iter=0)
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="non-negative"):
        entropy(torch.tensor([1.5, -0.5]))


def test_entropy_of_known_distributions():
    assert float(entropy(torch.full((8,), 1 / 8, dtype=torch.float64))) == pytest.approx(math.log(8), abs=1e-15)
    assert float(entropy(torch.tensor([1.0, 0.0, 0.0]))) == 0.0  # 0 log 0 = 0
    assert float(entropy(torch.tensor([0.25, 0.75], dtype=torch.float64))) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-15)
