r"""MCMC samplers for energy-based models (topic 03): Metropolis-Hastings, Gibbs, Langevin.

Every sampler here has one shape: it takes

* an **energy** -- a model with ``energy(x) -> (B,)`` (or, for block Gibbs, an RBM with its
  conditionals), or any callable ``x -> (B,)``; the target is :math:`p(x) = e^{-E(x)} / Z`, so
  the log-density is :math:`-E` up to a constant and lower energy means more probable;
* a **state** -- a batch of chains (B, ...), one chain per row, which it does not modify; and
* a **generator** -- a ``torch.Generator``, by keyword, the only source of randomness,

plus its own settings by keyword (number of steps, step size, temperature), and returns an
:class:`MCMCResult`: the final state, the whole chain (n_steps + 1, B, ...) including the start
when ``return_chain=True``, and, for samplers that accept or reject, the acceptance rate.
Everything follows the device and dtype of the state. Because the state is an ordinary
tensor, persistent chains carry it from one training step to the next, and a checkpoint
saves it with the generator's state, so that training resumes exactly.

**Metropolis-Hastings.** From :math:`x`, propose :math:`x' \sim q(\cdot \mid x)` and accept it with
probability

.. math:: \alpha(x \to x') = \min\Bigl(1, \frac{p(x')\, q(x \mid x')}{p(x)\, q(x' \mid x)}\Bigr),

otherwise stay at :math:`x`. Then :math:`p(x) q(x' \mid x) \alpha(x \to x')` is symmetric in
:math:`x, x'` (detailed balance), so :math:`p` is left invariant; :math:`Z` cancels in the ratio.

**Langevin dynamics.** The unadjusted Langevin algorithm (ULA) discretises the diffusion whose
stationary law is :math:`p`:

.. math:: x' = x - \epsilon \nabla E(x) + \sqrt{2\epsilon}\, \xi, \qquad \xi \sim \mathcal N(0, I).

It is exact only as :math:`\epsilon \to 0`: on :math:`E(x) = x^2 / (2 s^2)` it is the AR(1) chain
:math:`x' = (1 - \epsilon / s^2) x + \sqrt{2 \epsilon}\, \xi`, whose stationary variance is
:math:`s^2 / (1 - \epsilon / (2 s^2))`, not :math:`s^2`. MALA uses the same move as a proposal,
:math:`q(x' \mid x) = \mathcal N(x'; x - \epsilon \nabla E(x), 2 \epsilon I)`, inside
Metropolis-Hastings, which removes the bias. SGLD as energy models are trained with it (Du &
Mordatch, 2019) decouples the noise from the step, :math:`x' = x - \epsilon \nabla E(x) + \sigma \xi`
(it targets :math:`p` only when :math:`\sigma = \sqrt{2 \epsilon}`), with optional clipping of the
gradient and of the state.

**Gibbs sampling** updates one variable (or block) at a time from its conditional given the
rest, which leaves :math:`p` invariant. On the Ising lattice (spins (B, L, L) in {-1, +1},
periodic, :math:`E(s) = -J \sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i`, target
:math:`\propto e^{-\beta E(s)}`) the conditional of one spin depends only on the sum :math:`n_i`
of its four neighbours,

.. math:: p(s_i = +1 \mid s_{-i}) = \sigma\bigl(2 \beta (J n_i + h)\bigr),

and since the lattice is bipartite for even L (colour site (i, j) black when i + j is even),
all black spins are conditionally independent given the white ones: one *sweep* of
:func:`checkerboard_gibbs` draws all black spins at once, then all white ones.
:func:`sitewise_gibbs` is the same chain written as a Python loop over the sites, the slow
reference. An RBM's visible units are independent given the hidden ones and vice versa:
:func:`block_gibbs` alternates :math:`h \sim p(h \mid v)`, :math:`v \sim p(v \mid h)`.

Each sampler is tested against a distribution it must leave invariant, on a tiny case whose
probabilities are known exactly (a few discrete states, a Gaussian, the 4x4 Ising lattice,
a tiny RBM): ``tests/test_sampling.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any, Protocol

import torch
from torch import Tensor, nn

__all__ = [
    "MCMCResult",
    "ReplayBuffer",
    "acceptance_probability",
    "block_gibbs",
    "checkerboard_gibbs",
    "mala",
    "metropolis_hastings",
    "sgld",
    "sitewise_gibbs",
    "ula",
]


class HasEnergy(Protocol):
    """A model with an energy: ``energy(x) -> (B,)``."""

    def energy(self, x: Tensor) -> Tensor: ...


EnergyLike = HasEnergy | Callable[[Tensor], Tensor]
"""A model with ``energy(x) -> (B,)``, or any callable ``x -> (B,)``."""

Proposal = Callable[[Tensor, "torch.Generator | None"], tuple[Tensor, Tensor | float]]
"""``proposal(x, generator) -> (x_new, log_q_ratio)``, ``log_q_ratio = log q(x | x_new) - log q(x_new | x)``."""


@dataclass
class MCMCResult:
    """What a sampler returns.

    Attributes:
        state: (B, ...) the chains' final state (detached, on the start's device and dtype).
        chain: (n_steps + 1, B, ...) every state from the start (index 0) to the final one when
            the sampler was called with ``return_chain=True``; ``None`` otherwise.
        acceptance_rate: the fraction of accepted proposals in [0, 1], averaged over steps and
            chains, for samplers that accept or reject (Metropolis-Hastings, MALA); ``None``
            for samplers that never reject (ULA, SGLD, Gibbs).
    """

    state: Tensor
    chain: Tensor | None = None
    acceptance_rate: float | None = None


# ----------------------------------------------------------------------------- argument checks


def _energy_function(energy: EnergyLike) -> Callable[[Tensor], Tensor]:
    """``energy.energy`` for a model that has one, else ``energy`` itself when callable."""
    method = getattr(energy, "energy", None)
    if callable(method):
        return method
    if callable(energy):
        return energy
    raise TypeError(f"energy must be a model with an energy(x) method or a callable x -> (B,), got "
                    f"{type(energy).__name__}")


def _check_state(x: Any, name: str = "x", *, floating: bool = True) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor of chains (B, ...), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a batch of chains (B, ...) with B >= 1, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf): a chain must start from a finite state")


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_steps(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _check_generator(generator: Any, x: Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device} but the chains are on {x.device}: make the generator "
                         f"with torch.Generator(device=x.device)")


def _energies(energy_fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """E(x) as (B,), checked."""
    e = energy_fn(x)
    if not isinstance(e, Tensor) or e.shape != (x.shape[0],):
        shape = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        raise ValueError(f"the energy must return one value per chain, shape ({x.shape[0]},), got {shape}")
    return e


def _energy_and_grad(energy_fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """E(x) (B,) and its gradient with respect to x (B, ...), both detached; model parameters get no grad."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = _energies(energy_fn, x)
        if not e.requires_grad:
            raise ValueError("the energy does not depend differentiably on x: Langevin samplers need grad E(x)")
        (grad,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), grad


def _check_start_energy(e: Tensor) -> None:
    if not torch.isfinite(e).all():
        raise ValueError("the energy of the starting state is not finite for some chains: start the chains where "
                         "p(x) > 0")


def _row_sum(t: Tensor) -> Tensor:
    """Sum over every dimension but the first: (B, ...) -> (B,)."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def _finish(state: Tensor, chain: list[Tensor] | None, acceptance_rate: float | None = None) -> MCMCResult:
    return MCMCResult(state=state, chain=torch.stack(chain) if chain is not None else None,
                      acceptance_rate=acceptance_rate)


# ----------------------------------------------------------------------------- Metropolis-Hastings


def acceptance_probability(
    log_target_new: Tensor | float,
    log_target_old: Tensor | float,
    log_q_reverse: Tensor | float = 0.0,
    log_q_forward: Tensor | float = 0.0,
) -> Tensor:
    r"""The Metropolis-Hastings acceptance probability, elementwise, in [0, 1].

    .. math:: \alpha = \min\bigl(1, \exp(\log p(x') - \log p(x) + \log q(x \mid x') - \log q(x' \mid x))\bigr)

    ``log_target_*`` are unnormalised log-densities (:math:`-E`; the normaliser cancels),
    ``log_q_reverse`` is :math:`\log q(x \mid x')` and ``log_q_forward`` :math:`\log q(x' \mid x)`
    (both 0 for a symmetric proposal). Computed as :math:`\exp(\min(0, \cdot))`, which never
    overflows; a proposal of zero density (``log_target_new = -inf``) gets probability 0.
    Arguments broadcast; numbers are taken as float32 tensors.
    """
    terms = [torch.as_tensor(t) for t in (log_target_new, log_target_old, log_q_reverse, log_q_forward)]
    log_ratio = terms[0] - terms[1] + terms[2] - terms[3]
    return torch.exp(log_ratio.clamp(max=0.0))


def metropolis_hastings(
    energy: EnergyLike,
    x: Tensor,
    *,
    step_size: float | None = None,
    proposal: Proposal | None = None,
    n_steps: int = 1,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""Metropolis-Hastings chains, one per row of ``x`` (B, ...), targeting :math:`p \propto e^{-E}`.

    Give exactly one of

    * ``step_size`` -- the random-walk proposal :math:`x' = x + \text{step\_size} \cdot \xi`,
      :math:`\xi \sim \mathcal N(0, I)` (symmetric, so the proposal terms cancel); ``x`` must be
      floating point;
    * ``proposal`` -- a callable ``proposal(x, generator) -> (x_new, log_q_ratio)`` returning the
      proposed states (same shape as ``x``) and
      :math:`\log q(x \mid x') - \log q(x' \mid x)` per chain, (B,) or a number (0 for a symmetric
      proposal). Discrete proposals (states stored as integers or floats) are fine; it must draw
      its randomness from ``generator``.

    Each step accepts a chain's proposal with :func:`acceptance_probability`, with one uniform
    draw per chain. A proposal whose energy is ``+inf`` (outside the support) or nan is rejected.
    Returns an :class:`MCMCResult` with the acceptance rate over all steps and chains.
    """
    energy_fn = _energy_function(energy)
    if (step_size is None) == (proposal is None):
        raise ValueError("give exactly one of step_size (a Gaussian random walk) and proposal (a callable "
                         f"(x, generator) -> (x_new, log_q_ratio)); got step_size={step_size!r} and "
                         f"proposal={proposal!r}")
    if proposal is None:
        step = _check_positive("step_size", step_size)
        _check_state(x)

        def proposal(state: Tensor, gen: torch.Generator | None) -> tuple[Tensor, float]:
            noise = torch.randn(state.shape, generator=gen, device=state.device, dtype=state.dtype)
            return state + step * noise, 0.0
    elif not callable(proposal):
        raise TypeError(f"proposal must be a callable (x, generator) -> (x_new, log_q_ratio), got "
                        f"{type(proposal).__name__}")
    _check_state(x, floating=False)
    _check_generator(generator, x)
    n_steps = _check_steps("n_steps", n_steps)
    x = x.detach()
    with torch.no_grad():
        e = _energies(energy_fn, x)
        _check_start_energy(e)
        chain = [x] if return_chain else None
        accepted = torch.zeros((), device=x.device, dtype=torch.float64)
        for _ in range(n_steps):
            x_new, log_q_ratio = proposal(x, generator)
            if not isinstance(x_new, Tensor) or x_new.shape != x.shape:
                shape = tuple(x_new.shape) if isinstance(x_new, Tensor) else type(x_new).__name__
                raise ValueError(f"the proposal must return states of the chains' shape {tuple(x.shape)}, got {shape}")
            log_q_ratio = torch.as_tensor(log_q_ratio, device=x.device, dtype=e.dtype)
            if log_q_ratio.dim() > 1 or log_q_ratio.numel() not in (1, x.shape[0]):
                raise ValueError(f"the proposal's log_q_ratio must be a number or have shape ({x.shape[0]},), got "
                                 f"{tuple(log_q_ratio.shape)}")
            e_new = _energies(energy_fn, x_new)
            alpha = acceptance_probability(-e_new, -e, log_q_ratio)
            u = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=alpha.dtype)
            accept = u < alpha  # (B,); nan alpha (nan energy) compares False: rejected
            x = torch.where(accept.view(-1, *([1] * (x.dim() - 1))), x_new, x)
            e = torch.where(accept, e_new, e)
            accepted += accept.sum()
            if chain is not None:
                chain.append(x)
    return _finish(x, chain, float(accepted) / (n_steps * x.shape[0]))


# ----------------------------------------------------------------------------- Langevin dynamics


def ula(
    energy: EnergyLike,
    x: Tensor,
    *,
    step_size: float,
    n_steps: int = 1,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""The unadjusted Langevin algorithm: :math:`x' = x - \epsilon \nabla E(x) + \sqrt{2 \epsilon}\, \xi`.

    ``step_size`` is :math:`\epsilon > 0` (in squared units of ``x``). Exact only as
    :math:`\epsilon \to 0`: its stationary law is biased (on :math:`E = x^2 / (2 s^2)` its variance is
    :math:`s^2 / (1 - \epsilon / (2 s^2))`); :func:`mala` corrects it. Gradients are taken with
    respect to the state only (a model's parameters get none); returns detached states and
    ``acceptance_rate=None``.
    """
    step = _check_positive("step_size", step_size)
    return _langevin(energy, x, step=step, noise_std=math.sqrt(2.0 * step), n_steps=n_steps, generator=generator,
                     return_chain=return_chain)


def sgld(
    energy: EnergyLike,
    x: Tensor,
    *,
    step_size: float,
    noise_std: float,
    n_steps: int = 1,
    clamp: tuple[float, float] | None = None,
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""Langevin steps as energy models are trained with them (Du & Mordatch, 2019).

    .. math:: x' = \mathrm{clamp}\bigl(x - \epsilon\, \mathrm{clip}(\nabla E(x)) + \sigma \xi\bigr),
              \qquad \xi \sim \mathcal N(0, I)

    with ``step_size`` :math:`\epsilon > 0` and ``noise_std`` :math:`\sigma \ge 0` chosen apart
    (with :math:`\sigma = \sqrt{2\epsilon}` and no clipping this is :func:`ula`; the usual
    :math:`\sigma \ll \sqrt{2\epsilon}` samples a colder, sharper distribution, which is what
    short-run training chains want). ``grad_clip`` clips every gradient entry to
    ``[-grad_clip, grad_clip]``; ``clamp=(low, high)`` keeps the state in that box after every
    step (e.g. ``(0, 1)`` for images). The gradient is taken with respect to the state only,
    without a graph through the chain (``create_graph=False``): a model's parameters get no
    gradient and the returned samples are detached.
    """
    step = _check_positive("step_size", step_size)
    noise = _check_finite_number("noise_std", noise_std)
    if noise < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    if clamp is not None:
        if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
            raise ValueError(f"clamp must be None or a pair (low, high), got {clamp!r}")
        low, high = (_check_finite_number("clamp", c) for c in clamp)
        if not low < high:
            raise ValueError(f"clamp must be a pair (low, high) with low < high, got {clamp!r}")
        clamp = (low, high)
    if grad_clip is not None:
        grad_clip = _check_positive("grad_clip", grad_clip)
    return _langevin(energy, x, step=step, noise_std=noise, n_steps=n_steps, generator=generator,
                     return_chain=return_chain, clamp=clamp, grad_clip=grad_clip)


def _langevin(
    energy: EnergyLike,
    x: Tensor,
    *,
    step: float,
    noise_std: float,
    n_steps: int,
    generator: torch.Generator | None,
    return_chain: bool,
    clamp: tuple[float, float] | None = None,
    grad_clip: float | None = None,
) -> MCMCResult:
    """The one Langevin loop behind :func:`ula` and :func:`sgld`."""
    energy_fn = _energy_function(energy)
    _check_state(x)
    _check_generator(generator, x)
    n_steps = _check_steps("n_steps", n_steps)
    x = x.detach()
    chain = [x] if return_chain else None
    for _ in range(n_steps):
        _, grad = _energy_and_grad(energy_fn, x)
        if grad_clip is not None:
            grad = grad.clamp(-grad_clip, grad_clip)
        xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x - step * grad + noise_std * xi
        if clamp is not None:
            x = x.clamp(*clamp)
        if chain is not None:
            chain.append(x)
    return _finish(x, chain)


def mala(
    energy: EnergyLike,
    x: Tensor,
    *,
    step_size: float,
    n_steps: int = 1,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""The Metropolis-adjusted Langevin algorithm: a ULA move as the proposal of Metropolis-Hastings.

    Proposal :math:`x' = x - \epsilon \nabla E(x) + \sqrt{2\epsilon}\, \xi`, so
    :math:`\log q(x' \mid x) = -\lVert x' - x + \epsilon \nabla E(x) \rVert^2 / (4 \epsilon)` + const,
    accepted with :func:`acceptance_probability` (the proposal is not symmetric: both directions
    enter). It leaves :math:`p \propto e^{-E}` exactly invariant for every ``step_size`` > 0; too
    large a step shows up as a low acceptance rate, not as bias.
    """
    energy_fn = _energy_function(energy)
    step = _check_positive("step_size", step_size)
    _check_state(x)
    _check_generator(generator, x)
    n_steps = _check_steps("n_steps", n_steps)
    x = x.detach()
    e, grad = _energy_and_grad(energy_fn, x)
    _check_start_energy(e)
    chain = [x] if return_chain else None
    accepted = torch.zeros((), device=x.device, dtype=torch.float64)
    noise_std = math.sqrt(2.0 * step)
    for _ in range(n_steps):
        xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_new = x - step * grad + noise_std * xi
        e_new, grad_new = _energy_and_grad(energy_fn, x_new)
        log_q_forward = -_row_sum((x_new - x + step * grad) ** 2) / (4.0 * step)  # log q(x' | x), (B,)
        log_q_reverse = -_row_sum((x - x_new + step * grad_new) ** 2) / (4.0 * step)  # log q(x | x')
        alpha = acceptance_probability(-e_new, -e, log_q_reverse, log_q_forward)
        u = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=alpha.dtype)
        accept = u < alpha
        mask = accept.view(-1, *([1] * (x.dim() - 1)))
        x, grad = torch.where(mask, x_new, x), torch.where(mask, grad_new, grad)
        e = torch.where(accept, e_new, e)
        accepted += accept.sum()
        if chain is not None:
            chain.append(x)
    return _finish(x, chain, float(accepted) / (n_steps * x.shape[0]))


# ----------------------------------------------------------------------------- replay buffer


class ReplayBuffer(nn.Module):
    """A buffer of past SGLD samples that persistent chains restart from (Du & Mordatch, 2019).

    ``size`` stored samples of shape ``shape``, at first uniform noise in ``[low, high]``. Each
    training step :meth:`draw` takes ``n`` of them (distinct slots), replacing each, with
    probability ``reinit_prob``, by fresh uniform noise so that new modes keep being explored;
    the sampler runs a few steps from there, and :meth:`push` writes the results back into the
    same slots. The storage is a registered buffer, ``samples`` (size, *shape), so it moves with
    ``.to(device)`` and lives in ``state_dict()``: a checkpoint holds it and training resumes
    exactly.

    Args:
        size: the number of stored samples.
        shape: the shape of one sample, e.g. ``(2,)`` or ``(1, 28, 28)``.
        low, high: the box of the uniform noise (``low < high``).
        reinit_prob: the probability in [0, 1] that a drawn sample is replaced by fresh noise.
        seed: the seed of the initial noise (a constructor argument, so that two buffers built
            alike start alike).
    """

    samples: Tensor

    def __init__(
        self,
        *,
        size: int,
        shape: tuple[int, ...] | list[int],
        low: float = 0.0,
        high: float = 1.0,
        reinit_prob: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an int >= 1 (the number of stored samples), got {size!r}")
        if isinstance(shape, int):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
        ):
            raise ValueError(f"shape must be a tuple of ints >= 1 (the shape of one sample), got {shape!r}")
        self.low, self.high = _check_finite_number("low", low), _check_finite_number("high", high)
        if not self.low < self.high:
            raise ValueError(f"low must be smaller than high, got low={low!r}, high={high!r}")
        if isinstance(reinit_prob, bool) or not isinstance(reinit_prob, Real) or not 0 <= reinit_prob <= 1:
            raise ValueError(f"reinit_prob must be a probability in [0, 1], got {reinit_prob!r}")
        self.size, self.shape, self.reinit_prob = size, tuple(shape), float(reinit_prob)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("samples", self._uniform((size, *self.shape), generator, torch.device("cpu")))

    def extra_repr(self) -> str:
        return f"size={self.size}, shape={self.shape}, low={self.low}, high={self.high}, reinit_prob={self.reinit_prob}"

    def __len__(self) -> int:
        return self.size

    def _uniform(self, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
                 dtype: torch.dtype | None = None) -> Tensor:
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return self.low + (self.high - self.low) * u

    def fresh(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples of uniform noise in ``[low, high]``: (n, *shape), on the buffer's device and dtype."""
        n = _check_steps("n", n)
        _check_generator(generator, self.samples)
        return self._uniform((n, *self.shape), generator, self.samples.device, self.samples.dtype)

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` starting states and the slots they came from: ((n, *shape), (n,) int64).

        The slots are distinct (drawn without replacement, so that :meth:`push` writes each
        one once; ``n <= size``); each drawn sample is replaced by fresh noise with probability
        ``reinit_prob``. The states are a copy: the buffer changes only by :meth:`push`.
        """
        n = _check_steps("n", n)
        if n > self.size:
            raise ValueError(f"cannot draw n={n} distinct samples from a buffer of size {self.size}")
        _check_generator(generator, self.samples)
        device = self.samples.device
        indices = torch.randperm(self.size, generator=generator, device=device)[:n]
        x = self.samples[indices]  # advanced indexing: a copy
        reinit = torch.rand(n, generator=generator, device=device) < self.reinit_prob
        noise = self.fresh(n, generator)
        x = torch.where(reinit.view(-1, *([1] * len(self.shape))), noise, x)
        return x, indices

    def push(self, x: Tensor, indices: Tensor) -> None:
        """Write the samples ``x`` (n, *shape) into the slots ``indices`` (n,), as :meth:`draw` gave them."""
        if not isinstance(x, Tensor) or tuple(x.shape[1:]) != self.shape or x.dim() != 1 + len(self.shape):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"push needs samples of shape (n, {', '.join(map(str, self.shape))}), got {shape}")
        if not isinstance(indices, Tensor) or indices.shape != (x.shape[0],) or indices.is_floating_point():
            shape = tuple(indices.shape) if isinstance(indices, Tensor) else type(indices).__name__
            raise ValueError(f"push needs integer indices of shape ({x.shape[0]},), one slot per sample, got {shape}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.size):
            raise ValueError(f"indices must lie in 0..{self.size - 1}, got values from {int(indices.min())} to "
                             f"{int(indices.max())}")
        if not torch.isfinite(x).all():
            raise ValueError("push got non-finite samples (nan or inf): the sampler diverged")
        with torch.no_grad():
            self.samples[indices.to(self.samples.device)] = x.detach().to(self.samples)


# ----------------------------------------------------------------------------- Gibbs sampling: Ising


def _check_spins(spins: Any, *, even: bool) -> None:
    if not isinstance(spins, Tensor):
        raise TypeError(f"spins must be a tensor (B, L, L) of -1/+1 values, got {type(spins).__name__}")
    if spins.dim() != 3 or spins.shape[0] == 0:
        raise ValueError(f"spins must have shape (B, L, L) (a batch of lattices), got {tuple(spins.shape)}")
    if not spins.is_floating_point():
        raise TypeError(f"spins must be a floating-point tensor of -1/+1 values, got dtype {spins.dtype}")
    height, width = spins.shape[1:]
    if height < 2 or width < 2:
        raise ValueError(f"the lattice must be at least 2x2, got {height}x{width}")
    if even and (height % 2 or width % 2):
        raise ValueError(f"checkerboard Gibbs needs an even lattice side (a periodic lattice is bipartite only then), "
                         f"got {height}x{width}; use sitewise_gibbs for odd sides")
    if not ((spins == 1) | (spins == -1)).all():
        raise ValueError("spins must hold only -1 and +1")


def _check_beta(beta: Any, spins: Tensor) -> Tensor:
    """beta as a tensor that broadcasts against (B, L, L): a number, or one per chain (B,)."""
    if isinstance(beta, Tensor):
        if beta.dim() > 1 or beta.numel() not in (1, spins.shape[0]):
            raise ValueError(f"beta must be a number or a tensor of shape ({spins.shape[0]},), one per chain, got "
                             f"shape {tuple(beta.shape)}")
        if not torch.isfinite(beta).all() or (beta < 0).any():
            raise ValueError("beta (the inverse temperature) must be finite and >= 0")
        return beta.to(device=spins.device, dtype=spins.dtype).reshape(-1, 1, 1)
    value = _check_finite_number("beta", beta)
    if value < 0:
        raise ValueError(f"beta (the inverse temperature) must be >= 0, got {beta!r}")
    return torch.tensor(value, device=spins.device, dtype=spins.dtype)


def _ising_settings(spins: Tensor, beta: Any, n_sweeps: Any, coupling: Any, field: Any, generator: Any, *,
                    even: bool) -> tuple[Tensor, int, float, float]:
    _check_spins(spins, even=even)
    _check_generator(generator, spins)
    return (_check_beta(beta, spins), _check_steps("n_sweeps", n_sweeps), _check_finite_number("coupling", coupling),
            _check_finite_number("field", field))


def _neighbour_sum(s: Tensor) -> Tensor:
    """The sum of the four nearest neighbours of every site, periodic: (B, H, W) -> (B, H, W)."""
    total = s.roll(1, -1)
    total += s.roll(-1, -1)
    total += s.roll(1, -2)
    total += s.roll(-1, -2)
    return total


def _logistic_noise(shape: torch.Size, generator: torch.Generator | None, like: Tensor) -> Tensor:
    r"""Logistic noise :math:`\mathrm{logit}(u) = \log u - \log(1 - u)`, u ~ U[0, 1), one number per site.

    :math:`P(\mathrm{logit}(u) < a) = P(u < \sigma(a)) = \sigma(a)`: a spin is set to +1 where its
    noise is below its local field :math:`a_i = 2 \beta (J n_i + h)`, with the probability of its
    conditional, and no sigmoid is computed per colour.
    """
    return torch.logit(torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype))


def checkerboard_gibbs(
    spins: Tensor,
    *,
    beta: float | Tensor,
    n_sweeps: int = 1,
    coupling: float = 1.0,
    field: float = 0.0,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""Gibbs sweeps of the Ising model, every spin of one colour at once.

    ``spins`` (B, L, L) in {-1, +1} (floating point; L even, any rectangle with even sides
    works), periodic boundaries, target :math:`\propto e^{-\beta E(s)}` with
    :math:`E(s) = -J \sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i` (``coupling`` J, ``field`` h,
    see :func:`~course_lib.models.energy.ising.ising_energy`). ``beta`` = 1/T is a number or one
    per chain (B,), so that one call runs several temperatures. One sweep draws all black
    sites (i + j even) from :math:`p(s_i = +1 \mid \cdot) = \sigma(2 \beta (J n_i + h))`, their
    neighbour sums :math:`n_i` taken with ``torch.roll``, then all white sites from the new black
    ones. Each sweep draws one (B, L, L) tensor of uniform numbers, one per site, and sets
    :math:`s_i = +1` where :math:`u_i < \sigma(a_i)`, :math:`a_i = 2 \beta (J n_i + h)`, computed as
    :math:`\mathrm{logit}(u_i) < a_i` (logistic noise below the local field: the same event, without a
    sigmoid per colour). :func:`sitewise_gibbs` is the same chain, site by site, with the same
    random numbers. ``chain`` holds the state after every sweep.
    """
    beta, n_sweeps, coupling, field = _ising_settings(spins, beta, n_sweeps, coupling, field, generator, even=True)
    s = spins.detach()
    height, width = s.shape[1:]
    rows = torch.arange(height, device=s.device).view(-1, 1)
    cols = torch.arange(width, device=s.device).view(1, -1)
    black = (rows + cols) % 2 == 0  # (H, W)
    colours = (black, ~black)
    chain = [s] if return_chain else None
    with torch.no_grad():
        for _ in range(n_sweeps):
            noise = _logistic_noise(s.shape, generator, s)  # one number per site and sweep
            for colour in colours:
                local_field = _neighbour_sum(s).mul_(2.0 * beta * coupling).add_(2.0 * beta * field)  # (B, H, W)
                s = torch.where(colour, (noise < local_field).to(s.dtype).mul_(2.0).sub_(1.0), s)
            if chain is not None:
                chain.append(s)
    return _finish(s, chain)


def sitewise_gibbs(
    spins: Tensor,
    *,
    beta: float | Tensor,
    n_sweeps: int = 1,
    coupling: float = 1.0,
    field: float = 0.0,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""Gibbs sweeps of the Ising model as a Python loop over the sites: the slow reference.

    The conventions of :func:`checkerboard_gibbs`. Each sweep visits the black sites (i + j
    even) in raster order, then the white ones, each drawn from its conditional given the
    current state of its neighbours, using the same uniform numbers as
    :func:`checkerboard_gibbs` (one (B, L, L) draw per sweep, one number per site). Since sites
    of one colour do not neighbour each other on an even periodic lattice, this is exactly the
    checkerboard chain:
    with the same generator both return the same spins, and the benchmark times the two on the
    same work. Any side L >= 2 is accepted (for odd L the colours do not separate neighbours,
    and the loop is still a valid Gibbs sampler that visits every site once per sweep).
    """
    beta, n_sweeps, coupling, field = _ising_settings(spins, beta, n_sweeps, coupling, field, generator, even=False)
    s = spins.detach().clone()  # updated in place below: the caller's tensor is not
    height, width = s.shape[1:]
    beta = beta.reshape(-1)  # (B,) or (1,)
    chain = [s.clone()] if return_chain else None
    with torch.no_grad():
        for _ in range(n_sweeps):
            noise = _logistic_noise(s.shape, generator, s)  # one number per site and sweep
            for parity in (0, 1):
                for i in range(height):
                    for j in range(width):
                        if (i + j) % 2 != parity:
                            continue
                        n = (s[:, (i - 1) % height, j] + s[:, (i + 1) % height, j]
                             + s[:, i, (j - 1) % width] + s[:, i, (j + 1) % width])  # (B,)
                        local_field = (n * (2.0 * beta * coupling)).add_(2.0 * beta * field)  # (B,)
                        s[:, i, j] = (noise[:, i, j] < local_field).to(s.dtype).mul_(2.0).sub_(1.0)
            if chain is not None:
                chain.append(s.clone())
    return _finish(s, chain)


# ----------------------------------------------------------------------------- Gibbs sampling: RBMs


def block_gibbs(
    rbm: Any,
    v: Tensor,
    *,
    n_steps: int = 1,
    generator: torch.Generator | None = None,
    return_chain: bool = False,
) -> MCMCResult:
    r"""Block Gibbs sampling of an RBM: :math:`h \sim p(h \mid v)`, then :math:`v \sim p(v \mid h)`.

    ``rbm`` is any object with ``sample_hidden(v, generator) -> (probs, sample)`` and
    ``sample_visible(h, generator) -> (probs, sample)`` (the RBM of
    :mod:`course_lib.models.energy.rbm`); ``v`` (B, n_visible) are the chains' visible states
    in {0, 1}. One step is one v -> h -> v alternation; both layers are drawn whole, since an
    RBM's units in one layer are independent given the other. The chain of visible states
    leaves :math:`p(v) \propto e^{-F(v)}` invariant. Runs without autograd; returns the visible
    samples (``chain`` holds the visible state after every step).
    """
    for method in ("sample_hidden", "sample_visible"):
        if not callable(getattr(rbm, method, None)):
            raise TypeError(f"block_gibbs needs an RBM with sample_hidden(v, generator) and sample_visible(h, "
                            f"generator); {type(rbm).__name__} has no {method}")
    _check_state(v, "v", floating=False)
    if v.dim() != 2:
        raise ValueError(f"v must have shape (B, n_visible), got {tuple(v.shape)}")
    _check_generator(generator, v)
    n_steps = _check_steps("n_steps", n_steps)
    v = v.detach()
    chain = [v] if return_chain else None
    with torch.no_grad():
        for _ in range(n_steps):
            _, h = rbm.sample_hidden(v, generator)
            _, v = rbm.sample_visible(h, generator)
            if chain is not None:
                chain.append(v)
    return _finish(v, chain)
