"""Explorers: a static figure headless, live ipywidgets controls (built without a frontend) otherwise."""

from __future__ import annotations

import math

import ipywidgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib import widgets
from course_lib.runtime import STATIC_WIDGETS_ENV
from course_lib.widgets import chain_viewer, is_interactive, latent_explorer, sampling_explorer, step_viewer

PNG = b"\x89PNG"


def _recording_sampler(calls):
    def sample_fn(temperature):
        calls.append(temperature)
        g = torch.Generator().manual_seed(len(calls))
        return torch.rand(4, 1, 6, 6, generator=g) ** (1 / temperature)

    return sample_fn


def _bytes(picture: ipywidgets.Image) -> bytes:
    return bytes(picture.value)  # the widget holds a memoryview


def _find(box, cls):
    """All descendants of a widget box of one class."""
    found = []
    for child in box.children:
        if isinstance(child, cls):
            found.append(child)
        if isinstance(child, ipywidgets.Box):
            found += _find(child, cls)
    return found


# ----------------------------------------------------------------------------- interactive or static


def test_static_override_wins_even_in_a_kernel(monkeypatch):
    monkeypatch.setattr(widgets, "_kernel_present", lambda: True)
    monkeypatch.setenv(STATIC_WIDGETS_ENV, "1")
    assert not is_interactive()
    monkeypatch.setenv(STATIC_WIDGETS_ENV, "0")
    assert is_interactive()
    monkeypatch.delenv(STATIC_WIDGETS_ENV)
    assert is_interactive()


def test_without_a_kernel_explorers_are_static(monkeypatch):
    monkeypatch.delenv(STATIC_WIDGETS_ENV, raising=False)
    assert not widgets._kernel_present()  # pytest runs no IPython kernel
    assert not is_interactive()
    assert isinstance(sampling_explorer(_recording_sampler([])), Figure)


# ----------------------------------------------------------------------------- sampling explorer


def test_sampling_explorer_headless_shows_spread_temperatures_side_by_side():
    calls = []
    fig = sampling_explorer(_recording_sampler(calls), [0.25, 0.5, 1.0, 1.5, 2.0], n_static=3, interactive=False)
    assert isinstance(fig, Figure)
    assert calls == [0.25, 1.0, 2.0]  # first, middle and last
    assert len(fig.axes) == 3 and all(len(ax.images) == 1 for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == ["T = 0.25", "T = 1", "T = 2"]


def test_sampling_explorer_headless_always_shows_the_initial_temperature():
    calls = []
    sampling_explorer(_recording_sampler(calls), [0.5, 0.75, 1.0, 1.25, 1.5], n_static=4, interactive=False)
    assert calls == [0.5, 1.0, 1.25, 1.5]


def test_sampling_explorer_headless_draws_text_samples():
    fig = sampling_explorer(lambda t: f"ROMEO: at temperature {t}\n" * 3, [0.5, 1.0], interactive=False)
    assert len(fig.axes) == 2
    assert "ROMEO: at temperature 0.5" in fig.axes[0].texts[0].get_text()


def test_sampling_explorer_widget_follows_the_slider_and_caches_samples():
    calls = []
    box = sampling_explorer(_recording_sampler(calls), [0.5, 1.0, 2.0], interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    (slider,) = _find(box, ipywidgets.SelectionSlider)
    (picture,) = _find(box, ipywidgets.Image)
    (button,) = _find(box, ipywidgets.Button)
    assert [value for _, value in slider.options] == [0.5, 1.0, 2.0]
    assert slider.value == 1.0 and calls == [1.0]
    first = _bytes(picture)
    assert first.startswith(PNG)
    slider.value = 2.0
    assert calls == [1.0, 2.0] and _bytes(picture) != first
    slider.value = 1.0
    assert calls == [1.0, 2.0] and _bytes(picture) == first  # cached
    button.click()
    assert calls == [1.0, 2.0, 1.0] and _bytes(picture) != first  # fresh samples


def test_sampling_explorer_rejects_bad_temperatures():
    with pytest.raises(ValueError, match="positive numbers"):
        sampling_explorer(lambda t: None, [1.0, 0.0], interactive=False)
    with pytest.raises(ValueError, match="initial temperature 3.0 is not one of"):
        sampling_explorer(lambda t: None, [1.0, 2.0], initial=3.0, interactive=False)


# ----------------------------------------------------------------------------- step viewer


def _frames(n=10):
    return [np.full((5, 5), i / (n - 1)) for i in range(n)]


def test_step_viewer_headless_shows_first_and_last_frames_with_titles():
    fig = step_viewer(_frames(10), n_static=4, description="MCMC step", interactive=False)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["MCMC step 0", "MCMC step 3", "MCMC step 6", "MCMC step 9"]
    np.testing.assert_allclose(fig.axes[-1].images[0].get_array()[1:6, 1:6], 1.0)  # the last frame, inside padding


def test_step_viewer_headless_accepts_figures_and_a_custom_render():
    inner = Figure(figsize=(2, 2))
    inner.add_subplot().plot([0, 1], [1, 0])
    fig = step_viewer([inner, inner], titles=["layer 0", "layer 1"], interactive=False)
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape[2] == 4  # RGBA picture of the figure
    clouds = [torch.randn(20, 2) for _ in range(3)]
    fig = step_viewer(clouds, render=lambda pts, ax: ax.scatter(pts[:, 0], pts[:, 1]), interactive=False)
    assert [len(ax.collections) for ax in fig.axes] == [1, 1, 1]


def test_step_viewer_widget_shows_the_frame_the_slider_points_at():
    drawn = []

    def render(frame, ax):
        drawn.append(float(frame.mean()))
        ax.imshow(frame)

    box = step_viewer(_frames(5), render=render, interactive=True)
    (slider,) = _find(box, ipywidgets.IntSlider)
    (play,) = _find(box, ipywidgets.Play)
    (picture,) = _find(box, ipywidgets.Image)
    assert (slider.min, slider.max, play.max) == (0, 4, 4)
    assert drawn == [0.0] and _bytes(picture).startswith(PNG)
    first = _bytes(picture)
    slider.value = 4
    assert drawn == [0.0, 1.0] and _bytes(picture) != first
    slider.value = 0
    assert drawn == [0.0, 1.0] and _bytes(picture) == first  # drawn once, then kept


def test_step_viewer_rejects_no_frames_and_mismatched_titles():
    with pytest.raises(ValueError, match="at least one frame"):
        step_viewer([], interactive=False)
    with pytest.raises(ValueError, match="2 titles for 3 frames"):
        step_viewer(_frames(3), titles=["a", "b"], interactive=False)
    with pytest.raises(TypeError, match="render=lambda"):
        step_viewer([{"not": "drawable"}], interactive=False)


# ----------------------------------------------------------------------------- latent explorer


def _column_decoder(calls):
    """A decoder of 3-D codes whose (1, 2, 3) images show the code: pixel j is sigmoid(z_j)."""

    def decode(z):
        calls.append(z.clone())
        assert not torch.is_grad_enabled(), "the explorer decodes without gradients"
        return torch.sigmoid(z)[:, None, None, :].repeat(1, 1, 2, 1)  # (M, 3) -> (M, 1, 2, 3)

    return decode


def test_latent_explorer_headless_moves_only_the_chosen_unit_by_offset_times_scale():
    calls = []
    codes = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]])
    fig = latent_explorer(_column_decoder(calls), codes, units=[0, 2], offsets=(-1.0, 0.0, 2.0),
                          scale=torch.tensor([1.0, 5.0, 0.5]), interactive=False)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["unit 0", "unit 2"]
    assert "offsets -1, 0, 2" in fig._suptitle.get_text()
    first, second = calls  # one decode per unit shown, of every input at every offset, offset-major
    moved = torch.tensor([-1.0, -1.0, 0.0, 0.0, 2.0, 2.0])
    expected = codes.repeat(3, 1)
    expected[:, 0] += moved
    torch.testing.assert_close(first, expected)
    expected = codes.repeat(3, 1)
    expected[:, 2] += 0.5 * moved
    torch.testing.assert_close(second, expected)
    # the panel of unit 2: a row per input, a column per offset, each image showing its code
    grid = fig.axes[1].images[0].get_array()
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    for row, code in enumerate(codes):
        for col, t in enumerate((-1.0, 0.0, 2.0)):
            z = code.clone()
            z[2] += 0.5 * t
            cell = grid[1 + 3 * row : 3 + 3 * row, 1 + 4 * col : 4 + 4 * col]
            np.testing.assert_allclose(cell, torch.sigmoid(z).expand(2, 3).numpy(), rtol=1e-6)


def test_latent_explorer_headless_spreads_its_panels_over_the_units():
    fig = latent_explorer(_column_decoder([]), torch.zeros(1, 3), n_static=2, interactive=False)
    assert [ax.get_title() for ax in fig.axes] == ["unit 0", "unit 2"]


def test_latent_explorer_widget_starts_at_the_reconstruction_and_follows_both_sliders():
    calls = []
    codes = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]])
    box = latent_explorer(_column_decoder(calls), codes, offsets=(-2.0, 0.0, 2.0), interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    unit_slider, offset_slider = _find(box, ipywidgets.SelectionSlider)
    (picture,) = _find(box, ipywidgets.Image)
    assert [v for _, v in unit_slider.options] == [0, 1, 2] and offset_slider.value == 0.0
    torch.testing.assert_close(calls[-1], codes)  # offset 0: the inputs' own codes
    first = _bytes(picture)
    assert first.startswith(PNG)
    unit_slider.value = 1
    offset_slider.value = 2.0
    expected = codes.clone()
    expected[:, 1] += 2.0
    torch.testing.assert_close(calls[-1], expected)
    assert _bytes(picture) != first
    n_calls = len(calls)
    unit_slider.value = 0
    offset_slider.value = 0.0
    assert _bytes(picture) == first and len(calls) == n_calls + 1  # (0, 2) decoded, (0, 0) kept


def test_latent_explorer_names_bad_codes_units_offsets_and_scales():
    decode = _column_decoder([])
    with pytest.raises(ValueError, match=r"codes must be a tensor \(N, k\).*\(3,\)"):
        latent_explorer(decode, torch.zeros(3), interactive=False)
    with pytest.raises(ValueError, match="NaN or inf"):
        latent_explorer(decode, torch.tensor([[0.0, float("nan"), 0.0]]), interactive=False)
    with pytest.raises(ValueError, match=r"units .* in 0\.\.2, got \[3\]"):
        latent_explorer(decode, torch.zeros(1, 3), units=[3], interactive=False)
    with pytest.raises(ValueError, match="offsets must be"):
        latent_explorer(decode, torch.zeros(1, 3), offsets=(), interactive=False)
    with pytest.raises(ValueError, match=r"scale .* \(3,\).*got shape \(2,\)"):
        latent_explorer(decode, torch.zeros(1, 3), scale=[1.0, 2.0], interactive=False)


# ----------------------------------------------------------------------------- chain viewer


def _walk(n_steps=21, n_chains=3):
    """Chains (T, B, 2) that move right by 0.1 per step, the second one standing still at even steps."""
    t = torch.arange(n_steps, dtype=torch.float32)
    chain = torch.stack([torch.stack([-1.0 + 0.1 * t, torch.full_like(t, 0.5 * b - 0.5)], dim=1)
                         for b in range(n_chains)], dim=1)  # (T, B, 2)
    chain[2::2, 1] = chain[1:-1:2, 1][: len(chain[2::2])]  # chain 1 repeats its state: a rejection at even steps
    return chain


def _gaussian_energy(calls=None):
    def energy(x):
        if calls is not None:
            calls.append(x.shape)
        return 0.5 * (x**2).sum(1)

    return energy


def test_chain_viewer_headless_draws_the_density_the_dots_and_the_trails():
    chain = _walk()
    calls = []
    fig = chain_viewer(_gaussian_energy(calls), chain, range=((-2, 2), (-2, 2)), trail=4, n_trails=2, n_static=3,
                       resolution=40, interactive=False)
    assert isinstance(fig, Figure)
    assert calls == [(40 * 40, 2)], "the energy is evaluated once, on the grid"
    assert [ax.get_title() for ax in fig.axes] == ["step 0", "step 10: 2/3 moved", "step 20: 2/3 moved"]
    last = fig.axes[-1]
    density = np.asarray(last.images[0].get_array())  # exp(-E) scaled to a maximum of 1, rows = y from the bottom
    centres = -2 + 4 / 40 * (np.arange(40) + 0.5)
    expected = np.exp(-0.5 * (centres[None, :] ** 2 + centres[:, None] ** 2))
    np.testing.assert_allclose(density, expected / expected.max(), rtol=1e-5)
    (dots,) = last.collections
    np.testing.assert_allclose(dots.get_offsets(), chain[-1].numpy())
    trails = last.get_lines()
    assert len(trails) == 2, "one trail for each of the first n_trails chains"
    np.testing.assert_allclose(trails[0].get_xydata(), chain[16:21, 0].numpy(), rtol=1e-6)  # the last 4 steps
    first = fig.axes[0]
    assert [len(line.get_xydata()) for line in first.get_lines()] == [1, 1], "at step 0 a trail is the start"


def test_chain_viewer_takes_a_log_density_grid_and_spreads_its_frames():
    log_p = torch.full((10, 10), -math.inf)
    log_p[2:5, 3:7] = torch.linspace(-3, 0, 12).reshape(3, 4)  # -inf outside: zero density allowed
    fig = chain_viewer(log_p, _walk(n_steps=301), range=((-1, 1), (-1, 1)), max_frames=4, n_static=10,
                       interactive=False)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["step 0", "step 100", "step 200", "step 300"]
    density = np.asarray(fig.axes[0].images[0].get_array())
    assert density.max() == 1.0 and density[0, 0] == 0.0 and density[2, 3] == pytest.approx(math.exp(-3))


def test_chain_viewer_widget_steps_through_the_chain():
    box = chain_viewer(_gaussian_energy(), _walk(n_steps=8), range=((-2, 2), (-2, 2)), resolution=20,
                       interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    (slider,) = _find(box, ipywidgets.IntSlider)
    (picture,) = _find(box, ipywidgets.Image)
    assert (slider.min, slider.max) == (0, 7)
    first = _bytes(picture)
    assert first.startswith(PNG)
    slider.value = 7
    assert _bytes(picture) != first


def test_chain_viewer_names_bad_chains_grids_and_settings():
    energy = _gaussian_energy()
    box = ((-2, 2), (-2, 2))
    with pytest.raises(ValueError, match=r"\(T, B, 2\).*\(5, 2\)"):
        chain_viewer(energy, torch.zeros(5, 2), range=box, interactive=False)
    bad = _walk()
    bad[3, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf states"):
        chain_viewer(energy, bad, range=box, interactive=False)
    with pytest.raises(ValueError, match=r"\(R, C\).*\(4,\)"):
        chain_viewer(torch.zeros(4), _walk(), range=box, interactive=False)
    with pytest.raises(ValueError, match="no NaN"):
        chain_viewer(torch.full((4, 4), float("nan")), _walk(), range=box, interactive=False)
    with pytest.raises(ValueError, match="no NaN"):
        chain_viewer(torch.full((4, 4), -math.inf), _walk(), range=box, interactive=False)
    with pytest.raises(ValueError, match=r"energies \(M,\).*\(100, 1\)"):
        chain_viewer(lambda x: x[:, :1], _walk(), range=box, resolution=10, interactive=False)
    with pytest.raises(ValueError, match="trail=-1"):
        chain_viewer(energy, _walk(), range=box, trail=-1, interactive=False)
    with pytest.raises(ValueError, match="xmin < xmax"):
        chain_viewer(energy, _walk(), range=((2, -2), (-2, 2)), interactive=False)
