import math

import pytest
import torch

from course_lib.metrics import bits_per_dim_to_nats, dequantized_bits_per_dim, nats_to_bits_per_dim


def test_bits_per_dim_of_a_uniform_binary_image_is_one():
    d = 784
    nats = d * math.log(2.0)  # -log 2^-784
    assert nats_to_bits_per_dim(nats, d) == pytest.approx(1.0)
    assert bits_per_dim_to_nats(1.0, d) == pytest.approx(nats)


def test_conversion_works_on_tensors_and_round_trips():
    x = torch.tensor([80.0, 88.4])
    assert torch.allclose(bits_per_dim_to_nats(nats_to_bits_per_dim(x, 784), 784), x)


def test_dequantised_uniform_density_gives_eight_bits():
    # A uniform density on [0,1)^D has log p = 0, so the discrete data cost log2(256) = 8 bits/dim.
    assert dequantized_bits_per_dim(0.0, 784) == pytest.approx(8.0)
    assert dequantized_bits_per_dim(0.0, 10, n_bins=2) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_dimension_count_is_rejected(bad):
    with pytest.raises(ValueError, match="n_dims"):
        nats_to_bits_per_dim(1.0, bad)
