"""Tests of course_lib.models.receptive_field: gradient maps against the models' declared receptive fields."""

from __future__ import annotations

import pytest
import torch

from course_lib.models.autoregressive.pixelcnn import GatedPixelCNN, PixelCNN
from course_lib.models.receptive_field import random_image, receptive_field_map


def gated(**kw) -> GatedPixelCNN:
    torch.manual_seed(0)
    cfg = dict(channels=8, kernel_size=5, n_layers=2, head_channels=8)
    cfg.update(kw)
    return GatedPixelCNN(**cfg).double()


def test_map_is_a_nonnegative_HxW_cpu_tensor_and_leaves_parameter_gradients_alone():
    model = gated()
    grid = receptive_field_map(model, (6, 7), (3, 4), generator=torch.Generator().manual_seed(0))
    assert grid.shape == (6, 7) and grid.device.type == "cpu" and torch.all(grid >= 0)
    assert all(p.grad is None for p in model.parameters())
    assert grid[2].sum() > 0 and grid[3, :4].sum() > 0 and grid[3, 4:].sum() == 0 and grid[4:].sum() == 0


@pytest.mark.parametrize("pixel", [(9, 5), (7, 0), (5, 11), (0, 3)])
def test_gated_pixelcnn_sees_exactly_its_declared_box(pixel):
    """Rows i-R..i-1 over columns j-left..j+right, and the current row left of j: no holes, nothing else."""
    H, W = 10, 12
    model = gated(distribution="categorical", n_bins=5)
    up, left, right = model.receptive_field
    assert (up, left, right) == (5, 4, 4)
    i, j = pixel
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[max(0, i - up):i, max(0, j - left):j + right + 1] = True
    expected[i, max(0, j - left):j] = True
    seen = receptive_field_map(model, (H, W), pixel, generator=torch.Generator().manual_seed(0)) > 0
    assert torch.equal(seen, expected)


def test_pixelcnn_declared_receptive_field_is_tight():
    torch.manual_seed(0)
    model = PixelCNN(channels=32, first_kernel_size=5, n_blocks=3, head_channels=16).double()
    up, left, right = model.receptive_field
    assert (up, left, right) == (5, 5, 5)
    H, W, (i, j) = 12, 16, (10, 7)
    maps = [receptive_field_map(model, (H, W), (i, j), generator=torch.Generator().manual_seed(s)) for s in range(3)]
    seen = sum(maps) > 0
    rows, cols = seen.nonzero().unbind(1)
    assert rows.min() == i - up and cols.min() == j - left and cols.max() == j + right


def test_map_of_a_conditional_model_defaults_to_class_zero_and_depends_on_the_class():
    model = gated(n_classes=3)
    x = random_image(model, (5, 5), generator=torch.Generator().manual_seed(0))
    default = receptive_field_map(model, (5, 5), (4, 2), x=x)
    assert torch.equal(default, receptive_field_map(model, (5, 5), (4, 2), x=x, y=0))
    assert not torch.allclose(default, receptive_field_map(model, (5, 5), (4, 2), x=x, y=2))


def test_map_rejects_a_pixel_outside_the_image_and_a_wrong_input_shape():
    model = gated()
    with pytest.raises(ValueError, match="outside the image"):
        receptive_field_map(model, (4, 4), (4, 0))
    with pytest.raises(ValueError, match=r"shape \(1, 1, H, W\)"):
        receptive_field_map(model, (4, 4), (1, 1), x=torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="binary"):
        receptive_field_map(model, (4, 4), (1, 1), x=torch.full((1, 1, 4, 4), 0.5))
