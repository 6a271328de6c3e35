"""Natural-image patches: scikit-learn's photographs, random patches and ZCA whitening."""

import pytest
import torch

from course_lib.data import ZCAWhitening, extract_patches, load_image_patches, load_sample_images


def test_sample_images_are_two_grey_photographs_in_the_unit_interval():
    images = load_sample_images()
    assert [tuple(image.shape) for image in images] == [(427, 640), (427, 640)]
    for image in images:
        assert image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        assert image.std() > 0.1, "a photograph, not a flat image"
    images[0].zero_()
    assert load_sample_images()[0].max() > 0, "each call returns fresh tensors"


def test_patches_are_the_image_windows_at_their_positions_flattened_row_by_row():
    image = torch.arange(12 * 15, dtype=torch.float64).reshape(12, 15)
    patches = extract_patches(image, 500, patch_size=4, generator=torch.Generator().manual_seed(0))
    assert patches.shape == (500, 16) and patches.dtype == torch.float64
    top = (patches[:, 0] // 15).long()
    left = (patches[:, 0] % 15).long()
    for k in range(0, 500, 37):
        window = image[top[k]:top[k] + 4, left[k]:left[k] + 4]
        assert torch.equal(patches[k].reshape(4, 4), window)
    # uniform over the 9 x 12 top-left corners: every corner is drawn, none outside
    assert top.max() == 8 and left.max() == 11 and len(set(zip(top.tolist(), left.tolist(), strict=True))) == 108


def test_patches_come_from_every_image_in_proportion_to_its_positions_and_are_reproducible():
    small, large = torch.zeros(10, 10), torch.ones(20, 30)  # 3 x 3 = 9 against 13 x 23 = 299 positions
    draw = lambda seed: extract_patches([small, large], 20_000, patch_size=8,  # noqa: E731
                                        generator=torch.Generator().manual_seed(seed))
    patches = draw(1)
    from_small = (patches[:, 0] == 0).float().mean().item()
    assert abs(from_small - 9 / 308) < 0.006, f"share of patches from the small image: {from_small:.4f}"
    assert torch.equal(draw(1), patches) and not torch.equal(draw(2), patches)
    assert extract_patches(torch.zeros(3, 9, 9, dtype=torch.uint8), 4, patch_size=2).dtype == torch.float32


@pytest.mark.parametrize("make, match", [
    (lambda: extract_patches(torch.zeros(5, 5), 3, patch_size=6), "patch_size=6 is larger"),
    (lambda: extract_patches(torch.zeros(5, 5), 0), "n must be an int >= 1"),
    (lambda: extract_patches(torch.zeros(5), 1, patch_size=2), r"shape \(5,\)"),
    (lambda: extract_patches([torch.zeros(5, 5), torch.zeros(2, 5, 5)], 1, patch_size=2), r"images\[1\]"),
    (lambda: extract_patches(torch.full((5, 5), float("nan")), 1, patch_size=2), "NaN"),
    (lambda: extract_patches([], 1), "empty"),
])
def test_extract_patches_names_a_bad_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _correlated(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.logspace(0, -2, d, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing.T + 3.0


def test_zca_whitened_data_has_identity_covariance_and_the_matrix_is_symmetric():
    x = _correlated(5000, 10, seed=0)
    zca = ZCAWhitening().fit(x, eps=1e-10)
    z = zca.transform(x)
    assert torch.allclose(z.mean(0), torch.zeros(10, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(torch.cov(z.T), torch.eye(10, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(zca.matrix, zca.matrix.T)
    assert torch.allclose(zca.inverse_transform(z), x, atol=1e-9)
    assert torch.allclose(zca.matrix @ zca.inverse_matrix, torch.eye(10, dtype=torch.float64), atol=1e-8)


def test_zca_is_the_whitening_closest_to_the_identity():
    """Among the whitening matrices W Q (Q orthogonal), the symmetric W moves the data the least."""
    x = _correlated(4000, 6, seed=1)
    zca = ZCAWhitening().fit(x, eps=1e-12)
    centred = x - zca.mean
    moved = (centred @ zca.matrix - centred).pow(2).sum()
    for seed in range(5):
        q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
        assert (centred @ zca.matrix @ q - centred).pow(2).sum() > moved


def test_eps_damps_the_weak_directions_by_lambda_over_lambda_plus_eps():
    x = _correlated(5000, 8, seed=2)
    zca = ZCAWhitening().fit(x, eps=1e-3)
    variances = torch.diagonal(zca.eigenvectors.T @ torch.cov(zca.transform(x).T) @ zca.eigenvectors)
    expected = zca.eigenvalues / (zca.eigenvalues + 1e-3)
    assert torch.allclose(variances, expected, atol=1e-8)
    assert expected.min() < 0.5 < expected.max(), "the test data should have directions on both sides of eps"


def test_zca_follows_the_input_dtype_and_names_bad_input():
    x = _correlated(500, 4, seed=3)
    zca = ZCAWhitening().fit(x)
    assert zca.transform(x.float()).dtype == torch.float32
    with pytest.raises(RuntimeError, match="not fitted"):
        ZCAWhitening().transform(x)
    with pytest.raises(ValueError, match="5 features per row, but the whitening was fitted on 4"):
        zca.transform(torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        ZCAWhitening().fit(x, eps=0)
    with pytest.raises(ValueError, match="at least 2 examples"):
        ZCAWhitening().fit(x[:1])
    with pytest.raises(ValueError, match="NaN or inf"):
        ZCAWhitening().fit(torch.full((3, 4), float("inf")))


def test_image_patches_have_no_dc_and_identity_covariance_orthogonal_to_the_constant_patch():
    patches, zca = load_image_patches(20_000, eps=1e-6, seed=0)
    d = 64
    assert patches.shape == (20_000, d) and patches.dtype == torch.float32
    assert patches.mean(1).abs().max() < 1e-4, "each whitened patch keeps mean zero"
    # the DC component is removed, so the covariance is the identity on the subspace orthogonal to 1
    on_subspace = torch.eye(d, dtype=torch.float64) - torch.full((d, d), 1.0 / d, dtype=torch.float64)
    covariance = torch.cov(patches.double().T)
    assert (covariance - on_subspace).abs().max() < 2e-2, (covariance - on_subspace).abs().max()
    raw, none = load_image_patches(20_000, whiten=False, seed=0)
    assert none is None and raw.mean(1).abs().max() < 1e-6
    assert torch.allclose(zca.inverse_transform(patches), raw, atol=1e-4), "the same seed, the same patches"
    assert torch.equal(load_image_patches(20_000, eps=1e-6, seed=0)[0], patches)


def test_whitening_flattens_the_spectrum_of_natural_patches_up_to_eps():
    raw, _ = load_image_patches(10_000, whiten=False, seed=1)
    white, zca = load_image_patches(10_000, seed=1)
    spectrum = lambda x: torch.linalg.eigvalsh(torch.cov(x.double().T))[1:]  # noqa: E731 -- drop the DC zero
    raw_spectrum, white_spectrum = spectrum(raw), spectrum(white)
    assert raw_spectrum.max() / raw_spectrum.min() > 100, "natural images: most variance at low frequencies"
    assert torch.allclose(white_spectrum, raw_spectrum / (raw_spectrum + zca.eps), atol=1e-5)
    assert white_spectrum.max() / white_spectrum.min() < 5 and (white_spectrum <= 1).all()
    assert (white_spectrum[raw_spectrum > 10 * zca.eps] > 0.9).all()  # the strong components become white


def test_downsampling_averages_blocks_of_the_photographs():
    full, _ = load_image_patches(2_000, whiten=False, downsample=1, seed=2)
    halved, _ = load_image_patches(2_000, whiten=False, seed=2)
    # averaging blocks removes fine detail: neighbouring pixels of the halved images differ less, relative
    # to the patch's contrast
    roughness = lambda p: (p.reshape(-1, 8, 8).diff(dim=2).pow(2).mean() / p.pow(2).mean()).item()  # noqa: E731
    assert roughness(halved) < 0.9 * roughness(full)
    with pytest.raises(ValueError, match="downsample must be an int >= 1, got 0"):
        load_image_patches(10, downsample=0)
