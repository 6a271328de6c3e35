r"""Sparse coding (Olshausen & Field, 1996): ISTA, FISTA, dictionary learning and LISTA, batched.

Conventions. Data ``x`` is (B, d), one example per row. The dictionary ``D`` is (d, K) with
its K **atoms as columns**, each of unit :math:`\ell_2` norm. Codes ``a`` are (B, K), and the
reconstruction of a batch is ``x_hat = a @ D.T``. The objective of one example is

.. math:: f(a) = \tfrac12 \lVert x - D a \rVert_2^2 + \lambda \lVert a \rVert_1,

in "objective units" (squared data units; no nats here). Everything follows the device and
the dtype of ``x`` (float32 or float64), and works on whole batches at once.

**Inference is the lasso.** :math:`f = g + h` with the smooth :math:`g(a) = \frac12\lVert x - Da\rVert^2`,
:math:`\nabla g(a) = D^\top (D a - x)`, whose gradient is :math:`L`-Lipschitz with
:math:`L = \lambda_{\max}(D^\top D) = \sigma_{\max}(D)^2` (:func:`lipschitz_constant`), and
:math:`h = \lambda\lVert\cdot\rVert_1`, whose proximal operator is soft thresholding,

.. math:: \mathrm{prox}_{t h}(v) = \arg\min_a \tfrac12\lVert a - v\rVert^2 + t\lambda\lVert a\rVert_1
          = \mathrm{sign}(v)\max(\lvert v\rvert - t\lambda, 0)   \quad\text{(elementwise)}.

*ISTA* takes proximal gradient steps of size :math:`1/L`,
:math:`a_{k+1} = \mathrm{prox}_{h/L}(a_k - \nabla g(a_k)/L)`; the objective never increases and
:math:`f(a_k) - f^\star \le L\lVert a_0 - a^\star\rVert^2 / (2k)`. *FISTA* (Beck & Teboulle, 2009)
takes the same step from an extrapolated point,

.. math:: a_k = \mathrm{prox}_{h/L}(y_k - \nabla g(y_k)/L), \quad
          t_{k+1} = \frac{1 + \sqrt{1 + 4 t_k^2}}{2}, \quad
          y_{k+1} = a_k + \frac{t_k - 1}{t_{k+1}} (a_k - a_{k-1}),

from :math:`y_1 = a_0, t_1 = 1`, and reaches :math:`f(a_k) - f^\star \le 2L\lVert a_0 - a^\star\rVert^2 / (k+1)^2`.
For a batch, the gradient of all rows at once is ``a @ G - c`` with the Gram matrix
``G = D.T @ D`` (K, K) and ``c = x @ D`` (B, K), computed once, or ``(a @ D.T - x) @ D`` through
the residual when that is cheaper (K > 2d); the rows are independent problems.

scikit-learn solves the same problem: ``sparse_encode(x, D.T, algorithm="lasso_cd", alpha=lam)``
minimises :math:`f` for every row, and ``Lasso(alpha=lam / d, fit_intercept=False).fit(D, x_i)``
minimises :math:`f / d` (its loss is :math:`\frac{1}{2d}\lVert x - Da\rVert^2 + \alpha\lVert a\rVert_1`).

**Dictionary learning** alternates: codes by FISTA with ``D`` fixed, then ``D`` with the codes
fixed (:func:`dictionary_update`), atoms renormalised to unit norm (without that constraint the
penalty would shrink the codes and grow the atoms for free). With the sufficient statistics
:math:`A = a^\top a` (K, K) and :math:`B = x^\top a` (d, K) of a batch, the reconstruction error
is :math:`\frac12\mathrm{tr}(D^\top D A) - \mathrm{tr}(D^\top B) + \mathrm{const}`, and the block-coordinate
update of atom :math:`j` (Mairal et al., 2009) with the others fixed is

.. math:: u_j = d_j + \frac{b_j - D a_j}{A_{jj}}, \qquad d_j \leftarrow u_j / \lVert u_j\rVert,

which is the **exact** minimiser over the unit sphere (there :math:`\lVert d_j\rVert^2 = 1` is fixed and
the error is linear in :math:`d_j`), so a pass over the atoms never increases the error.

**LISTA** (Gregor & LeCun, 2010) unrolls ISTA into a feed-forward network,
:math:`z_1 = h_\theta(W_e x)`, :math:`z_{k+1} = h_\theta(W_e x + S z_k)`, with
:math:`W_e = D^\top / L`, :math:`S = I - D^\top D / L`, :math:`\theta = \lambda / L` at
initialisation (exactly ``n_layers`` ISTA steps from zero), then trains :math:`W_e, S, \theta`:
predictive sparse decomposition's fast encoder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "LISTA",
    "SparseCoder",
    "dictionary_update",
    "fista",
    "ista",
    "lasso_objective",
    "learn_dictionary",
    "lipschitz_constant",
    "normalize_atoms",
    "soft_threshold",
]

UPDATE_METHODS = ("bcd", "gradient")
"""How :func:`dictionary_update` moves the atoms: block-coordinate descent, or one projected gradient step."""

_UNUSED = 1e-12
"""An atom whose squared code mass ``A_jj`` is at most this (relative to the largest) is used by no example."""


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _check_matrix(name: str, value: Any, what: str) -> None:
    if not isinstance(value, Tensor) or value.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor {what}, got {_shape(value)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {value.dtype}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf values")


def _check_x_D(x: Tensor, D: Tensor) -> None:
    _check_matrix("x", x, "(B, d) of examples in rows")
    _check_matrix("D", D, "(d, K) of atoms in columns")
    if D.shape[0] != x.shape[1]:
        raise ValueError(
            f"D has atoms of {D.shape[0]} features (D is (d, K) = {tuple(D.shape)}), "
            f"but x has {x.shape[1]} features per row (x is (B, d) = {tuple(x.shape)})"
        )
    if D.dtype != x.dtype or D.device != x.device:
        raise TypeError(f"x and D must share dtype and device, got x: {x.dtype} on {x.device}, "
                        f"D: {D.dtype} on {D.device}")


def _check_codes(name: str, a: Tensor, x: Tensor, D: Tensor) -> None:
    _check_matrix(name, a, "(B, K) of codes in rows")
    if a.shape != (x.shape[0], D.shape[1]):
        raise ValueError(f"{name} must have shape (B, K) = {(x.shape[0], D.shape[1])}, got {tuple(a.shape)}")
    if a.dtype != x.dtype or a.device != x.device:
        raise TypeError(f"{name} must have the dtype and device of x ({x.dtype} on {x.device}), "
                        f"got {a.dtype} on {a.device}")


def _check_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# The lasso: objective, proximal operator, ISTA and FISTA
# ---------------------------------------------------------------------------------------------


def soft_threshold(x: Tensor, threshold: float | Tensor) -> Tensor:
    r"""Soft thresholding :math:`\mathrm{sign}(x)\max(\lvert x\rvert - t, 0)`, elementwise.

    The proximal operator of :math:`t\lVert\cdot\rVert_1`:
    ``soft_threshold(v, t) = argmin_a 1/2 ||a - v||^2 + t ||a||_1``.

    Args:
        x: any tensor.
        threshold: t >= 0, a number or a tensor that broadcasts against ``x`` (one per atom, say).
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype if isinstance(x, Tensor) else type(x)}")
    if isinstance(threshold, Tensor) and threshold.numel() > 1:
        if not torch.isfinite(threshold).all() or (threshold < 0).any():
            raise ValueError("threshold must be finite and >= 0 everywhere")
    else:
        threshold = _check_nonnegative("threshold", threshold)
    return _shrink(x, threshold)


def _shrink(x: Tensor, threshold: float | Tensor) -> Tensor:
    """Soft thresholding without checks, for the inner loops."""
    return x.sign() * (x.abs() - threshold).clamp_min(0.0)


def lipschitz_constant(D: Tensor) -> Tensor:
    r"""The Lipschitz constant of the lasso's gradient: :math:`L = \lambda_{\max}(D^\top D) = \sigma_{\max}(D)^2`.

    Args:
        D: (d, K) dictionary.

    Returns:
        a 0-dim tensor in the dtype and on the device of ``D`` (computed in float64).
    """
    _check_matrix("D", D, "(d, K) of atoms in columns")
    return (torch.linalg.svdvals(D.to(torch.float64))[0] ** 2).to(D.dtype)


def lasso_objective(x: Tensor, D: Tensor, a: Tensor, lam: float) -> Tensor:
    r"""The sparse coding objective of every row, :math:`\frac12\lVert x - D a\rVert^2 + \lambda\lVert a\rVert_1`.

    Args:
        x: (B, d) examples; D: (d, K) dictionary; a: (B, K) codes; lam: :math:`\lambda \ge 0`.

    Returns:
        (B,), in squared data units. Differentiable in ``x``, ``D`` and ``a``.
    """
    _check_x_D(x, D)
    _check_codes("a", a, x, D)
    lam = _check_nonnegative("lam", lam)
    return _objective(x, D, a, lam)


def _objective(x: Tensor, D: Tensor, a: Tensor, lam: float | Tensor) -> Tensor:
    residual = x - a @ D.T  # (B, d)
    return 0.5 * residual.pow(2).sum(1) + lam * a.abs().sum(1)


def _prepare(x: Tensor, D: Tensor, lam: Any, n_iter: Any, a0: Tensor | None, L: Any) -> tuple[float, Tensor, float]:
    """Checked arguments of ISTA/FISTA: ``lam``, the starting codes and the step's ``L``."""
    _check_x_D(x, D)
    lam = _check_nonnegative("lam", lam)
    _check_count("n_iter", n_iter, 0)
    if a0 is None:
        a0 = x.new_zeros(x.shape[0], D.shape[1])
    else:
        _check_codes("a0", a0, x, D)
    if L is None:
        L = float(lipschitz_constant(D))
        if L == 0:
            raise ValueError("D is zero: its Lipschitz constant is 0")
    else:
        L = _check_nonnegative("L", L)
        if L == 0:
            raise ValueError("L must be > 0 (the largest eigenvalue of D^T D), got 0")
    return lam, a0, L


class _ProximalGradientStep:
    """``a -> soft_threshold(a - D^T (D a - x) / L, lam / L)`` on rows, written into a given buffer.

    The gradient step takes its cheapest form for the sizes. With the Gram matrix,
    ``a @ (I - G / L) + x @ D / L``: one (B, K) x (K, K) product; through the residual,
    ``a + (x - a @ D.T) @ D / L``: two products of B x K x d each, fewer operations when K > 2d
    (over-complete dictionaries). Intermediate results live in buffers allocated once, so that
    the iterations allocate no memory (large allocations cost page faults on the CPU).
    """

    def __init__(self, x: Tensor, D: Tensor, lam: float, L: float) -> None:
        d, K = D.shape
        self.threshold = lam / L
        self.proposal = x.new_empty(x.shape[0], K)  # the gradient step, before thresholding
        self.through_residual = K > 2 * d
        if self.through_residual:
            self.x, self.D_T, self.D_over_L = x, D.T.contiguous(), D / L  # a contiguous D^T: faster products
            self.residual = x.new_empty(x.shape)  # (B, d)
        else:
            self.M = torch.eye(K, dtype=D.dtype, device=D.device) - D.T @ D / L  # (K, K)
            self.c = x @ D / L  # (B, K)

    def __call__(self, a: Tensor, out: Tensor) -> Tensor:
        """The step from ``a`` (B, K), written into ``out`` (B, K), which may be ``a`` itself."""
        v = self.proposal
        if self.through_residual:
            torch.addmm(self.x, a, self.D_T, alpha=-1.0, out=self.residual)  # x - a D^T
            torch.addmm(a, self.residual, self.D_over_L, out=v)  # a + (x - a D^T) D / L
        else:
            torch.addmm(self.c, a, self.M, out=v)
        t = self.threshold
        return torch.sub(v, torch.clamp(v, -t, t, out=out), out=out)  # v - clip(v) = soft_threshold(v, t)


@torch.no_grad()
def ista(
    x: Tensor,
    D: Tensor,
    lam: float,
    *,
    n_iter: int = 100,
    a0: Tensor | None = None,
    L: float | Tensor | None = None,
    return_objectives: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""ISTA: ``n_iter`` proximal gradient steps :math:`a \leftarrow \mathrm{prox}_{\lambda/L}(a - D^\top(Da - x)/L)`.

    Args:
        x: (B, d) examples; D: (d, K) dictionary (unit-norm atoms are the convention, not required).
        lam: :math:`\lambda \ge 0`.
        n_iter: number of steps (0 returns ``a0``).
        a0: (B, K) starting codes (default zeros), e.g. the codes of a previous call (a warm start).
        L: the step is 1/L; default :func:`lipschitz_constant` (D). A smaller ``L`` may diverge;
            a larger one is safe but slower.
        return_objectives: also return the objective of every row after every step.

    Returns:
        codes (B, K), or ``(codes, objectives)`` with objectives (n_iter + 1, B): row 0 at ``a0``,
        row k after k steps. With the default ``L`` every column is non-increasing.
        No gradient flows through the iterations.
    """
    return _proximal_gradient(x, D, lam, n_iter, a0, L, return_objectives, accelerated=False)


@torch.no_grad()
def fista(
    x: Tensor,
    D: Tensor,
    lam: float,
    *,
    n_iter: int = 100,
    a0: Tensor | None = None,
    L: float | Tensor | None = None,
    return_objectives: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""FISTA (Beck & Teboulle, 2009): ISTA's step taken from the extrapolated point :math:`y_k`.

    :math:`y_{k+1} = a_k + \frac{t_k - 1}{t_{k+1}}(a_k - a_{k-1})` with :math:`t_{k+1} = (1 + \sqrt{1 + 4t_k^2})/2`,
    :math:`t_1 = 1` (see the module's docstring).

    The same arguments and returns as :func:`ista`. The objective need not decrease at every
    step, but its gap to the optimum falls as :math:`O(1/k^2)` instead of ISTA's :math:`O(1/k)`.
    """
    return _proximal_gradient(x, D, lam, n_iter, a0, L, return_objectives, accelerated=True)


def _proximal_gradient(x: Tensor, D: Tensor, lam: Any, n_iter: Any, a0: Tensor | None, L: Any,
                       return_objectives: bool, *, accelerated: bool) -> Tensor | tuple[Tensor, Tensor]:
    """ISTA (``accelerated=False``) or FISTA on the rows of ``x``, block of rows by block of rows.

    The rows are independent problems. On the CPU they are solved in blocks of about 2**17 code
    entries (512 rows for K = 256), whose working tensors stay in the processor's cache; on
    accelerators all at once.
    """
    lam, a0, L = _prepare(x, D, lam, n_iter, a0, L)
    n, K = a0.shape
    rows = n if x.device.type != "cpu" else max(64, 2**17 // K)
    blocks = [_iterate(x[i:i + rows], D, lam, L, n_iter, a0[i:i + rows], return_objectives, accelerated)
              for i in range(0, n, rows)] if n else [(a0.clone(), x.new_zeros(n_iter + 1, 0))]
    codes = blocks[0][0] if len(blocks) == 1 else torch.cat([b[0] for b in blocks])
    if not return_objectives:
        return codes
    return codes, torch.cat([b[1] for b in blocks], dim=1)


def _iterate(x: Tensor, D: Tensor, lam: float, L: float, n_iter: int, a0: Tensor, return_objectives: bool,
             accelerated: bool) -> tuple[Tensor, Tensor | None]:
    """``n_iter`` steps of ISTA or FISTA from ``a0`` on one block of rows: (codes, objectives or None)."""
    step = _ProximalGradientStep(x, D, lam, L)
    objectives = [_objective(x, D, a0, lam)] if return_objectives else None
    a, y, a_next, t = a0.clone(), a0.clone(), torch.empty_like(a0), 1.0  # buffers, updated in place
    for _ in range(n_iter):
        if accelerated:
            step(y, out=a_next)
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            torch.lerp(a_next, a, -(t - 1.0) / t_next, out=y)  # y = a_next + (t - 1) / t_next * (a_next - a)
            a, a_next, t = a_next, a, t_next
        else:
            step(a, out=a)
        if objectives is not None:
            objectives.append(_objective(x, D, a, lam))
    return a, (torch.stack(objectives) if objectives is not None else None)


# ---------------------------------------------------------------------------------------------
# Dictionary learning
# ---------------------------------------------------------------------------------------------


def normalize_atoms(D: Tensor) -> Tensor:
    """``D`` with every column divided by its :math:`\\ell_2` norm: unit-norm atoms (a new tensor).

    A zero column (norm below 1e-12 times the largest) has no direction to keep: it is refused
    with a ValueError naming its index, never filled in silently. (:func:`dictionary_update`
    keeps an unused atom as it was, so learning never produces one.)
    """
    _check_matrix("D", D, "(d, K) of atoms in columns")
    norms = D.norm(dim=0)  # (K,)
    zero = (norms <= 1e-12 * norms.max().clamp_min(torch.finfo(D.dtype).tiny)).nonzero().flatten()
    if len(zero):
        raise ValueError(f"atoms {zero.tolist()[:10]} of D are zero: a zero atom cannot be normalised")
    return D / norms


def _bcd_pass(D: Tensor, A: Tensor, B: Tensor) -> Tensor:
    """One block-coordinate pass over the atoms with the statistics A = a^T a (K, K), B = x^T a (d, K)."""
    D = D.clone()
    diag = A.diagonal()
    used = diag > _UNUSED * diag.max().clamp_min(torch.finfo(A.dtype).tiny)
    for j in used.nonzero().flatten().tolist():
        u = D[:, j] + (B[:, j] - D @ A[:, j]) / A[j, j]  # (d,): the best atom j, before the norm constraint
        norm = u.norm()
        if norm > 0:  # u = 0 would leave every direction equally good: keep the atom
            D[:, j] = u / norm
    return D


def dictionary_update(
    x: Tensor,
    a: Tensor,
    D: Tensor,
    *,
    method: str = "bcd",
    lr: float | None = None,
) -> Tensor:
    r"""A new dictionary for the codes ``a`` of ``x``, with unit-norm atoms.

    Args:
        x: (B, d) examples; a: (B, K) their codes (fixed); D: (d, K) the current dictionary.
        method: ``"bcd"``: one pass of block-coordinate descent over the atoms, each replaced by
            its exact minimiser on the unit sphere given the others (Mairal et al., 2009; never
            increases :math:`\sum_i \frac12\lVert x_i - D a_i\rVert^2`); an atom no code uses is
            kept as it is. ``"gradient"``: one projected gradient step on the mean reconstruction
            error, :math:`D \leftarrow \Pi(D - \eta \frac{1}{B}(D a^\top - x^\top) a)`, where :math:`\Pi`
            normalises the atoms.
        lr: the step :math:`\eta` of ``"gradient"``; default :math:`B / \lambda_{\max}(a^\top a)`, the
            inverse Lipschitz constant of that gradient (then the step itself does not increase the
            error; the projection may). Not used by ``"bcd"``.

    Returns:
        (d, K), unit-norm columns, in the dtype and on the device of ``x``. No gradient is tracked.
    """
    _check_x_D(x, D)
    _check_codes("a", a, x, D)
    if method not in UPDATE_METHODS:
        raise ValueError(f"method must be one of {UPDATE_METHODS}, got {method!r}")
    with torch.no_grad():
        A = a.T @ a  # (K, K)
        B = x.T @ a  # (d, K)
        if method == "bcd":
            if lr is not None:
                raise ValueError("lr is the step of method='gradient'; block-coordinate descent takes none")
            return _bcd_pass(D, A, B)
        n = x.shape[0]
        if lr is None:
            top = float(torch.linalg.eigvalsh(A.to(torch.float64))[-1])
            if top == 0:
                return D.clone()  # no code is used: the gradient is zero
            lr = n / top
        else:
            lr = _check_nonnegative("lr", lr)
        gradient = (D @ A - B) / n  # (d, K): d/dD of mean_i 1/2 ||x_i - D a_i||^2
        return _normalize_or_keep(D - lr * gradient, D)


def _normalize_or_keep(D_new: Tensor, D_old: Tensor) -> Tensor:
    """``D_new`` with unit-norm columns; a column that became zero keeps its old atom."""
    norms = D_new.norm(dim=0, keepdim=True)  # (1, K)
    zero = norms <= 1e-12
    return torch.where(zero, D_old, D_new / torch.where(zero, torch.ones_like(norms), norms))


def _initial_dictionary(x: Tensor, n_atoms: int, generator: torch.Generator | None) -> Tensor:
    """``n_atoms`` distinct examples drawn at random (with replacement if there are fewer), normalised.

    An example of zero norm is replaced by a Gaussian draw, so that every atom has a direction.
    """
    n, d = x.shape
    if n >= n_atoms:
        index = torch.randperm(n, generator=generator)[:n_atoms]
    else:
        index = torch.randint(n, (n_atoms,), generator=generator)
    D = x[index.to(x.device)].T.clone()  # (d, K)
    noise = torch.randn(d, n_atoms, generator=generator, dtype=torch.float64).to(D)
    norms = D.norm(dim=0, keepdim=True)
    D = torch.where(norms <= 1e-8 * norms.max().clamp_min(1e-30), noise, D)
    return normalize_atoms(D)


def learn_dictionary(
    x: Tensor,
    *,
    n_atoms: int,
    lam: float,
    n_steps: int,
    batch_size: int | None = None,
    n_iter: int = 50,
    init: Tensor | None = None,
    forget: float = 0.5,
    generator: torch.Generator | None = None,
    callback: Callable[[int, Tensor, float], Any] | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Learn a dictionary by alternating minimisation: codes by FISTA, atoms by block-coordinate descent.

    Each step takes a batch, codes it with ``n_iter`` FISTA iterations with the dictionary
    fixed, then updates every atom by block-coordinate descent (:func:`dictionary_update`'s
    ``"bcd"``) with the codes fixed, atoms of unit norm.

    * Full batch (``batch_size=None``): every step uses all of ``x``; FISTA starts from the
      previous step's codes (a warm start), and an example keeps those where FISTA ends higher.
      Both halves of a step then never increase the objective: it decreases from step to step.
    * Mini-batches: each step draws ``batch_size`` rows at random (with replacement) and the
      atoms are updated with the running statistics :math:`A_t = \beta A_{t-1} + a^\top a`,
      :math:`B_t = \beta B_{t-1} + x^\top a` of the batches so far (Mairal et al.'s online dictionary
      learning): a batch k steps old weighs :math:`\beta^k`, :math:`\beta` = ``forget``.
      (Block-coordinate descent is unchanged by scaling A and B together: only the relative
      weights matter.) A short memory works best here: statistics of codes computed with an
      older dictionary pull the atoms back to where they were; Mairal et al.'s
      :math:`\beta_t = 1 - 1/t`, which keeps every batch, learns far more slowly on natural
      patches and fails to recover a planted dictionary in as many steps.

    Args:
        x: (B, d) training examples.
        n_atoms: K, the number of atoms (K > d gives an over-complete dictionary).
        lam: :math:`\lambda \ge 0`, the weight of the sparsity penalty.
        n_steps: alternations (each: one coding of a batch, one pass over the atoms).
        batch_size: rows per step; ``None`` for all of them.
        n_iter: FISTA iterations per coding.
        init: (d, K) starting dictionary (normalised here); default: K examples of ``x`` drawn
            at random, normalised.
        forget: the forgetting factor in [0, 1) of the mini-batch statistics (0 uses the current
            batch alone); see above. Not used with the full batch.
        generator: a ``torch.Generator`` (CPU) for the initial atoms and the batches.
        callback: ``callback(step, D, objective)`` after every step (1-based), e.g. to draw the atoms.

    Returns:
        ``(D, objectives)``: the dictionary (d, K) with unit-norm atoms, and (n_steps,) the mean
        objective :math:`\frac12\lVert x - Da\rVert^2 + \lambda\lVert a\rVert_1` over each step's batch, at
        the codes FISTA found with the dictionary before that step's update.
    """
    _check_matrix("x", x, "(B, d) of examples in rows")
    n, d = x.shape
    n_atoms = _check_count("n_atoms", n_atoms, 1)
    lam = _check_nonnegative("lam", lam)
    n_steps = _check_count("n_steps", n_steps, 1)
    n_iter = _check_count("n_iter", n_iter, 1)
    if batch_size is not None:
        batch_size = _check_count("batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the {n} examples of x")
    if isinstance(forget, bool) or not isinstance(forget, (int, float)) or not 0 <= forget < 1:
        raise ValueError(f"forget must be a number in [0, 1), got {forget!r}")
    if init is None:
        D = _initial_dictionary(x, n_atoms, generator)
    else:
        _check_matrix("init", init, "(d, K) of atoms in columns")
        if init.shape != (d, n_atoms):
            raise ValueError(f"init must have shape (d, K) = {(d, n_atoms)}, got {tuple(init.shape)}")
        D = normalize_atoms(init.to(x))
    objectives = torch.empty(n_steps, dtype=torch.float64)
    A = x.new_zeros(n_atoms, n_atoms)
    B = x.new_zeros(d, n_atoms)
    codes = None
    for step in range(1, n_steps + 1):
        if batch_size is None:
            batch = x
            new_codes = fista(x, D, lam, n_iter=n_iter, a0=codes)
            per_example = _objective(x, D, new_codes, lam)
            if codes is not None:  # FISTA is no descent method: keep a warm start that it did not improve
                previous = _objective(x, D, codes, lam)
                better = per_example <= previous
                new_codes = torch.where(better[:, None], new_codes, codes)
                per_example = torch.minimum(per_example, previous)
            codes = new_codes
        else:
            index = torch.randint(n, (batch_size,), generator=generator).to(x.device)
            batch = x[index]
            codes = fista(batch, D, lam, n_iter=n_iter)
            per_example = _objective(batch, D, codes, lam)
        objective = float(per_example.mean())
        objectives[step - 1] = objective
        with torch.no_grad():
            if batch_size is None:
                A, B = codes.T @ codes, batch.T @ codes
            else:
                A = forget * A + codes.T @ codes  # (K, K)
                B = forget * B + batch.T @ codes  # (d, K)
            D = _bcd_pass(D, A, B)
        if callback is not None:
            callback(step, D, objective)
    return D, objectives.to(x.dtype)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def _random_dictionary(n_features: int, n_atoms: int, seed: int) -> Tensor:
    """A (d, K) dictionary of Gaussian directions, unit norm, reproducible from ``seed`` (float32)."""
    generator = torch.Generator().manual_seed(int(seed))
    return normalize_atoms(torch.randn(n_features, n_atoms, generator=generator))


def _batch_x(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class SparseCoder(nn.Module):
    r"""A sparse coding model: a dictionary ``D`` (d, K) and FISTA as its encoder.

    ``n_features``: d, the size of an example. ``n_atoms``: K, the number of atoms.
    ``lam``: :math:`\lambda`, the weight of the :math:`\ell_1` penalty. ``n_iter``: FISTA iterations
    of ``encode``. ``seed``: the initial atoms are Gaussian directions drawn from it.
    ``lr``: the learning rate of ``configure_optimizers`` (Adam on the dictionary; each atom has
    unit norm, so a step moves it by about ``lr`` in every coordinate).

    * ``dictionary``: the parameter ``D`` (d, K), atoms in columns, unit norm.
    * ``encode(x)``: the codes (B, K) of FISTA, without gradient (inference is not learned here).
    * ``decode(a)``: the reconstruction ``a @ D.T`` (B, d).
    * ``loss(x)``: (B,) the objective :math:`\frac12\lVert x - Da\rVert^2 + \lambda\lVert a\rVert_1` at FISTA's codes,
      differentiable in ``D``.

    Train it with :func:`learn_dictionary` (block-coordinate, then copy its result into
    ``dictionary``) or with the course's loop, ``train(coder, loader, ...)``: each
    ``training_step`` codes the batch (no gradient), takes one Adam step on the mean objective
    with respect to ``D`` and renormalises the atoms (a projected gradient method); ``evaluate``
    reports the mean objective.
    """

    def __init__(self, *, n_features: int, n_atoms: int, lam: float, n_iter: int = 100, seed: int = 0,
                 lr: float = 1e-2) -> None:
        super().__init__()
        self.n_features = _check_count("n_features", n_features, 1)
        self.n_atoms = _check_count("n_atoms", n_atoms, 1)
        self.lam = _check_nonnegative("lam", lam)
        self.n_iter = _check_count("n_iter", n_iter, 1)
        self.lr = _check_nonnegative("lr", lr)
        self.dictionary = nn.Parameter(_random_dictionary(self.n_features, self.n_atoms, seed))
        self.hparams = {"n_features": self.n_features, "n_atoms": self.n_atoms, "lam": self.lam,
                        "n_iter": self.n_iter, "lr": self.lr}

    def _check_x(self, x: Tensor) -> None:
        _check_matrix("x", x, f"(B, {self.n_features}) of examples in rows")
        if x.shape[1] != self.n_features:
            raise ValueError(f"x has {x.shape[1]} features per row, but this SparseCoder has n_features="
                             f"{self.n_features}")

    def encode(self, x: Tensor) -> Tensor:
        """FISTA's codes (B, K) for ``x`` (B, d), ``n_iter`` iterations from zero, without gradient."""
        self._check_x(x)
        return fista(x, self.dictionary.detach().to(x.dtype), self.lam, n_iter=self.n_iter)

    def decode(self, a: Tensor) -> Tensor:
        """The reconstruction ``a @ D.T`` (B, d) of codes (B, K)."""
        if not isinstance(a, Tensor) or a.dim() != 2 or a.shape[1] != self.n_atoms:
            raise ValueError(f"codes must be (B, {self.n_atoms}), got {_shape(a)}")
        return a @ self.dictionary.to(a.dtype).T

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of ``x`` through its sparse code, (B, d)."""
        return self.decode(self.encode(x))

    def loss(self, x: Tensor) -> Tensor:
        """(B,) the sparse coding objective at FISTA's codes; gradients flow to the dictionary only."""
        codes = self.encode(x)
        return _objective(x, self.dictionary.to(x.dtype), codes, self.lam)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([self.dictionary], lr=self.lr)

    def training_step(self, batch: Any, ctx: Any) -> dict[str, Tensor]:
        """Codes without gradient, one optimizer step on the dictionary, atoms renormalised."""
        loss = self.loss(_batch_x(batch)).mean()
        ctx.optimize(loss)
        with torch.no_grad():
            self.dictionary.copy_(_normalize_or_keep(self.dictionary, self.dictionary))
        return {"objective": loss.detach()}

    @torch.no_grad()
    def evaluate(self, loader: Any) -> dict[str, float]:
        """The mean objective over ``loader``'s examples, and the fraction of non-zero code entries."""
        total = nonzero = count = 0.0
        for batch in loader:
            x = _batch_x(batch).to(self.dictionary.device)
            codes = self.encode(x)
            total += float(_objective(x, self.dictionary.to(x.dtype), codes, self.lam).sum())
            nonzero += float((codes != 0).sum())
            count += len(x)
        return {"objective": total / count, "active_fraction": nonzero / (count * self.n_atoms)}


TARGETS = ("objective", "codes")
"""What a LISTA is trained to do: minimise the lasso objective of its codes, or predict FISTA's codes."""


class LISTA(nn.Module):
    r"""Learned ISTA (Gregor & LeCun, 2010): sparse codes in one feed-forward pass of ``n_layers`` steps.

    .. math:: z_1 = h_\theta(W_e x), \qquad z_{k+1} = h_\theta(W_e x + S z_k), \quad k = 1, \dots, n - 1,

    with :math:`h_\theta` the soft thresholding at :math:`\theta` (one per atom), :math:`W_e` (K, d) and
    :math:`S` (K, K) shared by all layers. Initialised from a dictionary ``D`` as ISTA with step
    :math:`1/L`: :math:`W_e = D^\top/L`, :math:`S = I - D^\top D/L`, :math:`\theta = \lambda/L`, so that ``encode``
    equals ``n_layers`` ISTA steps from zero, exactly; training then makes fewer layers do the work
    of many ISTA iterations (the encoder of predictive sparse decomposition).

    ``n_features``: d. ``n_atoms``: K. ``lam``: :math:`\lambda`. ``n_layers``: number of thresholdings
    (ISTA steps). ``seed``: the Gaussian unit-norm dictionary it starts from when built directly
    (use :meth:`from_dictionary` for a learned one). ``target``: what ``training_step`` minimises:
    ``"objective"``, the lasso objective of its codes under the fixed ``dictionary`` (batches are
    ``x``), or ``"codes"``, the squared error :math:`\frac12\lVert z - a^\star\rVert^2` to target codes
    (batches are ``(x, a_star)``, e.g. FISTA's codes). ``lr``: Adam's learning rate.

    ``dictionary`` (d, K) is a buffer: the objective's dictionary, not trained here.
    ``loss(x)`` is (B,) that objective at the codes of ``encode(x)``, differentiable in the weights.
    """

    def __init__(self, *, n_features: int, n_atoms: int, lam: float, n_layers: int = 3, seed: int = 0,
                 target: str = "objective", lr: float = 3e-3) -> None:
        super().__init__()
        self.n_features = _check_count("n_features", n_features, 1)
        self.n_atoms = _check_count("n_atoms", n_atoms, 1)
        self.lam = _check_nonnegative("lam", lam)
        self.n_layers = _check_count("n_layers", n_layers, 1)
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.target = target
        self.lr = _check_nonnegative("lr", lr)
        self.W_e = nn.Parameter(torch.empty(self.n_atoms, self.n_features))  # (K, d)
        self.S = nn.Parameter(torch.empty(self.n_atoms, self.n_atoms))  # (K, K)
        self.theta = nn.Parameter(torch.empty(self.n_atoms))  # (K,)
        self.register_buffer("dictionary", torch.empty(self.n_features, self.n_atoms))
        self._set_ista(_random_dictionary(self.n_features, self.n_atoms, seed))
        self.hparams = {"n_features": self.n_features, "n_atoms": self.n_atoms, "lam": self.lam,
                        "n_layers": self.n_layers, "target": self.target, "lr": self.lr}

    @torch.no_grad()
    def _set_ista(self, D: Tensor) -> None:
        """Weights of ISTA with step 1/L on ``D``: W_e = D^T / L, S = I - D^T D / L, theta = lam / L."""
        L = lipschitz_constant(D)
        self.dictionary.copy_(D)
        self.W_e.copy_(D.T / L)
        self.S.copy_(torch.eye(self.n_atoms, dtype=D.dtype) - D.T @ D / L)
        self.theta.fill_(self.lam / float(L))

    @classmethod
    def from_dictionary(cls, D: Tensor, lam: float, *, n_layers: int = 3, **kwargs: Any) -> LISTA:
        """A LISTA initialised as ``n_layers`` ISTA steps (step 1/L) on the dictionary ``D`` (d, K).

        The model takes ``D``'s dtype and device; ``kwargs`` are the other constructor options.
        """
        _check_matrix("D", D, "(d, K) of atoms in columns")
        model = cls(n_features=D.shape[0], n_atoms=D.shape[1], lam=lam, n_layers=n_layers, **kwargs)
        model = model.to(dtype=D.dtype, device=D.device)
        model._set_ista(D.detach())
        return model

    def encode(self, x: Tensor) -> Tensor:
        """Codes (B, K) of ``x`` (B, d) in one pass: ``n_layers`` soft thresholdings. Differentiable."""
        _check_matrix("x", x, f"(B, {self.n_features}) of examples in rows")
        if x.shape[1] != self.n_features:
            raise ValueError(f"x has {x.shape[1]} features per row, but this LISTA has n_features={self.n_features}")
        theta = self.theta.abs()  # a threshold is >= 0; |theta| keeps it so whatever the optimizer does
        b = x @ self.W_e.T  # (B, d) -> (B, K)
        z = _shrink(b, theta)
        for _ in range(self.n_layers - 1):
            z = _shrink(b + z @ self.S.T, theta)
        return z

    def decode(self, a: Tensor) -> Tensor:
        """The reconstruction ``a @ D.T`` (B, d) with the objective's dictionary."""
        return a @ self.dictionary.T

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)

    def loss(self, x: Tensor) -> Tensor:
        """(B,) the lasso objective of ``encode(x)`` under ``dictionary``."""
        return _objective(x, self.dictionary, self.encode(x), self.lam)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def training_step(self, batch: Any, ctx: Any) -> dict[str, Tensor]:
        """One Adam step on the mean objective (``target="objective"``) or the code error (``"codes"``)."""
        if self.target == "objective":
            objective = self.loss(_batch_x(batch)).mean()
            ctx.optimize(objective)
            return {"objective": objective.detach()}
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("a LISTA with target='codes' trains on batches (x, target_codes)")
        x, target = batch
        codes = self.encode(x)
        error = 0.5 * (codes - target).pow(2).sum(1).mean()
        ctx.optimize(error)
        with torch.no_grad():
            objective = _objective(x, self.dictionary, codes, self.lam).mean()
        return {"code_error": error.detach(), "objective": objective}

    @torch.no_grad()
    def evaluate(self, loader: Any) -> dict[str, float]:
        """The mean objective of its codes over ``loader``'s examples, and the fraction of non-zero entries."""
        total = nonzero = count = 0.0
        for batch in loader:
            x = _batch_x(batch).to(self.dictionary.device)
            codes = self.encode(x)
            total += float(_objective(x, self.dictionary, codes, self.lam).sum())
            nonzero += float((codes != 0).sum())
            count += len(x)
        return {"objective": total / count, "active_fraction": nonzero / (count * self.n_atoms)}
