"""Chain diagnostics against AR(1) chains, whose autocorrelation and effective sample size are known.

An AR(1) chain x_t = a x_{t-1} + sqrt(1 - a^2) eps_t started from its stationary law N(0, 1)
has autocorrelation rho_k = a^k and integrated autocorrelation time (1 + a) / (1 - a), so
T steps are worth T (1 - a) / (1 + a) independent draws.
"""

import math

import pytest
import torch
from scipy import signal

from course_lib.metrics import autocorrelation, effective_sample_size, r_hat


def ar1(a: float, n_steps: int, n_chains: int, seed: int) -> torch.Tensor:
    """(T, C) stationary AR(1) chains with coefficient a and unit variance, float64."""
    g = torch.Generator().manual_seed(seed)
    innovations = torch.randn(n_steps, n_chains, generator=g, dtype=torch.float64)
    innovations[1:] *= math.sqrt(1 - a * a)  # x_0 ~ N(0, 1), then x_t = a x_{t-1} + sqrt(1 - a^2) eps_t
    return torch.from_numpy(signal.lfilter([1.0], [1.0, -a], innovations.numpy(), axis=0))


def test_the_ar1_chains_follow_their_recursion():
    x = ar1(0.7, 5, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(5, 2, generator=g, dtype=torch.float64)
    assert torch.allclose(x[0], eps[0]) and torch.allclose(x[1:], 0.7 * x[:-1] + math.sqrt(1 - 0.49) * eps[1:])


def test_autocorrelation_matches_the_direct_sum():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    centred = x - x.mean(dim=0)
    direct = torch.stack([(centred[: 50 - k] * centred[k:]).sum(dim=0) / 50 for k in range(50)])  # (T, C)
    assert torch.allclose(autocorrelation(x), (direct / direct[0]).mean(dim=1), atol=1e-12)
    assert torch.allclose(autocorrelation(x[:, 1], max_lag=7), (direct[:8, 1] / direct[0, 1]), atol=1e-12)


@pytest.mark.parametrize("a", [0.5, 0.9, -0.6])
def test_autocorrelation_of_an_ar1_chain_is_a_to_the_lag(a):
    n_steps, n_chains, max_lag = 4000, 20, 10
    rho = autocorrelation(ar1(a, n_steps, n_chains, seed=1), max_lag=max_lag)
    assert rho.shape == (max_lag + 1,) and rho[0] == 1
    tau = (1 + a) / (1 - a)  # T Var(mean) / Var(x)
    for k in range(1, max_lag + 1):
        # The estimator's bias to first order in 1/T: the sum has T - k terms and the mean is estimated,
        # E[gamma_k] ~ gamma_0 (a^k (1 - k/T) - tau/T), E[gamma_0] ~ gamma_0 (1 - tau/T).
        expected = (a**k * (1 - k / n_steps) - tau / n_steps) / (1 - tau / n_steps)
        # Bartlett's variance of the lag-k estimate of one AR(1) chain, averaged over the chains
        var = ((1 + a * a) * (1 - a ** (2 * k)) / (1 - a * a) - 2 * k * a ** (2 * k)) / n_steps
        se = math.sqrt(var / n_chains)
        assert abs(float(rho[k]) - expected) < 4 * se, f"lag {k}: {float(rho[k]):.4f} vs {expected:.4f} (a^k)"


@pytest.mark.parametrize("a", [0.0, 0.5, 0.9])
def test_effective_sample_size_of_ar1_chains_matches_t_times_1_minus_a_over_1_plus_a(a):
    n_steps, n_chains = 5000, 40
    x = ar1(a, n_steps, n_chains, seed=2)
    expected = n_steps * (1 - a) / (1 + a)
    per_chain = torch.tensor([effective_sample_size(x[:, c]) for c in range(n_chains)]) / expected
    se = float(per_chain.std()) / math.sqrt(n_chains)  # the spread of one chain's estimate, over C chains
    pooled = effective_sample_size(x) / (n_chains * expected)
    assert abs(pooled - 1) < 4 * se, f"ESS / closed form = {pooled:.3f} (standard error {se:.3f})"
    assert abs(float(per_chain.mean()) - 1) < 4 * se


def test_effective_sample_size_sees_chains_that_disagree():
    x = ar1(0.5, 2000, 4, seed=3)
    assert effective_sample_size(x[:, 0]) == effective_sample_size(x[:, :1])
    shifted = x + torch.tensor([0.0, 0.0, 3.0, 3.0], dtype=torch.float64)
    assert effective_sample_size(shifted) < 0.1 * effective_sample_size(x)


def test_r_hat_is_one_for_mixed_chains_and_large_for_chains_stuck_in_different_modes():
    x = ar1(0.5, 4000, 8, seed=4)
    assert 0.99 < r_hat(x) < 1.01
    stuck = x + torch.tensor([-3.0, 3.0] * 4, dtype=torch.float64)  # half the chains in each of two modes
    assert r_hat(stuck) > 2.5


def test_split_r_hat_catches_chains_that_still_drift():
    drifting = ar1(0.5, 4000, 4, seed=5) + torch.linspace(0, 6, 4000, dtype=torch.float64)[:, None]
    assert r_hat(drifting) > 1.5  # all chains alike, but the first and second halves disagree


def test_r_hat_on_a_case_computed_by_hand():
    # Halves [0, 2] and [10, 12]: W = 2, B/n = var(1, 11) = 50, var+ = (1/2) 2 + 50 = 51.
    assert r_hat(torch.tensor([[0.0], [2.0], [10.0], [12.0]])) == pytest.approx(math.sqrt(51 / 2))
    assert r_hat(torch.tensor([0.0, 2.0, 10.0, 12.0])) == pytest.approx(math.sqrt(51 / 2))


def test_diagnostics_errors_name_the_bad_value():
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        autocorrelation(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(torch.randn(10), max_lag=10)
    with pytest.raises(ValueError, match="constant"):
        autocorrelation(torch.ones(10))
    with pytest.raises(ValueError, match="non-finite"):
        effective_sample_size(torch.tensor([0.0, 1.0, math.nan, 2.0]))
    with pytest.raises(ValueError, match="at least 4 steps"):
        effective_sample_size(torch.randn(3))
    with pytest.raises(ValueError, match="constant"):
        effective_sample_size(torch.ones(10, 2))
    with pytest.raises(ValueError, match="constant"):
        r_hat(torch.ones(10, 2))
