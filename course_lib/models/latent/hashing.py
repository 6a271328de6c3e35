r"""Locality-sensitive hashing by random projections: the baseline of semantic hashing.

Each of the ``n_bits`` bits of an input :math:`x` is the sign of a random projection of the
centred input, :math:`b_j = [\, w_j^\top (x - \mu) > 0 \,]` with :math:`w_j \sim \mathcal N(0, I)`
(Charikar, 2002). Two inputs at angle :math:`\theta` (after centring) disagree on each bit with
probability :math:`\theta / \pi`, so the Hamming distance between their codes estimates the
angle between them: close inputs get close codes, without any learning. A semantic-hashing
autoencoder (:class:`~course_lib.models.latent.autoencoder.Autoencoder` with ``code="binary"``)
must beat it at the same code length to have learnt anything about the data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from course_lib.models.latent.autoencoder import _check_size, as_rows


class RandomProjectionHash(nn.Module):
    """Binary codes of ``n_bits`` bits: signs of random Gaussian projections of the centred input.

    ``n_features``: d, the input size. ``n_bits``: the code length. ``seed``: the projections
    ``projection`` (d, n_bits) are drawn from a generator seeded with it, so that the same seed
    gives the same hash. :meth:`fit` sets ``mean`` (d,), the centre of the data (without it, the
    non-negative pixels of MNIST would project to nearly the same signs).
    """

    def __init__(self, *, n_features: int, n_bits: int, seed: int = 0) -> None:
        super().__init__()
        self.n_features = _check_size(n_features, "n_features")
        self.n_bits = _check_size(n_bits, "n_bits")
        generator = torch.Generator().manual_seed(int(seed))
        self.register_buffer("projection", torch.randn(n_features, n_bits, generator=generator))  # (d, n_bits)
        self.register_buffer("mean", None)

    @torch.no_grad()
    def fit(self, x: Tensor) -> RandomProjectionHash:
        """Centre on the data ``x`` (N, d) (or (N, 1, H, W)); returns ``self``."""
        rows = as_rows(x, self.n_features)
        if rows.shape[0] == 0:
            raise ValueError("RandomProjectionHash.fit needs at least one example to centre on")
        if not torch.isfinite(rows).all():
            raise ValueError("RandomProjectionHash.fit: x holds non-finite values")
        self.mean = rows.mean(dim=0).to(device=self.projection.device, dtype=self.projection.dtype)
        return self

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The code of each example: (B, d) (or (B, 1, H, W)) -> (B, n_bits) bool."""
        if self.mean is None:
            raise RuntimeError("this RandomProjectionHash is not fitted: call fit(x) with the database first "
                               "(it centres the data)")
        rows = as_rows(x, self.n_features).to(self.projection.dtype)
        return (rows - self.mean) @ self.projection > 0  # (B, d) @ (d, n_bits)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        if self.mean is None and prefix + "mean" in state_dict:  # an unfitted hash takes a fitted state
            self.mean = torch.empty_like(state_dict[prefix + "mean"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
