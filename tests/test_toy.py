"""Toy distributions: exact densities against independent formulas, samplers against the densities.

Samplers are checked with a chi-square (or Kolmogorov-Smirnov) test at a fixed seed:
the right density must pass (p > 1e-3), and a slightly wrong one must fail
(p < 1e-6), which shows that the test has the power to catch a wrong sampler.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.data.toy import (
    TOY_1D,
    TOY_2D,
    Checkerboard,
    DiscretizedGaussianMixture,
    EightGaussians,
    GaussianMixture1D,
    NoisyCurves,
    SmileyGrid,
    checkerboard,
    eight_gaussians,
    sample_toy_1d,
    sample_toy_2d,
    spiral,
    toy_distribution,
    two_moons,
)

N = 20_000


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Pearson's chi-square test of observed counts against cell probabilities (small cells pooled)."""
    counts, probs = np.asarray(counts, float).ravel(), np.asarray(probs, float).ravel()
    assert abs(probs.sum() - 1) < 1e-6
    expected = counts.sum() * probs
    small = expected < min_expected
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    stat = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()
    return float(stats.chi2.sf(stat, keep.sum() - 1))


def binned_2d(samples: torch.Tensor, log_prob, lo: float, hi: float, cells: int, sub: int):
    """Counts of samples in a cells x cells grid on [lo, hi]^2, and each cell's probability.

    The probabilities integrate exp(log_prob) with the midpoint rule on sub x sub points per
    cell; the mass outside the square goes to one extra cell.
    """
    edges = np.linspace(lo, hi, cells + 1)
    x = samples.double().numpy()
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    outside = len(x) - counts.sum()
    h = (hi - lo) / (cells * sub)
    centres = lo + h * (np.arange(cells * sub) + 0.5)
    grid = torch.from_numpy(np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2))
    density = log_prob(grid).exp().numpy().reshape(cells, sub, cells, sub)
    probs = density.sum(axis=(1, 3)) * h * h
    return np.append(counts.ravel(), outside), np.append(probs.ravel(), max(1 - probs.sum(), 0.0))


# ---------------------------------------------------------------------------------------------
# All toys
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TOY_1D, *TOY_2D])
def test_same_seed_gives_the_same_samples_and_another_seed_others(name):
    dist = toy_distribution(name)
    a, b, c = dist.sample(500, seed=3), dist.sample(500, seed=3), dist.sample(500, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert dist.sample(0, seed=0).shape[0] == 0


def test_samplers_by_name_return_the_documented_shapes_and_types():
    assert sample_toy_1d("bimodal_discrete", 7, seed=0).dtype == torch.int64
    assert sample_toy_1d("gaussian_mixture", 7, seed=0).shape == (7,)
    for name in ("two_moons", "eight_gaussians", "checkerboard", "spiral"):
        x = sample_toy_2d(name, 7, seed=0)
        assert x.shape == (7, 2) and x.dtype == torch.float32
    assert sample_toy_2d("smiley", 7, seed=0).dtype == torch.int64
    assert torch.equal(two_moons(9, seed=1), sample_toy_2d("two_moons", 9, seed=1))
    assert torch.equal(eight_gaussians(9, seed=1), sample_toy_2d("eight_gaussians", 9, seed=1))
    assert torch.equal(checkerboard(9, seed=1), sample_toy_2d("checkerboard", 9, seed=1))
    assert torch.equal(spiral(9, seed=1), sample_toy_2d("spiral", 9, seed=1))
    with pytest.raises(ValueError, match="unknown 2-D toy distribution 'moons'"):
        sample_toy_2d("moons", 5)
    with pytest.raises(ValueError, match="unknown toy distribution"):
        toy_distribution("moons")


# ---------------------------------------------------------------------------------------------
# 1-D
# ---------------------------------------------------------------------------------------------


def test_discretized_mixture_pmf_matches_an_independent_formula_and_sums_to_one():
    dist = DiscretizedGaussianMixture()
    pmf = dist.pmf().numpy()
    assert pmf.shape == (100,) and (pmf > 0).all()
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    upper = np.append(np.arange(99) + 0.5, np.inf)  # value v collects z in [v - 1/2, v + 1/2), ends take the tails
    lower = np.insert(np.arange(99) + 0.5, 0, -np.inf)
    reference = sum(
        w * (stats.norm.cdf(upper, m, s) - stats.norm.cdf(lower, m, s))
        for w, m, s in zip(dist.weights, dist.means, dist.stds, strict=True)
    )
    np.testing.assert_allclose(pmf, reference, rtol=1e-9, atol=1e-15)
    x = torch.tensor([0, 30, 99])
    np.testing.assert_allclose(dist.log_prob(x).numpy(), np.log(reference[[0, 30, 99]]))


def test_discretized_mixture_samples_follow_its_pmf():
    dist = DiscretizedGaussianMixture()
    x = dist.sample(N, seed=0)
    assert x.dtype == torch.int64 and x.min() >= 0 and x.max() <= 99
    counts = np.bincount(x.numpy(), minlength=100)
    assert chi2_pvalue(counts, dist.pmf().numpy()) > 1e-3
    wrong = DiscretizedGaussianMixture(weights=(0.45, 0.55))
    assert chi2_pvalue(counts, wrong.pmf().numpy()) < 1e-6


def test_discretized_mixture_rejects_values_outside_its_support():
    dist = DiscretizedGaussianMixture()
    with pytest.raises(ValueError, match=r"values must lie in 0..99, got range 0..100"):
        dist.log_prob(torch.tensor([0, 100]))
    with pytest.raises(ValueError, match="integer tensor"):
        dist.log_prob(torch.tensor([0.5]))


def test_gaussian_mixture_density_is_exact_and_normalised():
    dist = GaussianMixture1D()
    x = torch.linspace(-8, 9, 20001, dtype=torch.float64)
    params = zip(dist.weights, dist.means, dist.stds, strict=True)
    reference = sum(w * stats.norm.pdf(x.numpy(), m, s) for w, m, s in params)
    np.testing.assert_allclose(dist.log_prob(x).exp().numpy(), reference, rtol=1e-10, atol=1e-300)
    assert torch.trapezoid(dist.log_prob(x).exp(), x).item() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(dist.cdf(x)[[0, -1]].numpy(), [0.0, 1.0], atol=1e-9)


def test_gaussian_mixture_samples_follow_its_distribution():
    dist = GaussianMixture1D()
    x = dist.sample(N, seed=0).double().numpy()
    assert stats.kstest(x, lambda v: dist.cdf(torch.from_numpy(v)).numpy()).pvalue > 1e-3
    shifted = GaussianMixture1D(means=(-1.8, 1.7))
    assert stats.kstest(x, lambda v: shifted.cdf(torch.from_numpy(v)).numpy()).pvalue < 1e-6


# ---------------------------------------------------------------------------------------------
# 2-D, continuous
# ---------------------------------------------------------------------------------------------


def test_eight_gaussians_density_is_the_mixture_of_its_eight_components():
    dist = EightGaussians()
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    reference = np.mean(
        [stats.multivariate_normal(c, dist.std**2 * np.eye(2)).pdf(x.numpy()) for c in dist.centers().numpy()], axis=0
    )
    np.testing.assert_allclose(dist.log_prob(x).exp().numpy(), reference, rtol=1e-10)
    assert dist.log_prob(x.float()).dtype == torch.float32
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got \(5, 3\)"):
        dist.log_prob(torch.zeros(5, 3))


def test_eight_gaussians_samples_fall_in_cells_with_the_exact_probabilities():
    dist = EightGaussians()
    x = dist.sample(N, seed=0).double().numpy()
    edges = np.linspace(-4, 4, 17)

    def cell_probs(d: EightGaussians) -> np.ndarray:
        probs = np.zeros((16, 16))
        for cx, cy in d.centers().numpy():  # an isotropic Gaussian factorises over the two axes
            px = np.diff(stats.norm.cdf(edges, cx, d.std))
            py = np.diff(stats.norm.cdf(edges, cy, d.std))
            probs += np.outer(px, py) / 8
        return np.append(probs.ravel(), 1 - probs.sum())

    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    counts = np.append(counts.ravel(), len(x) - counts.sum())
    assert chi2_pvalue(counts, cell_probs(dist)) > 1e-3
    assert chi2_pvalue(counts, cell_probs(EightGaussians(std=dist.std * 1.1))) < 1e-6


def test_checkerboard_is_uniform_on_the_black_squares():
    dist = Checkerboard()
    x = dist.sample(N, seed=0)
    log_p = dist.log_prob(x)
    assert torch.all(log_p == -math.log(8))  # every sample is on a black square
    cells = torch.floor(x.double()).long() + 2  # (N, 2) in 0..3
    counts = torch.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16).numpy()
    black = np.array([(i + j) % 2 == 0 for i in range(4) for j in range(4)])
    assert counts[~black].sum() == 0
    assert chi2_pvalue(counts[black], np.full(8, 1 / 8)) > 1e-3
    within = ((x.double() - torch.floor(x.double())) * 4).long()  # position inside the square, 4 x 4 sub-cells
    sub_counts = torch.bincount(within[:, 0] * 4 + within[:, 1], minlength=16).numpy()
    assert chi2_pvalue(sub_counts, np.full(16, 1 / 16)) > 1e-3
    grid = (torch.arange(400, dtype=torch.float64) + 0.5) / 100 - 2  # midpoints of [-2, 2] with h = 0.01
    pts = torch.cartesian_prod(grid, grid)
    assert (dist.log_prob(pts).exp().sum() * 0.01**2).item() == pytest.approx(1.0, abs=1e-9)
    assert dist.log_prob(torch.tensor([[0.5, 1.5], [2.5, 0.5]])).isneginf().all()  # a white square, outside


@pytest.mark.parametrize(
    ("name", "lo", "hi", "cells", "sub"), [("two_moons", -2.0, 2.0, 10, 8), ("spiral", -4.0, 4.0, 16, 6)]
)
def test_noisy_curve_samples_follow_the_integrated_density(name, lo, hi, cells, sub):
    dist = TOY_2D[name]
    x = dist.sample(N, seed=0)
    counts, probs = binned_2d(x, dist.log_prob, lo, hi, cells, sub)
    assert probs.sum() == pytest.approx(1.0, abs=2e-3)  # the density is normalised
    assert chi2_pvalue(counts, probs / probs.sum()) > 1e-3
    wrong = NoisyCurves(dist.kind, noise=1.2 * dist.noise, n_intervals=dist.n_intervals)
    _, wrong_probs = binned_2d(x, wrong.log_prob, lo, hi, cells, sub)
    assert chi2_pvalue(counts, wrong_probs / wrong_probs.sum()) < 1e-6


@pytest.mark.parametrize("name", ["two_moons", "spiral"])
def test_noisy_curve_density_has_converged_in_the_number_of_nodes(name):
    dist = TOY_2D[name]
    finer = NoisyCurves(dist.kind, dist.noise, n_intervals=8 * dist.n_intervals)
    x = dist.sample(300, seed=1).double()  # where the data are
    torch.testing.assert_close(dist.log_prob(x), finer.log_prob(x), rtol=0, atol=1e-4)
    x = x + 3 * dist.noise  # three noise widths away, also beyond the curves' ends
    torch.testing.assert_close(dist.log_prob(x), finer.log_prob(x), rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# 2-D, discrete
# ---------------------------------------------------------------------------------------------


def test_smiley_pmf_is_a_normalised_joint_with_dependent_coordinates():
    dist = SmileyGrid()
    pmf = dist.pmf()
    assert pmf.shape == (32, 32) and (pmf > 0).all()
    assert pmf.sum().item() == pytest.approx(1.0, abs=1e-12)
    independent = pmf.sum(1, keepdim=True) * pmf.sum(0, keepdim=True)  # p(x1) p(x2)
    assert 0.5 * (pmf - independent).abs().sum() > 0.1  # x2 depends on x1: a model must use x1
    assert torch.allclose(pmf, pmf.flip(1)) and not torch.allclose(pmf, pmf.flip(0))  # left = right, up != down
    pairs = torch.tensor([[0, 0], [5, 31]])
    torch.testing.assert_close(dist.log_prob(pairs), pmf.log()[pairs[:, 0], pairs[:, 1]])
    with pytest.raises(ValueError, match="integer pairs of shape"):
        dist.log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="values must lie in 0..31"):
        dist.log_prob(torch.tensor([[0, 32]]))


def test_smiley_samples_follow_the_joint_pmf():
    dist = SmileyGrid()
    x = dist.sample(50_000, seed=0)
    assert x.shape == (50_000, 2) and x.dtype == torch.int64 and x.min() >= 0 and x.max() < 32
    counts = torch.bincount(x[:, 0] * 32 + x[:, 1], minlength=32 * 32).numpy()
    assert chi2_pvalue(counts, dist.pmf().numpy()) > 1e-3
    assert chi2_pvalue(counts, dist.pmf().T.numpy()) < 1e-6  # (x2, x1) in the wrong order
