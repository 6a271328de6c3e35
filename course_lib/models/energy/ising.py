r"""The 2-D Ising model (topic 03): energy, magnetisation, Onsager's solution and exact enumeration.

Conventions. Spins are a batch of lattices (B, L, L) with values in {-1, +1} (floating point),
periodic boundaries, and the energy

.. math:: E(s) = -J \sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i,

where :math:`\langle ij \rangle` runs over the nearest-neighbour bonds, each counted once (every
site's bond to its right and to its lower neighbour, wrapping around: :math:`2 L^2` bonds).
The target is the Boltzmann distribution :math:`p(s) = e^{-\beta E(s)} / Z(\beta)` at inverse
temperature :math:`\beta = 1/T` (Boltzmann's constant 1); its samplers are
:func:`~course_lib.models.energy.sampling.checkerboard_gibbs` and
:func:`~course_lib.models.energy.sampling.sitewise_gibbs`. The magnetisation per spin is
:math:`m = \frac{1}{L^2}\sum_i s_i`.

With :math:`J > 0` and :math:`h = 0` the infinite lattice orders below the critical temperature
(Onsager, 1944; Yang, 1952)

.. math:: T_c = \frac{2J}{\ln(1 + \sqrt 2)} \approx 2.269\,J, \qquad
          |m|(T) = \bigl(1 - \sinh(2J/T)^{-4}\bigr)^{1/8} \text{ for } T < T_c, \quad 0 \text{ above}.

A finite lattice has no phase transition: :math:`\mathbb E|m|` falls smoothly through
:math:`T_c`, more steeply as L grows. On a lattice of at most 16 spins, :func:`exact_ising`
sums over all :math:`2^{L^2}` states, the exact reference that the samplers are tested against.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch
from torch import Tensor

__all__ = ["critical_temperature", "exact_ising", "ising_energy", "magnetization", "onsager_magnetization"]

MAX_EXACT_SPINS = 16
""":func:`exact_ising` enumerates 2^(L*L) states: at most 65,536."""


def _check_lattice(spins: Any) -> Tensor:
    if not isinstance(spins, Tensor):
        raise TypeError(f"spins must be a tensor (B, L, L) of -1/+1 values, got {type(spins).__name__}")
    if spins.dim() != 3:
        raise ValueError(f"spins must have shape (B, L, L) (a batch of lattices), got {tuple(spins.shape)}")
    if spins.shape[1] < 2 or spins.shape[2] < 2:
        raise ValueError(f"the lattice must be at least 2x2, got {spins.shape[1]}x{spins.shape[2]}")
    if not ((spins == 1) | (spins == -1)).all():
        raise ValueError("spins must hold only -1 and +1")
    return spins if spins.is_floating_point() else spins.to(torch.get_default_dtype())


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_coupling(coupling: Any) -> float:
    coupling = _check_number("coupling", coupling)
    if coupling <= 0:
        raise ValueError(f"coupling J must be > 0 (a ferromagnet) for a critical temperature, got {coupling!r}")
    return coupling


def ising_energy(spins: Tensor, *, coupling: float = 1.0, field: float = 0.0) -> Tensor:
    r""":math:`E(s) = -J \sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i` of each lattice: (B, L, L) -> (B,).

    Periodic boundaries, each bond counted once (right and down neighbours of every site);
    in units of J (``coupling``) and h (``field``). Integer spins are converted to the default
    float dtype.
    """
    s = _check_lattice(spins)
    coupling, field = _check_number("coupling", coupling), _check_number("field", field)
    bonds = s * (s.roll(-1, -1) + s.roll(-1, -2))  # each site with its right and its lower neighbour
    return -coupling * bonds.sum(dim=(1, 2)) - field * s.sum(dim=(1, 2))


def magnetization(spins: Tensor) -> Tensor:
    """The magnetisation per spin, the mean of each lattice's spins: (B, L, L) -> (B,), in [-1, 1]."""
    return _check_lattice(spins).mean(dim=(1, 2))


def critical_temperature(coupling: float = 1.0) -> float:
    r"""Onsager's critical temperature of the square lattice, :math:`T_c = 2J / \ln(1 + \sqrt 2)` (≈ 2.269 J)."""
    return 2.0 * _check_coupling(coupling) / math.log1p(math.sqrt(2.0))


def onsager_magnetization(temperature: float | Tensor, coupling: float = 1.0) -> float | Tensor:
    r"""The spontaneous magnetisation of the infinite lattice at zero field (Onsager, Yang).

    :math:`|m|(T) = (1 - \sinh(2J/T)^{-4})^{1/8}` below :math:`T_c`, 0 above.

    ``temperature`` T > 0 is a number (returns a float) or a tensor of them (returns a tensor
    of the same shape). It is :math:`|m|`, the magnitude: the two ordered phases have
    :math:`m = \pm |m|`.
    """
    coupling = _check_coupling(coupling)
    is_tensor = isinstance(temperature, Tensor)
    if not is_tensor:
        temperature = _check_number("temperature", temperature)
    t = torch.as_tensor(temperature, dtype=torch.float64)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise ValueError("temperature must be finite and > 0")
    inv_sinh4 = torch.sinh(2.0 * coupling / t) ** -4
    m = torch.where(inv_sinh4 < 1, (1 - inv_sinh4).clamp(min=0) ** 0.125, torch.zeros_like(t))
    if is_tensor:
        return m.to(temperature.dtype if temperature.is_floating_point() else torch.get_default_dtype())
    return float(m)


def exact_ising(L: int, *, beta: float, coupling: float = 1.0, field: float = 0.0) -> dict[str, Any]:
    r"""The Ising model of an L x L periodic lattice solved by summing over all :math:`2^{L^2}` states (L * L <= 16).

    State ``k`` has spin :math:`s_n = +1` where bit ``n`` of ``k`` is set, sites ``n`` in raster
    order (``n = i * L + j``), and -1 elsewhere. Everything is computed in float64.

    Returns a dict:

    * ``states`` (2^(L*L), L, L): every lattice; ``energies`` and ``magnetizations`` (2^(L*L),):
      :math:`E(s)` and the magnetisation per spin of each;
    * ``probabilities`` (2^(L*L),): :math:`p(s) = e^{-\beta E(s)} / Z`;
    * ``log_z``: :math:`\log Z(\beta)`;
    * ``mean_energy`` :math:`\mathbb E[E]`, ``energy_std`` its standard deviation,
      ``mean_magnetization`` :math:`\mathbb E[m]`, ``mean_abs_magnetization`` :math:`\mathbb E|m|`
      (floats).
    """
    if isinstance(L, bool) or not isinstance(L, int) or L < 2 or L * L > MAX_EXACT_SPINS:
        raise ValueError(f"exact_ising enumerates 2^(L*L) states: L must be an int with 2 <= L and L*L <= "
                         f"{MAX_EXACT_SPINS}, got {L!r}")
    beta = _check_number("beta", beta)
    if beta < 0:
        raise ValueError(f"beta (the inverse temperature) must be >= 0, got {beta!r}")
    n_sites = L * L
    index = torch.arange(2**n_sites, dtype=torch.int64)
    bits = (index[:, None] >> torch.arange(n_sites)) & 1  # (S, n_sites), site n = bit n
    states = (2 * bits - 1).to(torch.float64).view(-1, L, L)
    energies = ising_energy(states, coupling=coupling, field=field)
    magnetizations = states.mean(dim=(1, 2))
    log_weights = -beta * energies
    log_z = torch.logsumexp(log_weights, dim=0)
    p = torch.exp(log_weights - log_z)
    mean_energy = float(p @ energies)
    return {
        "states": states,
        "energies": energies,
        "magnetizations": magnetizations,
        "probabilities": p,
        "log_z": float(log_z),
        "mean_energy": mean_energy,
        "energy_std": math.sqrt(max(float(p @ energies**2) - mean_energy**2, 0.0)),
        "mean_magnetization": float(p @ magnetizations),
        "mean_abs_magnetization": float(p @ magnetizations.abs()),
    }
