"""Units of likelihood (nats per example, bits per dimension), subspaces and codes, MCMC diagnostics.

A model's negative log-likelihood (NLL) of one example ``x`` with ``D`` dimensions is
``-log p(x)`` nats. Papers on binarized MNIST report it in **nats per image**
(MADE 88.40, PixelCNN 81.30); papers on 8-bit images report **bits per dimension**::

    bits/dim = nats / (D * ln 2)

Dequantisation. A continuous density ``p`` fitted to 8-bit data ``x in {0..255}^D``
made continuous as ``y = (x + u) / 256`` with ``u ~ U[0,1)^D`` lives on ``[0,1)^D``.
Its discrete likelihood satisfies ``log P(x) >= E_u log p(y) - D log 256``
(Theis et al., 2016), so the continuous NLL in nats on the ``[0,1)`` scale is
converted with ``+ D ln 256`` before dividing by ``D ln 2``.
"""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def _check_dims(n_dims: int) -> None:
    if not isinstance(n_dims, int) or n_dims <= 0:
        raise ValueError(f"n_dims must be a positive int (the number of dimensions per example), got {n_dims!r}")


def nats_to_bits_per_dim(nats: float | torch.Tensor, n_dims: int) -> float | torch.Tensor:
    """NLL in nats per example -> bits per dimension."""
    _check_dims(n_dims)
    return nats / (n_dims * LN2)


def bits_per_dim_to_nats(bpd: float | torch.Tensor, n_dims: int) -> float | torch.Tensor:
    """Bits per dimension -> NLL in nats per example."""
    _check_dims(n_dims)
    return bpd * n_dims * LN2


def dequantized_bits_per_dim(
    nats_continuous: float | torch.Tensor, n_dims: int, n_bins: int = 256
) -> float | torch.Tensor:
    """Bits/dim of discrete data from a continuous NLL measured on data rescaled to [0, 1).

    ``nats_continuous`` is ``-log p(y)`` per example for ``y = (x + u) / n_bins``;
    the discrete bound adds ``D log n_bins`` nats (the Jacobian of the rescaling).
    """
    _check_dims(n_dims)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    return (nats_continuous + n_dims * math.log(n_bins)) / (n_dims * LN2)


# ----------------------------------------------------------------------------- subspaces and binary codes
#
# Topic 02 compares a linear autoencoder with PCA by the angles between the subspaces they
# span, and hashes images into binary codes retrieved by Hamming distance.


def _orthonormal_basis(m: torch.Tensor, name: str) -> torch.Tensor:
    """An orthonormal basis (d, k) of the column space of ``m`` (d, k), float64; an error if its rank is < k."""
    u, s, _ = torch.linalg.svd(m, full_matrices=False)  # (d, min(d, k)), (min(d, k),) descending
    tol = s[0] * max(m.shape) * torch.finfo(m.dtype).eps
    if s.numel() < m.shape[1] or s[-1] <= tol:
        rank = int((s > tol).sum())
        raise ValueError(f"{name} must have full column rank to span a {m.shape[1]}-dimensional subspace; "
                         f"its {m.shape[1]} columns have rank {rank}")
    return u


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""The principal angles (radians, ascending, in :math:`[0, \pi/2]`) between the column spaces of ``a`` and ``b``.

    ``a`` is (d, k_a) and ``b`` is (d, k_b), each of full column rank: their columns span
    subspaces :math:`\mathcal A, \mathcal B` of :math:`\mathbb R^d`. With orthonormal bases
    :math:`Q_A, Q_B`, the cosines of the :math:`k = \min(k_a, k_b)` angles are the singular
    values of :math:`Q_A^\top Q_B` (Björck & Golub, 1973); the sines are those of
    :math:`(I - Q_A Q_A^\top) Q_B` (when :math:`k_a \ge k_b`). Small angles are taken from their
    sines, large ones from their cosines, so that both are accurate (as
    ``scipy.linalg.subspace_angles`` does): all angles zero means the same subspace, all
    :math:`\pi/2` orthogonal subspaces. Computed in float64; returned as (k,) in ``a``'s dtype
    (float32 for integer input) on ``a``'s device.
    """
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, torch.Tensor) or m.dim() != 2:
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"principal_angles needs matrices (d, k) whose columns span a subspace; {name} is {shape}")
        if m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"principal_angles: {name} has shape {tuple(m.shape)}; it needs d >= 1 and k >= 1")
        if not torch.isfinite(m).all():
            raise ValueError(f"principal_angles: {name} holds non-finite values")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows d (the ambient dimension), got {a.shape[0]} "
                         f"and {b.shape[0]}")
    out_dtype = a.dtype if a.is_floating_point() else torch.float32
    qa = _orthonormal_basis(a.detach().cpu().double(), "a")
    qb = _orthonormal_basis(b.detach().cpu().double(), "b")
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa  # the sines below need k_a >= k_b
    cosines = torch.linalg.svdvals(qa.T @ qb).clamp(max=1.0)  # (k,), descending: angles ascending
    sines = torch.linalg.svdvals(qb - qa @ (qa.T @ qb)).flip(0).clamp(max=1.0)  # (k,), ascending
    angles = torch.where(cosines**2 > 0.5, torch.arcsin(sines), torch.arccos(cosines))
    return angles.to(device=a.device, dtype=out_dtype)


def _as_signs(codes: torch.Tensor, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Binary codes (N, n_bits), bool or 0/1 numbers, as -1/+1 numbers of ``dtype``."""
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"{name} must be binary codes of shape (N, n_bits), got {shape}")
    if codes.dtype != torch.bool:
        if codes.is_complex() or not ((codes == 0) | (codes == 1)).all():
            raise ValueError(f"{name} must hold bits: bool, or numbers 0 and 1 only (threshold real codes first)")
    return codes.to(dtype) * 2 - 1


def hamming_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The number of differing bits between every code of ``a`` (Na, n_bits) and of ``b`` (Nb, n_bits): (Na, Nb) int64.

    Codes are bool or 0/1 numbers, on the same device. The whole (Na, Nb) matrix is made at
    once; :func:`precision_at_k` works through large query sets in blocks.
    """
    sa, sb = _as_signs(a, "a", torch.float64), _as_signs(b, "b", torch.float64)
    if sa.shape[1] != sb.shape[1]:
        raise ValueError(f"a and b must have the same number of bits, got {sa.shape[1]} and {sb.shape[1]}")
    agreement = sa @ sb.to(sa.device).T  # (Na, Nb): (bits alike) - (bits different) = n_bits - 2 * distance
    return ((sa.shape[1] - agreement) / 2).round().long()


def precision_at_k(
    query_codes: torch.Tensor,
    query_labels: torch.Tensor,
    db_codes: torch.Tensor,
    db_labels: torch.Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    block_size: int = 1024,
) -> float:
    """Retrieval precision at ``k`` by Hamming distance, averaged over the queries (a fraction in [0, 1]).

    For each query code, the ``k`` database items at the smallest Hamming distance are
    retrieved, ties broken by database index (the earlier item first, so that the result
    does not depend on a sort's whims); its precision is the fraction of them whose label
    equals the query's. This is how semantic hashing (Salakhutdinov & Hinton, 2009) and
    locality-sensitive hashing are compared at equal code length.

    Args:
        query_codes: (Nq, n_bits) bool or 0/1 codes; query_labels: (Nq,) integer labels.
        db_codes: (Nb, n_bits) codes of the database; db_labels: (Nb,) labels.
        k: items retrieved per query, 1 <= k <= Nb (Nb - 1 with ``exclude_self``).
        exclude_self: the queries are the database itself, item for item (Nq == Nb), and query
            ``i`` may not retrieve database item ``i`` (leave-one-out retrieval).
        block_size: queries handled at once (memory: block_size * Nb distances).
    """
    q, db = _as_signs(query_codes, "query_codes"), _as_signs(db_codes, "db_codes")
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"query_codes and db_codes must have the same number of bits, got {q.shape[1]} and "
                         f"{db.shape[1]}")
    for name, labels, n in (("query_labels", query_labels, q.shape[0]), ("db_labels", db_labels, db.shape[0])):
        if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"{name} must have shape ({n},), one label per code, got {shape}")
    n_query, n_db = q.shape[0], db.shape[0]
    if n_query == 0:
        raise ValueError("precision_at_k needs at least one query")
    if exclude_self and n_query != n_db:
        raise ValueError(f"exclude_self=True means the queries are the database itself; got {n_query} queries "
                         f"and {n_db} database items")
    available = n_db - 1 if exclude_self else n_db
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= available:
        raise ValueError(f"k must be an int in 1..{available} (the database items a query can retrieve), got {k!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if n_db * (q.shape[1] + 1) >= 2**24:  # the keys below, integers up to n_db * (n_bits + 1), need float64
        q, db = q.double(), db.double()
    dtype = q.dtype
    db = db.to(q.device)
    db_labels = db_labels.to(q.device)
    query_labels = query_labels.to(q.device)
    index = torch.arange(n_db, device=q.device, dtype=dtype)
    hits = torch.zeros((), dtype=torch.int64, device=q.device)
    for start in range(0, n_query, block_size):
        block = slice(start, min(start + block_size, n_query))
        # key = index - n_db * (q . db) = 2 n_db * distance + index - n_db * n_bits: sorted by distance, then index
        key = torch.addmm(index, q[block], db.T, alpha=-n_db)  # (b, Nb), exact integers, distinct in a row
        if exclude_self:
            rows = torch.arange(key.shape[0], device=q.device)
            key[rows, rows + start] = torch.inf  # never retrieve oneself
        nearest = key.topk(k, dim=1, largest=False).indices  # (b, k)
        hits += (db_labels[nearest] == query_labels[block, None]).sum()
    return int(hits) / (n_query * k)


# ----------------------------------------------------------------------------- MCMC diagnostics
#
# Topic 03 measures how well a Markov chain mixes. Chains are (T,) (one chain of T steps) or
# (T, C) (C independent chains side by side, time first), of a scalar summary of the state
# (a coordinate, an energy, a magnetisation). Computed in float64; results are floats.


def _as_chains(chain: torch.Tensor, name: str, *, min_length: int) -> torch.Tensor:
    """``chain`` (T,) or (T, C) as a float64 (T, C) CPU-or-device tensor, checked."""
    if not isinstance(chain, torch.Tensor) or chain.dim() not in (1, 2):
        shape = tuple(chain.shape) if isinstance(chain, torch.Tensor) else type(chain).__name__
        raise ValueError(f"{name} must be a chain (T,) or chains side by side (T, C), time first; got {shape}")
    x = chain.detach().to(torch.float64)
    x = x[:, None] if x.dim() == 1 else x
    if x.shape[0] < min_length or x.shape[1] == 0:
        raise ValueError(f"{name} needs at least {min_length} steps and one chain, got shape {tuple(chain.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf)")
    return x


def _autocovariance(x: torch.Tensor) -> torch.Tensor:
    r"""The autocovariance of each chain at every lag, (T, C) -> (T, C).

    :math:`\hat\gamma_k = \frac1T \sum_{t<T-k} (x_t - \bar x)(x_{t+k} - \bar x)`, the biased estimator
    (divided by T, not T - k), which is positive semi-definite;
    by FFT, zero-padded to twice the length so that the circular correlation is the linear one.
    """
    n = x.shape[0]
    centred = x - x.mean(dim=0)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = torch.fft.rfft(centred, n=size, dim=0)
    return torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=0)[:n] / n


def autocorrelation(chain: torch.Tensor, max_lag: int | None = None) -> torch.Tensor:
    r"""The autocorrelation :math:`\rho_k` of a chain at lags 0..max_lag: (max_lag + 1,) float64, :math:`\rho_0 = 1`.

    ``chain`` is (T,) or (T, C) (C independent chains: the per-lag mean of their
    autocorrelations). Each chain's is :math:`\hat\gamma_k / \hat\gamma_0` with the biased
    autocovariance :math:`\hat\gamma_k = \frac1T \sum_{t=0}^{T-k-1} (x_t - \bar x)(x_{t+k} - \bar x)`,
    computed by FFT in :math:`O(T \log T)`. An AR(1) chain :math:`x_t = a x_{t-1} + \varepsilon_t`
    has :math:`\rho_k = a^k`. ``max_lag`` defaults to T - 1; a constant chain is an error (its
    autocorrelation is undefined).
    """
    x = _as_chains(chain, "chain", min_length=2)
    if max_lag is None:
        max_lag = x.shape[0] - 1
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 0 <= max_lag < x.shape[0]:
        raise ValueError(f"max_lag must be an int in 0..{x.shape[0] - 1} (the chain has {x.shape[0]} steps), "
                         f"got {max_lag!r}")
    acov = _autocovariance(x)
    if (acov[0] <= 0).any():
        raise ValueError("autocorrelation: a chain is constant (zero variance); its autocorrelation is undefined")
    return (acov[: max_lag + 1] / acov[0]).mean(dim=1)


def effective_sample_size(chain: torch.Tensor) -> float:
    r"""The effective sample size of the chains together: how many independent draws their mean is worth.

    ``chain`` is (T,) or (T, C). :math:`\mathrm{ESS} = CT / \tau` with the integrated
    autocorrelation time :math:`\tau = 1 + 2 \sum_{k \ge 1} \rho_k`, estimated as Stan does
    (Geyer, 1992; Vehtari et al., 2021, without their rank normalisation): the autocorrelations
    combine the chains' mean autocovariance with the between-chain variance,
    :math:`\hat\rho_k = 1 - (W - \overline{\hat\gamma}_k) / \widehat{\mathrm{var}}^+`, and the sum is cut by
    Geyer's initial positive sequence -- pairs :math:`P_m = \hat\rho_{2m} + \hat\rho_{2m+1}` are
    summed while positive, made non-increasing (initial monotone sequence) -- so that
    :math:`\tau = -1 + 2 \sum_m P_m`. The result is capped at :math:`CT \log_{10}(CT)` as Stan
    does (antithetic chains can have :math:`\tau < 1`). An AR(1) chain with coefficient a has
    :math:`\mathrm{ESS} \approx T (1 - a) / (1 + a)`.
    """
    x = _as_chains(chain, "chain", min_length=4)
    n, m = x.shape
    acov = _autocovariance(x)  # (T, C)
    within = (acov[0] * n / (n - 1)).mean()  # W: the mean of the chains' unbiased variances
    var_plus = within * (n - 1) / n + (x.mean(dim=0).var() if m > 1 else 0.0)
    if var_plus <= 0:
        raise ValueError("effective_sample_size: the chains are constant (zero variance)")
    rho = 1 - (within - acov.mean(dim=1)) / var_plus  # (T,)
    rho[0] = 1.0  # by definition (the formula gives 1 - 1/(n - 1) for one chain, W being unbiased)
    pairs = rho[: 2 * (n // 2)].view(-1, 2).sum(dim=1)  # P_m = rho_2m + rho_2m+1
    positive = pairs > 0
    n_pairs = int(positive.long().cumprod(dim=0).sum())  # the initial positive sequence
    pairs = pairs[:n_pairs]
    if n_pairs > 1:
        pairs = torch.cummin(pairs, dim=0).values  # the initial monotone sequence
    tau = -1.0 + 2.0 * float(pairs.sum()) if n_pairs else 1.0
    total = n * m
    return min(total / max(tau, 1e-12), total * math.log10(total))


def r_hat(chains: torch.Tensor) -> float:
    r"""The split-:math:`\hat R` of Gelman et al. (2013), without the rank normalisation of Vehtari et al. (2021).

    ``chains`` is (T, C) (or (T,), one chain), C >= 1 chains of T >= 4 steps, time first. Each chain is split in two
    halves of n = T // 2 steps (the middle step dropped for odd T), giving 2C chains; with the
    mean within-chain variance W and the between-chain variance :math:`B/n` of their means,

    .. math:: \widehat{\mathrm{var}}^+ = \frac{n - 1}{n} W + \frac{B}{n}, \qquad
              \hat R = \sqrt{\widehat{\mathrm{var}}^+ / W}.

    :math:`\hat R \to 1` when the chains have mixed; above about 1.01 they have not (chains stuck
    in different modes give :math:`\hat R \gg 1`). Splitting catches a chain that still drifts.
    """
    x = _as_chains(chains, "chains", min_length=4)
    n = x.shape[0] // 2
    halves = torch.cat([x[:n], x[x.shape[0] - n:]], dim=1)  # (n, 2C)
    within = halves.var(dim=0).mean()
    between_over_n = halves.mean(dim=0).var()
    if within <= 0:
        raise ValueError("r_hat: the chains are constant within (zero variance); R-hat is undefined")
    var_plus = within * (n - 1) / n + between_over_n
    return float(torch.sqrt(var_plus / within))
