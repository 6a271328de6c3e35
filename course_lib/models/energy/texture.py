r"""A maximum-entropy texture model (topic 03): match a texture's filter-bank statistics.

A texture is what stays the same when one looks elsewhere in it: its **statistics**, spatial
averages of local measurements :math:`\Phi(x) = \frac{1}{|\Omega|}\sum_{u \in \Omega} \phi(x)(u)`,
not its pixels. Given the statistics :math:`\mu = \Phi(x_0)` of one example :math:`x_0`, the
maximum-entropy model with these moments is the Gibbs distribution
:math:`p_\theta(x) \propto e^{\theta \cdot \Phi(x)}` (Zhu, Wu & Mumford's FRAME, 1998); fitting
:math:`\theta` needs samples of it at every step. Two shortcuts make it practical:

* the **microcanonical** model (Portilla & Simoncelli 2000; Bruna & Mallat 2019): the uniform
  (maximum-entropy) distribution on the set :math:`\{x : \Phi(x) \approx \mu\}`, approximately
  sampled by descending the mismatch :math:`\|\Phi(x) - \mu\|^2` from white noise. Different
  noise gives different images with the same statistics;
* with Gaussian noise added after each step (``noise_std > 0``) the descent is a Langevin-type
  dynamics on the energy :math:`\|\Phi(x) - \mu\|^2`, which keeps exploring that set instead of
  stopping at the first point of it.

The statistics (:class:`FilterBank`): the pixel mean, variance, skewness and kurtosis; for each of
``n_scales x n_orientations`` complex, Gabor-like filters, the spatial mean of the magnitude
:math:`|x * g_f|` and of its square (the energy in that band and orientation, and how sparse it
is); the correlations of the magnitudes across filters (which filters respond together: edges and
blobs line up across scales and orientations); the image's autocorrelation at small lags. The
filters are Gaussian bumps in the Fourier plane, centred on the frequency :math:`\omega_f` of an
orientation and a scale (frequency halving from scale to scale), on one side only, so that the
response is analytic and its magnitude is the local energy of the band (a quadrature pair).
Filtering is done by FFT: a circular convolution, so that every statistic is exactly invariant
to circular shifts of the image.

Conventions: images are float grey levels (H, W), (B, H, W) or (B, 1, H, W), any size; frequencies
in radians per pixel (Nyquist = pi). :meth:`FilterBank.mismatch` is the relative RMS mismatch of
the statistics, each relative to its target value (or absolute, for those near 0 by nature:
skewness, correlations).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["TEXTURE_CROP", "FilterBank", "load_texture", "synthesize_texture"]

TEXTURE_CROP = (0, 347, 5, 80)
"""The lecture's texture: (image, top row, left column, size) of scikit-learn's sample photographs
(:func:`course_lib.data.load_sample_images`): 80x80 pixels of the foliage at the bottom left of
``china.jpg``, a stationary texture."""


def load_texture(crop: tuple[int, int, int, int] = TEXTURE_CROP) -> Tensor:
    """The texture crop ``(image, top, left, size)`` of the sample photographs: float32 (size, size) in [0, 1]."""
    from course_lib.data import load_sample_images

    index, top, left, size = crop
    images = load_sample_images()
    if not 0 <= index < len(images):
        raise ValueError(f"crop image index must be in [0, {len(images)}), got {index}")
    image = images[index]
    if size < 8 or top < 0 or left < 0 or top + size > image.shape[0] or left + size > image.shape[1]:
        raise ValueError(f"crop {crop} (image, top, left, size >= 8) does not fit in image {index} "
                         f"of shape {tuple(image.shape)}")
    return image[top:top + size, left:left + size].clone()


def _as_batch(images: Tensor) -> Tensor:
    """(H, W), (B, H, W) or (B, 1, H, W) -> (B, H, W), checked."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a tensor, got {type(images).__name__}")
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.dim() == 2:
        images = images[None]
    if images.dim() != 3:
        raise ValueError(f"images must be (H, W), (B, H, W) or (B, 1, H, W), got shape {tuple(images.shape)}")
    if images.shape[-1] < 8 or images.shape[-2] < 8:
        raise ValueError(f"images must be at least 8x8 pixels, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point grey levels, got {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
    return images


class FilterBank:
    """Oriented, multi-scale band-pass filters and the texture statistics built on them.

    Args:
        n_scales: number of scales; filter ``s`` is centred on the frequency ``max_frequency / 2**s``.
        n_orientations: orientations per scale, evenly spaced over [0, pi).
        max_frequency: centre frequency of the finest scale, in radians per pixel (< pi).
        bandwidth: the filters' radial width relative to their centre frequency (about an octave at 0.5).
        correlations: include the correlations of the filters' magnitudes (all pairs).
        max_lag: include the image's autocorrelation at lags up to this (0: none).

    ``statistics(images) -> (B, k)`` with ``k = len(bank.names)``; differentiable.
    """

    def __init__(self, *, n_scales: int = 3, n_orientations: int = 4, max_frequency: float = 0.7 * math.pi,
                 bandwidth: float = 0.5, correlations: bool = True, max_lag: int = 2) -> None:
        for name, value in (("n_scales", n_scales), ("n_orientations", n_orientations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 < max_frequency < math.pi:
            raise ValueError(f"max_frequency must be in (0, pi) radians per pixel, got {max_frequency!r}")
        if not 0 < bandwidth <= 1:
            raise ValueError(f"bandwidth must be in (0, 1], got {bandwidth!r}")
        if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 0:
            raise ValueError(f"max_lag must be a non-negative int, got {max_lag!r}")
        self.n_scales, self.n_orientations = n_scales, n_orientations
        self.max_frequency, self.bandwidth = float(max_frequency), float(bandwidth)
        self.correlations, self.max_lag = bool(correlations), max_lag
        self.frequencies = [self.max_frequency / 2**s for s in range(n_scales)]
        self.angles = [math.pi * o / n_orientations for o in range(n_orientations)]
        n_filters = n_scales * n_orientations
        # lags (dy, dx) of one half-plane: the autocorrelation is symmetric
        self.lags = [(dy, dx) for dy in range(max_lag + 1) for dx in range(-max_lag, max_lag + 1)
                     if dy > 0 or dx > 0]
        self._pairs = torch.triu_indices(n_filters, n_filters, 1) if self.correlations else None
        filters = [f"s{s}o{o}" for s in range(n_scales) for o in range(n_orientations)]
        self.names: list[str] = ["mean", "variance", "skewness", "kurtosis"]
        self.names += [f"|{f}| mean" for f in filters] + [f"|{f}|^2 mean" for f in filters]
        if self.correlations:
            self.names += [f"corr |{filters[i]}|,|{filters[j]}|" for i, j in self._pairs.T.tolist()]
        self.names += [f"autocorr {dy},{dx}" for dy, dx in self.lags]
        # statistics whose natural value can be near 0 are compared absolutely (see ``scales``)
        self._absolute = torch.tensor([n == "skewness" or n.startswith(("corr", "autocorr")) for n in self.names])
        self._cache: dict[tuple, Tensor] = {}

    def __repr__(self) -> str:
        return (f"FilterBank({self.n_scales} scales x {self.n_orientations} orientations, "
                f"{len(self.names)} statistics)")

    @property
    def n_filters(self) -> int:
        return self.n_scales * self.n_orientations

    def frequency_responses(self, height: int, width: int, *, device=None, dtype=torch.float32) -> Tensor:
        r"""The filters in the Fourier plane, (F, height, width) real, in the layout of ``torch.fft.fft2``.

        Filter ``(s, o)`` is :math:`\hat g(\omega) = \exp(-|\omega - \omega_{so}|^2 / (2 \sigma_s^2))`
        with :math:`\omega_{so} = f_s (\cos a_o, \sin a_o)` and :math:`\sigma_s =` ``bandwidth`` :math:`f_s`,
        except at :math:`\omega = 0`, where it is 0 (zero-mean filters). Neighbouring scales overlap:
        at ``bandwidth = 0.5`` a filter passes a grating of the next scale's frequency with
        :math:`e^{-1/2}` of its own gain, a grating 45 degrees off with :math:`e^{-1.17}`.
        """
        key = (height, width, str(device), dtype)
        if key not in self._cache:
            wy = 2 * math.pi * torch.fft.fftfreq(height, dtype=torch.float64)
            wx = 2 * math.pi * torch.fft.fftfreq(width, dtype=torch.float64)
            wy, wx = torch.meshgrid(wy, wx, indexing="ij")
            bank = []
            for f in self.frequencies:
                sigma = self.bandwidth * f
                for a in self.angles:
                    bank.append(torch.exp(-((wx - f * math.cos(a)) ** 2 + (wy - f * math.sin(a)) ** 2)
                                          / (2 * sigma**2)))
            bank = torch.stack(bank)
            bank[:, 0, 0] = 0.0  # zero mean: band-pass filters ignore the image's mean level
            self._cache[key] = bank.to(device=device, dtype=dtype)
        return self._cache[key]

    def spatial_filters(self, size: int = 33) -> Tensor:
        """The filters in space, complex (F, size, size) centred: real part even, imaginary part odd (for plots)."""
        responses = self.frequency_responses(size, size, dtype=torch.float64)
        return torch.fft.fftshift(torch.fft.ifft2(responses), dim=(-2, -1))

    def responses(self, images: Tensor) -> Tensor:
        """Complex responses (B, F, H, W) of the images (mean removed) to every filter, by circular convolution."""
        x = _as_batch(images)
        centred = x - x.mean(dim=(-2, -1), keepdim=True)
        g = self.frequency_responses(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
        return torch.fft.ifft2(torch.fft.fft2(centred)[:, None] * g)  # (B, H, W) -> (B, F, H, W)

    def statistics(self, images: Tensor) -> Tensor:
        """The texture statistics (B, k) of the images, in the order of ``self.names``; differentiable."""
        x = _as_batch(images)
        mean = x.mean(dim=(-2, -1))
        centred = x - mean[:, None, None]
        variance = centred.pow(2).mean(dim=(-2, -1))
        z = centred / variance.clamp_min(1e-12).sqrt()[:, None, None]
        stats = [mean[:, None], variance[:, None], z.pow(3).mean(dim=(-2, -1))[:, None],
                 z.pow(4).mean(dim=(-2, -1))[:, None]]
        g = self.frequency_responses(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
        spectrum = torch.fft.fft2(centred)  # (B, H, W) complex
        magnitude = torch.fft.ifft2(spectrum[:, None] * g).abs()  # (B, F, H, W)
        stats += [magnitude.mean(dim=(-2, -1)), magnitude.pow(2).mean(dim=(-2, -1))]
        if self.correlations:
            flat = magnitude.flatten(2)
            flat = flat - flat.mean(dim=-1, keepdim=True)
            flat = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            corr = flat @ flat.transpose(1, 2)  # (B, F, F) correlation coefficients
            stats.append(corr[:, self._pairs[0], self._pairs[1]])
        if self.lags:
            # circular autocorrelation by Wiener-Khinchin, normalised by the variance
            auto = torch.fft.ifft2(spectrum.abs().pow(2)).real / (x.shape[-2] * x.shape[-1])
            auto = auto / variance.clamp_min(1e-12)[:, None, None]
            stats.append(torch.stack([auto[:, dy % x.shape[-2], dx % x.shape[-1]] for dy, dx in self.lags], dim=1))
        return torch.cat(stats, dim=1)

    def scales(self, target_stats: Tensor) -> Tensor:
        """What a mismatch of each statistic is measured against: |target|, or 1 for skewness and correlations."""
        target_stats = torch.as_tensor(target_stats)
        absolute = self._absolute.to(target_stats.device)
        return torch.where(absolute, torch.ones_like(target_stats), target_stats.abs().clamp_min(1e-8))

    def mismatch(self, stats: Tensor, target_stats: Tensor) -> Tensor:
        """The relative RMS mismatch (B,) of statistics (B, k) with the target's (k,) or (1, k), per ``scales``."""
        target_stats = target_stats.reshape(-1)
        if stats.dim() != 2 or stats.shape[1] != len(self.names) or target_stats.numel() != len(self.names):
            raise ValueError(f"need statistics (B, {len(self.names)}) and a target ({len(self.names)},), got "
                             f"{tuple(stats.shape)} and {tuple(target_stats.shape)}")
        return ((stats - target_stats) / self.scales(target_stats)).pow(2).mean(dim=1).sqrt()


def synthesize_texture(target: Tensor, *, n_steps: int, lr: float = 0.02, noise_std: float = 0.0,
                       generator: torch.Generator | None = None, bank: FilterBank | None = None,
                       size: tuple[int, int] | None = None, n_samples: int = 1) -> tuple[Tensor, Tensor]:
    r"""Images whose statistics match ``target``'s: descent on the squared relative mismatch from white noise.

    Starts from Gaussian white noise with the target's mean and standard deviation and takes
    ``n_steps`` Adam steps of learning rate ``lr`` on the pixels, minimising the mean squared
    relative mismatch of :meth:`FilterBank.statistics` (see :meth:`FilterBank.mismatch`). With
    ``noise_std > 0``, Gaussian noise of that standard deviation is added to the pixels after every
    step (a Langevin-type exploration of the images with the target's statistics; the mismatch
    then settles at a level set by the noise instead of going to 0).

    Args:
        target: the texture, (H, W) grey levels.
        n_steps: gradient steps.
        lr: Adam's learning rate, in grey levels per step.
        noise_std: the standard deviation of the noise added after each step (0: plain descent).
        generator: the only randomness (the starting noise, the Langevin noise).
        bank: the statistics; default ``FilterBank()``.
        size: (height, width) of the synthesis; default the target's (any size works: the
            statistics are spatial averages).
        n_samples: how many images to synthesise at once, from different noise.

    Returns:
        ``(images, history)``: the syntheses, (H, W) when ``n_samples == 1`` else (n_samples, H, W),
        detached; and the relative RMS mismatch before each step and after the last, float64
        (n_steps + 1,) (the mean over the samples).
    """
    target = _as_batch(target)
    if target.shape[0] != 1:
        raise ValueError(f"target must be one image (H, W), got shape {tuple(target.shape)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a non-negative number, got {noise_std!r}")
    bank = bank if bank is not None else FilterBank()
    height, width = size if size is not None else tuple(target.shape[-2:])
    with torch.no_grad():
        target_stats = bank.statistics(target)[0]
        scales = bank.scales(target_stats)
    # the generator draws on the CPU (its device), then the noise moves to the target's device
    noise = torch.randn((n_samples, height, width), generator=generator, dtype=target.dtype)
    x = (target.mean() + target.std() * noise.to(target.device)).requires_grad_()
    optimizer = torch.optim.Adam([x], lr=lr)
    history = torch.empty(n_steps + 1, dtype=torch.float64)
    for step in range(n_steps + 1):
        relative = (bank.statistics(x) - target_stats) / scales  # (n_samples, k)
        loss = relative.pow(2).mean(dim=1)  # (n_samples,) squared relative RMS mismatch
        history[step] = float(loss.detach().sqrt().mean())
        if step == n_steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        if noise_std > 0:
            with torch.no_grad():
                x += noise_std * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    images = x.detach()
    return (images[0] if n_samples == 1 else images), history
