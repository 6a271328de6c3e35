r"""Autoencoders: linear (= PCA), deep (Hinton & Salakhutdinov, 2006), denoising and binary-code ones.

An autoencoder maps an input :math:`x \in \mathbb R^d` to a code :math:`z = f(x) \in \mathbb R^k`
(the encoder) and back to a reconstruction :math:`\hat x = g(z)` (the decoder), trained to make
the **squared error per image** :math:`\lVert x - g(f(x)) \rVert^2` small, summed over the
:math:`d` pixels and averaged over images. Pixels are in :math:`[0, 1]` (MNIST / 255): this is
the unit of Hinton & Salakhutdinov (2006), Fig. 2, who report about 3.0 for their deep
autoencoder against 13.9 for PCA with 30-D codes on MNIST (with RBM pretraining and their own
preprocessing).

**Linear autoencoder = PCA.** With :math:`f(x) = W_e x + b_e` and :math:`g(z) = W_d z + b_d`, every
minimum of the squared error has :math:`W_d W_e` equal to the orthogonal projector onto the
span of the top :math:`k` principal directions of the (centred) data (Baldi & Hornik, 1989):
the columns of :math:`W_d` span PCA's subspace. They are not the principal directions
themselves and need not be orthogonal: :math:`W_d = U_k C`, :math:`W_e = C^{-1} U_k^\top` for any
invertible :math:`C`, where gradient descent leaves it from the initialisation.

**Denoising** (Vincent et al., 2008): the encoder sees a corrupted :math:`\tilde x` (masking
noise: each input set to 0 with probability :math:`p`; additive Gaussian noise of std
:math:`\sigma`) and the loss compares :math:`g(f(\tilde x))` with the clean :math:`x`, so the code
must capture the dependencies between pixels rather than copy them.

**Binary codes** for semantic hashing (Salakhutdinov & Hinton, 2009): a logistic code layer
whose pre-activation gets Gaussian noise during training, which pushes the code units to
saturate at 0 or 1; at test time the code is thresholded at 0.5, giving bits.

Conventions: data are rows ``x`` of shape (B, d), float; an image batch (B, 1, H, W) with
:math:`HW = d` is flattened to rows. Reconstructions are (B, d) rows; codes are (B, k).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
"""The hidden layers' nonlinearity, by name."""

OUTPUTS = ("sigmoid", "linear")
"""The decoder's output: ``sigmoid`` for pixels in [0, 1], ``linear`` for real-valued data."""

CODES = ("linear", "sigmoid", "binary")
"""The code layer: ``linear`` (real codes), ``sigmoid`` (in (0, 1)), ``binary`` (bits at test time)."""

CORRUPTIONS = ("mask", "gaussian")
"""The kinds of :func:`corrupt`: masking noise (level = probability p) and additive Gaussian noise (level = std)."""


# ----------------------------------------------------------------------------- inputs


def as_rows(x: Tensor, n_features: int, name: str = "x") -> Tensor:
    """``x`` as rows (B, n_features): a float tensor (B, n_features) or (B, ...) whose trailing sizes multiply to it.

    Raises TypeError for a non-float tensor (uint8 MNIST must be scaled first: ``x.float() / 255``)
    and ValueError for a shape that does not hold ``n_features`` values per example.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with pixels in [0, 1], got dtype {x.dtype} "
                        "(uint8 MNIST: use x.float() / 255)")
    if x.dim() >= 2 and math.prod(x.shape[1:]) == n_features:
        return x.reshape(x.shape[0], n_features)  # (B, 1, H, W) -> (B, d)
    raise ValueError(f"{name} must have shape (B, {n_features}) or (B, ...) with {n_features} values per example, "
                     f"got {tuple(x.shape)}")


def check_unit_range(x: Tensor, name: str = "target") -> None:
    """A ValueError unless every value of ``x`` is finite and in [0, 1] (what a sigmoid output can reconstruct)."""
    inside = (x >= 0) & (x <= 1)  # False for NaN
    if not bool(inside.all()):
        bad = x[~inside]
        what = "non-finite" if not torch.isfinite(bad).all() else "outside [0, 1]"
        raise ValueError(f"{name} has values {what} (e.g. {bad[0].item():g}, range {x.min().item():g}.."
                         f"{x.max().item():g}); a sigmoid output reconstructs pixels in [0, 1] (MNIST / 255)")


def _squared_error(x_hat: Tensor, target: Tensor) -> Tensor:
    """Squared error per example, summed over the d values: (B, d), (B, d) -> (B,), at least float32."""
    dtype = torch.promote_types(x_hat.dtype, torch.float32)  # bf16 autocast outputs are summed in float32
    return (x_hat.to(dtype) - target.to(dtype)).pow(2).sum(dim=1)


def _reconstruction_loss(model: nn.Module, x: Tensor, target: Tensor | None, *, unit_range: bool) -> Tensor:
    """``||target - model(x)||^2`` per example (B,), ``target`` defaulting to ``x``; in [0, 1] if ``unit_range``."""
    x_hat = model(x)  # (B, d)
    target = as_rows(x if target is None else target, model.n_features, "target")
    if target.shape[0] != x_hat.shape[0]:
        raise ValueError(f"x and target must hold the same number of examples, got {x_hat.shape[0]} and "
                         f"{target.shape[0]}")
    if unit_range:
        check_unit_range(target)
    return _squared_error(x_hat, target)


def _check_size(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- corruption


def _level(value: object, name: str, *, upper: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (upper is not None and value > upper):
        bounds = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return float(value)


def _check_float(x: Tensor, who: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{who} corrupts a float tensor, got {got}")


def _draw(kind: str, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) or standard normal draws of ``x``'s shape, made on the generator's device, in float32."""
    device = generator.device if generator is not None else x.device
    draw = torch.rand if kind == "uniform" else torch.randn
    return draw(x.shape, generator=generator, device=device, dtype=torch.float32).to(x.device)


def mask_noise(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Masking noise (Vincent et al., 2008): each entry of ``x`` set to 0, independently, with probability ``p``.

    ``x`` is any float tensor; ``p`` in [0, 1]. Returns a new tensor of ``x``'s shape and dtype;
    ``generator`` (a ``torch.Generator``) makes the mask reproducible.
    """
    _check_float(x, "mask_noise")
    p = _level(p, "p", upper=1.0)
    keep = _draw("uniform", x, generator) >= p  # P(drop) = P(u < p) = p
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


def gaussian_noise(x: Tensor, sigma: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Additive isotropic Gaussian noise: ``x + sigma * eps`` with ``eps ~ N(0, I)``, not clipped to [0, 1].

    ``sigma`` >= 0 is the noise's standard deviation, in the units of ``x``.
    """
    _check_float(x, "gaussian_noise")
    sigma = _level(sigma, "sigma", upper=None)
    return x + sigma * _draw("normal", x, generator).to(x.dtype)


def check_corruption(kind: str, level: float) -> tuple[str, float]:
    """``(kind, level)`` checked: ``kind`` in ``CORRUPTIONS``, ``p`` in [0, 1] for masking, ``sigma`` >= 0 for noise."""
    if kind == "mask":
        return kind, _level(level, "p", upper=1.0)
    if kind == "gaussian":
        return kind, _level(level, "sigma", upper=None)
    raise ValueError(f"unknown corruption kind {kind!r}; expected one of {CORRUPTIONS}")


def corrupt(x: Tensor, kind: str, level: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``mask_noise(x, level)`` for ``kind="mask"``, ``gaussian_noise(x, level)`` for ``kind="gaussian"``."""
    kind, level = check_corruption(kind, level)
    noise = mask_noise if kind == "mask" else gaussian_noise
    return noise(x, level, generator=generator)


# ----------------------------------------------------------------------------- models


class Autoencoder(nn.Module):
    """A fully connected autoencoder: encoder ``sizes[0] -> ... -> sizes[-1]`` (the code), decoder mirrored.

    ``sizes``: layer widths from the input to the code, at least two; the default
    784-1000-500-250-30 is Hinton & Salakhutdinov's (2006) deep MNIST autoencoder.
    ``activation``: the hidden layers' nonlinearity, one of ``ACTIVATIONS`` (relu, elu, tanh,
    sigmoid). ``output``: ``"sigmoid"`` (reconstructions in (0, 1): targets must be in [0, 1]) or
    ``"linear"``. ``code``: the code layer, ``"linear"``, ``"sigmoid"`` or ``"binary"`` (a sigmoid
    code during training, thresholded at 0.5 in eval mode, so that ``forward`` then reconstructs
    from bits). ``code_noise``: std of the Gaussian noise added to the code's pre-activation in
    training mode (sigmoid and binary codes only; Salakhutdinov & Hinton's way to make the code
    units saturate, so that thresholding them loses little).
    """

    def __init__(self, *, sizes: Sequence[int] = (784, 1000, 500, 250, 30), activation: str = "relu",
                 output: str = "sigmoid", code: str = "linear", code_noise: float = 0.0) -> None:
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and code sizes, got {sizes}")
        for i, size in enumerate(sizes):
            _check_size(size, f"sizes[{i}]")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if code not in CODES:
            raise ValueError(f"code must be one of {CODES}, got {code!r}")
        code_noise = _level(code_noise, "code_noise", upper=None)
        if code_noise > 0 and code == "linear":
            raise ValueError("code_noise applies to code='sigmoid' or 'binary' (noise that saturates a logistic "
                             f"code); got code_noise={code_noise} with code='linear'")
        self.sizes, self.activation, self.output, self.code, self.code_noise = (
            sizes, activation, output, code, code_noise)
        self.encoder = self._stack(sizes)  # (B, d) -> (B, k): the code's pre-activation
        self.decoder = self._stack(sizes[::-1])  # (B, k) -> (B, d): the output's pre-activation

    def _stack(self, sizes: Sequence[int]) -> nn.Sequential:
        """Linear layers between ``sizes``, the activation after every one but the last; He-initialised.

        He et al. (2015): weights ~ N(0, gain^2 / fan_in), biases 0, with the gain of the activation
        that follows (sqrt 2 for ReLU and ELU, 1 for the code and output layers), so that the
        signal keeps its scale through the depth. Trained from scratch with Adam, the deep MNIST
        autoencoder starts several times faster than with PyTorch's default initialisation (test
        error 11.7 against 27.2 after 300 steps of 128 images).
        """
        gain = {"relu": "relu", "elu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}[self.activation]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            hidden = i < len(sizes) - 2
            layer = nn.Linear(a, b)
            nn.init.kaiming_normal_(layer.weight, nonlinearity=gain if hidden else "linear")
            nn.init.zeros_(layer.bias)
            layers.append(layer)
            if hidden:
                layers.append(ACTIVATIONS[self.activation]())
        return nn.Sequential(*layers)

    @property
    def n_features(self) -> int:
        """d, the size of an input row."""
        return self.sizes[0]

    @property
    def code_size(self) -> int:
        """k, the size of the code."""
        return self.sizes[-1]

    def _dtype(self) -> torch.dtype:
        return self.encoder[0].weight.dtype

    def code_preactivation(self, x: Tensor) -> Tensor:
        """The code layer's input, without noise: (B, d) or (B, 1, H, W) -> (B, k)."""
        return self.encoder(as_rows(x, self.n_features).to(self._dtype()))

    def encode(self, x: Tensor) -> Tensor:
        """The code of each example: (B, d) or (B, 1, H, W) -> (B, k).

        Sigmoid and binary codes get ``code_noise`` on their pre-activation in training mode; a
        binary code is 0/1 (float) in eval mode.
        """
        pre = self.code_preactivation(x)  # (B, k)
        if self.code == "linear":
            return pre
        if self.code == "binary" and not self.training:
            return (pre > 0).to(pre.dtype)  # sigmoid(pre) > 0.5
        if self.training and self.code_noise > 0:
            pre = pre + self.code_noise * torch.randn_like(pre)
        return torch.sigmoid(pre)

    def decode(self, z: Tensor) -> Tensor:
        """The reconstruction of each code: (B, k) -> (B, d)."""
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.code_size:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"codes must have shape (B, {self.code_size}), got {shape}")
        out = self.decoder(z.to(self._dtype()))  # (B, k) -> (B, d)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction ``decode(encode(x))``: (B, d) or (B, 1, H, W) -> (B, d)."""
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """Squared error per example ``||target - forward(x)||^2`` summed over the d values: (B,).

        ``target`` defaults to ``x``; a denoising autoencoder passes the corrupted input as ``x``
        and the clean one as ``target``. With a sigmoid output the target must be in [0, 1].
        """
        return _reconstruction_loss(self, x, target, unit_range=self.output == "sigmoid")

    @torch.no_grad()
    def binary_codes(self, x: Tensor) -> Tensor:
        """Bits of each example, the code thresholded at 0.5 without noise: (B, d) -> (B, k) bool."""
        if self.code == "linear":
            raise ValueError("binary_codes needs a logistic code (code='binary' or 'sigmoid'); this autoencoder's "
                             "code is linear")
        return self.code_preactivation(x) > 0  # sigmoid(pre) > 0.5


class LinearAutoencoder(nn.Module):
    """``x -> W_e x + b_e -> W_d z + b_d``: no nonlinearity, encoder and decoder weights untied.

    ``n_features``: d, the input size. ``code_size``: k, the code size (at most d).
    ``bias``: whether both layers have a bias (with biases the data need not be centred:
    the optimum subtracts the mean). Trained on the squared error it spans PCA's subspace
    (see the module's docstring); ``encoder.weight`` is (k, d), ``decoder.weight`` (d, k).
    """

    def __init__(self, *, n_features: int, code_size: int, bias: bool = True) -> None:
        super().__init__()
        _check_size(n_features, "n_features")
        _check_size(code_size, "code_size")
        if code_size > n_features:
            raise ValueError(f"code_size must be at most n_features={n_features}, got {code_size}")
        self.n_features, self.code_size = n_features, code_size
        self.encoder = nn.Linear(n_features, code_size, bias=bias)  # W_e (k, d)
        self.decoder = nn.Linear(code_size, n_features, bias=bias)  # W_d (d, k)

    def encode(self, x: Tensor) -> Tensor:
        """(B, d) -> (B, k): ``W_e x + b_e``."""
        return self.encoder(as_rows(x, self.n_features).to(self.encoder.weight.dtype))

    def decode(self, z: Tensor) -> Tensor:
        """(B, k) -> (B, d): ``W_d z + b_d``."""
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.code_size:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"codes must have shape (B, {self.code_size}), got {shape}")
        return self.decoder(z.to(self.decoder.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction ``decode(encode(x))``, (B, d)."""
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """Squared error per example ``||target - forward(x)||^2`` (``target`` defaults to ``x``): (B,)."""
        return _reconstruction_loss(self, x, target, unit_range=False)
