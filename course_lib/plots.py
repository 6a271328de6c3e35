"""Figures of the course: image grids, training curves, densities, samples and receptive fields.

Every function draws into ``ax`` when given one, else into a new figure, and returns the
:class:`~matplotlib.figure.Figure`. New figures are made without ``pyplot``: nothing is
shown by a side effect, no GUI is needed (safe on headless machines and under
papermill), and a figure appears in a notebook exactly once, as the value of the cell
(``fig = image_grid(...)``, then ``fig`` or ``display(fig)``; ``fig.savefig(...)`` to file).

Arrays may be NumPy arrays or torch tensors (on any device; they are copied to the CPU).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib.results import markdown_table

__all__ = [
    "CourseFigure",
    "density_grid",
    "filter_grid",
    "image_grid",
    "image_rows",
    "make_grid",
    "new_figure",
    "plot_density_1d",
    "plot_density_2d",
    "plot_receptive_field",
    "plot_samples_2d",
    "plot_training_curves",
    "results_table",
]

Range2D = tuple[tuple[float, float], tuple[float, float]]


def _numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be an array or a tensor, got {type(x).__name__}") from exc


class CourseFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in Jupyter, whatever the backend.

    Figures made without ``pyplot`` have no display hook until ``pyplot`` is imported;
    ``_repr_png_`` lets IPython draw them in any case (once, as the value of a cell).
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A new :class:`CourseFigure` (constrained layout), not registered with ``pyplot``."""
    kwargs.setdefault("layout", "constrained")
    return CourseFigure(figsize=figsize, **kwargs)


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


# ----------------------------------------------------------------------------- image grids


def _images_nchw(images: Any) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) with C in {1, 3} -> float (N, C, H, W) in [0, 1]."""
    arr = _numpy(images, "images")
    if arr.ndim == 3:
        arr = arr[:, None]  # (N, H, W) -> (N, 1, H, W)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or arr.shape[0] == 0:
        raise ValueError(
            f"images must have shape (N, C, H, W) with C = 1 or 3, or (N, H, W), and N >= 1; "
            f"got shape {tuple(np.shape(images))}"
        )
    return arr


def _to_unit_range(arr: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Pixel values -> [0, 1]: uint8 / 255, floats in [0, 1] as they are, others by ``value_range`` or min-max."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if value_range is None:
        if arr.dtype == np.uint8:
            value_range = (0.0, 255.0)
        else:
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            value_range = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
    lo, hi = value_range
    if not hi > lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((arr.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def make_grid(
    images: Any,
    nrow: int | None = None,
    *,
    padding: int = 1,
    pad_value: float = 0.5,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Tile N images into one array, ``nrow`` images per row (default: about square).

    Args:
        images: (N, C, H, W) with C = 1 or 3, or (N, H, W); uint8 in [0, 255], floats in
            [0, 1], or any floats (scaled by ``value_range``, default their min and max).
        nrow: images per row; the grid has ``ceil(N / nrow)`` rows, empty cells filled with ``pad_value``.
        padding: pixels between images and around the grid.
        pad_value: the colour (in [0, 1]) of the padding.

    Returns:
        float32 array in [0, 1] of shape (rows (H + p) + p, nrow (W + p) + p) for C = 1, or with a
        trailing 3 for RGB. Image ``k`` sits at row ``k // nrow``, column ``k % nrow``.
    """
    arr = _to_unit_range(_images_nchw(images), value_range)
    n, c, h, w = arr.shape
    ncol = max(1, math.ceil(math.sqrt(n))) if nrow is None else int(nrow)
    if ncol <= 0:
        raise ValueError(f"nrow must be a positive int, got {nrow!r}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    ncol = min(ncol, n)
    rows = math.ceil(n / ncol)
    p = padding
    grid = np.full((c, rows * (h + p) + p, ncol * (w + p) + p), pad_value, dtype=np.float32)
    for k in range(n):
        r, col = divmod(k, ncol)
        top, left = p + r * (h + p), p + col * (w + p)
        grid[:, top : top + h, left : left + w] = arr[k]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)  # (C, H', W') -> (H', W') or (H', W', 3)


def image_grid(
    images: Any,
    nrow: int | None = None,
    *,
    title: str | None = None,
    ax: Axes | None = None,
    padding: int = 1,
    pad_value: float = 0.5,
    value_range: tuple[float, float] | None = None,
    cmap: str = "gray",
    scale: float = 1.0,
) -> Figure:
    """Show N images as one grid (see :func:`make_grid` for the arguments); returns the figure.

    ``scale`` multiplies the size of a new figure (about 2 cm per 28-pixel image).
    """
    grid = make_grid(images, nrow, padding=padding, pad_value=pad_value, value_range=value_range)
    height, width = grid.shape[:2]
    inches = scale * min(10.0, max(2.0, width / 35.0))
    fig, ax = _figure_and_axes(ax, (inches, inches * height / width + (0.35 if title else 0.0)))
    ax.imshow(grid, cmap=cmap if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def filter_grid(
    filters: Any,
    image_shape: tuple[int, int] | None = None,
    *,
    nrow: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    padding: int = 1,
    scale: float = 1.0,
) -> Figure:
    """Signed filters (dictionary atoms, a layer's weights) as a grid of small images; returns the figure.

    ``filters`` is (K, H, W), or (K, D) with ``image_shape`` = (H, W) and ``H * W = D``: one
    filter per row. A dictionary ``D`` (d, K) with atoms as columns is shown with
    ``filter_grid(D.T, (8, 8))``, the first layer of an encoder (hidden, 784) with
    ``filter_grid(W, (28, 28))``. Each filter is drawn at its own scale, symmetric about zero:
    ``0.5 + f / (2 max|f|)``, so that zero is mid-grey, positive weights light and negative
    ones dark, whatever the filter's norm (an all-zero filter is uniform grey).

    Raises:
        ValueError: a wrong shape, an ``image_shape`` that does not match D, or a non-finite value.
    """
    arr = _numpy(filters, "filters").astype(np.float64)
    if arr.ndim == 2:
        if image_shape is None:
            side = math.isqrt(arr.shape[1])
            if side * side != arr.shape[1]:
                raise ValueError(f"filters of shape (K, D) = {arr.shape} need image_shape=(H, W) with H * W = "
                                 f"{arr.shape[1]} (D is not a square)")
            image_shape = (side, side)
        h, w = (int(v) for v in image_shape)
        if h * w != arr.shape[1]:
            raise ValueError(f"image_shape {tuple(image_shape)} holds {h * w} values but each filter has "
                             f"{arr.shape[1]} (filters of shape {arr.shape})")
        arr = arr.reshape(-1, h, w)
    elif arr.ndim != 3 or (image_shape is not None and tuple(image_shape) != arr.shape[1:]):
        raise ValueError(f"filters must have shape (K, D) with image_shape=(H, W), or (K, H, W); got shape "
                         f"{arr.shape}" + (f" with image_shape {tuple(image_shape)}" if image_shape else ""))
    if arr.shape[0] == 0:
        raise ValueError("filter_grid needs at least one filter, got 0")
    if not np.all(np.isfinite(arr)):
        raise ValueError("filters hold NaN or inf values")
    peak = np.abs(arr).reshape(len(arr), -1).max(axis=1)  # (K,) each filter's largest magnitude
    shown = 0.5 + arr / (2.0 * np.where(peak > 0, peak, 1.0))[:, None, None]  # (K, H, W) in [0, 1]
    return image_grid(shown, nrow, title=title, ax=ax, padding=padding, pad_value=0.0, value_range=(0.0, 1.0),
                      scale=scale)


def image_rows(
    rows: Mapping[str, Any],
    *,
    title: str | None = None,
    ax: Axes | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    padding: int = 1,
    scale: float = 1.0,
) -> Figure:
    """Rows of images with a label on the left of each: data above its reconstructions, for example.

    ``rows`` maps a label to N images ((N, C, H, W) or (N, H, W)); every row must hold the
    same number of images of the same shape, the k-th image of each row in the k-th column.
    All rows share one ``value_range`` (default [0, 1]; values outside it are clipped), so that
    a reconstruction is drawn on the scale of the data it reconstructs.
    """
    if not rows:
        raise ValueError("image_rows needs at least one row")
    arrays = {label: _images_nchw(images) for label, images in rows.items()}
    shapes = {label: a.shape for label, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError("every row must hold the same number of images of the same shape; got "
                         + ", ".join(f"{label!r}: {shape}" for label, shape in shapes.items()))
    n, _, h, _ = next(iter(shapes.values()))
    grid_fig = image_grid(np.concatenate(list(arrays.values())), n, title=title, ax=ax, padding=padding,
                          value_range=value_range, scale=scale)
    axes = ax if ax is not None else grid_fig.axes[0]
    axes.set_axis_on()
    axes.set_xticks([])
    axes.set_yticks([padding + r * (h + padding) + (h - 1) / 2 for r in range(len(arrays))], list(arrays))
    axes.tick_params(axis="y", length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    return grid_fig


# ----------------------------------------------------------------------------- training curves


def _as_history(h: Any) -> Any:
    """A likelihood ``History`` or a general ``TrainHistory``, from itself or its ``to_dict()``."""
    if isinstance(h, Mapping):
        from course_lib.training import History, TrainHistory

        return TrainHistory.from_dict(h) if "step_values" in h else History.from_dict(dict(h))
    if hasattr(h, "step_values") and hasattr(h, "epoch_means") and hasattr(h, "eval_values"):
        return h
    if hasattr(h, "train_nats") and hasattr(h, "test_nats"):
        return h
    raise TypeError(f"expected a training History or TrainHistory (or its to_dict()), got {type(h).__name__}")


def plot_training_curves(
    histories: Any,
    unit: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    ylim: str | tuple[float, float] | None = "auto",
    quantities: Sequence[str] | None = None,
) -> Figure:
    """Training curves of one run or a list of runs, against epochs.

    Per run, in one colour: the value of every step (faint), the mean over each epoch
    (solid, at the middle of the epoch it averages over) and the evaluation (dashed, from
    epoch 0, before training).

    * A likelihood :class:`~course_lib.training.History` (from ``fit``) gives one panel: the
      training and test NLL in ``unit`` ``"nats"`` (per example, the default) or ``"bpd"``
      (bits per dimension).
    * A :class:`~course_lib.training.TrainHistory` (from ``train``) gives one panel per
      quantity, logged or evaluated, in the task's own units; a quantity that is both logged
      and evaluated shares its panel. ``quantities`` chooses and orders the panels.

    ``ylim="auto"`` zooms on the learned part, leaving the first steps' large values out of
    view; ``None`` lets matplotlib choose. ``ax`` draws a single panel into given axes.
    """
    runs = [histories] if not isinstance(histories, (list, tuple)) else list(histories)
    if not runs:
        raise ValueError("plot_training_curves needs at least one History")
    runs = [_as_history(h) for h in runs]
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"got {len(labels)} labels for {len(runs)} histories")
    general = [hasattr(h, "step_values") for h in runs]
    if any(general) and not all(general):
        raise TypeError("plot_training_curves got both likelihood Histories (from fit) and TrainHistories; plot apart")
    if all(general):
        if unit is not None:
            raise ValueError(
                f"unit={unit!r} converts likelihood Histories (from fit); a TrainHistory's quantities keep their units"
            )
        return _plot_general_curves(runs, labels, ax, title, ylim, quantities)
    if quantities is not None:
        raise ValueError("quantities chooses the panels of a TrainHistory; a likelihood History has one panel")
    unit = "nats" if unit is None else unit
    if unit not in ("nats", "bpd"):
        raise ValueError(f"unit must be 'nats' or 'bpd', got {unit!r}")
    fig, ax = _figure_and_axes(ax, (6.0, 3.8))
    focus: list[float] = []
    for k, h in enumerate(runs):
        label = labels[k] if labels is not None else (h.model_name or f"run {k + 1}")
        factor = 1.0 if unit == "nats" else 1.0 / (h.n_dims * math.log(2.0))
        steps = np.asarray(h.step_losses, dtype=float) * factor
        train = np.asarray(h.train_nats, dtype=float) * factor
        test = np.asarray(h.test_nats, dtype=float) * factor
        x_steps = _step_positions(h.steps_per_epoch, len(steps))
        focus += _draw_run(ax, f"C{k % 10}", x_steps, steps, train, test, f"{label} train", f"{label} test")
    ax.set_ylabel("NLL (nats per example)" if unit == "nats" else "NLL (bits per dimension)")
    _finish_panel(ax, focus, ylim)
    if title:
        ax.set_title(title)
    return fig


def _plot_general_curves(runs, labels, ax, title, ylim, quantities) -> Figure:
    """One panel per quantity of TrainHistories: its steps, epoch means and evaluations."""
    available = list(dict.fromkeys(q for h in runs for q in h.quantities))
    panels = available if quantities is None else list(quantities)
    unknown = [q for q in panels if q not in available]
    if unknown:
        raise ValueError(f"no quantity named {unknown[0]!r} in the histories; they hold {available}")
    if not panels:
        raise ValueError("the histories hold no logged or evaluated quantity to plot")
    if ax is not None and len(panels) != 1:
        raise ValueError(f"ax draws one panel, but there are {len(panels)}: {panels}; pass quantities=[one of them]")
    if ax is not None:
        fig, axes = ax.get_figure(root=True), [ax]
    else:
        ncols = min(3, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig = new_figure((4.4 * ncols, 3.2 * nrows))
        axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
        for extra in axes[len(panels) :]:
            extra.remove()
    for q, panel in zip(panels, axes, strict=False):
        focus: list[float] = []
        for k, h in enumerate(runs):
            label = labels[k] if labels is not None else (h.task_name or f"run {k + 1}")
            steps = np.asarray(h.step_values.get(q, []), dtype=float)
            numbers = np.asarray(h.step_numbers.get(q, []), dtype=int)  # global steps, 1-based
            x_steps = _step_positions(h.steps_per_epoch, h.global_step)[numbers - 1]
            means = np.asarray(h.epoch_means.get(q, []), dtype=float)
            evals = np.asarray(h.eval_values.get(q, []), dtype=float)
            focus += _draw_run(panel, f"C{k % 10}", x_steps, steps, means, evals, f"{label} train", f"{label} eval")
        panel.set_title(q)
        _finish_panel(panel, focus, ylim)
    if title:
        fig.suptitle(title)
    return fig


def _draw_run(ax: Axes, color: str, x_steps, steps, train, test, train_label: str, test_label: str) -> list[float]:
    """A run's step values (faint), epoch means (solid) and evaluations (dashed); the values to zoom on."""
    if len(steps):
        ax.plot(x_steps, steps, color=color, alpha=0.25, linewidth=0.8)
    if len(train):
        ax.plot(np.arange(1, len(train) + 1) - 0.5, train, color=color, marker="o", markersize=3, label=train_label)
    if len(test):
        ax.plot(np.arange(len(test)), test, color=color, linestyle="--", marker="s", markersize=3, label=test_label)
    return list(train) + list(test[1:] if len(train) else test) + list(steps[len(steps) // 5 :])


def _finish_panel(ax: Axes, focus: list[float], ylim: str | tuple[float, float] | None) -> None:
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    finite = np.asarray([v for v in focus if math.isfinite(v)])
    if isinstance(ylim, tuple):
        ax.set_ylim(*ylim)
    elif ylim == "auto" and finite.size:
        lo, hi = float(finite.min()), float(np.percentile(finite, 99))
        margin = 0.1 * (hi - lo) if hi > lo else 0.05 * abs(hi) + 1e-6
        ax.set_ylim(lo - margin, hi + margin)


def _step_positions(steps_per_epoch: Sequence[int], n_steps: int) -> np.ndarray:
    """x of every step in epochs: step i of epoch e (1-based, n steps) sits at e - 1 + i / n."""
    xs = [e + (i + 1) / n for e, n in enumerate(steps_per_epoch) for i in range(n)]
    if len(xs) != n_steps:  # no per-epoch step counts: spread evenly
        return np.linspace(0, max(1, len(steps_per_epoch)), n_steps + 1)[1:]
    return np.asarray(xs)


# ----------------------------------------------------------------------------- 1-D densities


def plot_density_1d(
    probs: Any = None,
    samples: Any = None,
    *,
    support: Any = None,
    bins: int | Sequence[float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    labels: tuple[str, str] = ("model", "samples"),
) -> Figure:
    """A probability mass function as bars, against the empirical frequencies of samples.

    Args:
        probs: (K,) pmf over ``support`` (default 0..K-1); non-negative, summing to 1.
        samples: (N,) draws. With ``probs``, or when integer-valued, they are counted on the
            same support (frequencies, side by side with the pmf); otherwise a density histogram.
        support: (K,) the values of the pmf's outcomes.
        bins: bins of the histogram of non-integer samples.
    """
    if probs is None and samples is None:
        raise ValueError("plot_density_1d needs probs, samples or both")
    fig, ax = _figure_and_axes(ax, (6.0, 3.2))
    pmf = None
    if probs is not None:
        pmf = _numpy(probs, "probs").astype(float)
        if pmf.ndim != 1 or pmf.size == 0:
            raise ValueError(f"probs must be a pmf of shape (K,), got shape {pmf.shape}")
        if not np.all(np.isfinite(pmf)) or (pmf < 0).any():
            raise ValueError("probs must be finite and non-negative")
        if abs(pmf.sum() - 1.0) > 1e-3:
            raise ValueError(f"probs must sum to 1 (a pmf), got sum {pmf.sum():.6g}; normalise them first")
    xs = None
    if support is not None:
        xs = _numpy(support, "support").astype(float)
        if pmf is not None and xs.shape != pmf.shape:
            raise ValueError(f"support has shape {xs.shape} but probs has shape {pmf.shape}")
    draws = None
    if samples is not None:
        draws = _numpy(samples, "samples").astype(float).reshape(-1) if np.ndim(samples) <= 1 else None
        if draws is None:
            raise ValueError(f"samples must have shape (N,), got shape {tuple(np.shape(samples))}")
    discrete = draws is not None and (pmf is not None or np.all(draws == np.round(draws)))
    width = 0.8
    if pmf is not None:
        xs = np.arange(pmf.size, dtype=float) if xs is None else xs
        width = 0.8 * (float(np.min(np.diff(np.sort(xs)))) if xs.size > 1 else 1.0)
    if pmf is not None:
        shift = -width / 4 if discrete else 0.0
        ax.bar(xs + shift, pmf, width=width / 2 if discrete else width, color="C0", alpha=0.8, label=labels[0])
    if draws is not None and discrete:
        if xs is None:
            xs = np.arange(draws.min(), draws.max() + 1)
            width = 0.8
        index = {v: i for i, v in enumerate(xs.tolist())}
        unknown = sorted({v for v in np.unique(draws).tolist() if v not in index})
        if unknown:
            raise ValueError(f"samples take values outside the support: {unknown[:5]}")
        freq = np.bincount([index[v] for v in draws.tolist()], minlength=xs.size) / draws.size
        shift = width / 4 if pmf is not None else 0.0
        bar_w = width / 2 if pmf is not None else width
        ax.bar(xs + shift, freq, width=bar_w, color="C1", alpha=0.8, label=f"{labels[1]} (n={draws.size})")
    elif draws is not None:
        ax.hist(
            draws,
            bins=bins if bins is not None else "auto",
            density=True,
            color="C1",
            alpha=0.6,
            label=f"{labels[1]} (n={draws.size})",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("probability" if (pmf is not None or discrete) else "density")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------- 2-D densities and samples


def _check_range(range: Any) -> Range2D:
    try:
        (x0, x1), (y0, y1) = range
        x0, x1, y0, y1 = float(x0), float(x1), float(y0), float(y1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"range must be ((xmin, xmax), (ymin, ymax)), got {range!r}") from exc
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"range must have xmin < xmax and ymin < ymax, got {range!r}")
    return (x0, x1), (y0, y1)


@torch.no_grad()
def density_grid(
    log_prob_fn: Callable[[torch.Tensor], Any],
    range: Range2D = ((-4.0, 4.0), (-4.0, 4.0)),
    resolution: int = 200,
    *,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-D density on the centres of a ``resolution`` x ``resolution`` grid.

    ``log_prob_fn(points)`` gets a float32 tensor (M, 2) of (x, y) points (on ``device``)
    and returns (M,) log densities. Returns ``xs`` (R,), ``ys`` (R,) and ``probs`` (R, R)
    with ``probs[i, j] = p(xs[j], ys[i])`` (rows are y, as images are drawn), so that
    ``probs.sum() * dx * dy`` approximates the mass inside ``range``.
    """
    (x0, x1), (y0, y1) = _check_range(range)
    dx, dy = (x1 - x0) / resolution, (y1 - y0) / resolution
    xs = x0 + dx * (np.arange(resolution) + 0.5)
    ys = y0 + dy * (np.arange(resolution) + 0.5)
    gx, gy = np.meshgrid(xs, ys)  # (R, R) each, [i, j] = (xs[j], ys[i])
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32))  # (R*R, 2)
    if device is not None:
        points = points.to(device)
    log_p = _numpy(log_prob_fn(points), "log_prob_fn(points)").astype(np.float64)
    if log_p.shape != (points.shape[0],):
        raise ValueError(f"log_prob_fn must map points (M, 2) to log densities (M,), got shape {log_p.shape}")
    return xs, ys, np.exp(log_p).reshape(resolution, resolution)


def plot_density_2d(
    density: Callable[[torch.Tensor], Any] | Any,
    range: Range2D = ((-4.0, 4.0), (-4.0, 4.0)),
    *,
    resolution: int = 200,
    log: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    colorbar: bool = False,
    device: str | torch.device | None = None,
) -> Figure:
    """A 2-D density as an image over ``range`` = ((xmin, xmax), (ymin, ymax)).

    ``density`` is a ``log_prob_fn`` (see :func:`density_grid`) or an (R, C) grid of
    densities with ``grid[i, j]`` at the i-th y and j-th x cell of ``range``. ``log=True``
    shows the log density (floored 20 nats below its maximum).
    """
    (x0, x1), (y0, y1) = _check_range(range)
    if callable(density):
        _, _, probs = density_grid(density, range, resolution, device=device)
    else:
        probs = _numpy(density, "density").astype(np.float64)
        if probs.ndim != 2:
            raise ValueError(f"a density grid must have shape (R, C), got shape {probs.shape}")
        if (probs < 0).any():
            raise ValueError("a density grid must be non-negative (pass log densities as a function, or exp them)")
    if log:
        with np.errstate(divide="ignore"):
            values = np.log(probs)
        values = np.maximum(values, np.max(values) - 20.0)
    else:
        values = probs
    fig, ax = _figure_and_axes(ax, (4.9 if colorbar else 4.0, 4.0))
    image = ax.imshow(
        values, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap, aspect="auto", interpolation="nearest"
    )
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if colorbar:
        fig.colorbar(image, ax=ax, label="log density" if log else "density")
    if title:
        ax.set_title(title)
    return fig


def plot_samples_2d(
    samples: Any,
    range: Range2D | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    size: float = 2.0,
    alpha: float = 0.5,
    color: Any = None,
    label: str | None = None,
) -> Figure:
    """A scatter plot of 2-D samples (N, 2); draw onto a density's axes with ``ax=fig.axes[0]``.

    Over axes that already show something (and without ``range``) the axes' limits are kept.
    """
    pts = _numpy(samples, "samples")
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"samples must have shape (N, 2), got shape {tuple(pts.shape)}")
    keep_limits = ax is not None and range is None and ax.has_data()  # e.g. drawn over a density
    fig, ax = _figure_and_axes(ax, (4.0, 4.0))
    limits = ax.get_xlim(), ax.get_ylim()
    ax.scatter(pts[:, 0], pts[:, 1], s=size, alpha=alpha, color=color, label=label, linewidths=0)
    if keep_limits:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    elif range is not None:
        (x0, x1), (y0, y1) = _check_range(range)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if label:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------- receptive fields


def plot_receptive_field(
    field: Any,
    pixel: tuple[int, int],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    binary: bool = False,
    cmap: str = "viridis",
) -> Figure:
    """The pixels that one output depends on: ``|d output(pixel) / d input|`` as an (H, W) map.

    ``field`` is the gradient (or its magnitude) with respect to the input image, shape
    (H, W) (leading axes of size 1, as in (1, 1, H, W), are dropped). The target pixel
    ``(i, j)`` (row, column) is outlined in red; ``binary=True`` shows only which
    gradients are non-zero. The title counts the pixels in the receptive field.
    """
    arr = _numpy(field, "field").astype(np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"field must be a gradient map of shape (H, W), got shape {tuple(np.shape(field))}")
    h, w = arr.shape
    try:
        i, j = (int(v) for v in pixel)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"pixel must be (row, column), got {pixel!r}") from exc
    if not (0 <= i < h and 0 <= j < w):
        raise ValueError(f"pixel {(i, j)} is outside the {h} x {w} map")
    magnitude = np.abs(arr)
    shown = (magnitude > 0).astype(float) if binary else magnitude / (magnitude.max() or 1.0)
    fig, ax = _figure_and_axes(ax, (3.6, 3.6))
    ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks([])
    ax.set_yticks([])
    n = int((magnitude > 0).sum())
    ax.set_title(title if title is not None else f"receptive field of pixel ({i}, {j}): {n} pixels")
    return fig


# ----------------------------------------------------------------------------- tables


def results_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".2f"
) -> str:
    """A Markdown table of result rows (dicts); columns default to the keys in order of appearance.

    Floats use ``floatfmt``; missing entries are blank; ``|`` in a cell is escaped.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    return markdown_table(columns, ([row.get(c) for c in columns] for row in rows), floatfmt).rstrip("\n")
