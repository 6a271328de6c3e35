"""Sparse coding: the lasso's proximal operator, ISTA and FISTA against their theory and scikit-learn."""

import warnings

import numpy as np
import pytest
import torch

from course_lib.models.latent.sparse_coding import (
    LISTA,
    SparseCoder,
    dictionary_update,
    fista,
    ista,
    lasso_objective,
    learn_dictionary,
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


@pytest.mark.parametrize("solver", [ista, fista])
def test_rows_are_solved_independently_however_the_batch_is_cut(solver):
    """Large batches are solved in blocks of rows (1300 rows of K = 256: three blocks on the CPU)."""
    x, D = _problem(n=1300, d=32, K=256, seed=12)
    codes, objectives = solver(x, D, 0.1, n_iter=20, return_objectives=True)
    assert codes.shape == (1300, 256) and objectives.shape == (21, 1300)
    L = lipschitz_constant(D)
    for rows in (slice(0, 7), slice(500, 530), slice(1290, 1300)):
        alone, alone_objectives = solver(x[rows], D, 0.1, n_iter=20, L=L, return_objectives=True)
        assert torch.allclose(codes[rows], alone, atol=1e-12) and torch.allclose(objectives[:, rows], alone_objectives)


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


# ----------------------------------------------------------------------------- dictionary learning


def _planted(d: int = 20, K: int = 40, n: int = 2000, *, nonzeros: int = 3, noise: float = 0.01,
             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples x (n, d) = codes @ D.T + noise, with random unit atoms D (d, K) and ``nonzeros`` atoms per
    example, of magnitude 1 to 2 and random sign: the dictionary that learning should find again."""
    g = torch.Generator().manual_seed(seed)
    D = normalize_atoms(torch.randn(d, K, generator=g, dtype=torch.float64))
    support = torch.rand(n, K, generator=g).argsort(1)[:, :nonzeros]  # (n, nonzeros) distinct atoms
    signs = torch.randint(0, 2, (n, nonzeros), generator=g) * 2 - 1
    values = (1 + torch.rand(n, nonzeros, generator=g, dtype=torch.float64)) * signs
    codes = torch.zeros(n, K, dtype=torch.float64).scatter_(1, support, values)
    return codes @ D.T + noise * torch.randn(n, d, generator=g, dtype=torch.float64), D


def _reconstruction_error(x: torch.Tensor, D: torch.Tensor, a: torch.Tensor) -> float:
    return 0.5 * (x - a @ D.T).pow(2).sum().item()


def test_each_block_coordinate_step_is_the_exact_minimiser_over_the_unit_sphere():
    x, _ = _planted(d=8, K=12, n=300, seed=1)
    g = torch.Generator().manual_seed(0)
    D = normalize_atoms(torch.randn(8, 12, generator=g, dtype=torch.float64))
    a = fista(x, D, 0.1, n_iter=50)
    new = dictionary_update(x, a, D, method="bcd")
    # atom 0 is updated first, the others still at D: it must minimise the error over all unit vectors
    first = D.clone()
    first[:, 0] = new[:, 0]
    best = _reconstruction_error(x, first, a)
    for _ in range(300):
        other = first.clone()
        other[:, 0] = normalize_atoms(new[:, :1] + 0.3 * torch.randn(8, 1, generator=g, dtype=torch.float64))[:, 0]
        assert _reconstruction_error(x, other, a) >= best
    assert torch.allclose(new.norm(dim=0), torch.ones(12, dtype=torch.float64), atol=1e-12)
    assert _reconstruction_error(x, new, a) < _reconstruction_error(x, D, a)


@pytest.mark.parametrize("method", ["bcd", "gradient"])
def test_dictionary_update_keeps_unit_atoms_and_an_unused_atom_where_it_was(method):
    x, _ = _planted(d=8, K=12, n=300, seed=2)
    D = normalize_atoms(torch.randn(8, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    a = fista(x, D, 0.1, n_iter=50)
    a[:, 5] = 0  # no example uses atom 5
    new = dictionary_update(x, a, D, method=method)
    assert torch.allclose(new.norm(dim=0), torch.ones(12, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(new[:, 5], D[:, 5]), "an atom that no code uses keeps its direction"
    assert _reconstruction_error(x, new, a) < _reconstruction_error(x, D, a)
    assert torch.allclose(dictionary_update(x, a, D, method="gradient", lr=0.0), D, atol=1e-15, rtol=0)


def test_learn_dictionary_on_the_full_batch_never_increases_the_objective_and_keeps_unit_atoms():
    x, _ = _planted(n=600, seed=3)
    norms = []
    D, objectives = learn_dictionary(x, n_atoms=40, lam=0.1, n_steps=25, n_iter=20,
                                     generator=torch.Generator().manual_seed(0),
                                     callback=lambda step, D, objective: norms.append(D.norm(dim=0)))
    assert objectives.shape == (25,) and D.shape == (20, 40) and len(norms) == 25
    assert (objectives[1:] <= objectives[:-1] * (1 + 1e-12)).all(), objectives
    assert objectives[-1] < 0.75 * objectives[0]
    assert all(torch.allclose(n, torch.ones(40, dtype=torch.float64), atol=1e-12) for n in norms)


def test_learn_dictionary_recovers_a_planted_dictionary_up_to_sign_and_permutation():
    x, D_true = _planted(n=2000, seed=4)
    D, _ = learn_dictionary(x, n_atoms=40, lam=0.1, n_steps=60, n_iter=30, generator=torch.Generator().manual_seed(0))
    best_cosine = (D_true.T @ D).abs().max(1).values  # (K,): each planted atom's closest learned atom
    assert (best_cosine > 0.95).float().mean() >= 0.9, f"recovered {(best_cosine > 0.95).sum()} of 40 atoms"


def test_learned_dictionary_is_comparable_to_sklearn_minibatch_dictionary_learning_on_whitened_patches():
    """'Comparable': the held-out objective with our dictionary is at most 2% above the one with
    scikit-learn's, both coded by the same converged FISTA (measured: 4.4715 against 4.4702, 0.03%)."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    from course_lib.data import load_image_patches

    x, zca = load_image_patches(3000, seed=0)
    held_out = zca.transform(load_image_patches(1000, whiten=False, seed=1)[0])
    lam, K = 0.3, 96
    ours, objectives = learn_dictionary(x, n_atoms=K, lam=lam, n_steps=30, batch_size=512, n_iter=50,
                                        generator=torch.Generator().manual_seed(0))
    assert objectives[-5:].mean() < 0.8 * objectives[0], "the mini-batch objective decreases"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn = MiniBatchDictionaryLearning(n_components=K, alpha=lam, batch_size=512, max_iter=5,
                                              fit_algorithm="cd", random_state=0).fit(x.double().numpy())
    theirs = torch.from_numpy(sklearn.components_.T.copy()).float()  # (K, d) rows -> (d, K) columns
    objective = lambda D: lasso_objective(held_out, D, fista(held_out, D, lam, n_iter=300), lam).mean()  # noqa: E731
    assert objective(ours) <= 1.02 * objective(theirs), (objective(ours), objective(theirs))


# ----------------------------------------------------------------------------- SparseCoder and LISTA


def test_sparse_coder_encodes_by_fista_and_its_loss_is_the_objective():
    coder = SparseCoder(n_features=16, n_atoms=32, lam=0.2, n_iter=40, seed=3)
    assert coder.dictionary.shape == (16, 32)
    assert torch.allclose(coder.dictionary.norm(dim=0), torch.ones(32), atol=1e-6)
    x = _problem(n=10, seed=9, dtype=torch.float32)[0]
    codes = coder.encode(x)
    assert torch.equal(codes, fista(x, coder.dictionary.detach(), 0.2, n_iter=40))
    assert torch.allclose(coder.decode(codes), codes @ coder.dictionary.detach().T)
    loss = coder.loss(x)
    assert loss.shape == (10,) and torch.allclose(loss, lasso_objective(x, coder.dictionary.detach(), codes, 0.2))
    loss.sum().backward()
    assert coder.dictionary.grad is not None and not codes.requires_grad, "gradients reach D, not the codes"
    assert torch.equal(SparseCoder(n_features=16, n_atoms=32, lam=0.2, seed=3).dictionary, coder.dictionary)


def test_sparse_coder_trains_through_the_course_loop_with_unit_atoms():
    from course_lib.data import make_loader
    from course_lib.training import train

    x, _ = _planted(d=16, K=24, n=1024, seed=5)
    x = x.float()
    coder = SparseCoder(n_features=16, n_atoms=24, lam=0.1, n_iter=30, seed=0, lr=3e-2)
    norms = []
    history = train(coder, make_loader(x, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0)),
                    [x[:256]], epochs=4, progress=False,
                    callback=lambda result: norms.append(coder.dictionary.detach().norm(dim=0)))
    evaluated = history.eval_values["objective"]  # before training, then after each epoch
    assert len(evaluated) == 5 and evaluated[-1] < 0.7 * evaluated[0], evaluated
    assert history.epoch_means["objective"][-1] < history.epoch_means["objective"][0]
    assert len(norms) == 32 and all(torch.allclose(n, torch.ones(24), atol=1e-5) for n in norms)


def test_lista_built_from_a_dictionary_is_exactly_n_layers_of_ista():
    x, D = _problem(seed=10)
    for n_layers in (1, 3, 7):
        lista = LISTA.from_dictionary(D, 0.2, n_layers=n_layers)
        assert lista.W_e.dtype == torch.float64
        assert torch.allclose(lista.encode(x), ista(x, D, 0.2, n_iter=n_layers), atol=1e-12, rtol=0)
    assert torch.allclose(lista.loss(x), lasso_objective(x, D, ista(x, D, 0.2, n_iter=7), 0.2), atol=1e-12)
    fresh = LISTA(n_features=16, n_atoms=32, lam=0.2, n_layers=2, seed=1)
    assert torch.allclose(fresh.encode(x.float()), ista(x.float(), fresh.dictionary, 0.2, n_iter=2), atol=1e-5)


def test_trained_lista_gets_within_ten_percent_of_fistas_hundred_iterations_on_held_out_patches():
    """Predictive sparse decomposition's promise: 3 layers, trained, do nearly the work of 100 FISTA iterations."""
    from course_lib.data import load_image_patches, make_loader
    from course_lib.training import train

    x, zca = load_image_patches(6000, seed=0)
    held_out = zca.transform(load_image_patches(1000, whiten=False, seed=1)[0])
    lam = 0.3
    D, _ = learn_dictionary(x, n_atoms=128, lam=lam, n_steps=30, batch_size=512, n_iter=50,
                            generator=torch.Generator().manual_seed(0))
    fista_100 = lasso_objective(held_out, D, fista(held_out, D, lam, n_iter=100), lam).mean().item()
    ista_3 = lasso_objective(held_out, D, ista(held_out, D, lam, n_iter=3), lam).mean().item()
    lista = LISTA.from_dictionary(D, lam, n_layers=3, lr=3e-3)
    history = train(lista, make_loader(x, batch_size=256, shuffle=True, generator=torch.Generator().manual_seed(0)),
                    [held_out], epochs=10, progress=False)  # measured: 1.073 times FISTA's objective
    before, after = history.eval_values["objective"][0], history.eval_values["objective"][-1]
    assert abs(before - ista_3) < 1e-4 * ista_3, "before training, LISTA is 3 ISTA steps"
    assert after <= 1.10 * fista_100, f"LISTA: {after:.4f}, FISTA (100 iterations): {fista_100:.4f}"
    assert torch.allclose(lista.dictionary, D), "the objective's dictionary is not trained"


def test_lista_can_be_trained_to_predict_target_codes():
    from course_lib.data import make_loader
    from course_lib.training import train

    x, D = _problem(n=512, seed=11, dtype=torch.float32)
    targets = fista(x, D, 0.2, n_iter=200)
    lista = LISTA.from_dictionary(D, 0.2, n_layers=2, target="codes", lr=1e-2)
    error = lambda: 0.5 * (lista.encode(x) - targets).pow(2).sum(1).mean().item()  # noqa: E731
    start = error()
    history = train(lista, make_loader((x, targets), batch_size=64, shuffle=True,
                                       generator=torch.Generator().manual_seed(0)), epochs=5, progress=False)
    assert error() < 0.5 * start and set(history.epoch_means) == {"code_error", "objective"}
    with pytest.raises(ValueError, match=r"batches \(x, target_codes\)"):
        lista.training_step(x, None)


@pytest.mark.parametrize("make, error, match", [
    (lambda x, D: dictionary_update(x, torch.zeros(40, 32, dtype=torch.float64), D, method="svd"), ValueError,
     "method must be one of"),
    (lambda x, D: dictionary_update(x, torch.zeros(40, 32, dtype=torch.float64), D, lr=0.1), ValueError,
     "lr is the step of method='gradient'"),
    (lambda x, D: learn_dictionary(x, n_atoms=8, lam=0.1, n_steps=1, batch_size=41), ValueError,
     "batch_size=41 is larger than the 40 examples"),
    (lambda x, D: learn_dictionary(x, n_atoms=8, lam=0.1, n_steps=1, init=D), ValueError,
     r"init must have shape \(d, K\) = \(16, 8\)"),
    (lambda x, D: learn_dictionary(x, n_atoms=8, lam=0.1, n_steps=1, forget=1.0), ValueError,
     r"forget must be a number in \[0, 1\), got 1.0"),
    (lambda x, D: learn_dictionary(x, n_atoms=0, lam=0.1, n_steps=1), ValueError, "n_atoms must be an int >= 1"),
    (lambda x, D: SparseCoder(n_features=16, n_atoms=8, lam=-1.0), ValueError, "lam must be a finite number >= 0"),
    (lambda x, D: SparseCoder(n_features=15, n_atoms=8, lam=0.1).encode(x), ValueError,
     "x has 16 features per row, but this SparseCoder has n_features=15"),
    (lambda x, D: SparseCoder(n_features=16, n_atoms=8, lam=0.1).decode(torch.zeros(3, 9)), ValueError,
     r"codes must be \(B, 8\)"),
    (lambda x, D: LISTA(n_features=16, n_atoms=8, lam=0.1, n_layers=0), ValueError, "n_layers must be an int >= 1"),
    (lambda x, D: LISTA(n_features=16, n_atoms=8, lam=0.1, target="sparsity"), ValueError, "target must be one of"),
    (lambda x, D: LISTA.from_dictionary(D, 0.1).encode(x[:, :8]), ValueError,
     "x has 8 features per row, but this LISTA has n_features=16"),
])
def test_dictionary_learning_and_models_name_a_bad_argument(make, error, match):
    x, D = _problem()
    with pytest.raises(error, match=match):
        make(x, D)


def test_models_take_keyword_arguments_documented_in_their_docstrings():
    import inspect

    for cls in (SparseCoder, LISTA):
        params = list(inspect.signature(cls).parameters.values())
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), cls
        for p in params:
            assert p.name in (cls.__doc__ or ""), f"{cls.__name__}'s docstring does not document {p.name!r}"
