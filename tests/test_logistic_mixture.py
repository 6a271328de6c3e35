import pytest
import torch
from scipy.stats import chi2

from course_lib.models.autoregressive.logistic_mixture import (
    DiscretizedLogisticMixture,
    discretized_logistic_mixture_log_prob,
    sample_discretized_logistic_mixture,
)


def _random_params(batch: int, k: int, *rest: int, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, k, *rest)
    logit_pi = torch.randn(shape, generator=gen, dtype=dtype) * 2
    mu = torch.rand(shape, generator=gen, dtype=dtype) * 2.4 - 1.2
    log_s = torch.rand(shape, generator=gen, dtype=dtype) * 5 - 5.5  # s from e^-5.5 to e^-0.5
    return logit_pi, mu, log_s


def _all_values(n_bins: int, params):
    """Log-probabilities of every value 0..n_bins-1 under each of the batch's mixtures: (n_bins, B, ...)."""
    mu = params[1]
    x_shape = (mu.shape[0], *mu.shape[2:])
    return torch.stack([
        discretized_logistic_mixture_log_prob(torch.full(x_shape, v, dtype=torch.long), *params, n_bins=n_bins)
        for v in range(n_bins)
    ])


@pytest.mark.parametrize("n_bins", [2, 7, 256])
def test_probabilities_over_all_values_sum_to_one(n_bins):
    params = _random_params(5, 3, 2, seed=n_bins)  # B=5, K=3, one extra dimension of 2
    log_p = _all_values(n_bins, params)  # (n_bins, 5, 2)
    assert torch.allclose(log_p.exp().sum(dim=0), torch.ones(5, 2, dtype=torch.float64), atol=1e-10)


def test_probabilities_sum_to_one_at_extreme_scales_and_locations():
    mu = torch.tensor([[-10.0, 0.0, 10.0, 0.3]], dtype=torch.float64).T  # (4, 1): one logistic per row
    log_s = torch.tensor([[-20.0, 20.0, -3.0, -20.0]], dtype=torch.float64).T
    log_p = _all_values(256, (torch.zeros_like(mu), mu, log_s))  # (256, 4)
    assert torch.isfinite(log_p).all()
    assert torch.allclose(log_p.exp().sum(dim=0), torch.ones(4, dtype=torch.float64), atol=1e-10)


def test_single_logistic_equals_direct_sigmoid_differences():
    n_bins = 16
    mu = torch.tensor([-0.3, 0.0, 0.9], dtype=torch.float64)
    s = torch.tensor([0.05, 0.3, 1.5], dtype=torch.float64)
    x = torch.arange(n_bins)
    centre = 2 * x.double() / (n_bins - 1) - 1
    h = 1 / (n_bins - 1)
    for m, sc in zip(mu, s, strict=True):
        upper = torch.sigmoid((centre + h - m) / sc)
        lower = torch.sigmoid((centre - h - m) / sc)
        expected = upper - lower
        expected[0] = upper[0]
        expected[-1] = 1 - lower[-1]
        params = [t.expand(n_bins, 1) for t in (torch.zeros(1, dtype=torch.float64), m.view(1), sc.log().view(1))]
        got = discretized_logistic_mixture_log_prob(x, *params, n_bins=n_bins).exp()
        assert torch.allclose(got, expected, atol=1e-12, rtol=1e-9)


def test_mixture_is_the_weighted_sum_of_its_components():
    logit_pi, mu, log_s = _random_params(4, 3, seed=1)  # (4, 3)
    x = torch.tensor([0, 17, 200, 255])
    mixture = discretized_logistic_mixture_log_prob(x, logit_pi, mu, log_s).exp()
    pi = torch.softmax(logit_pi, dim=1)
    components = torch.stack([
        discretized_logistic_mixture_log_prob(x, torch.zeros(4, 1, dtype=torch.float64), mu[:, k:k + 1],
                                              log_s[:, k:k + 1]).exp()
        for k in range(3)], dim=1)  # (4, 3)
    assert torch.allclose(mixture, (pi * components).sum(dim=1), atol=1e-12)


def test_interior_bins_stay_accurate_where_the_sigmoid_difference_underflows():
    # A very sharp logistic far from the bin: sigma(a) - sigma(b) rounds to 0, its logarithm must not.
    x = torch.tensor([100])
    mu = torch.tensor([[-0.9]], dtype=torch.float64)
    log_s = torch.tensor([[-6.0]], dtype=torch.float64)
    log_p = discretized_logistic_mixture_log_prob(x, torch.zeros(1, 1, dtype=torch.float64), mu, log_s)
    c, h, inv_s = 2 * 100 / 255 - 1, 1 / 255, torch.exp(torch.tensor(6.0, dtype=torch.float64))
    # For both edges far in the upper tail, sigma(a) - sigma(b) ~ e^{-b} - e^{-a}.
    a, b = inv_s * (c + h + 0.9), inv_s * (c - h + 0.9)
    expected = -b + torch.log1p(-torch.exp(b - a))
    naive = torch.log(torch.sigmoid(a) - torch.sigmoid(b))
    assert torch.isinf(naive), "the test case no longer exercises the cancellation"
    assert torch.isfinite(log_p).all()
    assert log_p.item() == pytest.approx(expected.item(), rel=1e-9)


def test_sample_frequencies_match_probabilities():
    n_bins, n = 12, 200_000
    logit_pi = torch.tensor([0.0, 1.0])
    mu = torch.tensor([-0.5, 0.4])
    log_s = torch.tensor([-1.5, -2.5])
    shape = (n, 2)
    samples = sample_discretized_logistic_mixture(logit_pi.expand(shape), mu.expand(shape), log_s.expand(shape),
                                                  n_bins=n_bins, generator=torch.Generator().manual_seed(2))
    assert samples.shape == (n,) and samples.dtype == torch.long
    assert samples.min() >= 0 and samples.max() < n_bins
    params = [t.double().expand(n_bins, 2) for t in (logit_pi, mu, log_s)]
    probs = discretized_logistic_mixture_log_prob(torch.arange(n_bins), *params, n_bins=n_bins).exp()
    freq = torch.bincount(samples, minlength=n_bins).double() / n
    assert 0.5 * (freq - probs).abs().sum() < 0.01
    stat = (n * (freq - probs) ** 2 / probs).sum().item()
    assert stat < chi2.ppf(0.9999, df=n_bins - 1)


def test_gradients_are_finite_at_extreme_parameters():
    x = torch.tensor([0, 1, 127, 254, 255]).repeat_interleave(8)  # (40,)
    values = torch.tensor([-100.0, -20.0, 0.0, 20.0, 60.0])
    grid = torch.cartesian_prod(values, values, values)[:40]  # (40, 3)
    logit_pi = torch.stack([grid[:, 0], -grid[:, 0]], dim=1).requires_grad_()
    mu = torch.stack([grid[:, 1] / 10, -grid[:, 1]], dim=1).requires_grad_()
    log_s = torch.stack([grid[:, 2], grid[:, 2] / 5], dim=1).requires_grad_()
    log_p = discretized_logistic_mixture_log_prob(x, logit_pi, mu, log_s)
    assert torch.isfinite(log_p).all()
    log_p.sum().backward()
    for p in (logit_pi, mu, log_s):
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize(
    "x, shape, match",
    [
        (torch.tensor([0.0, 1.0]), (2, 3), "integer"),
        (torch.tensor([0, 256]), (2, 3), "n_bins"),
        (torch.tensor([0, 1]), (3, 3), "shape"),
        (torch.tensor([[0, 1]]), (1, 3), "shape"),
    ],
)
def test_log_prob_rejects_bad_input(x, shape, match):
    params = [torch.zeros(shape) for _ in range(3)]
    with pytest.raises(ValueError, match=match):
        discretized_logistic_mixture_log_prob(x, *params)


def test_one_dimensional_model_probs_sum_to_one_and_match_nll():
    model = DiscretizedLogisticMixture(n_components=3, n_bins=32).double()
    probs = model.probs()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)
    x = torch.tensor([0, 5, 31])
    assert torch.allclose(torch.exp(-model.nll(x)), probs[x])


def test_one_dimensional_model_fits_a_known_mixture():
    n_bins = 32
    true_params = [torch.tensor(v).expand(4000, 2) for v in ([0.5, -0.5], [-0.6, 0.5], [-2.0, -2.5])]
    data = sample_discretized_logistic_mixture(*true_params, n_bins=n_bins, generator=torch.Generator().manual_seed(3))
    true_nll = -discretized_logistic_mixture_log_prob(data, *true_params, n_bins=n_bins).mean()
    torch.manual_seed(3)
    model = DiscretizedLogisticMixture(n_components=2, n_bins=n_bins)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        model.nll(data).mean().backward()
        opt.step()
    assert model.nll(data).mean().item() < true_nll.item() + 0.01
    samples = model.sample(1000, generator=torch.Generator().manual_seed(4))
    assert samples.shape == (1000,) and 0 <= samples.min() and samples.max() < n_bins
