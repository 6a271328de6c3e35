"""The texture statistics: differentiable, shift-invariant, oriented as they say; synthesis matches them."""

import math

import pytest
import torch

from course_lib.models.energy.texture import TEXTURE_CROP, FilterBank, load_texture, synthesize_texture


def _smooth_texture(size: int, seed: int) -> torch.Tensor:
    """A random stationary texture: white noise smoothed by a Gaussian (by FFT, circular), in about [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(size, size, generator=g)
    w = 2 * math.pi * torch.fft.fftfreq(size)
    blur = torch.exp(-(w[:, None] ** 2 + w[None, :] ** 2) / (2 * 0.8**2))
    x = torch.fft.ifft2(torch.fft.fft2(noise) * blur).real
    return 0.5 + 0.15 * x / x.std()


def _grating(size: int, frequency: float, angle: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    return 0.5 + 0.3 * torch.cos(frequency * (x * math.cos(angle) + y * math.sin(angle)))


def test_the_statistics_are_differentiable():
    bank = FilterBank(n_scales=2, n_orientations=2, max_lag=1)
    x = _smooth_texture(10, seed=0).double().requires_grad_()
    assert torch.autograd.gradcheck(bank.statistics, (x,), eps=1e-6, atol=1e-5)


def test_the_statistics_do_not_change_when_the_image_is_shifted_circularly():
    bank = FilterBank()
    x = load_texture()
    stats = bank.statistics(x)
    for shift in ((3, 0), (0, 17), (40, -11)):
        shifted = torch.roll(x, shifts=shift, dims=(0, 1))
        assert torch.allclose(bank.statistics(shifted), stats, rtol=1e-4, atol=1e-6), shift
    # and they do change when the texture is another one
    assert bank.mismatch(bank.statistics(_smooth_texture(80, 0)), stats[0]) > 0.1


def test_transposing_the_image_maps_orientation_o_to_2_minus_o():
    """With 4 orientations at 0, 45, 90, 135 degrees, swapping x and y maps angle a to 90 - a degrees."""
    bank = FilterBank(n_scales=2, n_orientations=4)
    x = _smooth_texture(32, seed=1) + 0.3 * _grating(32, 1.2, 0.4).float()
    stats, stats_t = bank.statistics(x)[0], bank.statistics(x.T)[0]
    index = {name: i for i, name in enumerate(bank.names)}
    for s in range(2):
        for o in range(4):
            a, b = index[f"|s{s}o{o}|^2 mean"], index[f"|s{s}o{(2 - o) % 4}|^2 mean"]
            assert float(stats_t[b]) == pytest.approx(float(stats[a]), rel=1e-4)


@pytest.mark.parametrize("scale,orientation", [(0, 0), (0, 1), (1, 2), (2, 3)])
def test_a_grating_excites_the_filter_of_its_frequency_and_orientation(scale, orientation):
    bank = FilterBank()
    x = _grating(64, bank.frequencies[scale], bank.angles[orientation])
    energies = bank.statistics(x)[0, 4 + bank.n_filters: 4 + 2 * bank.n_filters]
    assert int(energies.argmax()) == scale * bank.n_orientations + orientation
    # the next best is a neighbouring scale, whose gain at this frequency is e^-1/2: energy ratio e (about 2.7)
    assert float(energies.max()) > 2 * float(energies.sort().values[-2])


def test_the_names_label_every_statistic():
    bank = FilterBank(n_scales=3, n_orientations=4, max_lag=2)
    n_filters = 12
    assert len(bank.names) == 4 + 2 * n_filters + n_filters * (n_filters - 1) // 2 + 12
    assert bank.statistics(torch.rand(2, 1, 24, 24)).shape == (2, len(bank.names))
    assert len(set(bank.names)) == len(bank.names)


def test_the_spatial_filters_are_quadrature_pairs():
    """Real part even, imaginary part odd, zero mean: an edge and a bar detector of one orientation."""
    g = FilterBank().spatial_filters(33)
    flipped = torch.flip(g, dims=(-2, -1))
    assert torch.allclose(flipped.real, g.real, atol=1e-12)
    assert torch.allclose(flipped.imag, -g.imag, atol=1e-12)
    assert torch.allclose(g.real.sum(dim=(-2, -1)), torch.zeros(12, dtype=torch.float64), atol=1e-3)


def test_synthesis_lowers_the_mismatch_by_orders_of_magnitude():
    target = _smooth_texture(32, seed=2)
    bank = FilterBank(n_scales=2, n_orientations=4)
    image, history = synthesize_texture(target, n_steps=150, lr=0.02, bank=bank,
                                        generator=torch.Generator().manual_seed(0))
    assert image.shape == (32, 32) and history.shape == (151,)
    assert float(history[-1]) < 1e-2 * float(history[0])
    assert float(bank.mismatch(bank.statistics(image), bank.statistics(target))) == pytest.approx(
        float(history[-1]), rel=1e-4)
    assert (image - target).abs().mean() > 0.05  # the same statistics, not the same image


def test_synthesis_is_reproducible_and_differs_with_the_noise():
    target = _smooth_texture(24, seed=3)
    bank = FilterBank(n_scales=2, n_orientations=2)
    a, _ = synthesize_texture(target, n_steps=5, bank=bank, generator=torch.Generator().manual_seed(1))
    b, _ = synthesize_texture(target, n_steps=5, bank=bank, generator=torch.Generator().manual_seed(1))
    c, _ = synthesize_texture(target, n_steps=5, bank=bank, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    images, history = synthesize_texture(target, n_steps=3, bank=bank, n_samples=3, size=(20, 28), noise_std=0.01,
                                         generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 20, 28) and history.shape == (4,)


def test_langevin_noise_keeps_the_mismatch_above_that_of_plain_descent():
    target = _smooth_texture(24, seed=4)
    bank = FilterBank(n_scales=2, n_orientations=2)
    _, plain = synthesize_texture(target, n_steps=100, bank=bank, generator=torch.Generator().manual_seed(0))
    _, noisy = synthesize_texture(target, n_steps=100, bank=bank, noise_std=0.02,
                                  generator=torch.Generator().manual_seed(0))
    assert float(noisy[-1]) > 3 * float(plain[-1])


def test_the_lecture_texture_is_the_foliage_crop():
    x = load_texture()
    assert x.shape == (TEXTURE_CROP[3],) * 2 and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05
    with pytest.raises(ValueError, match="does not fit"):
        load_texture((0, 400, 0, 80))


def test_bad_inputs_are_named():
    bank = FilterBank()
    with pytest.raises(ValueError, match=r"\(H, W\), \(B, H, W\) or \(B, 1, H, W\)"):
        bank.statistics(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 8x8"):
        bank.statistics(torch.rand(4, 4))
    with pytest.raises(ValueError, match="NaN or inf"):
        bank.statistics(torch.full((16, 16), float("nan")))
    with pytest.raises(ValueError, match="max_frequency"):
        FilterBank(max_frequency=4.0)
    with pytest.raises(ValueError, match="n_steps"):
        synthesize_texture(torch.rand(16, 16), n_steps=-1)
    with pytest.raises(ValueError, match="one image"):
        synthesize_texture(torch.rand(2, 16, 16), n_steps=1)
