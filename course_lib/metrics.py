"""Units of likelihood: nats per example and bits per dimension.

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
