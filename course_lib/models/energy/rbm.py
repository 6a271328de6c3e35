r"""The restricted Boltzmann machine with binary units (Smolensky, 1986; Hinton, 2002).

Visible units :math:`v \in \{0,1\}^D` (the pixels) and hidden units :math:`h \in \{0,1\}^H`,
connected only across the two layers, with the energy

.. math::  E(v, h) = -v^\top W h - b^\top v - c^\top h,
           \qquad p(v, h) = e^{-E(v, h)} / Z,

``weight`` :math:`W` (D, H), ``visible_bias`` :math:`b` (D,), ``hidden_bias`` :math:`c` (H,).
Because no two units of a layer interact, each layer is independent given the other:

.. math::  p(h_j = 1 \mid v) = \sigma(c_j + v^\top W_{:j}), \qquad
           p(v_i = 1 \mid h) = \sigma(b_i + W_{i:} h),

which is what block Gibbs sampling alternates (:meth:`RBM.gibbs`). Summing the hidden units
out, one at a time, gives the **free energy**

.. math::  F(v) = -\log \sum_h e^{-E(v, h)} = -b^\top v - \sum_j \operatorname{softplus}(c_j + v^\top W_{:j}),
           \qquad p(v) = e^{-F(v)} / Z,

so the likelihood of an image needs only :math:`\log Z`: exact by enumerating the smaller
layer for a small RBM (:meth:`RBM.exact_log_partition`), by annealed importance sampling for
a large one (:func:`course_lib.models.energy.ais.rbm_log_partition`). The gradient of the
mean log-likelihood is :math:`\langle v h^\top \rangle_{\text{data}} - \langle v h^\top
\rangle_{\text{model}}`: contrastive divergence (CD-k) estimates the model's term from
chains started at the data, persistent CD from chains carried across updates
(:class:`course_lib.training.ContrastiveDivergenceTask`).

Conventions: a batch of visible vectors is (B, D) float with values in {0, 1} (images
(B, 1, 28, 28) are flattened); hidden vectors are (B, H). Log-likelihoods and free energies
are in nats (per image). Every sampling method takes a ``torch.Generator`` by keyword, the
only source of randomness (None: torch's global one), on the device of the model.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.energy.sampling import block_gibbs

__all__ = ["EXACT_MAX_UNITS", "RBM", "pixel_log_odds", "sample_bernoulli"]

EXACT_MAX_UNITS = 25
"""The largest smaller layer that :meth:`RBM.exact_log_partition` enumerates (2^25 states)."""

_CHUNK = 1 << 14  # states enumerated at once by exact_log_partition


def sample_bernoulli(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Independent draws x ~ Bernoulli(probs), as 0./1. of the dtype of ``probs``: ``u < probs``, u ~ U[0, 1).

    Twice as fast as ``torch.bernoulli`` on the CPU; ``generator`` must be on the device of ``probs``.
    """
    u = torch.rand(probs.shape, generator=generator, device=probs.device, dtype=probs.dtype)
    return (u < probs).to(probs.dtype)


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_binary(x: Tensor, name: str, width: int, layer: str) -> Tensor:
    """``x`` as float rows (B, width) of zeros and ones; a clear error otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of {layer} states, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor of 0s and 1s, got dtype {x.dtype} (use x.float())")
    if x.dim() < 2 or math.prod(x.shape[1:]) != width:
        raise ValueError(
            f"{name} must have shape (B, {width}) (or (B, ...) with {width} values per example: the {layer} "
            f"units), got {tuple(x.shape)}"
        )
    x = x.reshape(x.shape[0], width)  # (B, 1, H, W) -> (B, D)
    binary = (x == 0) | (x == 1)  # False for NaN
    if not bool(binary.all()):
        bad = x[~binary][0].item()
        raise ValueError(
            f"{name} must hold binary {layer} states (0. or 1.), found {bad:g}; binarize grey images first "
            "(e.g. course_lib.data.load_binarized_mnist, or torch.bernoulli(x))"
        )
    return x


def pixel_log_odds(data: Tensor, *, eps: float = 1e-3) -> Tensor:
    """log(p_i / (1 - p_i)) of each pixel's mean p_i over the rows of ``data`` (N, D) in {0, 1}: (D,).

    The means are clipped to [eps, 1 - eps] (a pixel that is always 0 gets a large negative value, not
    -inf) and taken in float64; the result has ``data``'s dtype. These are the visible biases of
    independent pixels that match the data's means: an RBM's starting visible biases
    (:meth:`RBM.init_visible_bias`) and the base-rate model of AIS
    (:func:`~course_lib.models.energy.ais.rbm_log_partition`).
    """
    if data.dim() != 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty batch of rows (N, D) to take pixel means, got shape "
                         f"{tuple(data.shape)}")
    return torch.logit(data.double().mean(0).clamp(eps, 1 - eps)).to(data.dtype)


class RBM(nn.Module):
    """A binary-binary restricted Boltzmann machine.

    Args:
        n_visible: D, the visible units (784 for MNIST).
        n_hidden: H, the hidden units.
        init_std: the weights start as N(0, init_std^2) (from torch's global generator, so
            seed it first), the biases at zero; Hinton's practical guide uses 0.01.
            Call :meth:`init_visible_bias` with the training data to start the visible biases
            at the log-odds of the pixel means.
    """

    def __init__(self, *, n_visible: int, n_hidden: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.n_visible = _check_count("n_visible", n_visible)
        self.n_hidden = _check_count("n_hidden", n_hidden)
        if isinstance(init_std, bool) or not isinstance(init_std, numbers.Real) or not math.isfinite(init_std) \
                or init_std < 0:
            raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
        self.weight = nn.Parameter(init_std * torch.randn(self.n_visible, self.n_hidden))  # W (D, H)
        self.visible_bias = nn.Parameter(torch.zeros(self.n_visible))  # b (D,)
        self.hidden_bias = nn.Parameter(torch.zeros(self.n_hidden))  # c (H,)

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    # ------------------------------------------------------------------------- energies

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """E(v, h) = -v^T W h - b^T v - c^T h of each pair: v (B, D), h (B, H) binary -> (B,)."""
        v = self.check_visible(v)
        h = self.check_hidden(h)
        if h.shape[0] != v.shape[0]:
            raise ValueError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}")
        return -((v @ self.weight) * h).sum(-1) - v @ self.visible_bias - h @ self.hidden_bias

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -b^T v - sum_j softplus(c_j + v^T W_:j), nats: v (B, D) binary -> (B,); p(v) = exp(-F(v)) / Z."""
        return self._free_energy(self.check_visible(v))

    def _free_energy(self, v: Tensor) -> Tensor:
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight + self.hidden_bias).sum(-1)

    # ------------------------------------------------------------------------- conditionals and Gibbs sampling

    def hidden_probs(self, v: Tensor) -> Tensor:
        """p(h_j = 1 | v) = sigmoid(c_j + v^T W_:j): v (B, D) binary -> (B, H)."""
        return torch.sigmoid(self.check_visible(v) @ self.weight + self.hidden_bias)

    def visible_probs(self, h: Tensor) -> Tensor:
        """p(v_i = 1 | h) = sigmoid(b_i + W_i: h): h (B, H) binary -> (B, D)."""
        return torch.sigmoid(self.check_hidden(h) @ self.weight.T + self.visible_bias)

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(p(h = 1 | v), h ~ p(h | v)): v (B, D) binary -> two (B, H) tensors."""
        probs = torch.sigmoid(self.check_visible(v) @ self.weight + self.hidden_bias)  # (B, D) -> (B, H)
        return probs, sample_bernoulli(probs, generator)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(p(v = 1 | h), v ~ p(v | h)): h (B, H) binary -> two (B, D) tensors."""
        probs = torch.sigmoid(self.check_hidden(h) @ self.weight.T + self.visible_bias)  # (B, H) -> (B, D)
        return probs, sample_bernoulli(probs, generator)

    @torch.no_grad()
    def gibbs(self, v: Tensor, n_steps: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """``n_steps`` of block Gibbs sampling from ``v`` (B, D): h ~ p(h | v), then v ~ p(v | h), each time.

        Returns the last visible sample (B, D) in {0, 1}; ``v`` is not modified. Each step leaves
        the RBM's distribution invariant; rows are independent chains. The steps are those of
        :func:`~course_lib.models.energy.sampling.block_gibbs` with :meth:`sample_hidden` and
        :meth:`sample_visible`.
        """
        return block_gibbs(self, self.check_visible(v), n_steps=n_steps, generator=generator).state

    @torch.no_grad()
    def sample(self, n: int, *, n_steps: int = 1000, generator: torch.Generator | None = None,
               start: Tensor | None = None, return_probs: bool = False) -> Tensor:
        """``n`` draws (n, D) in {0, 1} after ``n_steps`` of block Gibbs sampling.

        The chains start at ``start`` (n, D) binary, or at independent draws from
        sigmoid(visible_bias) (the RBM's visible marginal with the weights removed). With
        ``return_probs``, the mean image of one more step is returned instead of the binary
        draw: p(v = 1 | h) with h ~ p(h | v) of the last draw (less noisy to look at).
        """
        n = _check_count("n", n)
        if start is None:
            probs = torch.sigmoid(self.visible_bias.detach()).expand(n, self.n_visible)
            start = sample_bernoulli(probs, generator)
        else:
            start = self.check_visible(start, "start")
            if start.shape[0] != n:
                raise ValueError(f"start must hold n={n} chains, got {start.shape[0]}")
        v = self.gibbs(start, n_steps, generator)
        if not return_probs:
            return v
        return self.visible_probs(self.sample_hidden(v, generator)[1])

    # ------------------------------------------------------------------------- initialisation

    @torch.no_grad()
    def init_visible_bias(self, data: Tensor, *, eps: float = 1e-3) -> None:
        """Set b_i = log(p_i / (1 - p_i)), the log-odds of each pixel's mean p_i in ``data`` (N, D) binary.

        Hinton's practical guide (2010, section 8.1): then the visible units alone model the
        pixel means, and the weights learn the rest. The means are clipped to [eps, 1 - eps]
        (pixels that are always 0 get a large negative bias, not -inf).
        """
        self.visible_bias.copy_(pixel_log_odds(self.check_visible(data, "data"), eps=eps))

    # ------------------------------------------------------------------------- likelihoods

    @torch.no_grad()
    def exact_log_partition(self) -> float:
        r"""log Z, exactly, by enumerating the smaller layer's 2^k states (k <= ``EXACT_MAX_UNITS``).

        Over hidden states: :math:`\log Z = \operatorname{logsumexp}_h \big[c^\top h + \sum_i
        \operatorname{softplus}(b_i + W_{i:} h)\big]`; over visible states: :math:`\operatorname
        {logsumexp}_v [-F(v)]`. Computed in float64.
        """
        k = min(self.n_visible, self.n_hidden)
        if k > EXACT_MAX_UNITS:
            raise ValueError(
                f"exact_log_partition enumerates the smaller layer, here {k} units (2^{k} states); at most "
                f"{EXACT_MAX_UNITS} are allowed: estimate log Z with course_lib.models.energy.rbm_log_partition (AIS)"
            )
        W = self.weight.detach().double()
        b, c = self.visible_bias.detach().double(), self.hidden_bias.detach().double()
        if self.n_hidden <= self.n_visible:
            other_bias, W, own_bias = b, W.T, c  # enumerate h: sum over v factorises with biases b + W h
        else:
            other_bias, own_bias = c, b  # enumerate v: sum over h gives -F(v)
        pieces = []
        for start in range(0, 1 << k, _CHUNK):
            states = _binary_states(k, start, min(start + _CHUNK, 1 << k), W.device)  # (S, k)
            terms = states @ own_bias + F.softplus(states @ W + other_bias).sum(-1)  # (S,)
            pieces.append(torch.logsumexp(terms, 0))
        return float(torch.logsumexp(torch.stack(pieces), 0))

    def log_likelihood(self, v: Tensor, log_z: float | Tensor) -> Tensor:
        """log p(v) = -F(v) - log Z in nats, (B,), with ``log_z`` from :meth:`exact_log_partition` or AIS."""
        if isinstance(log_z, Tensor):
            if log_z.numel() != 1:
                raise ValueError(f"log_z must be a number, got a tensor of shape {tuple(log_z.shape)}")
            log_z = float(log_z)
        if isinstance(log_z, bool) or not isinstance(log_z, numbers.Real) or not math.isfinite(log_z):
            raise ValueError(f"log_z must be a finite number, got {log_z!r}")
        return -self.free_energy(v) - log_z

    def pseudo_log_likelihood(self, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""The pseudo-log-likelihood :math:`\sum_i \log p(v_i \mid v_{-i})` of each row, nats, (B,).

        :math:`\log p(v_i \mid v_{-i}) = \log \sigma\big(F(\tilde v^{(i)}) - F(v)\big)`, where
        :math:`\tilde v^{(i)}` is ``v`` with unit i flipped (Besag, 1975). Without a ``generator``
        the sum runs over all D units (D free energies per row, in chunks); with one, each row
        flips one unit i drawn uniformly and returns D log p(v_i | v_-i), an unbiased estimate
        of the same sum that costs one free energy per row (the usual monitor during training).
        """
        v = self.check_visible(v)
        W, c = self.weight, self.hidden_bias
        pre = v @ W + c  # (B, H)
        free = -(v @ self.visible_bias) - F.softplus(pre).sum(-1)  # F(v), (B,)
        sign = 1 - 2 * v  # +1 where a flip turns 0 into 1, -1 where it turns 1 into 0
        if generator is not None:
            i = torch.randint(self.n_visible, (v.shape[0],), generator=generator, device=v.device)
            s = sign.gather(1, i[:, None])  # (B, 1)
            flipped = -(v @ self.visible_bias) - s[:, 0] * self.visible_bias[i] \
                - F.softplus(pre + s * W[i]).sum(-1)  # F(v with unit i flipped), (B,)
            return self.n_visible * F.logsigmoid(flipped - free)
        rows_per_chunk = max(1, (1 << 22) // (self.n_visible * self.n_hidden))
        out = []
        for lo in range(0, v.shape[0], rows_per_chunk):
            sl = slice(lo, lo + rows_per_chunk)
            s = sign[sl]  # (b, D)
            # F of every flip at once: (b, D, H) pre-activations pre + s_i W_i:
            flipped = -(v[sl] @ self.visible_bias)[:, None] - s * self.visible_bias \
                - F.softplus(pre[sl, None, :] + s[:, :, None] * W).sum(-1)  # (b, D)
            out.append(F.logsigmoid(flipped - free[sl, None]).sum(-1))
        return torch.cat(out) if out else v.new_zeros(0)

    def reconstruction_error(self, v: Tensor) -> Tensor:
        """||v - p(v = 1 | p(h = 1 | v))||^2 of each row, (B,): the mean-field reconstruction's squared error.

        Deterministic (hidden probabilities, not samples). A rough monitor, not the objective:
        it can fall while the likelihood gets worse (Hinton's practical guide, section 5).
        """
        v = self.check_visible(v)
        hidden = torch.sigmoid(v @ self.weight + self.hidden_bias)
        recon = torch.sigmoid(hidden @ self.weight.T + self.visible_bias)
        return ((v - recon) ** 2).sum(-1)

    # ------------------------------------------------------------------------- inputs

    def check_visible(self, v: Tensor, name: str = "v") -> Tensor:
        """``v`` as rows (B, D) of visible states; a TypeError/ValueError naming ``name`` unless it is a float
        tensor (B, D) or (B, ...) with D values per example, all 0 or 1."""
        return _check_binary(v, name, self.n_visible, "visible")

    def check_hidden(self, h: Tensor, name: str = "h") -> Tensor:
        """``h`` as rows (B, H) of hidden states, checked like :meth:`check_visible`."""
        return _check_binary(h, name, self.n_hidden, "hidden")


def _binary_states(k: int, start: int, stop: int, device: torch.device) -> Tensor:
    """The binary expansions of the integers start..stop-1 as float64 rows (stop - start, k), bit 0 first."""
    ints = torch.arange(start, stop, device=device)
    bits = torch.arange(k, device=device)
    return ((ints[:, None] >> bits) & 1).double()
