"""Figures: the right axes and images, grids composed correctly, wrong shapes named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.plots import (
    density_grid,
    filter_grid,
    image_grid,
    image_rows,
    make_grid,
    plot_density_1d,
    plot_density_2d,
    plot_receptive_field,
    plot_samples_2d,
    plot_training_curves,
    results_table,
)
from course_lib.training import History


def _history(epochs: int = 3, steps: int = 4, name: str = "Tiny", n_dims: int = 4) -> History:
    losses = [10.0 - 0.5 * k for k in range(epochs * steps)]
    return History(
        n_dims=n_dims,
        n_params=5,
        model_name=name,
        train_nats=[float(np.mean(losses[e * steps : (e + 1) * steps])) for e in range(epochs)],
        test_nats=[12.0] + [9.0 - e for e in range(epochs)],
        step_losses=losses,
        step_sizes=[2] * (epochs * steps),
        steps_per_epoch=[steps] * epochs,
        epoch_seconds=[0.1] * epochs,
        eval_seconds=[0.01] * (epochs + 1),
    )


# ----------------------------------------------------------------------------- image grids


def test_make_grid_places_image_k_at_row_k_div_nrow_and_column_k_mod_nrow():
    images = torch.stack([torch.full((1, 2, 3), float(k + 1) / 10) for k in range(5)])  # (5, 1, 2, 3)
    grid = make_grid(images, nrow=2, padding=1, pad_value=0.0)
    assert grid.shape == (3 * (2 + 1) + 1, 2 * (3 + 1) + 1)  # 3 rows of 2, the last cell empty
    for k in range(5):
        r, c = divmod(k, 2)
        top, left = 1 + r * 3, 1 + c * 4
        np.testing.assert_allclose(grid[top : top + 2, left : left + 3], (k + 1) / 10)
    assert np.all(grid[7:9, 5:8] == 0.0)  # the sixth cell is padding
    assert np.all(grid[0, :] == 0.0) and np.all(grid[:, 4] == 0.0)  # border and gutter


def test_make_grid_scales_uint8_and_arbitrary_floats_to_unit_range():
    u8 = np.array([[[0, 255]], [[51, 102]]], dtype=np.uint8)  # (N=2, H=1, W=2)
    grid = make_grid(u8, nrow=2, padding=0)
    np.testing.assert_allclose(grid, [[0.0, 1.0, 0.2, 0.4]])
    logits = np.array([[[-2.0, 2.0]]])
    np.testing.assert_allclose(make_grid(logits, padding=0), [[0.0, 1.0]])
    np.testing.assert_allclose(make_grid(logits, padding=0, value_range=(-4, 4)), [[0.25, 0.75]])


def test_make_grid_keeps_rgb_channels_last():
    images = np.zeros((2, 3, 4, 4), dtype=np.float32)
    images[1, 0] = 1.0  # second image red
    grid = make_grid(images, nrow=2, padding=1, pad_value=0.5)
    assert grid.shape == (6, 11, 3)
    np.testing.assert_allclose(grid[1:5, 6:10], np.broadcast_to([1.0, 0.0, 0.0], (4, 4, 3)))


def test_image_grid_returns_one_axes_with_one_image():
    fig = image_grid(torch.rand(6, 1, 28, 28), nrow=3, title="samples")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1
    assert fig.axes[0].images[0].get_array().shape == (2 * 29 + 1, 3 * 29 + 1)
    assert fig.axes[0].get_title() == "samples"


def test_image_grid_draws_into_a_given_axes():
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = image_grid(torch.rand(4, 8, 8), ax=axes[1])
    assert out is fig and len(axes[1].images) == 1 and len(axes[0].images) == 0


@pytest.mark.parametrize("shape", [(28, 28), (2, 2, 28, 28), (1, 1, 1, 28, 28), (0, 28, 28)])
def test_image_grid_names_a_wrong_shape(shape):
    with pytest.raises(ValueError, match=f"got shape {re_shape(shape)}"):
        image_grid(torch.zeros(shape))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


# ----------------------------------------------------------------------------- filters and rows of images


def test_filter_grid_draws_each_filter_at_its_own_scale_with_zero_mid_grey():
    filters = torch.zeros(3, 4)  # three 2 x 2 filters, one per row
    filters[0] = torch.tensor([2.0, -2.0, 1.0, 0.0])  # peak 2: +2 -> 1, -2 -> 0, 1 -> 0.75, 0 -> 0.5
    filters[1] = torch.tensor([0.01, 0.0, 0.0, -0.005])  # a tiny filter is stretched to the same contrast
    fig = filter_grid(filters, (2, 2), nrow=3, padding=1)
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (1 + 3, 1 + 3 * 3)
    np.testing.assert_allclose(grid[1:3, 1:3], [[1.0, 0.0], [0.75, 0.5]])
    np.testing.assert_allclose(grid[1:3, 4:6], [[1.0, 0.5], [0.5, 0.25]])
    np.testing.assert_allclose(grid[1:3, 7:9], 0.5)  # an all-zero filter is uniform grey


def test_filter_grid_shows_a_dictionarys_columns_via_its_transpose_and_infers_square_patches():
    dictionary = torch.randn(64, 10)  # (d, K): 10 atoms of 8 x 8
    grid = filter_grid(dictionary.T, nrow=5, padding=0).axes[0].images[0].get_array()
    assert grid.shape == (2 * 8, 5 * 8)
    atom = dictionary[:, 7].reshape(8, 8).numpy()
    np.testing.assert_allclose(grid[8:16, 16:24], 0.5 + atom / (2 * np.abs(atom).max()), rtol=1e-5)
    assert filter_grid(torch.randn(4, 5, 5)).axes[0].images[0].get_array().shape == (13, 13)


def test_filter_grid_names_wrong_shapes_and_non_finite_values():
    with pytest.raises(ValueError, match="image_shape=.*30.*not a square"):
        filter_grid(torch.randn(4, 30))
    with pytest.raises(ValueError, match=r"image_shape \(5, 5\) holds 25 values but each filter has 30"):
        filter_grid(torch.randn(4, 30), (5, 5))
    with pytest.raises(ValueError, match=r"got shape \(64,\)"):
        filter_grid(torch.randn(64))
    with pytest.raises(ValueError, match="at least one filter"):
        filter_grid(torch.randn(0, 4))
    bad = torch.randn(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        filter_grid(bad)


def test_image_rows_puts_row_k_of_each_label_in_order_and_labels_them():
    data, recon = torch.full((3, 1, 4, 4), 0.2), torch.full((3, 1, 4, 4), 1.7)  # recon beyond [0, 1]: clipped
    fig = image_rows({"data": data, "deep AE": recon}, padding=1, title="reconstructions")
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)
    np.testing.assert_allclose(grid[1:5, 1:15][:, [0, 5, 10]], 0.2)
    np.testing.assert_allclose(grid[6:10, 1:15][:, [0, 5, 10]], 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["data", "deep AE"]
    np.testing.assert_allclose(ax.get_yticks(), [2.5, 7.5])  # the middle of each row of 4-pixel images
    assert ax.get_title() == "reconstructions"


def test_image_rows_names_rows_of_different_sizes():
    with pytest.raises(ValueError, match="same number of images.*'PCA': \\(2, 1, 4, 4\\)"):
        image_rows({"data": torch.rand(3, 1, 4, 4), "PCA": torch.rand(2, 1, 4, 4)})
    with pytest.raises(ValueError, match="at least one row"):
        image_rows({})


# ----------------------------------------------------------------------------- training curves


def test_training_curves_draw_steps_train_and_test_for_each_history():
    fig = plot_training_curves([_history(name="A"), _history(name="B")])
    (ax,) = fig.axes
    assert len(ax.lines) == 6
    steps, train, test = ax.lines[:3]
    np.testing.assert_allclose(test.get_xdata(), [0, 1, 2, 3])
    np.testing.assert_allclose(train.get_xdata(), [0.5, 1.5, 2.5])
    np.testing.assert_allclose(steps.get_xdata()[[0, 3, 4]], [0.25, 1.0, 1.25])
    assert "nats" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A train", "A test", "B train", "B test"]


def test_training_curves_in_bits_per_dim_divide_by_d_ln2():
    h = _history(n_dims=4)
    fig = plot_training_curves(h.to_dict(), unit="bpd", labels=["run"])
    test_line = fig.axes[0].lines[2]
    np.testing.assert_allclose(test_line.get_ydata(), np.array(h.test_nats) / (4 * math.log(2)))
    assert "bits per dimension" in fig.axes[0].get_ylabel()


def test_training_curves_reject_an_unknown_unit_and_mismatched_labels():
    with pytest.raises(ValueError, match="'bits'"):
        plot_training_curves(_history(), unit="bits")
    with pytest.raises(ValueError, match="2 labels for 1 histories"):
        plot_training_curves(_history(), labels=["a", "b"])


# ----------------------------------------------------------------------------- 1-D densities


def test_density_1d_draws_pmf_bars_beside_sample_frequencies():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    samples = torch.tensor([0, 1, 1, 3, 3, 3, 3, 2])
    fig = plot_density_1d(probs, samples)
    (ax,) = fig.axes
    assert len(ax.patches) == 8
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights[:4], probs.numpy())
    np.testing.assert_allclose(heights[4:], [1 / 8, 2 / 8, 1 / 8, 4 / 8])  # frequencies


def test_density_1d_histograms_continuous_samples_as_a_density():
    fig = plot_density_1d(samples=np.random.default_rng(0).normal(size=500), bins=10)
    ax = fig.axes[0]
    widths = np.array([p.get_width() for p in ax.patches])
    heights = np.array([p.get_height() for p in ax.patches])
    assert len(ax.patches) == 10
    assert (widths * heights).sum() == pytest.approx(1.0)


def test_density_1d_rejects_a_non_pmf_and_samples_off_the_support():
    with pytest.raises(ValueError, match="sum to 1.*1.5"):
        plot_density_1d([0.5, 1.0])
    with pytest.raises(ValueError, match=r"shape \(K,\), got shape \(2, 2\)"):
        plot_density_1d(np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match=r"outside the support: \[5.0\]"):
        plot_density_1d([0.5, 0.5], [0, 1, 5])


# ----------------------------------------------------------------------------- 2-D densities and samples


def _gaussian_log_prob(points: torch.Tensor) -> torch.Tensor:
    return -0.5 * (points**2).sum(-1) - math.log(2 * math.pi)


def test_density_grid_of_a_standard_gaussian_integrates_to_one_and_is_indexed_y_then_x():
    xs, ys, probs = density_grid(_gaussian_log_prob, ((-6, 6), (-6, 6)), resolution=120)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    assert probs.sum() * dx * dy == pytest.approx(1.0, abs=1e-4)
    shifted = density_grid(lambda p: _gaussian_log_prob(p - torch.tensor([2.0, 0.0])), ((-6, 6), (-6, 6)), 120)[2]
    i, j = np.unravel_index(np.argmax(shifted), shifted.shape)
    assert xs[j] == pytest.approx(2.0, abs=0.1) and ys[i] == pytest.approx(0.0, abs=0.1)


def test_density_2d_from_a_function_or_a_grid_gives_one_image():
    fig = plot_density_2d(_gaussian_log_prob, ((-3, 3), (-3, 3)), resolution=30)
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1
    assert fig.axes[0].images[0].get_extent() == [-3, 3, -3, 3]
    fig = plot_density_2d(np.ones((5, 7)), ((0, 1), (0, 1)), colorbar=True, log=True)
    assert len(fig.axes) == 2  # the plot and its colour bar


def test_density_2d_names_wrong_shapes_and_ranges():
    with pytest.raises(ValueError, match=r"\(M,\), got shape \(100, 1\)"):
        plot_density_2d(lambda p: p[:, :1], ((-1, 1), (-1, 1)), resolution=10)
    with pytest.raises(ValueError, match=r"\(R, C\), got shape \(5,\)"):
        plot_density_2d(np.ones(5))
    with pytest.raises(ValueError, match="xmin < xmax"):
        plot_density_2d(np.ones((2, 2)), ((1, 0), (0, 1)))


def test_samples_2d_scatter_all_points_and_reject_other_shapes():
    pts = torch.randn(50, 2)
    fig = plot_samples_2d(pts, ((-4, 4), (-4, 4)))
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.collections[0].get_offsets(), pts.numpy())
    assert ax.get_xlim() == (-4, 4)
    over = plot_samples_2d(10 * pts, ax=plot_density_2d(np.ones((4, 4)), ((-1, 1), (-2, 2))).axes[0])
    assert len(over.axes[0].images) == 1 and len(over.axes[0].collections) == 1
    assert over.axes[0].get_xlim() == (-1, 1) and over.axes[0].get_ylim() == (-2, 2)  # the density's view kept
    with pytest.raises(ValueError, match=r"\(N, 2\), got shape \(50, 3\)"):
        plot_samples_2d(torch.randn(50, 3))


# ----------------------------------------------------------------------------- receptive fields


def test_receptive_field_shows_the_map_and_outlines_the_pixel():
    grad = torch.zeros(1, 1, 5, 5)
    grad[0, 0, :2, :] = torch.randn(2, 5)
    grad[0, 0, 2, :2] = 1.0
    fig = plot_receptive_field(grad, pixel=(2, 2))
    (ax,) = fig.axes
    shown = ax.images[0].get_array()
    assert shown.shape == (5, 5) and shown.max() == pytest.approx(1.0)
    (rect,) = ax.patches
    assert rect.get_xy() == (1.5, 1.5)  # column 2, row 2
    assert "12 pixels" in ax.get_title()
    binary = plot_receptive_field(grad[0, 0], (2, 2), binary=True).axes[0].images[0].get_array()
    assert set(np.unique(binary)) == {0.0, 1.0}


def test_receptive_field_names_bad_shapes_and_pixels():
    with pytest.raises(ValueError, match=r"\(H, W\), got shape \(2, 5, 5\)"):
        plot_receptive_field(torch.zeros(2, 5, 5), (0, 0))
    with pytest.raises(ValueError, match=r"pixel \(5, 0\) is outside the 5 x 5 map"):
        plot_receptive_field(torch.zeros(5, 5), (5, 0))


# ----------------------------------------------------------------------------- tables


def test_results_table_is_markdown_with_formatted_floats_and_blanks():
    table = results_table([{"model": "MADE", "nats": 88.4012}, {"model": "Pixel|CNN", "bits/dim": 0.15}])
    assert table.splitlines() == [
        "| model | nats | bits/dim |",
        "|---|---|---|",
        "| MADE | 88.40 |  |",
        "| Pixel\\|CNN |  | 0.15 |",
    ]


def test_new_figures_display_as_png_in_ipython_without_pyplot():
    from IPython.core.formatters import PNGFormatter

    fig = image_grid(torch.rand(4, 1, 8, 8))
    png = PNGFormatter()(fig)
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
