r"""PixelCNN and Gated PixelCNN: autoregressive image models built from masked convolutions.

An image :math:`x` of :math:`H \times W` pixels is modelled, in raster order (row by row,
left to right), by the chain rule

.. math::  p(x) = \prod_{i=1}^{H}\prod_{j=1}^{W} p(x_{ij} \mid x_{<ij}),
           \qquad \mathrm{NLL}(x) = -\sum_{ij} \log p(x_{ij} \mid x_{<ij}) \ \text{nats.}

One network pass computes every conditional at once, provided that the output at
:math:`(i, j)` never sees the input at :math:`(i, j)` or after it.

**PixelCNN** (van den Oord et al. 2016a) zeroes the kernel entries below the centre and
right of it: mask **A** (first layer) also zeroes the centre, so the pixel cannot see
itself; mask **B** (later layers) keeps the centre, which by then only holds information
about earlier pixels. Stacked 3x3 masks grow the receptive field one row up and one column
left and right per layer, except towards the upper right: every layer loses the column
beyond the diagonal, so a *blind spot* of pixels above-right stays invisible however deep
the network is.

**Gated PixelCNN** (van den Oord et al. 2016b) removes the blind spot with two stacks. The
*vertical* stack sees all rows above (a (k//2+1) x k convolution whose output is shifted
down one row); the *horizontal* stack sees the current row to the left (a 1 x (k//2+1)
convolution) and receives the vertical stack at every layer. Each layer is gated,
:math:`y = \tanh(W_f * x + V_f^\top h) \odot \sigma(W_g * x + V_g^\top h)`, where :math:`h`
is an optional one-hot class label, with a residual connection in the horizontal stack
and skip connections to the output.

**Sampling** is ancestral, one pixel at a time: :math:`H W` network passes. The output at
row :math:`i` depends only on rows :math:`i - R, \dots, i` (:math:`R` = the receptive field's
height above the current row, computed from the architecture) and on a bounded range of
columns, so the fast sampler runs the network on that crop only; its outputs, and hence its
samples, are exactly those of the full pass.

Outputs: ``"bernoulli"`` (binarized images, float in {0, 1}, one logit per pixel) or
``"categorical"`` (``n_bins`` grey levels, integers in [0, n_bins), ``n_bins`` logits per pixel).

Both models take keyword arguments only (``PixelCNN(**settings["model"])``), each documented in
the class docstring and checked when the model is built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DISTRIBUTIONS = ("bernoulli", "categorical")


# ----------------------------------------------------------------------------- masks


def pixelcnn_mask(kernel_size: int, mask_type: str, in_channels: int, out_channels: int,
                  n_colors: int = 1) -> Tensor:
    """The 0/1 mask of a PixelCNN convolution kernel, shape (out_channels, in_channels, k, k).

    Rows above the centre and the pixels left of the centre are kept (1), everything below
    and right of the centre is zeroed. At the centre pixel itself the channels are split into
    ``n_colors`` contiguous groups (R, G, B for ``n_colors=3``, van den Oord et al. 2016a):
    an output of group g sees input groups ``< g`` for mask ``"A"`` and ``<= g`` for ``"B"``.
    For grayscale (``n_colors=1``) mask A thus excludes the centre and mask B includes it.
    """
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size!r}")
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' (excludes the centre) or 'B' (includes it), got {mask_type!r}")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels < 1 or channels % n_colors != 0:
            raise ValueError(f"{name}={channels} must be a positive multiple of n_colors={n_colors}")
    c = kernel_size // 2
    mask = torch.zeros(out_channels, in_channels, kernel_size, kernel_size)
    mask[:, :, :c, :] = 1  # every row above the centre
    mask[:, :, c, :c] = 1  # the centre row, left of the centre
    group_out = torch.arange(out_channels) * n_colors // out_channels  # (out,) colour group of each channel
    group_in = torch.arange(in_channels) * n_colors // in_channels  # (in,)
    if mask_type == "A":
        mask[:, :, c, c] = (group_in[None, :] < group_out[:, None]).float()
    else:
        mask[:, :, c, c] = (group_in[None, :] <= group_out[:, None]).float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded k x k convolution whose kernel is multiplied by :func:`pixelcnn_mask`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str, n_colors: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", pixelcnn_mask(kernel_size, mask_type, in_channels, out_channels, n_colors))

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type!r}"


# ----------------------------------------------------------------------------- shared model logic


def _check_output(distribution: str, n_bins: int) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "categorical" and (not isinstance(n_bins, int) or n_bins < 2):
        raise ValueError(f"n_bins must be an int >= 2 for a categorical output, got {n_bins!r}")


def _check_odd(name: str, k: int, minimum: int) -> None:
    if not isinstance(k, int) or k < minimum or k % 2 == 0:
        raise ValueError(f"{name} must be an odd int >= {minimum}, got {k!r}")


def _invert_cdf(logits: Tensor, u: Tensor, distribution: str, temperature: float) -> Tensor:
    """The value whose CDF interval holds ``u``: logits (n, K), u (n,) in [0, 1) -> (n,) long."""
    logits = logits / temperature
    if distribution == "bernoulli":
        return (u < torch.sigmoid(logits[:, 0])).long()  # P(1) = sigmoid(logit)
    cdf = torch.softmax(logits, dim=1).cumsum(dim=1)  # (n, K)
    return (cdf < u[:, None]).sum(dim=1).clamp(max=logits.shape[1] - 1)  # first k with F_k >= u


class ImageAutoregressiveModel(nn.Module):
    """What PixelCNN and GatedPixelCNN share: input checks and scaling, the likelihood, sampling.

    A subclass calls ``super().__init__`` with the output settings below, then builds its layers
    and defines ``net(h, y) -> logits`` on scaled float input and the property
    ``receptive_field -> (rows_above, cols_left, cols_right)``.

    ``image_shape``: (H, W) that ``sample`` draws by default (the convolutions take any size);
    ``distribution``: ``"bernoulli"`` (binary pixels, one logit each) or ``"categorical"`` (``n_bins``
    logits each); ``n_bins``: grey levels of a categorical output (256 for 8-bit images), unused for
    Bernoulli; ``n_classes``: > 0 for a class-conditional model, 0 otherwise; ``check_values``: check
    that inputs lie in the support (one host sync per call on a GPU).
    """

    def __init__(self, *, image_shape: tuple[int, int], distribution: str, n_bins: int, n_classes: int,
                 check_values: bool) -> None:
        super().__init__()
        _check_output(distribution, n_bins)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W) with H, W >= 1, got {image_shape!r}")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.distribution, self.n_bins = distribution, n_bins
        self.n_classes, self.check_values = n_classes, bool(check_values)

    @property
    def n_outputs(self) -> int:
        """Logits per pixel: 1 (Bernoulli) or n_bins (categorical)."""
        return 1 if self.distribution == "bernoulli" else self.n_bins

    def check_input(self, x: Tensor, y: Tensor | None = None) -> None:
        """Raise ``ValueError`` unless ``x`` is (B, 1, H, W) in the support and ``y`` fits the model."""
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"x must have shape (B, 1, H, W) (one grayscale channel), got {tuple(x.shape)}")
        if self.distribution == "bernoulli":
            if not x.is_floating_point():
                raise ValueError(f"a Bernoulli PixelCNN takes float images in {{0., 1.}}, got dtype {x.dtype}; "
                                 f"use x.float()")
            if self.check_values:
                bad = x[(x != 0) & (x != 1)]
                if bad.numel() > 0:
                    raise ValueError(f"a Bernoulli PixelCNN takes binary pixels in {{0., 1.}}, got {bad.numel()} "
                                     f"other values, e.g. {bad[0].item():g}; binarize the images first")
        else:
            if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                raise ValueError(f"a categorical PixelCNN takes integer grey levels (uint8 or long) in "
                                 f"[0, {self.n_bins}), got dtype {x.dtype}")
            if self.check_values and x.numel() > 0:
                lo, hi = int(x.min()), int(x.max())
                if lo < 0 or hi >= self.n_bins:
                    raise ValueError(f"grey levels must lie in [0, {self.n_bins}) (n_bins={self.n_bins}), "
                                     f"got values from {lo} to {hi}")
        if self.n_classes == 0:
            if y is not None:
                raise ValueError(f"{type(self).__name__} is unconditional (n_classes=0) but a label y was given")
            return
        if y is None:
            raise ValueError(f"this model is class-conditional (n_classes={self.n_classes}): pass labels y")
        if not isinstance(y, Tensor) or y.shape != (x.shape[0],) or y.is_floating_point() or y.dtype == torch.bool:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must be an integer tensor of shape ({x.shape[0]},), got {got}")
        if self.check_values and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"labels y must lie in [0, {self.n_classes}), got values from {int(y.min())} "
                             f"to {int(y.max())}")

    def scale_input(self, x: Tensor) -> Tensor:
        """Data -> network input in [-1, 1], in the dtype of the weights; (B, 1, H, W) either way."""
        dtype = next(self.parameters()).dtype
        if self.distribution == "bernoulli":
            return x.to(dtype) * 2 - 1
        return x.to(dtype) / (self.n_bins - 1) * 2 - 1

    def net(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        """(rows above, columns left, columns right) of the current pixel that its output can see."""
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits of every conditional p(x_ij | x_<ij): (B, 1, H, W) Bernoulli or (B, n_bins, H, W) categorical."""
        self.check_input(x, y)
        return self.net(self.scale_input(x), y)

    def nll(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Negative log-likelihood -log p(x | y) in nats per image, shape (B,)."""
        logits = self(x, y)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # at least float32 under bf16 autocast
        if self.distribution == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")  # (B, 1, H, W)
        else:
            nll = F.cross_entropy(logits, x[:, 0].long(), reduction="none")  # (B, K, H, W) -> (B, H, W)
        return nll.flatten(1).sum(dim=1)  # (B,)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, y: int | Tensor | None = None,
               image_shape: tuple[int, int] | None = None, temperature: float = 1.0,
               x_init: Tensor | None = None, observed: Tensor | None = None, fast: bool = True) -> Tensor:
        """``n`` images drawn by ancestral sampling in raster order; returns (n, 1, H, W) in the data's format.

        Bernoulli models give float32 in {0, 1}; categorical ones uint8 (long if n_bins > 256).
        ``image_shape``: (H, W), by default ``x_init``'s or the model's ``image_shape``.
        ``temperature`` divides the logits (< 1 sharpens). ``y``: a class (int) or labels (n,) for
        a conditional model. Image completion: ``x_init`` (n, 1, H, W) with a boolean ``observed``
        mask broadcastable to it keeps the observed pixels and samples the others.

        The uniforms are drawn up front, (n, H, W) from ``generator``, and each pixel inverts its
        conditional CDF, so the same seed gives the same images whatever crop the network ran on.
        ``fast=False`` runs the network on the whole image for every pixel; ``fast=True`` only on
        the rows and columns that the pixel's receptive field covers, with identical outputs.
        """
        if image_shape is None:
            image_shape = tuple(x_init.shape[-2:]) if x_init is not None else self.image_shape
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n (the number of samples) must be a positive int, got {n!r}")
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W) with H, W >= 1, got {image_shape!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        H, W = int(image_shape[0]), int(image_shape[1])
        param = next(self.parameters())
        if isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long)
        if y is not None:
            y = y.to(param.device)
        if (x_init is None) != (observed is None):
            raise ValueError("image completion needs both x_init (the images) and observed (which pixels to keep)")
        if x_init is not None:
            if x_init.shape != (n, 1, H, W):
                raise ValueError(f"x_init must have shape (n, 1, H, W) = {(n, 1, H, W)}, got {tuple(x_init.shape)}")
            if not isinstance(observed, Tensor) or observed.dtype != torch.bool:
                raise ValueError(f"observed must be a boolean tensor, got {getattr(observed, 'dtype', type(observed))}")
            try:
                observed = torch.broadcast_to(observed.to(param.device), (n, 1, H, W))
            except RuntimeError:
                raise ValueError(f"observed of shape {tuple(observed.shape)} does not broadcast to "
                                 f"{(n, 1, H, W)}") from None
            x = x_init.to(param.device).clone()
        else:
            if self.distribution == "bernoulli":
                dtype = torch.float32
            else:
                dtype = torch.uint8 if self.n_bins <= 256 else torch.long
            x = torch.zeros(n, 1, H, W, dtype=dtype, device=param.device)
        self.check_input(x, y)

        u_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(n, H, W, generator=generator, device=u_device, dtype=param.dtype).to(param.device)
        up, left, right = self.receptive_field if fast else (H, W, W)
        was_training = self.training
        self.eval()
        for i in range(H):
            r0 = max(0, i - up) if fast else 0
            r1 = i + 1 if fast else H
            for j in range(W):
                if observed is not None:
                    todo = ~observed[:, 0, i, j]  # (n,)
                    if not bool(todo.any()):
                        continue
                c0, c1 = (max(0, j - left), min(W, j + right + 1)) if fast else (0, W)
                crop = x[:, :, r0:r1, c0:c1]  # (n, 1, rows, cols)
                logits = self.net(self.scale_input(crop), y)[:, :, i - r0, j - c0]  # (n, K)
                value = _invert_cdf(logits.to(u.dtype), u[:, i, j], self.distribution, temperature).to(x.dtype)
                x[:, 0, i, j] = value if observed is None else torch.where(todo, value, x[:, 0, i, j])
        self.train(was_training)
        return x


# ----------------------------------------------------------------------------- PixelCNN


class ResidualBlock(nn.Module):
    """ReLU -> 1x1 (2h -> h) -> ReLU -> k x k mask B (h -> h) -> ReLU -> 1x1 (h -> 2h), plus the input."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, h, 1),
                                 nn.ReLU(), MaskedConv2d(h, h, kernel_size, "B"),
                                 nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: Tensor) -> Tensor:  # (B, 2h, H, W) -> (B, 2h, H, W)
        return x + self.net(x)


class PixelCNN(ImageAutoregressiveModel):
    """7x7 mask-A convolution, residual blocks of mask-B convolutions, two 1x1 layers to the logits.

    Keyword arguments (all optional):

    ``image_shape``       (H, W) that ``sample`` draws by default; the convolutions take any size
    ``distribution``      ``"bernoulli"``: binary pixels, 1 logit each; ``"categorical"``: ``n_bins`` logits each
    ``n_bins``            grey levels of a categorical output (256 for 8-bit images); unused for Bernoulli
    ``channels``          width 2h of the residual stream (van den Oord et al. 2016a); blocks narrow to
                          h = channels // 2, so it must be even
    ``first_kernel_size`` the k x k mask-A input convolution (odd, >= 3)
    ``kernel_size``       the mask-B convolution inside each residual block (odd)
    ``n_blocks``          residual blocks; the field reaches first_kernel_size//2 + n_blocks*(kernel_size//2) rows up
    ``head_channels``     width of the two 1x1 output layers
    ``check_values``      check that inputs lie in the support (one host sync per call on a GPU)
    """

    def __init__(self, *, image_shape: tuple[int, int] = (28, 28), distribution: str = "bernoulli",
                 n_bins: int = 256, channels: int = 64, first_kernel_size: int = 7, kernel_size: int = 3,
                 n_blocks: int = 7, head_channels: int = 128, check_values: bool = True) -> None:
        super().__init__(image_shape=image_shape, distribution=distribution, n_bins=n_bins, n_classes=0,
                         check_values=check_values)
        _check_odd("first_kernel_size", first_kernel_size, 3)
        _check_odd("kernel_size", kernel_size, 1)
        if channels < 2 or channels % 2 or n_blocks < 0 or head_channels < 1:
            raise ValueError(f"need an even channels >= 2, n_blocks >= 0, head_channels >= 1; got channels="
                             f"{channels}, n_blocks={n_blocks}, head_channels={head_channels}")
        self.channels, self.head_channels = channels, head_channels
        self.first_kernel_size, self.kernel_size, self.n_blocks = first_kernel_size, kernel_size, n_blocks
        self.input_conv = MaskedConv2d(1, channels, first_kernel_size, "A")
        self.blocks = nn.Sequential(*(ResidualBlock(channels, kernel_size) for _ in range(n_blocks)))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, head_channels, 1),
                                  nn.ReLU(), nn.Conv2d(head_channels, self.n_outputs, 1))

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        reach = self.first_kernel_size // 2 + self.n_blocks * (self.kernel_size // 2)
        return reach, reach, reach

    def net(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        if y is not None:
            raise ValueError("PixelCNN is unconditional but a label y was given")
        h = self.input_conv(h)  # (B, 1, H, W) -> (B, 2h, H, W)
        h = self.blocks(h)  # (B, 2h, H, W)
        return self.head(h)  # (B, 2h, H, W) -> (B, K, H, W)


# ----------------------------------------------------------------------------- Gated PixelCNN


def gate(a: Tensor) -> Tensor:
    """tanh(a_f) * sigmoid(a_g) with a = [a_f, a_g] along channels: (B, 2p, H, W) -> (B, p, H, W)."""
    a_f, a_g = a.chunk(2, dim=1)
    return torch.tanh(a_f) * torch.sigmoid(a_g)


class GatedLayer(nn.Module):
    """One layer of both stacks (van den Oord et al. 2016b, figure 2).

    The first layer reads the image in both stacks; its horizontal convolution is masked
    like mask A (the current pixel is excluded) and it has no residual connection.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, n_classes: int, first: bool):
        super().__init__()
        self.first, self.k2 = first, kernel_size // 2
        p = channels
        self.v_conv = nn.Conv2d(in_channels, 2 * p, (self.k2 + 1, kernel_size))  # rows r-k//2..r, cols c±k//2
        self.h_conv = nn.Conv2d(in_channels, 2 * p, (1, self.k2 + 1))  # row r, cols c-k//2..c
        self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_skip = nn.Conv2d(p, p, 1)
        self.h_out = nn.Conv2d(p, p, 1)
        h_mask = torch.ones_like(self.h_conv.weight)
        if first:
            h_mask[..., -1] = 0  # mask A: the horizontal stack must not see the current pixel
        self.register_buffer("h_mask", h_mask)
        # one-hot(y) @ V is a row lookup: an embedding holds V for each stack
        self.v_cond = nn.Embedding(n_classes, 2 * p) if n_classes else None
        self.h_cond = nn.Embedding(n_classes, 2 * p) if n_classes else None

    def forward(self, v: Tensor, h: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        k2 = self.k2
        v_pre = self.v_conv(F.pad(v, (k2, k2, k2, 0)))  # (B, C, H, W) -> (B, 2p, H, W); row r sees rows <= r
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # shift down one row: row r now sees rows < r only
        h_pre = F.conv2d(F.pad(h, (k2, 0, 0, 0)), self.h_conv.weight * self.h_mask, self.h_conv.bias)  # (B, 2p, H, W)
        h_pre = h_pre + self.v_to_h(v_down)  # the horizontal stack receives everything above
        if y is not None:
            v_pre = v_pre + self.v_cond(y).to(v_pre.dtype)[:, :, None, None]  # (B, 2p) -> (B, 2p, 1, 1)
            h_pre = h_pre + self.h_cond(y).to(h_pre.dtype)[:, :, None, None]  # a bias per image and channel
        v_out = gate(v_pre)  # (B, p, H, W)
        h_gated = gate(h_pre)  # (B, p, H, W)
        skip = self.h_skip(h_gated)
        h_out = self.h_out(h_gated) if self.first else h + self.h_out(h_gated)
        return v_out, h_out, skip


class GatedPixelCNN(ImageAutoregressiveModel):
    """Vertical and horizontal gated stacks (no blind spot), optional class conditioning, skip connections.

    Keyword arguments (all optional):

    ``image_shape``    (H, W) that ``sample`` draws by default; the convolutions take any size
    ``distribution``   ``"bernoulli"``: binary pixels, 1 logit each; ``"categorical"``: ``n_bins`` logits each
    ``n_bins``         grey levels of a categorical output (256 for 8-bit images); unused for Bernoulli
    ``channels``       feature maps p of each stack (the gates use 2p before tanh/sigmoid)
    ``kernel_size``    k (odd, >= 3): vertical (k//2+1) x k and horizontal 1 x (k//2+1) convolutions
    ``n_layers``       gated layers; the receptive field reaches 1 + n_layers*(kernel_size//2) rows up
    ``head_channels``  width of the 1x1 layers from the summed skip connections to the logits
    ``n_classes``      > 0: condition on a class label (one-hot -> a learned bias per layer); 0: unconditional
    ``check_values``   check that inputs lie in the support (one host sync per call on a GPU)
    """

    def __init__(self, *, image_shape: tuple[int, int] = (28, 28), distribution: str = "bernoulli",
                 n_bins: int = 256, channels: int = 64, kernel_size: int = 5, n_layers: int = 8,
                 head_channels: int = 128, n_classes: int = 0, check_values: bool = True) -> None:
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0 (0: unconditional), got {n_classes}")
        super().__init__(image_shape=image_shape, distribution=distribution, n_bins=n_bins, n_classes=n_classes,
                         check_values=check_values)
        _check_odd("kernel_size", kernel_size, 3)
        if channels < 1 or n_layers < 1 or head_channels < 1:
            raise ValueError(f"need channels, n_layers and head_channels >= 1; got channels={channels}, "
                             f"n_layers={n_layers}, head_channels={head_channels}")
        self.channels, self.kernel_size = channels, kernel_size
        self.n_layers, self.head_channels = n_layers, head_channels
        self.layers = nn.ModuleList(
            GatedLayer(1 if i == 0 else channels, channels, kernel_size, n_classes, i == 0) for i in range(n_layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, head_channels, 1),
                                  nn.ReLU(), nn.Conv2d(head_channels, self.n_outputs, 1))

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        reach = self.n_layers * (self.kernel_size // 2)
        return 1 + reach, reach, reach  # the vertical stack enters one row up, then k//2 rows per layer

    def net(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        if (y is None) != (self.n_classes == 0):
            raise ValueError(f"labels y are needed exactly when n_classes > 0 (n_classes={self.n_classes})")
        v, skip = h, 0
        for layer in self.layers:
            v, h, s = layer(v, h, y)  # (B, p, H, W) each
            skip = skip + s
        return self.head(skip)  # (B, p, H, W) -> (B, K, H, W)
