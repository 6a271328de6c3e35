r"""Energy-based models with a neural energy: an MLP for 2-D points, a small convnet for MNIST.

An energy network :math:`E_\theta(x)` defines the density :math:`p_\theta(x) = e^{-E_\theta(x)} / Z_\theta`
with :math:`Z_\theta = \int e^{-E_\theta(x)}\,dx` (lower energy = more probable). The gradient of the
log-likelihood of data :math:`x^+` is

.. math::
    \nabla_\theta \log p_\theta(x^+) = -\nabla_\theta E_\theta(x^+) + \mathbb{E}_{x^- \sim p_\theta}
    [\nabla_\theta E_\theta(x^-)],

so training lowers the energy of data and raises that of the model's own samples :math:`x^-`,
drawn by Langevin dynamics (:func:`~course_lib.models.energy.sampling.sgld`, from a replay buffer
of past samples: Du & Mordatch, 2019; the task is :class:`course_lib.training.EBMTask`).

In two dimensions :math:`Z_\theta` can be summed on a grid, which gives the learned density in
nats and its distance to the truth: :func:`grid_log_density` normalises :math:`-E` on the cells of
a grid, :func:`grid_kl` is :math:`\mathrm{KL}(p_\text{true} \,\|\, p_\theta)` between two such grids.

For out-of-distribution detection the energy itself is the score (Du & Mordatch, 2019, Sec. 4.4):
inputs unlike the training data should get high energy. :func:`ood_scores` computes it in batches
and :func:`ood_auroc` measures how well it separates two sets (1 = perfectly, 0.5 = chance).

Conventions: 2-D points are rows (B, 2); MNIST images are float (B, 1, 28, 28) with intensities in
[0, 1] (``uint8 / 255``). Energies are (B,), in nats (a difference of energies is a log-ratio of
densities). Grids follow :func:`course_lib.plots.density_grid`: ``grid[i, j]`` is the cell whose
centre is ``(xs[j], ys[i])``, rows along :math:`x_2`, so ``plot_density_2d(log_p.exp(), range)``
draws it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_lib.models.energy.sampling import sgld, ula

__all__ = [
    "ACTIVATIONS",
    "ConvEnergy",
    "MLPEnergy",
    "grid_kl",
    "grid_log_density",
    "grid_points",
    "ood_auroc",
    "ood_scores",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus,
                                           "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}
"""The hidden nonlinearity, by name. Smooth ones (SiLU = Swish, ELU, softplus, tanh) give the smooth
input gradients that Langevin dynamics follows; ReLU's piecewise-constant gradient is left out."""

Range2D = tuple[tuple[float, float], tuple[float, float]]


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def _check_float(x: Tensor, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a float tensor, got dtype {x.dtype} (scale uint8 images: x.float() / 255)")


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _box(low: float, high: float) -> tuple[float, float]:
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low < high:
        raise ValueError(f"need low < high, got low={low!r}, high={high!r}")
    return float(low), float(high)


def _model_device(model: object) -> torch.device:
    """The device of a module's first parameter; the CPU for a plain callable or a module without parameters."""
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


# ----------------------------------------------------------------------------- 2-D points


class MLPEnergy(nn.Module):
    """An MLP energy for points in :math:`\\mathbb R^d`: (B, n_features) -> (B,).

    ``n_features -> hidden[0] -> ... -> hidden[-1] -> 1`` with the named smooth activation
    between the linear layers. ``input_shape`` is ``(n_features,)``.

    On eight Gaussians, ``hidden=(128, 128)`` trained by :class:`~course_lib.training.EBMTask` (20
    epochs of 20,000 points, batches of 256, Adam at 1e-2 with betas (0.9, 0.999) and cosine decay,
    alpha 0.01, 20 Langevin steps of size 0.01 with noise sqrt(0.02) from a buffer of 2,000, data
    noise 0.05) reaches KL(true || model) of 0.025 to 0.037 nats on a 100 x 100 grid over [-4, 4]^2
    (three seeds; 1.33 nats untrained) in about 25 s on one CPU thread.
    """

    def __init__(self, *, n_features: int = 2, hidden: Sequence[int] = (128, 128), activation: str = "silu") -> None:
        super().__init__()
        _positive_int(n_features, "n_features")
        hidden = tuple(hidden)
        if not hidden:
            raise ValueError("hidden must list at least one layer width, got ()")
        for k, width in enumerate(hidden):
            _positive_int(width, f"hidden[{k}]")
        self.n_features, self.hidden, self.activation = n_features, hidden, activation
        self.input_shape: tuple[int, ...] = (n_features,)
        layers: list[nn.Module] = []
        for d_in, d_out in zip((n_features, *hidden[:-1]), hidden, strict=True):
            layers += [nn.Linear(d_in, d_out), _activation(activation)]
        layers.append(nn.Linear(hidden[-1], 1))
        self.net = nn.Sequential(*layers)

    def energy(self, x: Tensor) -> Tensor:
        """:math:`E(x)` of each row: x (B, n_features) -> (B,)."""
        _check_float(x, "x")
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"MLPEnergy expects points (B, {self.n_features}), got shape {tuple(x.shape)}")
        return self.net(x).squeeze(-1)  # (B, 1) -> (B,)

    forward = energy

    def sample(self, n: int, *, n_steps: int = 500, step_size: float = 1e-3, low: float = -4.0, high: float = 4.0,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` points by ``n_steps`` of unadjusted Langevin dynamics from uniform noise on ``[low, high]^d``.

        ULA targets :math:`e^{-E}` up to a bias of order ``step_size`` (see
        :func:`~course_lib.models.energy.sampling.ula`); the chains are not clamped to the box.
        Returns float (n, n_features), detached, on the model's device.
        """
        _positive_int(n, "n")
        low, high = _box(low, high)
        device = _model_device(self)
        x0 = low + (high - low) * torch.rand(n, self.n_features, generator=generator, device=device)
        return ula(self.energy, x0, step_size=step_size, n_steps=n_steps, generator=generator).state


def grid_points(range: Range2D = ((-4.0, 4.0), (-4.0, 4.0)), n: int = 200) -> tuple[Tensor, Tensor, Tensor, float]:
    """The centres of an ``n`` x ``n`` grid of cells over ``range`` = ((xmin, xmax), (ymin, ymax)).

    Returns ``xs`` (n,), ``ys`` (n,), ``points`` float64 (n * n, 2) with ``points[i * n + j] = (xs[j], ys[i])``
    (rows along y, as :func:`course_lib.plots.density_grid`), and the cell area ``dx * dy``.
    """
    try:
        (x0, x1), (y0, y1) = range
        x0, x1, y0, y1 = float(x0), float(x1), float(y0), float(y1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"range must be ((xmin, xmax), (ymin, ymax)), got {range!r}") from exc
    if not (math.isfinite(x0 + x1 + y0 + y1) and x1 > x0 and y1 > y0):
        raise ValueError(f"range must be finite with xmin < xmax and ymin < ymax, got {range!r}")
    _positive_int(n, "n")
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    xs = x0 + dx * (torch.arange(n, dtype=torch.float64) + 0.5)
    ys = y0 + dy * (torch.arange(n, dtype=torch.float64) + 0.5)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [i, j] = (ys[i], xs[j])
    return xs, ys, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), dx * dy


@torch.no_grad()
def grid_log_density(energy: Callable[[Tensor], Tensor], *, range: Range2D = ((-4.0, 4.0), (-4.0, 4.0)),
                     n: int = 200, chunk: int = 16_384) -> tuple[Tensor, float]:
    r"""The density :math:`e^{-E} / Z` of a 2-D energy, normalised on the cells of a grid.

    :math:`E` is evaluated at the centres of the ``n`` x ``n`` cells of ``range`` (see
    :func:`grid_points`) and :math:`Z` is the Riemann sum :math:`\sum_{ij} e^{-E_{ij}}\,\Delta`
    over the cells (area :math:`\Delta`), so that the result integrates to one over ``range``:
    ``log_p.exp().sum() * cell_area == 1``. Mass outside ``range`` is left out of both models
    compared by :func:`grid_kl`.

    Args:
        energy: a callable (a model, or ``lambda x: -toy.log_prob(x)`` for a known density) mapping
            float points (M, 2), on the device of the model's parameters, to energies (M,).
            ``+inf`` (a density of zero) is allowed; NaN or ``-inf`` is an error.
        range: ((xmin, xmax), (ymin, ymax)).
        n: cells per side.
        chunk: points per call of ``energy``.

    Returns:
        ``log_p`` float64 (n, n) with ``log_p[i, j]`` at ``(xs[j], ys[i])`` (nats; ``-inf`` where the
        density is zero), and ``cell_area`` (float).
    """
    _, _, points, cell_area = grid_points(range, n)
    _positive_int(chunk, "chunk")
    device = _model_device(energy)
    values = []
    for block in points.split(chunk):
        e = energy(block.to(device=device, dtype=torch.float32))
        if not isinstance(e, Tensor) or e.shape != (len(block),):
            got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
            raise ValueError(f"energy must map points (M, 2) to energies (M,), got {got} for M = {len(block)}")
        values.append(e.detach().to(device="cpu", dtype=torch.float64))
    neg_energy = -torch.cat(values)
    if torch.isnan(neg_energy).any() or torch.isposinf(neg_energy).any():
        raise ValueError("energy returned NaN or -inf on the grid; a density of zero is energy +inf")
    if torch.isneginf(neg_energy).all():
        raise ValueError(f"energy is +inf on the whole grid over {range!r}: no mass to normalise")
    log_p = neg_energy - torch.logsumexp(neg_energy, dim=0) - math.log(cell_area)
    return log_p.reshape(n, n), cell_area


def grid_kl(log_p_true: Tensor, log_p_model: Tensor, cell_area: float) -> float:
    r""":math:`\mathrm{KL}(p \,\|\, q) = \sum_{ij} p_{ij} (\log p_{ij} - \log q_{ij})\,\Delta` in nats, on a grid.

    Both arguments are log-densities on the same cells (as :func:`grid_log_density` returns,
    each integrating to one); cells where :math:`p = 0` add nothing, and a cell where
    :math:`p > 0 = q` makes the divergence infinite. Returns a float :math:`\ge 0` (up to rounding).
    """
    for name, t in (("log_p_true", log_p_true), ("log_p_model", log_p_model)):
        _check_float(t, name)
        if t.dim() != 2:
            raise ValueError(f"{name} must be a grid (n, m) of log-densities, got shape {tuple(t.shape)}")
        if torch.isnan(t).any() or torch.isposinf(t).any():
            raise ValueError(f"{name} holds NaN or +inf; log-densities must be finite or -inf")
    if log_p_true.shape != log_p_model.shape:
        raise ValueError(f"the grids differ in shape: {tuple(log_p_true.shape)} and {tuple(log_p_model.shape)}")
    if isinstance(cell_area, bool) or not isinstance(cell_area, (int, float)) or not cell_area > 0:
        raise ValueError(f"cell_area must be a positive number, got {cell_area!r}")
    p_log, q_log = log_p_true.double().cpu(), log_p_model.double().cpu()
    for name, t in (("log_p_true", p_log), ("log_p_model", q_log)):
        mass = float(t.exp().sum() * cell_area)
        if abs(mass - 1.0) > 1e-3:
            raise ValueError(f"{name} must integrate to 1 over the grid (exp(log_p).sum() * cell_area), got "
                             f"{mass:.6g}: normalise it with grid_log_density")
    support = torch.isfinite(p_log)
    diff = p_log[support] - q_log[support]  # +inf where the model has no mass
    return float((p_log[support].exp() * diff).sum() * cell_area)


# ----------------------------------------------------------------------------- MNIST


class ConvEnergy(nn.Module):
    """A small convolutional energy for MNIST: (B, 1, 28, 28) in [0, 1] -> (B,).

    The architecture of the UvA deep-learning tutorial's MNIST energy model (Lippe, tutorial 8, which
    is ``channels=(16, 32, 64, 64)``), a small cousin of Du & Mordatch's (2019) ResNet: a 5x5
    convolution of stride 2 (padding 4: 28 -> 16 pixels), then 3x3 convolutions of stride 2
    (16 -> 8 -> 4 -> 2 -> 1) with ``channels[k]`` outputs each, the named smooth activation (Swish
    by default), and a two-layer head ``flatten -> channels[-1] -> 1`` on the last feature map.
    Trained by :class:`~course_lib.training.EBMTask` with ``channels=(16, 32, 32)``, 500 steps of
    64 images on one CPU thread (about 1.5 minutes) give digit-like samples in the replay buffer and
    an out-of-distribution AUROC of 1.00 for uniform noise against MNIST's test digits.

    Args:
        channels: output channels of each convolution, 1 to 5 of them.
        activation: a key of :data:`ACTIVATIONS`.
        spectral_norm: wrap every convolution and linear layer in spectral normalisation (Miyato
            et al., 2018), which bounds the network's Lipschitz constant and steadies long runs
            (Du & Mordatch use it); the power iteration's vectors are buffers, saved in checkpoints.
    """

    def __init__(self, *, channels: Sequence[int] = (32, 64, 64), activation: str = "silu",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        channels = tuple(channels)
        if not 1 <= len(channels) <= 5:
            raise ValueError(f"channels must list 1 to 5 convolution widths (28 -> 16 -> 8 -> 4 -> 2 -> 1 pixels), "
                             f"got {channels!r}")
        for k, width in enumerate(channels):
            _positive_int(width, f"channels[{k}]")
        self.channels, self.activation, self.spectral_norm = channels, activation, bool(spectral_norm)
        self.input_shape: tuple[int, ...] = (1, 28, 28)
        wrap = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(1, channels[0], 5, stride=2, padding=4)), _activation(activation)]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [wrap(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)), _activation(activation)]
        side = 16 // 2 ** (len(channels) - 1)  # 16, 8, 4, 2, 1
        layers += [nn.Flatten(), wrap(nn.Linear(channels[-1] * side * side, channels[-1])), _activation(activation),
                   wrap(nn.Linear(channels[-1], 1))]
        self.net = nn.Sequential(*layers)

    def energy(self, x: Tensor) -> Tensor:
        """:math:`E(x)` of each image: x float (B, 1, 28, 28), intensities in [0, 1] -> (B,)."""
        _check_float(x, "x")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"ConvEnergy expects MNIST images (B, 1, 28, 28), got shape {tuple(x.shape)}")
        return self.net(x).squeeze(-1)  # (B, 1) -> (B,)

    forward = energy

    def sample(self, n: int, *, n_steps: int = 60, step_size: float = 10.0, noise_std: float = 0.005,
               grad_clip: float | None = 0.03, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images by ``n_steps`` of SGLD from uniform noise, clamped to [0, 1].

        Short-run chains from noise, as in training but without the replay buffer: the buffer of a
        trained :class:`~course_lib.training.EBMTask` holds the better samples. The settings are
        those of :func:`~course_lib.models.energy.sampling.sgld`. Returns float (n, 1, 28, 28), detached.
        """
        _positive_int(n, "n")
        x0 = torch.rand(n, *self.input_shape, generator=generator, device=_model_device(self))
        return sgld(self.energy, x0, step_size=step_size, noise_std=noise_std, n_steps=n_steps, clamp=(0.0, 1.0),
                    grad_clip=grad_clip, generator=generator).state


# ----------------------------------------------------------------------------- out-of-distribution scores


@torch.no_grad()
def ood_scores(model: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = 1_000) -> Tensor:
    """The energy of each input as its out-of-distribution score (higher = less like the data): (B,) float.

    ``model`` is an energy (a model with ``energy``, or a callable x -> (B,)); ``x`` is moved to the
    model's device in batches of ``batch_size``, in eval mode. Returns the energies on the CPU.
    """
    _check_float(x, "x")
    _positive_int(batch_size, "batch_size")
    energy = model.energy if callable(getattr(model, "energy", None)) else model
    device = _model_device(model)
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    try:
        scores = [energy(block.to(device)).float().cpu() for block in x.split(batch_size)]
    finally:
        if was_training:
            model.train()
    return torch.cat(scores) if scores else torch.zeros(0)


def ood_auroc(scores_in: Tensor, scores_out: Tensor) -> float:
    r"""The area under the ROC curve of telling ``scores_out`` (positives) from ``scores_in`` by thresholding.

    It is the probability that an out-of-distribution input scores higher than an in-distribution
    one, ties counted half (the Mann-Whitney statistic): 1 for a perfect detector, 0.5 for chance,
    below 0.5 when the "out" inputs get *lower* energies. Both are 1-D float tensors, not empty.
    """
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        _check_float(s, name)
        if s.dim() != 1 or len(s) == 0:
            raise ValueError(f"{name} must be a non-empty 1-D tensor of scores, got shape {tuple(s.shape)}")
        if not torch.isfinite(s).all():
            raise ValueError(f"{name} holds NaN or inf")
    a, b = scores_in.double().cpu(), scores_out.double().cpu()
    both = torch.cat([a, b])
    # average ranks (1-based), ties sharing the mean of their ranks
    _, inverse, counts = torch.unique(both, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # the rank of the last copy of each distinct value
    mean_rank = last - (counts.double() - 1) / 2
    rank_sum_out = mean_rank[inverse[len(a):]].sum()
    u = rank_sum_out - len(b) * (len(b) + 1) / 2  # pairs (in, out) with out above in, ties half
    return float(u / (len(a) * len(b)))
