"""Tests of course_lib.models.autoregressive.pixelcnn: masks, causality, blind spot, exact likelihoods, samplers."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

from course_lib.models.autoregressive.pixelcnn import GatedPixelCNN, MaskedConv2d, PixelCNN, pixelcnn_mask
from course_lib.models.receptive_field import random_image, receptive_field_map


def tiny_pixelcnn(distribution="bernoulli", n_bins=4, seed=0, **kw) -> PixelCNN:
    torch.manual_seed(seed)
    cfg = dict(distribution=distribution, n_bins=n_bins, channels=8, first_kernel_size=3, n_blocks=2,
               head_channels=8)
    cfg.update(kw)
    return PixelCNN(**cfg).double()


def tiny_gated(distribution="bernoulli", n_bins=4, seed=0, **kw) -> GatedPixelCNN:
    torch.manual_seed(seed)
    cfg = dict(distribution=distribution, n_bins=n_bins, channels=8, kernel_size=3, n_layers=2, head_channels=8)
    cfg.update(kw)
    return GatedPixelCNN(**cfg).double()


def all_images(H: int, W: int, n_values: int, bernoulli: bool) -> torch.Tensor:
    """Every (H, W) image with pixels in {0, ..., n_values-1}, raster order, shape (n_values**(H*W), 1, H, W)."""
    images = torch.tensor(list(itertools.product(range(n_values), repeat=H * W))).reshape(-1, 1, H, W)
    return images.float() if bernoulli else images.to(torch.uint8)


def tempered_log_joint(model, x, temperature=1.0, y=None) -> torch.Tensor:
    """log prod_ij p_T(x_ij | x_<ij), each conditional's logits divided by T; shape (B,)."""
    logits = model(x, y) / temperature
    if model.distribution == "bernoulli":
        log_p = torch.where(x == 1, torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits))
    else:
        log_p = logits.log_softmax(dim=1).gather(1, x.long())
    return log_p.flatten(1).sum(1)


def jacobian_support(model, H, W, n_inputs=3, y=None) -> torch.Tensor:
    """support[p, q] = True where output pixel p (raster index) depends on input pixel q, over a few inputs."""
    gen = torch.Generator().manual_seed(1)
    support = torch.zeros(H * W, H * W, dtype=torch.bool)
    for _ in range(n_inputs):
        x = random_image(model, (H, W), generator=gen)
        for p in range(H * W):
            grad = receptive_field_map(model, (H, W), divmod(p, W), x=x, y=y)
            support[p] |= grad.flatten() > 0
    return support


# ----------------------------------------------------------------------------- masks


def test_mask_A_3x3_excludes_centre_and_everything_after_it():
    expected = torch.tensor([[1., 1., 1.],
                             [1., 0., 0.],
                             [0., 0., 0.]])
    mask = pixelcnn_mask(3, "A", 2, 5)
    assert mask.shape == (5, 2, 3, 3)
    assert torch.equal(mask, expected.expand(5, 2, 3, 3))


def test_mask_B_5x5_includes_centre_only():
    expected = torch.tensor([[1., 1., 1., 1., 1.],
                             [1., 1., 1., 1., 1.],
                             [1., 1., 1., 0., 0.],
                             [0., 0., 0., 0., 0.],
                             [0., 0., 0., 0., 0.]])
    assert torch.equal(pixelcnn_mask(5, "B", 1, 1)[0, 0], expected)
    assert torch.equal(pixelcnn_mask(5, "A", 1, 1)[0, 0], expected - torch.eye(5)[2].outer(torch.eye(5)[2]))


def test_rgb_mask_centre_follows_colour_groups():
    # mask A, 3 input colours -> 6 outputs (groups R, R, G, G, B, B): R sees none, G sees R, B sees R and G
    centre_a = pixelcnn_mask(3, "A", 3, 6, n_colors=3)[:, :, 1, 1]
    assert torch.equal(centre_a, torch.tensor([[0., 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]))
    # mask B, 6 -> 3: each output colour also sees its own group
    centre_b = pixelcnn_mask(3, "B", 6, 3, n_colors=3)[:, :, 1, 1]
    assert torch.equal(centre_b, torch.tensor([[1., 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]))
    # away from the centre every channel pair is kept or dropped alike
    assert torch.equal(pixelcnn_mask(3, "A", 3, 6, n_colors=3)[:, :, 0, 2], torch.ones(6, 3))


def test_rgb_masked_stack_is_causal_over_pixels_and_colours():
    """Output colour g at (i, j) may see earlier pixels (all colours) and colours < g of its own pixel."""
    torch.manual_seed(0)
    H = W = 4
    stack = torch.nn.Sequential(MaskedConv2d(3, 6, 3, "A", n_colors=3), MaskedConv2d(6, 3, 3, "B", n_colors=3)).double()
    jac = torch.autograd.functional.jacobian(stack, torch.randn(1, 3, H, W, dtype=torch.float64))
    jac = jac.reshape(3, H * W, 3, H * W)  # (colour out, pixel out, colour in, pixel in)
    pix_out, pix_in = torch.arange(H * W)[:, None], torch.arange(H * W)[None, :]
    colour_out, colour_in = torch.arange(3)[:, None, None, None], torch.arange(3)[None, None, :, None]
    allowed = (pix_in < pix_out)[None, :, None, :] | ((pix_in == pix_out)[None, :, None, :] & (colour_in < colour_out))
    assert torch.all(jac[~allowed.expand_as(jac)] == 0), "an output sees a later pixel or a later colour"
    same_pixel = jac.diagonal(dim1=1, dim2=3)  # (colour out, colour in, pixel)
    assert torch.all(same_pixel[torch.tril(torch.ones(3, 3), -1).bool()] != 0), "G should see R and B see R, G"


@pytest.mark.parametrize("args, match", [
    ((4, "A", 1, 1), "odd"),
    ((3, "C", 1, 1), "mask_type"),
    ((3, "A", 4, 6, 3), "multiple of n_colors"),
])
def test_mask_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        pixelcnn_mask(*args)


# ----------------------------------------------------------------------------- causality and the blind spot


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_pixelcnn_output_never_sees_its_pixel_or_later_ones(distribution):
    H, W = 5, 6
    support = jacobian_support(tiny_pixelcnn(distribution, channels=16), H, W)
    assert not torch.triu(support).any(), "output (i, j) depends on an input at or after (i, j) in raster order"
    assert support[W + 2, W + 1] and support[W + 2, 2], "output should see its left and upper neighbours"


def mask_composition_support(model: PixelCNN, H: int, W: int, pixel: tuple[int, int]) -> torch.Tensor:
    """Pixels reachable from output `pixel` by walking back through the masks' supports (a reference)."""
    reach = torch.zeros(H, W, dtype=torch.bool)
    reach[pixel] = True
    kernels = [(model.kernel_size, "B")] * model.n_blocks + [(model.first_kernel_size, "A")]
    for k, mask_type in kernels:  # from the output back to the input
        offsets = (pixelcnn_mask(k, mask_type, 1, 1)[0, 0] > 0).nonzero() - k // 2  # (n, 2) kernel taps
        new = torch.zeros_like(reach)
        for r, c in reach.nonzero().tolist():
            for dr, dc in offsets.tolist():
                if 0 <= r + dr < H and 0 <= c + dc < W:
                    new[r + dr, c + dc] = True
        reach = new
    return reach


def test_pixelcnn_has_a_blind_spot_above_right():
    H, W, pixel = 10, 14, (9, 5)
    model = tiny_pixelcnn(channels=32, first_kernel_size=7, n_blocks=2, head_channels=16)
    seen = jacobian_support(model, H, W)[pixel[0] * W + pixel[1]].reshape(H, W)
    assert torch.equal(seen, mask_composition_support(model, H, W, pixel))
    up, left, right = model.receptive_field
    i, j = pixel
    assert seen[i - up].any() and not seen[: i - up].any(), "declared receptive-field height is not tight"
    # the blind spot: row i-1 is seen only up to column j + 3 (the 7x7 mask A reach), though the
    # receptive field spans columns up to j + right, and deeper rows are seen further right
    assert seen[i - 1, j + 3] and seen[i - 2, j + 4] and seen[i - up, j + right]
    assert right > 4
    assert not seen[i - 1, j + 4:j + right + 1].any(), "pixels above-right that the model should see are missed"
    assert not seen[i - 2, j + 5]


@pytest.mark.parametrize("distribution, n_classes", [("bernoulli", 0), ("categorical", 3)])
def test_gated_pixelcnn_sees_every_earlier_pixel_and_no_later_one(distribution, n_classes):
    H = W = 8
    model = tiny_gated(distribution, kernel_size=5, n_layers=4, n_classes=n_classes)
    up, left, right = model.receptive_field
    assert up >= H and left >= W and right >= W, "the model must cover the whole image for this test"
    support = jacobian_support(model, H, W, n_inputs=1, y=1 if n_classes else None)
    strictly_earlier = torch.tril(torch.ones(H * W, H * W, dtype=torch.bool), -1)
    assert torch.equal(support, strictly_earlier), "a blind spot (missing earlier pixel) or a causality leak"


# ----------------------------------------------------------------------------- exact likelihoods


@pytest.mark.parametrize("make", [tiny_pixelcnn, tiny_gated])
def test_bernoulli_probabilities_of_all_2x2_images_sum_to_one(make):
    model = make("bernoulli")
    x = all_images(2, 2, 2, bernoulli=True)  # (16, 1, 2, 2)
    nll = model.nll(x)
    assert nll.shape == (16,) and torch.all(nll > 0)
    assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("make", [tiny_pixelcnn, tiny_gated])
def test_categorical_probabilities_of_all_1x2_images_sum_to_one(make):
    model = make("categorical", n_bins=4)
    x = all_images(1, 2, 4, bernoulli=False)  # (16, 1, 1, 2)
    assert torch.exp(-model.nll(x)).sum().item() == pytest.approx(1.0, abs=1e-12)


def test_class_conditional_probabilities_sum_to_one_for_every_class_and_depend_on_it():
    model = tiny_gated("bernoulli", n_classes=3)
    x = all_images(2, 2, 2, bernoulli=True)
    nlls = [model.nll(x, torch.full((16,), c)) for c in range(3)]
    for nll in nlls:
        assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (nlls[0] - nlls[1]).abs().max() > 1e-3, "the label has no effect on the likelihood"


def test_nll_equals_sum_of_conditional_cross_entropies_by_hand():
    model = tiny_pixelcnn("bernoulli")
    x = all_images(2, 2, 2, bernoulli=True)[[5, 10]]
    p = torch.sigmoid(model(x))  # P(x_ij = 1 | x_<ij)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
    assert torch.allclose(model.nll(x), by_hand, atol=1e-12)


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("make", [tiny_pixelcnn, tiny_gated])
@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_fast_sampler_draws_the_same_images_as_the_naive_one(make, distribution):
    model = make(distribution, n_bins=5)
    H, W = 9, 11
    up, left, right = model.receptive_field
    assert up + 1 < H and left + right + 1 < W, "the crop must be smaller than the image for this test"
    naive = model.sample(3, image_shape=(H, W), generator=torch.Generator().manual_seed(7), fast=False)
    fast = model.sample(3, image_shape=(H, W), generator=torch.Generator().manual_seed(7), fast=True)
    assert torch.equal(naive, fast)
    assert naive.float().std() > 0, "degenerate samples make this test vacuous"


@pytest.mark.parametrize("make, temperature", [(tiny_pixelcnn, 1.0), (tiny_gated, 1.0), (tiny_gated, 0.6)])
def test_sample_frequencies_match_the_exact_joint_on_2x2_binary_images(make, temperature):
    model = make("bernoulli", seed=3).float()  # float32: 20000 samples stay fast
    x_all = all_images(2, 2, 2, bernoulli=True)
    p = tempered_log_joint(model, x_all, temperature).detach().double().exp()
    p = p / p.sum()  # normalised up to float32 rounding already (a product of tempered conditionals)
    n = 20000
    draws = model.sample(n, image_shape=(2, 2), generator=torch.Generator().manual_seed(0), temperature=temperature)
    index = (draws.reshape(n, 4).long() * torch.tensor([8, 4, 2, 1])).sum(1)  # raster order -> row of x_all
    counts = torch.bincount(index, minlength=16).double()
    assert stats.chisquare(counts.numpy(), (n * p).numpy()).pvalue > 1e-3
    assert 0.5 * (counts / n - p).abs().sum() < 0.02  # total variation


def test_categorical_conditional_sample_frequencies_match_the_exact_joint():
    model = tiny_gated("categorical", n_bins=3, n_classes=2, seed=4).float()
    x_all = all_images(1, 2, 3, bernoulli=False)  # (9, 1, 1, 2)
    p = tempered_log_joint(model, x_all, y=torch.ones(9, dtype=torch.long)).detach().double().exp()
    p = p / p.sum()  # guard float32 rounding
    n = 20000
    draws = model.sample(n, y=1, image_shape=(1, 2), generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.uint8
    counts = torch.bincount(draws.reshape(n, 2).long() @ torch.tensor([3, 1]), minlength=9).double()
    assert stats.chisquare(counts.numpy(), (n * p).numpy()).pvalue > 1e-3


def test_completion_keeps_observed_pixels_and_samples_the_conditional():
    model = tiny_gated("bernoulli", seed=5).float()
    n = 20000
    x_init = torch.zeros(n, 1, 1, 2)
    x_init[:, 0, 0, 0] = 1.0
    observed = torch.tensor([[True, False]])  # (H, W): keep the left pixel, sample the right one
    draws = model.sample(n, x_init=x_init, observed=observed, generator=torch.Generator().manual_seed(1))
    assert torch.all(draws[:, 0, 0, 0] == 1)
    p_right = torch.sigmoid(model(x_init[:1]))[0, 0, 0, 1].item()  # P(x_2 = 1 | x_1 = 1)
    freq = draws[:, 0, 0, 1].mean().item()
    assert abs(freq - p_right) < 4 * (p_right * (1 - p_right) / n) ** 0.5


def test_completion_of_the_bottom_half_keeps_the_top_half():
    model = tiny_pixelcnn("bernoulli")
    x_init = random_image(model, (8, 8), generator=torch.Generator().manual_seed(0)).expand(4, 1, 8, 8)
    observed = torch.zeros(8, 8, dtype=torch.bool)
    observed[:4] = True
    draws = model.sample(4, image_shape=(8, 8), x_init=x_init, observed=observed,
                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws[:, :, :4], x_init[:, :, :4])
    assert not torch.equal(draws[:, :, 4:], x_init[:, :, 4:]), "nothing was sampled in the bottom half"


def test_sample_returns_the_data_format_and_restores_training_mode():
    model = tiny_gated("bernoulli").float()
    model.train()
    x = model.sample(2, image_shape=(3, 4))
    assert x.shape == (2, 1, 3, 4) and x.dtype == torch.float32 and set(x.unique().tolist()) <= {0.0, 1.0}
    assert model.training
    cat = tiny_pixelcnn("categorical", n_bins=7).float()
    x = cat.sample(2, image_shape=(3, 4))
    assert x.dtype == torch.uint8 and int(x.max()) < 7
    assert tiny_pixelcnn("bernoulli", image_shape=(2, 3)).sample(1).shape == (1, 1, 2, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "positive int"),
    (dict(temperature=0.0), "temperature"),
    (dict(x_init=torch.zeros(2, 1, 3, 3)), "both x_init"),
    (dict(x_init=torch.zeros(1, 1, 3, 3), observed=torch.ones(3, 3, dtype=torch.bool)), "x_init must have shape"),
    (dict(x_init=torch.zeros(2, 1, 3, 3), observed=torch.ones(3, 3)), "boolean"),
    (dict(x_init=torch.zeros(2, 1, 3, 3), observed=torch.ones(2, 2, dtype=torch.bool)), "broadcast"),
    (dict(x_init=torch.full((2, 1, 3, 3), 0.5), observed=torch.ones(3, 3, dtype=torch.bool)), "binary"),
])
def test_sampler_rejects_bad_arguments(kwargs, match):
    args = dict(n=2, image_shape=(3, 3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tiny_pixelcnn().sample(args.pop("n"), image_shape=args.pop("image_shape"), **args)


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize("distribution, x, match", [
    ("bernoulli", torch.zeros(2, 28, 28), r"shape \(B, 1, H, W\)"),
    ("bernoulli", torch.zeros(2, 3, 4, 4), r"shape \(B, 1, H, W\)"),
    ("bernoulli", torch.full((2, 1, 4, 4), 0.5), "binary"),
    ("bernoulli", torch.full((2, 1, 4, 4), float("nan")), "binary"),
    ("bernoulli", torch.zeros(2, 1, 4, 4, dtype=torch.long), "float"),
    ("categorical", torch.zeros(2, 1, 4, 4), "integer"),
    ("categorical", torch.full((2, 1, 4, 4), 4), r"\[0, 4\)"),
    ("categorical", torch.full((2, 1, 4, 4), -1), r"\[0, 4\)"),
])
def test_models_reject_inputs_outside_the_support(distribution, x, match):
    for model in (tiny_pixelcnn(distribution), tiny_gated(distribution)):
        with pytest.raises(ValueError, match=match):
            model.nll(x)


def test_labels_are_checked_against_the_model():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="unconditional"):
        tiny_gated().nll(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        tiny_pixelcnn().nll(x, torch.zeros(2, dtype=torch.long))
    conditional = tiny_gated(n_classes=3)
    with pytest.raises(ValueError, match="pass labels y"):
        conditional.nll(x)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        conditional.nll(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        conditional.nll(x, torch.tensor([0, 3]))


@pytest.mark.parametrize("make, kwargs, match", [
    (PixelCNN, dict(distribution="gaussian"), "distribution"),
    (PixelCNN, dict(distribution="categorical", n_bins=1), "n_bins"),
    (PixelCNN, dict(first_kernel_size=4), "first_kernel_size"),
    (PixelCNN, dict(channels=7), "even channels"),
    (GatedPixelCNN, dict(kernel_size=1), "kernel_size"),
    (GatedPixelCNN, dict(n_layers=0), "n_layers"),
])
def test_constructors_reject_bad_values(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


# ----------------------------------------------------------------------------- training and devices


def training_images() -> torch.Tensor:
    """16 fixed 8x8 binary images: filled rectangles at seeded positions."""
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(16, 1, 8, 8)
    for n in range(16):
        r0, c0 = torch.randint(0, 5, (2,), generator=gen).tolist()
        h, w = torch.randint(2, 4, (2,), generator=gen).tolist()
        x[n, 0, r0:r0 + h, c0:c0 + w] = 1
    return x


@pytest.mark.parametrize("make", [
    lambda: PixelCNN(channels=16, first_kernel_size=5, n_blocks=2, head_channels=32),
    lambda: GatedPixelCNN(channels=16, kernel_size=3, n_layers=3, head_channels=32),
])
def test_a_few_dozen_steps_overfit_16_images(make):
    torch.manual_seed(0)
    model, x = make(), training_images()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = model.nll(x).mean().item()
    for _ in range(40):
        opt.zero_grad()
        loss = model.nll(x).mean()
        loss.backward()
        opt.step()
    end = model.nll(x).mean().item()
    assert end < 0.3 * start, f"nll went from {start:.1f} to {end:.1f} nats per image only"


@pytest.mark.parametrize("make", [tiny_pixelcnn, tiny_gated])
def test_channels_last_and_bf16_autocast_give_the_same_likelihood(make):
    model = make("categorical", n_bins=4).float()
    x = random_image(model, (6, 6), generator=torch.Generator().manual_seed(0)).expand(3, 1, 6, 6).contiguous()
    reference = model.nll(x)
    model_cl = model.to(memory_format=torch.channels_last)
    assert torch.allclose(model_cl.nll(x.to(memory_format=torch.channels_last)), reference, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll = model.nll(x)
    assert nll.dtype == torch.float32
    assert torch.allclose(nll, reference, rtol=0.05)


def test_gated_layers_after_the_first_are_residual_in_the_horizontal_stack():
    model = tiny_gated(n_layers=2)
    layer = model.layers[1]
    torch.nn.init.zeros_(layer.h_out.weight)
    torch.nn.init.zeros_(layer.h_out.bias)
    v, h = torch.randn(2, 2, 8, 4, 5, dtype=torch.float64)
    _, h_out, _ = layer(v, h, None)
    assert torch.equal(h_out, h), "with a zero output convolution a residual layer passes h through"
