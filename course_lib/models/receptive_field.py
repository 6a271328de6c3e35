r"""Receptive fields measured with autograd: which input pixels can change one output.

For a model that maps an image to outputs at every pixel, the map

.. math::  M_{rc} = \sum_{\text{channels}} \Big| \frac{\partial \sum_k \mathrm{out}_k(i, j)}{\partial x_{rc}} \Big|

is nonzero exactly where the output at :math:`(i, j)` depends on the input (for generic
weights). For an autoregressive image model the outputs are the logits of
:math:`p(x_{ij} \mid x_{<ij})`, so the map is zero at and after :math:`(i, j)` in raster order
(causality), and zero in the blind spot of a plain PixelCNN. The lecture draws it; the tests
read causality from it.

**Why this module sits beside the families, not inside one.** The map is an analysis of any
model by input gradients, not a part of one kind of model: today it checks the PixelCNNs'
causality, and the same function measures how local a convolutional encoder or decoder, a
flow's coupling layer or a critic is. It asks only this of a model:

* ``model(x)`` maps a float image (1, C, H, W) to outputs (1, K, H, W); or
* for a model of discrete data, which cannot be differentiated in ``x`` itself, the pair
  ``scale_input(x) -> h`` (the network's float input) and ``net(h, y) -> outputs``, as the
  autoregressive image models have; the gradient is then taken with respect to ``h``. Such a
  model may also define ``check_input(x, y)``, ``n_classes`` (> 0: class-conditional) and
  ``distribution``/``n_bins`` (the data's support, for :func:`random_image`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def random_image(model: nn.Module, image_shape: tuple[int, int], *,
                 generator: torch.Generator | None = None) -> Tensor:
    """One random image in the model's support, (1, C, H, W), C = 1 unless the model says ``in_channels``.

    Binary floats for a ``distribution == "bernoulli"`` model, uniform grey levels in
    ``[0, n_bins)`` for a ``"categorical"`` one, standard normal floats for any other model.
    """
    H, W = image_shape
    distribution = getattr(model, "distribution", None)
    if distribution == "bernoulli":
        return torch.randint(0, 2, (1, 1, H, W), generator=generator).float()
    if distribution == "categorical":
        return torch.randint(0, model.n_bins, (1, 1, H, W), generator=generator)
    channels = getattr(model, "in_channels", 1)
    return torch.randn(1, channels, H, W, generator=generator)


def receptive_field_map(model: nn.Module, image_shape: tuple[int, int], pixel: tuple[int, int], *,
                        x: Tensor | None = None, y: int | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    """|d outputs(pixel) / d input| summed over the outputs and channels: a (H, W) tensor on the CPU.

    ``x`` (1, C, H, W) in the data's format is the input at which the gradient is taken; by
    default a random image from :func:`random_image`. A model with ``scale_input``/``net`` is
    differentiated at its scaled input, so a categorical model's integer images work too.
    ``y`` is the class for a conditional model (default 0). Parameter gradients are left untouched.
    """
    H, W = int(image_shape[0]), int(image_shape[1])
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise ValueError(f"pixel {tuple(pixel)} lies outside the image of shape {(H, W)}")
    param = next(model.parameters())
    if x is None:
        x = random_image(model, (H, W), generator=generator)
    elif x.dim() != 4 or x.shape[0] != 1 or tuple(x.shape[2:]) != (H, W):
        raise ValueError(f"x must be one image of shape (1, 1, H, W) = {(1, 1, H, W)} (or (1, C, H, W) with C "
                         f"channels), got {tuple(x.shape)}")
    labels = None
    if getattr(model, "n_classes", 0):
        labels = torch.tensor([0 if y is None else y], device=param.device)
    elif y is not None:
        raise ValueError(f"{type(model).__name__} is unconditional but a class y={y} was given")
    x = x.to(param.device)
    if hasattr(model, "check_input"):
        model.check_input(x, labels)
    reads_scaled_input = hasattr(model, "scale_input") and hasattr(model, "net")
    with torch.enable_grad():
        if reads_scaled_input:
            h = model.scale_input(x).detach().requires_grad_(True)  # (1, C, H, W) network input
            out = model.net(h, labels)  # (1, K, H, W)
        else:
            h = x.to(param.dtype).detach().requires_grad_(True)
            out = model(h)  # (1, K, H, W)
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), h)
    return grad.abs().sum(dim=(0, 1)).cpu()  # (1, C, H, W) -> (H, W)
