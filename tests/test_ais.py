"""Annealed importance sampling against exact log-partition functions.

RBMs small enough to enumerate (12 visible x 8 hidden, 20 x 10, weights of size ~1, far
from the easy small-weight regime) give log Z exactly; AIS must land within its own error bar,
get closer with more intermediate distributions, and have no spread at all when the path
is flat. The generic estimator is checked on a discrete distribution it can sample exactly.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.models import (
    AISEstimate,
    annealed_importance_sampling,
    annealing_betas,
    log_mean_exp,
    rbm_log_partition,
)
from course_lib.models.energy import RBM


def _rbm(n_visible: int, n_hidden: int, scale: float = 1.0, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(n_visible=n_visible, n_hidden=n_hidden, init_std=scale)
    with torch.no_grad():
        rbm.visible_bias.normal_(0.0, scale)
        rbm.hidden_bias.normal_(0.0, scale)
    return rbm


def test_log_mean_exp_is_stable_and_exact():
    x = torch.tensor([[1000.0, 1000.0], [1000.0 + math.log(3.0), 1000.0]], dtype=torch.float64)
    torch.testing.assert_close(log_mean_exp(x, dim=0), torch.tensor([1000.0 + math.log(2.0), 1000.0]).double())
    small = torch.randn(7, dtype=torch.float64)
    torch.testing.assert_close(log_mean_exp(small), small.exp().mean().log())
    with pytest.raises(ValueError, match="empty"):
        log_mean_exp(torch.zeros(0))


@pytest.mark.parametrize(("n_visible", "n_hidden", "n_betas"), [(12, 8, 3_000), (20, 10, 5_000)])
def test_rbm_ais_lands_within_its_error_bar_of_the_exact_log_partition(n_visible, n_hidden, n_betas):
    rbm = _rbm(n_visible, n_hidden, seed=n_visible)
    exact = rbm.exact_log_partition()
    estimate = rbm_log_partition(rbm, n_runs=100, n_betas=n_betas, generator=torch.Generator().manual_seed(0))
    assert isinstance(estimate, AISEstimate) and estimate.log_weights.shape == (100,)
    assert estimate.log_z == pytest.approx(float(log_mean_exp(estimate.log_weights)))
    assert 0 < estimate.log_z_std < 0.1
    assert estimate.log_z_low < exact < estimate.log_z_high, (estimate, exact)
    assert abs(estimate.log_z - exact) < 3 * estimate.log_z_std, (estimate, exact)


def test_more_intermediate_distributions_give_a_sharper_and_closer_estimate():
    rbm = _rbm(12, 8, seed=12)
    exact = rbm.exact_log_partition()
    errors, stds = [], []
    for n_betas in (20, 300, 3_000):
        runs = [rbm_log_partition(rbm, n_runs=100, n_betas=n_betas, generator=torch.Generator().manual_seed(s))
                for s in range(4)]
        errors.append(math.sqrt(sum((r.log_z - exact) ** 2 for r in runs) / 4))  # root mean square over 4 seeds
        stds.append(sum(r.log_z_std for r in runs) / 4)
    assert stds[0] > 2 * stds[1] > 4 * stds[2], stds
    assert errors[0] > 3 * errors[2] and errors[2] < 0.03, errors


def test_a_flat_path_has_weights_without_spread():
    """No weights and the base at the visible biases: every f_beta is the same distribution up to a constant,
    so every run's weight equals Z exactly."""
    rbm = _rbm(15, 9, seed=4)
    with torch.no_grad():
        rbm.weight.zero_()
    estimate = rbm_log_partition(rbm, n_runs=10, n_betas=50, base_visible_bias=rbm.visible_bias.detach().clone(),
                                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate.log_weights, torch.full((10,), rbm.exact_log_partition(), dtype=torch.float64))
    assert estimate.log_z_std == pytest.approx(0.0, abs=1e-12)


def test_a_base_rate_model_close_to_the_rbm_sharpens_the_estimate():
    """S&M's base rate: base visible biases near the RBM's marginals beat the uniform base."""
    rbm = _rbm(20, 10, scale=0.3, seed=9)
    with torch.no_grad():
        rbm.visible_bias.mul_(8)  # strongly biased pixels, far from uniform
    g = torch.Generator().manual_seed(0)
    uniform = rbm_log_partition(rbm, n_runs=100, n_betas=100, generator=g)
    based = rbm_log_partition(rbm, n_runs=100, n_betas=100, base_visible_bias=rbm.visible_bias.detach(), generator=g)
    assert based.log_z_std < uniform.log_z_std / 2, (based, uniform)
    assert abs(based.log_z - rbm.exact_log_partition()) < 3 * based.log_z_std


def test_generic_ais_with_two_betas_is_unbiased_importance_sampling():
    """betas = (0, 1): w = f_1(x) / f_0(x) with x ~ p_0, whose mean is Z_1 / Z_0 exactly."""
    theta = torch.tensor([0.0, 2.0, -1.0, 0.5, 3.0], dtype=torch.float64)

    def log_f(x: torch.Tensor, beta: float) -> torch.Tensor:
        return beta * theta[x]

    def transition(x, beta, generator):  # exact draws from p_beta: invariant by construction
        return torch.multinomial(torch.softmax(beta * theta, 0), len(x), replacement=True, generator=generator)

    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(5, (200_000,), generator=g)
    estimate = annealed_importance_sampling(log_f, transition, x0, [0.0, 1.0], log_z0=math.log(5.0), generator=g)
    exact = float(torch.logsumexp(theta, 0))
    assert abs(estimate.log_z - exact) < 4 * estimate.log_z_std, (estimate, exact)
    annealed = annealed_importance_sampling(log_f, transition, x0[:2000], torch.linspace(0, 1, 200),
                                            log_z0=math.log(5.0), generator=g)
    assert annealed.log_z_std < estimate.log_z_std * math.sqrt(200_000 / 2000) / 5  # annealing sharpens it
    assert abs(annealed.log_z - exact) < 4 * annealed.log_z_std


def test_annealing_betas_reproduce_the_three_pieces_of_salakhutdinov_and_murray():
    betas = annealing_betas(14_500)
    assert len(betas) == 14_500 and betas[0] == 0 and betas[-1] == 1
    assert bool((betas[1:] > betas[:-1]).all())
    assert int((betas < 0.5).sum()) == 500 and int(((betas >= 0.5) & (betas < 0.9)).sum()) == 4_000
    assert int((betas >= 0.9).sum()) == 10_000
    torch.testing.assert_close(annealing_betas(5, schedule="uniform"), torch.linspace(0, 1, 5, dtype=torch.float64))
    small = annealing_betas(4)
    assert small[0] == 0 and small[-1] == 1 and bool((small[1:] > small[:-1]).all())


def test_bad_arguments_are_named():
    rbm = _rbm(4, 3)
    noop = (lambda x, beta: torch.zeros(len(x)), lambda x, beta, g: x, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="from 0 to 1"):
        annealed_importance_sampling(*noop, [0.1, 1.0], log_z0=0.0)
    with pytest.raises(ValueError, match=r"increase strictly, but betas\[2\]"):
        annealed_importance_sampling(*noop, [0.0, 0.5, 0.5, 1.0], log_z0=0.0)
    with pytest.raises(ValueError, match="log_z0 must be a finite number"):
        annealed_importance_sampling(*noop, [0.0, 1.0], log_z0=float("nan"))
    with pytest.raises(ValueError, match="non-finite log-weights"):
        annealed_importance_sampling(lambda x, beta: torch.full((len(x),), beta * math.inf), *noop[1:], [0.0, 1.0],
                                     log_z0=0.0)
    with pytest.raises(ValueError, match="n_betas must be an int >= 2"):
        annealing_betas(1)
    with pytest.raises(ValueError, match="schedule must be one of"):
        annealing_betas(10, schedule="geometric")
    with pytest.raises(ValueError, match=r"base_visible_bias must be a tensor of shape \(4,\)"):
        rbm_log_partition(rbm, base_visible_bias=torch.zeros(5))
    with pytest.raises(ValueError, match="base_visible_bias has non-finite"):
        rbm_log_partition(rbm, base_visible_bias=torch.tensor([0.0, -math.inf, 0.0, 0.0]))
    with pytest.raises(ValueError, match="n_runs must be a positive int"):
        rbm_log_partition(rbm, n_runs=0)
    with pytest.raises(TypeError, match="course_lib RBM"):
        rbm_log_partition(torch.nn.Linear(2, 2))
