r"""Receptive fields measured with autograd: which input pixels can change one output.

For an autoregressive image model the output at pixel :math:`(i, j)` holds the logits of
:math:`p(x_{ij} \mid x_{<ij})`. The map

.. math::  M_{rc} = \sum_{\text{channels}} \Big| \frac{\partial \sum_k \mathrm{logits}_k(i, j)}{\partial x_{rc}} \Big|

is nonzero exactly where the output depends on the input (for generic weights): zero at
and after :math:`(i, j)` in raster order for a causal model, and zero in the blind spot of
a plain PixelCNN. The lecture draws it; the tests read causality from it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.models.pixelcnn import ImageAutoregressiveModel


def random_image(model: ImageAutoregressiveModel, image_shape: tuple[int, int],
                 generator: torch.Generator | None = None) -> Tensor:
    """One random image in the model's support, (1, 1, H, W): binary float or uniform grey levels."""
    H, W = image_shape
    if model.config.distribution == "bernoulli":
        return torch.randint(0, 2, (1, 1, H, W), generator=generator).float()
    return torch.randint(0, model.config.n_bins, (1, 1, H, W), generator=generator)


def receptive_field_map(model: ImageAutoregressiveModel, image_shape: tuple[int, int], pixel: tuple[int, int], *,
                        x: Tensor | None = None, y: int | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    """|d logits(pixel) / d input| summed over the logits and channels: a (H, W) tensor on the CPU.

    ``x`` (1, 1, H, W) in the data's format is the input at which the gradient is taken; by
    default a random image from :func:`random_image`. Gradients flow through the network's
    scaled input, so a categorical model's integer images work too. ``y`` is the class for a
    conditional model (default 0). Parameter gradients are left untouched.
    """
    H, W = int(image_shape[0]), int(image_shape[1])
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise ValueError(f"pixel {tuple(pixel)} lies outside the image of shape {(H, W)}")
    param = next(model.parameters())
    if x is None:
        x = random_image(model, (H, W), generator)
    elif x.shape != (1, 1, H, W):
        raise ValueError(f"x must have shape (1, 1, H, W) = {(1, 1, H, W)}, got {tuple(x.shape)}")
    labels = None
    if model.n_classes:
        labels = torch.tensor([0 if y is None else y], device=param.device)
    x = x.to(param.device)
    model.check_input(x, labels)
    with torch.enable_grad():
        h = model.scale_input(x).detach().requires_grad_(True)  # (1, 1, H, W) network input
        logits = model.net(h, labels)  # (1, K, H, W)
        (grad,) = torch.autograd.grad(logits[0, :, i, j].sum(), h)
    return grad.abs().sum(dim=(0, 1)).cpu()  # (1, 1, H, W) -> (H, W)
