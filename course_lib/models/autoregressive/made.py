r"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015), for binary data.

An autoregressive model factorises :math:`p(x) = \prod_{i=1}^{D} p(x_{o_i} \mid x_{o_1}, \dots, x_{o_{i-1}})`
in some ordering :math:`o` of the :math:`D` dimensions. MADE computes all :math:`D`
conditionals in **one** pass of an MLP whose weights are multiplied by binary masks
that cut every path from an input to an output that comes earlier in the ordering.

**Degrees.** Each unit :math:`k` of layer :math:`l` gets a degree :math:`m_l(k)`:

* inputs: :math:`m_0(d)` = the position of dimension :math:`d` in the ordering, :math:`1..D`;
* hidden units: :math:`m_l(k) \in \{\min_{k'} m_{l-1}(k'), \dots, D-1\}` (random, or spread evenly);
  a hidden unit of degree :math:`m` may only depend on inputs of degree :math:`\le m`;
* outputs: the output for dimension :math:`d` has the degree of its input, :math:`m_0(d)`.

**Masks.** The hidden masks allow :math:`k' \leftarrow k` iff :math:`m_l(k') \ge m_{l-1}(k)`;
the output mask is *strict*, :math:`m_0(d) > m_L(k)`. Along any path the degree never
decreases and strictly increases at the output, so output :math:`d` depends only on
inputs of smaller degree: exactly the autoregressive property. (A direct input-to-output
connection uses the strict mask :math:`m_0(d) > m_0(d')`.)

**Likelihood.** Output :math:`d` is the logit of :math:`p(x_d = 1 \mid x_{<d})`, so
:math:`-\log p(x) = \sum_d \mathrm{BCE}(\text{logit}_d, x_d)`, summed over the :math:`D` pixels, in nats.

**Order-agnostic training.** Cycling through ``n_masks`` orderings/connectivities (a new
one for each minibatch) trains an ensemble in one network; at test time
:math:`p(x) \approx \frac1M \sum_m p_m(x)`, i.e.
:math:`\log p(x) = \mathrm{logsumexp}_m \log p_m(x) - \log M`.

**Sampling** needs :math:`D` passes: the :math:`i`-th pass gives the conditional of :math:`x_{o_i}`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONNECTIVITIES = ("random", "even")


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b``: a linear layer whose weight is multiplied by a fixed binary mask (out, in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask: Tensor) -> None:
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask must have shape {tuple(self.weight.shape)}, got {tuple(mask.shape)}")
        self.mask.copy_(mask.to(self.mask.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(d: int, hidden_sizes: Sequence[int], order: Tensor | None = None, *,
                 generator: torch.Generator | None = None, connectivity: str = "random") -> list[Tensor]:
    """The degrees ``[m_0 (D,), m_1 (H_1,), ..., m_L (H_L,)]`` of the inputs and hidden layers.

    ``order[i]`` is the dimension generated at step ``i`` (default: ``0, 1, ..., D-1``), so
    ``m_0[order[i]] = i + 1``. Hidden degrees lie in ``[min of the previous layer, D-1]``:
    drawn uniformly (``connectivity="random"``, as in the paper) or cycled through that
    range (``"even"``, deterministic).
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}")
    order = torch.arange(d) if order is None else torch.as_tensor(order).cpu()
    if sorted(order.tolist()) != list(range(d)):
        raise ValueError(f"order must be a permutation of 0..{d - 1}, got {order.tolist()}")
    m0 = torch.empty(d, dtype=torch.long)
    m0[order] = torch.arange(1, d + 1)
    degrees = [m0]
    for size in hidden_sizes:
        low = min(int(degrees[-1].min()), d - 1)  # d = 1: a single degree-0 unit gets no input
        if connectivity == "random":
            m = torch.randint(low, d, (size,), generator=generator)
        else:
            m = low + torch.arange(size) % (d - low)
        degrees.append(m)
    return degrees


def made_masks(d: int, hidden_sizes: Sequence[int], order: Tensor | None = None, *,
               generator: torch.Generator | None = None, connectivity: str = "random") -> list[Tensor]:
    """The masks (out, in) of every layer, hidden ones then the output one: ``len(hidden_sizes) + 1`` float tensors.

    Hidden: ``M[k', k] = m_l(k') >= m_{l-1}(k)``; output: ``M[d, k] = m_0(d) > m_L(k)`` (strict).
    """
    degrees = made_degrees(d, hidden_sizes, order, generator=generator, connectivity=connectivity)
    masks = [(m_out[:, None] >= m_in[None, :]).float() for m_in, m_out in zip(degrees[:-1], degrees[1:], strict=True)]
    masks.append((degrees[0][:, None] > degrees[-1][None, :]).float())  # (D, H_L)
    return masks


class MADE(nn.Module):
    """MADE over ``d`` binary dimensions; ``forward`` returns the logits of :math:`p(x_d = 1 \\mid x_{<d})`.

    ``d``: number D of binary dimensions (784 for MNIST; may be given first, by position).
    ``hidden_sizes``: widths of the masked hidden layers (ReLU). ``n_masks``: how many masks to
    cycle through (1 = a single fixed MADE). ``natural_ordering``: keep the order ``0..D-1`` for
    every mask (then only the connectivity changes), else draw a random ordering per mask.
    ``seed``: mask ``i`` is drawn from ``seed + i``, so masks are reproducible. ``connectivity``:
    ``"random"`` or ``"even"`` hidden degrees. ``direct_connection``: add a masked linear map from
    the inputs straight to the outputs.
    """

    def __init__(self, d: int, *, hidden_sizes: Sequence[int] = (500,), n_masks: int = 1,
                 natural_ordering: bool = True, seed: int = 0, connectivity: str = "random",
                 direct_connection: bool = False) -> None:
        super().__init__()
        if d < 1 or n_masks < 1 or any(h < 1 for h in hidden_sizes):
            raise ValueError(f"need d >= 1, n_masks >= 1 and positive hidden sizes, got d={d}, "
                             f"n_masks={n_masks}, hidden_sizes={tuple(hidden_sizes)}")
        if connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}")
        self.d, self.hidden_sizes, self.n_masks = int(d), tuple(int(h) for h in hidden_sizes), int(n_masks)
        self.natural_ordering, self.seed, self.connectivity = natural_ordering, int(seed), connectivity
        sizes = [self.d, *self.hidden_sizes, self.d]
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.direct = MaskedLinear(self.d, self.d, bias=False) if direct_connection else None
        self.register_buffer("order", torch.arange(self.d))
        self.mask_index = 0
        self.set_mask(0)

    def set_mask(self, index: int) -> None:
        """Use mask number ``index`` (an ordering and a connectivity, drawn from ``seed + index``)."""
        self.mask_index = int(index) % self.n_masks
        gen = torch.Generator().manual_seed(self.seed + self.mask_index)
        order = torch.arange(self.d) if self.natural_ordering else torch.randperm(self.d, generator=gen)
        masks = made_masks(self.d, self.hidden_sizes, order, generator=gen, connectivity=self.connectivity)
        for layer, mask in zip(self.layers, masks, strict=True):
            layer.set_mask(mask)
        if self.direct is not None:
            m0 = torch.empty(self.d, dtype=torch.long)
            m0[order] = torch.arange(1, self.d + 1)
            self.direct.set_mask((m0[:, None] > m0[None, :]).float())
        self.order.copy_(order)

    def resample_masks(self) -> None:
        """Move on to the next of the ``n_masks`` masks (cycling)."""
        self.set_mask(self.mask_index + 1)

    def _flatten(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[1] == 1 and x.shape[2] * x.shape[3] == self.d:
            return x.reshape(x.shape[0], self.d)  # (B, 1, H, W) -> (B, D)
        if x.dim() == 2 and x.shape[1] == self.d:
            return x
        raise ValueError(f"x must have shape (B, {self.d}) or (B, 1, H, W) with H*W = {self.d}, got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """Logits of every conditional: (B, D) or (B, 1, H, W) -> (B, D)."""
        x = self._flatten(x).to(self.layers[0].weight.dtype)
        h = x
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))  # (B, H_l)
        logits = self.layers[-1](h)  # (B, H_L) -> (B, D)
        if self.direct is not None:
            logits = logits + self.direct(x)
        return logits

    def _check_binary(self, x: Tensor) -> Tensor:
        x = self._flatten(x)
        if not ((x == 0) | (x == 1)).all():
            bad = x[(x != 0) & (x != 1)][0].item()
            raise ValueError(f"MADE models binary data: x must hold only 0 and 1, found {bad}")
        return x

    def _nll_current_mask(self, x: Tensor) -> Tensor:
        logits = self.forward(x)
        return F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none").sum(dim=1)

    def nll(self, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats per example, (B, D) or (B, 1, H, W) binary -> (B,).

        In training mode with ``n_masks > 1`` every call first moves on to the next mask
        (order-agnostic training); in eval mode the current mask is used.
        """
        x = self._check_binary(x)
        if self.training and self.n_masks > 1:
            self.resample_masks()
        return self._nll_current_mask(x)

    def nll_ensemble(self, x: Tensor, n_orderings: int | None = None) -> Tensor:
        """NLL in nats of the ensemble of masks ``0..n_orderings-1`` (default: all ``n_masks``), (B,).

        :math:`-\\log \\frac1M \\sum_m p_m(x) = -(\\mathrm{logsumexp}_m \\log p_m(x) - \\log M)`.
        """
        n_orderings = self.n_masks if n_orderings is None else int(n_orderings)
        if not 1 <= n_orderings <= self.n_masks:
            raise ValueError(f"n_orderings must be in 1..n_masks={self.n_masks}, got {n_orderings}")
        x = self._check_binary(x)
        current = self.mask_index
        log_p = []
        for m in range(n_orderings):
            self.set_mask(m)
            log_p.append(-self._nll_current_mask(x))
        self.set_mask(current)
        return -(torch.logsumexp(torch.stack(log_p), dim=0) - math.log(n_orderings))  # (M, B) -> (B,)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               image_shape: tuple[int, ...] | None = None) -> Tensor:
        """``n`` samples in the current ordering, by ``D`` passes; (n, D), or (n, *image_shape), float in {0, 1}."""
        weight = self.layers[0].weight
        x = torch.zeros(int(n), self.d, device=weight.device, dtype=weight.dtype)
        for d in self.order.tolist():
            p = torch.sigmoid(self.forward(x)[:, d])  # p(x_d = 1 | x_{<d}), (n,)
            u_device = generator.device if generator is not None else x.device
            u = torch.rand(int(n), generator=generator, device=u_device, dtype=x.dtype).to(x.device)
            x[:, d] = (u < p).to(x.dtype)
        if image_shape is not None:
            if math.prod(image_shape) != self.d:
                raise ValueError(f"image_shape {tuple(image_shape)} does not hold D={self.d} values")
            x = x.reshape(int(n), *image_shape)
        return x
