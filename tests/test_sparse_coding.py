"""Sparse coding: the lasso's proximal operator, ISTA and FISTA against their theory and scikit-learn."""

import warnings

import numpy as np
import pytest
import torch

from course_lib.models.latent.sparse_coding import (
    fista,
    ista,
    lasso_objective,
    lipschitz_constant,
    normalize_atoms,
    soft_threshold,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _problem(n: int = 40, d: int = 16, K: int = 32, *, seed: int = 0, condition: float = 1.0,
             dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows x (n, d) made of a few atoms plus noise, and a unit-norm dictionary D (d, K).

    ``condition`` > 1 gives D singular values spread over that ratio (then normalised atoms):
    an ill-conditioned lasso on which plain gradient steps are slow.
    """
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(d, K, generator=g, dtype=torch.float64)
    if condition > 1:
        u, _, vh = torch.linalg.svd(D, full_matrices=False)
        D = u @ torch.diag(torch.logspace(0, -np.log10(condition), min(d, K), dtype=torch.float64)) @ vh
    D = normalize_atoms(D)
    codes = torch.randn(n, K, generator=g, dtype=torch.float64) * (torch.rand(n, K, generator=g) < 0.15)
    x = codes @ D.T + 0.05 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(dtype), D.to(dtype)


# ----------------------------------------------------------------------------- the proximal operator


def test_soft_threshold_is_the_proximal_operator_of_the_l1_norm_by_brute_force():
    """prox_{t|.|}(v) = argmin_a 1/2 (a - v)^2 + t |a|, found on a grid of step 1e-4 (the problem is separable)."""
    grid = torch.linspace(-6, 6, 120_001, dtype=torch.float64)  # step 1e-4
    g = torch.Generator().manual_seed(0)
    v = torch.cat([torch.randn(40, generator=g, dtype=torch.float64) * 2, torch.tensor([0.0, 0.3, -0.3, 2.0])])
    t = torch.cat([torch.rand(40, generator=g, dtype=torch.float64) * 1.5, torch.tensor([0.5, 0.3, 0.3, 0.0])])
    cost = 0.5 * (grid[None, :] - v[:, None]) ** 2 + t[:, None] * grid[None, :].abs()  # (44, grid)
    brute = grid[cost.argmin(1)]
    assert torch.allclose(soft_threshold(v, t), brute, atol=1.01e-4)
    assert (soft_threshold(v, t)[(v.abs() <= t)] == 0).all(), "inputs within the threshold go exactly to 0"


def test_soft_threshold_of_a_vector_minimises_the_prox_objective_against_perturbations():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(50, generator=g, dtype=torch.float64)
    best = soft_threshold(v, 0.4)
    prox = lambda a: 0.5 * (a - v).pow(2).sum() + 0.4 * a.abs().sum()  # noqa: E731
    for _ in range(200):
        assert prox(best + 0.05 * torch.randn(50, generator=g, dtype=torch.float64)) > prox(best)


def test_soft_threshold_takes_a_threshold_per_atom_and_refuses_a_negative_one():
    x = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 2.0, -0.5]])
    out = soft_threshold(x, torch.tensor([0.5, 1.0, 1.0]))
    assert torch.equal(out, torch.tensor([[0.5, -1.0, 0.0], [-0.5, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0, got -0.1"):
        soft_threshold(x, -0.1)
    with pytest.raises(ValueError, match="threshold must be finite and >= 0 everywhere"):
        soft_threshold(x, torch.tensor([0.5, -1.0, 1.0]))


# ----------------------------------------------------------------------------- objective and Lipschitz constant


def test_lasso_objective_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    D = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    a = torch.tensor([[1.0, 0.0, 1.0], [0.0, -2.0, 0.0]])
    # row 0: x - Da = (1 - 1.6, 2 - 0.8) = (-0.6, 1.2): 1/2 (0.36 + 1.44) + 0.5 * 2 = 1.9
    # row 1: x - Da = (0, -1 + 2) = (0, 1): 1/2 + 0.5 * 2 = 1.5
    assert torch.allclose(lasso_objective(x, D, a, 0.5), torch.tensor([1.9, 1.5]))


def test_lipschitz_constant_is_the_largest_eigenvalue_of_the_gram_matrix_and_bounds_the_gradient():
    x, D = _problem(seed=2, condition=30.0)
    L = lipschitz_constant(D)
    assert L.dim() == 0 and L.dtype == torch.float64
    assert np.isclose(L.item(), np.linalg.eigvalsh((D.T @ D).numpy())[-1], rtol=1e-10)
    gradient = lambda a: (a @ D.T - x[:1]) @ D  # noqa: E731 -- of 1/2 ||x - D a||^2
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a, b = torch.randn(2, 1, D.shape[1], generator=g, dtype=torch.float64)
        assert (gradient(a) - gradient(b)).norm() <= L * (a - b).norm() * (1 + 1e-12)
    top = torch.linalg.eigh(D.T @ D).eigenvectors[:, -1:].T  # the bound is reached along the top eigenvector
    assert torch.isclose((gradient(top) - gradient(0 * top)).norm(), L * top.norm())


# ----------------------------------------------------------------------------- ISTA and FISTA


@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_ista_objective_never_increases_with_step_one_over_L(lam):
    x, D = _problem(seed=3, condition=100.0)
    _, objectives = ista(x, D, lam, n_iter=300, return_objectives=True)
    assert objectives.shape == (301, x.shape[0])
    increases = objectives[1:] - objectives[:-1]
    assert increases.max() <= 1e-12 * objectives.max(), f"ISTA's objective rose by {increases.max():.3g}"
    assert (objectives[-1] < objectives[0]).float().mean() > 0.9, "most rows move away from a = 0"


def test_a_step_larger_than_one_over_L_can_increase_the_objective():
    """The 1/L rule matters: with a step of 2.5/L the same problem diverges."""
    x, D = _problem(seed=3, condition=100.0)
    L = lipschitz_constant(D)
    _, objectives = ista(x, D, 0.05, n_iter=50, L=L / 2.5, return_objectives=True)
    assert (objectives[1:] > objectives[:-1]).any()


def _optimum(x: torch.Tensor, D: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    codes = fista(x, D, lam, n_iter=20_000)
    return codes, lasso_objective(x, D, codes, lam)


def test_fista_beats_ista_at_equal_iterations_on_an_ill_conditioned_problem_within_their_bounds():
    x, D = _problem(n=30, seed=4, condition=300.0)
    lam = 0.1
    a_star, f_star = _optimum(x, D, lam)
    L = lipschitz_constant(D)
    _, f_ista = ista(x, D, lam, n_iter=400, return_objectives=True)
    _, f_fista = fista(x, D, lam, n_iter=400, return_objectives=True)
    gap_ista, gap_fista = f_ista - f_star, f_fista - f_star  # (401, B)
    for k in (25, 50, 100, 200, 400):
        assert gap_fista[k].mean() < 0.5 * gap_ista[k].mean(), (k, gap_fista[k].mean(), gap_ista[k].mean())
    assert (gap_fista[400] < gap_ista[400]).float().mean() > 0.9
    # Beck & Teboulle's bounds, from a0 = 0: ISTA L||a*||^2 / (2k), FISTA 2L||a*||^2 / (k + 1)^2
    k = torch.arange(1, 401, dtype=torch.float64)[:, None]
    radius = L * a_star.pow(2).sum(1)[None, :]
    assert (gap_ista[1:] <= radius / (2 * k) + 1e-9).all()
    assert (gap_fista[1:] <= 2 * radius / (k + 1) ** 2 + 1e-9).all()


def test_fista_converges_to_the_objective_of_sklearn_lasso_and_sparse_encode():
    from sklearn.decomposition import sparse_encode
    from sklearn.linear_model import Lasso

    x, D = _problem(n=12, d=20, K=40, seed=5, condition=10.0)
    lam, d = 0.2, x.shape[1]
    ours = lasso_objective(x, D, fista(x, D, lam, n_iter=5000), lam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both must converge
        lasso = np.stack([
            Lasso(alpha=lam / d, fit_intercept=False, tol=1e-12, max_iter=200_000).fit(D.numpy(), row).coef_
            for row in x.numpy()
        ])
        encoded = sparse_encode(x.numpy(), D.T.numpy(), algorithm="lasso_cd", alpha=lam, max_iter=200_000)
    for theirs in (lasso, encoded):
        f = lasso_objective(x, D, torch.from_numpy(theirs), lam)
        assert ((ours - f).abs() / f).max() < 1e-4, ((ours - f).abs() / f).max()
        assert (ours <= f * (1 + 1e-9)).all(), "FISTA's converged objective is not above the reference's"


@pytest.mark.parametrize("solver", [ista, fista])
def test_solvers_start_from_a0_and_report_the_objective_there(solver):
    x, D = _problem(seed=6)
    a0 = torch.randn(x.shape[0], D.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    codes, objectives = solver(x, D, 0.3, n_iter=0, a0=a0, return_objectives=True)
    assert torch.equal(codes, a0) and objectives.shape == (1, x.shape[0])
    assert torch.allclose(objectives[0], lasso_objective(x, D, a0, 0.3))
    a_star, _ = _optimum(x, D, 0.3)
    warm = solver(x, D, 0.3, n_iter=5, a0=a_star)
    assert torch.allclose(warm, a_star, atol=1e-8), "the optimum is a fixed point"


def test_ista_equals_its_textbook_step_written_out():
    x, D = _problem(seed=7, K=50)  # K > 2d: the solvers take the residual form of the gradient
    L = lipschitz_constant(D)
    a = torch.zeros(x.shape[0], D.shape[1], dtype=torch.float64)
    for _ in range(7):
        a = soft_threshold(a - (a @ D.T - x) @ D / L, 0.2 / L)
    assert torch.allclose(ista(x, D, 0.2, n_iter=7), a, atol=1e-12)
    x, D = _problem(seed=7, K=20)  # K <= 2d: the Gram form
    b = torch.zeros(x.shape[0], 20, dtype=torch.float64)
    for _ in range(7):
        b = soft_threshold(b - (b @ D.T - x) @ D / L, 0.2 / L)
    assert torch.allclose(ista(x, D, 0.2, n_iter=7, L=L), b, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("solver", [ista, fista])
def test_solvers_follow_the_dtype_and_device_of_x(solver, dtype, device):
    x, D = _problem(seed=8, dtype=dtype)
    x, D = x.to(device), D.to(device)
    codes, objectives = solver(x, D, 0.1, n_iter=30, return_objectives=True)
    assert codes.dtype == dtype and codes.device.type == device and objectives.dtype == dtype
    reference = solver(x.double().cpu(), D.double().cpu(), 0.1, n_iter=30)
    assert torch.allclose(codes.double().cpu(), reference, atol=1e-4 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("call, error, match", [
    (lambda x, D: fista(x, D[:-1], 0.1), ValueError, "D has atoms of 15 features"),
    (lambda x, D: fista(x[0], D, 0.1), ValueError, r"x must be a 2-D tensor \(B, d\).*got \(16,\)"),
    (lambda x, D: fista(x, D, -0.1), ValueError, "lam must be a finite number >= 0, got -0.1"),
    (lambda x, D: fista(x, D, float("nan")), ValueError, "lam must be a finite number >= 0"),
    (lambda x, D: ista(x, D, 0.1, n_iter=-1), ValueError, "n_iter must be an int >= 0, got -1"),
    (lambda x, D: ista(x, D, 0.1, L=0.0), ValueError, "L must be > 0"),
    (lambda x, D: ista(x, D, 0.1, a0=torch.zeros(3, 3, dtype=torch.float64)), ValueError, r"a0 must have shape"),
    (lambda x, D: fista(x * float("inf"), D, 0.1), ValueError, "x contains NaN or inf"),
    (lambda x, D: fista(x.float(), D, 0.1), TypeError, "x and D must share dtype"),
    (lambda x, D: fista(x.long(), D, 0.1), TypeError, "x must be a floating-point tensor"),
    (lambda x, D: lasso_objective(x, D, torch.zeros(40, 31, dtype=torch.float64), 0.1), ValueError,
     r"a must have shape \(B, K\) = \(40, 32\)"),
    (lambda x, D: normalize_atoms(torch.cat([D[:, :3], torch.zeros(16, 1, dtype=torch.float64)], 1)), ValueError,
     r"atoms \[3\] of D are zero"),
])
def test_bad_input_gets_an_error_naming_it(call, error, match):
    x, D = _problem()
    with pytest.raises(error, match=match):
        call(x, D)


def test_normalize_atoms_gives_unit_columns_in_the_same_directions():
    D = torch.tensor([[3.0, 0.0], [4.0, -2.0]])
    assert torch.equal(normalize_atoms(D), torch.tensor([[0.6, 0.0], [0.8, -1.0]]))
