r"""Natural-image patches for sparse coding (topic 02): scikit-learn's two photographs, cut and whitened.

Olshausen & Field (1996) learned their dictionary on small patches of natural images whose
pixel correlations had been flattened first. Here:

``load_sample_images()``
    scikit-learn's photographs ``china.jpg`` and ``flower.jpg`` (427x640, shipped with
    scikit-learn, offline) as float32 grayscale (H, W) in [0, 1].
``extract_patches(images, n)``
    ``n`` random ``patch_size x patch_size`` patches, flattened row by row into (n, patch_size**2).
``ZCAWhitening``
    zero-phase component analysis whitening. With the covariance
    :math:`C = \frac{1}{N-1}\sum_i (x_i - \mu)(x_i - \mu)^\top = U \Lambda U^\top`,

    .. math:: W = U (\Lambda + \varepsilon I)^{-1/2} U^\top, \qquad z = W (x - \mu),

    so that :math:`\mathrm{Cov}(z) = U \Lambda (\Lambda + \varepsilon I)^{-1} U^\top \approx I`
    on every direction whose variance is well above :math:`\varepsilon` (the regulariser keeps
    the weak, noisy directions from being blown up). Of all the whitening matrices, the
    symmetric one is the closest to the identity, so a whitened patch still looks like a
    patch: edges stay in place, only sharpened.
``load_image_patches(n)``
    patches of the two photographs (halved in size) with each patch's mean (its DC component)
    removed, then ZCA-whitened: the data of the lecture's dictionary learning.

Removing each patch's mean projects the patches on the (d-1)-dimensional subspace orthogonal
to the constant patch :math:`\mathbf{1}`; their covariance has the eigenvalue 0 along
:math:`\mathbf{1}`, and the whitened covariance is the identity on that subspace,
:math:`I - \mathbf{1}\mathbf{1}^\top / d` (up to :math:`\varepsilon`), not on all of :math:`\mathbb{R}^d`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ZCAWhitening", "extract_patches", "load_image_patches", "load_sample_images"]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights of red, green and blue in the grey level (the JPEG convention)."""

DEFAULT_PATCH_EPS = 3e-3
"""The default ZCA regulariser of :func:`load_image_patches`, in squared grey levels of [0, 1]:
about the variance of the median component of 8x8 patches of the photographs halved in size
(their strongest has 0.1, their finest 1e-3). The strong, low-frequency components come out with
variance near 1 and the fine ones with about 0.25: whitening and a low-pass filter together, as in
Olshausen & Field's preprocessing, so that noise at the finest scales is not amplified into the atoms."""


@cache
def _sample_images_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images as sklearn_sample_images  # only this loader needs it

    rgb = sklearn_sample_images().images  # [(427, 640, 3) uint8, ...]: china, flower
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float64) / 255.0
    grey = tuple((image.astype(np.float64) @ weights).astype(np.float32) for image in rgb)
    for image in grey:
        image.setflags(write=False)
    return grey


def load_sample_images() -> list[Tensor]:
    """scikit-learn's two photographs (``china.jpg``, ``flower.jpg``) as grayscale images.

    Returns:
        a list of two float32 tensors (427, 640) with grey levels in [0, 1]
        (luma ``0.299 R + 0.587 G + 0.114 B`` of the 8-bit colours, divided by 255).
        Fresh tensors: the caller may modify them.
    """
    return [torch.from_numpy(image.copy()) for image in _sample_images_arrays()]


def _check_int(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _as_image_list(images: Tensor | Sequence[Tensor]) -> list[Tensor]:
    if isinstance(images, Tensor):
        if images.dim() == 2:
            return [images]
        if images.dim() == 3:
            return list(images.unbind(0))
        raise ValueError(
            f"images must be one (H, W) image, a stack (N, H, W) or a list of (H, W) images, "
            f"got a tensor of shape {tuple(images.shape)}"
        )
    images = list(images)
    if not images:
        raise ValueError("images is empty: extract_patches needs at least one (H, W) image")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor) or image.dim() != 2:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"images[{i}] must be a 2-D (H, W) grayscale tensor, got {shape}")
    return images


def extract_patches(
    images: Tensor | Sequence[Tensor],
    n: int,
    *,
    patch_size: int = 8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n`` square patches taken at random positions, uniformly over all positions of all images.

    Args:
        images: one (H, W) image, a stack (N, H, W), or a list of (H, W) images of any sizes,
            all on one device. Colour images must be converted to grey first.
        n: how many patches.
        patch_size: side p of a patch, in pixels; at most the smallest side of the images.
        generator: a ``torch.Generator`` (on the CPU) for the positions, for reproducible draws.

    Returns:
        (n, p * p): patch ``i`` flattened row by row (``patch.reshape(p, p)`` gives it back), in
        the images' floating dtype (float32 for integer images), on their device. A position
        is drawn with replacement: the same patch may come twice.
    """
    n = _check_int("n", n)
    p = _check_int("patch_size", patch_size)
    images = _as_image_list(images)
    too_small = [tuple(image.shape) for image in images if min(image.shape) < p]
    if too_small:
        raise ValueError(f"patch_size={p} is larger than an image of shape {too_small[0]}")
    device = images[0].device
    if any(image.device != device for image in images):
        raise ValueError("all images must be on one device")
    dtype = images[0].dtype if images[0].is_floating_point() else torch.float32
    # Every top-left corner of every image is a position; draw positions uniformly among them all.
    n_rows = torch.tensor([image.shape[0] - p + 1 for image in images])
    n_cols = torch.tensor([image.shape[1] - p + 1 for image in images])
    counts = n_rows * n_cols
    offsets = torch.cumsum(counts, 0) - counts  # first position of each image
    position = torch.randint(int(counts.sum()), (n,), generator=generator)  # (n,)
    which = torch.searchsorted(offsets, position, right=True) - 1  # (n,) image of each patch
    within = position - offsets[which]
    top, left = within // n_cols[which], within % n_cols[which]
    out = torch.empty(n, p * p, dtype=dtype, device=device)
    window = torch.arange(p)
    for k, image in enumerate(images):
        chosen = (which == k).nonzero().squeeze(1)  # (m,)
        if len(chosen) == 0:
            continue
        rows = (top[chosen, None, None] + window[None, :, None]).to(device)  # (m, p, 1)
        cols = (left[chosen, None, None] + window[None, None, :]).to(device)  # (m, 1, p)
        out[chosen.to(device)] = image[rows, cols].reshape(len(chosen), p * p).to(dtype)  # (m, p, p) -> (m, p*p)
    if not torch.isfinite(out).all():
        raise ValueError("the images contain NaN or inf values")
    return out


def _check_rows(name: str, x: Tensor, d: int | None = None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D tensor (B, d) of examples in rows, got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has {x.shape[1]} features per row, but the whitening was fitted on {d}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")


class ZCAWhitening:
    r"""ZCA whitening :math:`z = (x - \mu) W` with :math:`W = U (\Lambda + \varepsilon I)^{-1/2} U^\top`.

    ``fit(x, *, eps=1e-6)`` estimates, from the rows of ``x`` (B, d):

    * ``mean`` (d,): :math:`\mu`;
    * ``eigenvalues`` (d,), ascending, and ``eigenvectors`` (d, d), in columns: :math:`\Lambda, U`
      of the covariance :math:`C` (normalised by B - 1);
    * ``matrix`` (d, d): :math:`W`, symmetric (so rows or columns alike);
    * ``inverse_matrix`` (d, d): :math:`W^{-1} = U (\Lambda + \varepsilon I)^{1/2} U^\top`.

    ``eps`` (> 0) is in the units of the variances (squared data units). Directions whose
    variance is well above ``eps`` come out with variance close to 1 (exactly
    :math:`\lambda / (\lambda + \varepsilon)`); weaker ones are damped. The statistics are computed in
    float64 and kept in the dtype and on the device of the fitted data (``to`` moves them);
    ``transform`` and ``inverse_transform`` work in the dtype and on the device of their input.
    """

    def __init__(self) -> None:
        self.mean: Tensor | None = None
        self.matrix: Tensor | None = None
        self.inverse_matrix: Tensor | None = None
        self.eigenvalues: Tensor | None = None
        self.eigenvectors: Tensor | None = None
        self.eps: float | None = None

    def fit(self, x: Tensor, *, eps: float = 1e-6) -> ZCAWhitening:
        """Estimate the mean and whitening matrix from the rows of ``x`` (B, d), B >= 2; returns ``self``."""
        _check_rows("x", x)
        if x.shape[0] < 2:
            raise ValueError(f"fitting a whitening needs at least 2 examples, got {x.shape[0]}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        x64 = x.to(torch.float64)
        mean = x64.mean(0)  # (d,)
        centred = x64 - mean
        cov = centred.T @ centred / (x.shape[0] - 1)  # (d, d)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending, columns
        eigenvalues = eigenvalues.clamp_min(0.0)  # round-off can make a zero eigenvalue slightly negative
        scale = eigenvalues + eps
        matrix = (eigenvectors * scale.rsqrt()) @ eigenvectors.T  # U diag((lambda + eps)^-1/2) U^T
        inverse = (eigenvectors * scale.sqrt()) @ eigenvectors.T
        self.mean, self.matrix, self.inverse_matrix = (t.to(x.dtype) for t in (mean, matrix, inverse))
        self.eigenvalues, self.eigenvectors = eigenvalues.to(x.dtype), eigenvectors.to(x.dtype)
        self.eps = float(eps)
        return self

    def _fitted(self) -> tuple[Tensor, Tensor, Tensor]:
        if self.mean is None or self.matrix is None or self.inverse_matrix is None:
            raise RuntimeError("this ZCAWhitening is not fitted yet: call fit(x) first")
        return self.mean, self.matrix, self.inverse_matrix

    def transform(self, x: Tensor) -> Tensor:
        """Whitened rows ``(x - mean) @ matrix``, (B, d), in the dtype and on the device of ``x``."""
        mean, matrix, _ = self._fitted()
        _check_rows("x", x, len(mean))
        return (x - mean.to(x)) @ matrix.to(x)

    def inverse_transform(self, z: Tensor) -> Tensor:
        """Rows back in the original space, ``z @ inverse_matrix + mean``: ``inverse_transform(transform(x)) = x``."""
        mean, _, inverse = self._fitted()
        _check_rows("z", z, len(mean))
        return z @ inverse.to(z) + mean.to(z)

    def to(self, *args: Any, **kwargs: Any) -> ZCAWhitening:
        """Move the fitted statistics, as ``Tensor.to`` would (a dtype, a device, or both); returns ``self``."""
        self._fitted()
        for name in ("mean", "matrix", "inverse_matrix", "eigenvalues", "eigenvectors"):
            setattr(self, name, getattr(self, name).to(*args, **kwargs))
        return self

    def __repr__(self) -> str:
        if self.mean is None:
            return "ZCAWhitening(not fitted)"
        return f"ZCAWhitening(d={len(self.mean)}, eps={self.eps:g})"


def load_image_patches(
    n: int,
    *,
    patch_size: int = 8,
    whiten: bool = True,
    eps: float = DEFAULT_PATCH_EPS,
    downsample: int = 2,
    seed: int = 0,
) -> tuple[Tensor, ZCAWhitening | None]:
    """``n`` patches of scikit-learn's two photographs, each patch's mean removed, ZCA-whitened.

    Args:
        n: how many patches (drawn uniformly over the positions of both images).
        patch_size: side p of a patch; the patches have d = p * p features.
        whiten: fit a :class:`ZCAWhitening` on these patches and apply it.
        eps: its regulariser, in squared grey levels (the images are in [0, 1]).
        downsample: average the photographs over blocks of ``downsample x downsample`` pixels
            first (2: 213x320 images). This removes most of the sensor noise and JPEG's 8x8
            block artefacts, which whitening would otherwise turn into checkerboard atoms.
        seed: seeds the positions: the same seed gives the same patches.

    Returns:
        ``(patches, whitening)``: float32 (n, p * p), each row of mean zero (the DC component of
        every patch is removed before whitening, and ZCA keeps the constant direction, so
        whitened patches keep mean zero too), and the fitted whitening (``None`` when
        ``whiten`` is False), whose ``inverse_transform`` turns whitened patches or atoms back
        into grey levels (minus their mean).
    """
    factor = _check_int("downsample", downsample)
    images = [F.avg_pool2d(image[None, None], factor)[0, 0] for image in load_sample_images()]  # (H/f, W/f)
    patches = extract_patches(images, n, patch_size=patch_size, generator=torch.Generator().manual_seed(int(seed)))
    patches = patches.double()  # in float64: the weak directions are scaled up by up to eps ** -1/2
    patches = patches - patches.mean(dim=1, keepdim=True)  # remove each patch's DC component
    if not whiten:
        return patches.float(), None
    if n < 2:
        raise ValueError(f"whitening needs at least 2 patches, got n={n}")
    zca = ZCAWhitening().fit(patches, eps=eps)
    return zca.transform(patches).float(), zca.to(torch.float32)
