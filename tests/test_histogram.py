import math

import pytest
import torch
from scipy.stats import chi2

from course_lib.models.autoregressive.histogram import Histogram, TwoVariableAR, histogram_mle, sample_categorical


def _frequencies(samples: torch.Tensor, n_bins: int) -> torch.Tensor:
    return torch.bincount(samples.reshape(-1), minlength=n_bins).double() / samples.numel()


def test_mle_equals_empirical_frequencies():
    x = torch.tensor([0, 1, 1, 3, 3, 3])
    model = Histogram.fit_mle(x, n_bins=5)
    expected = torch.tensor([1, 2, 0, 3, 0]) / 6
    assert torch.allclose(model.probs, expected.to(model.probs.dtype), atol=1e-7)
    assert torch.isinf(model.nll(torch.tensor([2]))).all(), "an unseen bin must have zero probability"


def test_laplace_smoothing_adds_alpha_pseudo_counts():
    x = torch.tensor([0, 1, 1, 3, 3, 3])
    probs = histogram_mle(x, n_bins=5, alpha=1.0)
    expected = (torch.tensor([1.0, 2, 0, 3, 0]) + 1) / (6 + 5)
    assert torch.allclose(probs, expected)


def test_mle_has_the_highest_likelihood_among_nearby_histograms():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (50,), generator=gen)
    best = Histogram.fit_mle(x, 4).nll(x).mean()
    for _ in range(20):
        other = Histogram(4, logits=Histogram.fit_mle(x, 4).logits.detach() + 0.1 * torch.randn(4, generator=gen))
        assert other.nll(x).mean() > best


def test_sgd_on_the_nll_converges_to_the_mle():
    gen = torch.Generator().manual_seed(1)
    x = torch.multinomial(torch.tensor([0.1, 0.4, 0.2, 0.05, 0.25]), 400, replacement=True, generator=gen)
    model = Histogram(5)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    for _ in range(200):
        opt.zero_grad()
        model.nll(x).mean().backward()
        opt.step()
    assert torch.allclose(model.probs.detach(), histogram_mle(x, 5), atol=1e-3)


def test_probs_sum_to_one_and_cdf_accumulates_them():
    model = Histogram(7, logits=torch.randn(7, generator=torch.Generator().manual_seed(2)) * 3)
    assert model.probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(model.cdf().diff(), model.probs[1:], atol=1e-6)
    assert model.cdf()[-1].item() == pytest.approx(1.0, abs=1e-6)


def test_nll_of_a_tiny_case_computed_by_hand():
    model = Histogram(3, logits=torch.tensor([0.2, 0.3, 0.5]).log())
    nll = model.nll(torch.tensor([0, 2, 2, 1]))
    expected = torch.tensor([-math.log(0.2), -math.log(0.5), -math.log(0.5), -math.log(0.3)])
    assert nll.shape == (4,)
    assert torch.allclose(nll, expected, atol=1e-6)


def test_inverse_cdf_sample_frequencies_match_probs():
    probs = torch.tensor([0.5, 0.05, 0.2, 0.0, 0.25], dtype=torch.float64)
    model = Histogram(5, logits=probs.log())
    n = 100_000
    samples = model.sample(n, generator=torch.Generator().manual_seed(3))
    assert samples.shape == (n,) and samples.dtype == torch.long
    freq = _frequencies(samples, 5)
    assert freq[3] == 0, "a zero-probability bin was sampled"
    # TV distance: an off-by-one sampler is ~0.5 away; sampling noise is ~0.002.
    assert 0.5 * (freq - probs).abs().sum() < 0.01
    support = probs > 0
    stat = (n * (freq - probs)[support] ** 2 / probs[support]).sum().item()
    assert stat < chi2.ppf(0.9999, df=int(support.sum()) - 1)


def test_sample_categorical_draws_each_row_from_its_own_distribution():
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.8, 0.0]]).expand(20_000, 3, 3)
    k = sample_categorical(probs, generator=torch.Generator().manual_seed(4))  # (20000, 3)
    assert (k[:, 0] == 0).all() and (k[:, 1] == 2).all()
    assert _frequencies(k[:, 2], 3)[1].item() == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.tensor([0, 5]), "n_bins"),
        (torch.tensor([-1, 0]), "n_bins"),
        (torch.tensor([[0, 1]]), "shape"),
    ],
)
def test_histogram_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        Histogram(5).nll(bad)


def _tiny_ar(n_bins: int = 4, seed: int = 5) -> TwoVariableAR:
    torch.manual_seed(seed)
    model = TwoVariableAR(n_bins, hidden=16).double()
    with torch.no_grad():
        model.p_x1.logits.normal_()
    return model


def test_joint_probs_sum_to_one_and_match_exp_minus_nll():
    model = _tiny_ar()
    joint = model.joint_probs()
    assert joint.shape == (4, 4)
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-12)
    grid = torch.cartesian_prod(torch.arange(4), torch.arange(4))  # (16, 2), rows (i, j)
    assert torch.allclose(torch.exp(-model.nll(grid)), joint.reshape(-1), atol=1e-12)
    assert torch.allclose(joint.sum(dim=1), model.p_x1.probs, atol=1e-12)


def test_two_variable_nll_by_hand_with_a_constant_conditional():
    model = TwoVariableAR(3, hidden=4).double()
    with torch.no_grad():
        model.p_x1.logits.copy_(torch.tensor([0.5, 0.25, 0.25]).log())
        last = model.conditional[-1]
        last.weight.zero_()  # p(x2 | x1) no longer depends on x1
        last.bias.copy_(torch.tensor([0.1, 0.1, 0.8]).log())
    nll = model.nll(torch.tensor([[0, 2], [1, 0]]))
    expected = torch.tensor([-math.log(0.5 * 0.8), -math.log(0.25 * 0.1)], dtype=torch.float64)
    assert torch.allclose(nll, expected, atol=1e-12)


def test_ancestral_samples_follow_the_joint_table():
    model = _tiny_ar()
    samples = model.sample(60_000, generator=torch.Generator().manual_seed(6))
    assert samples.shape == (60_000, 2) and samples.dtype == torch.long
    freq = _frequencies(samples[:, 0] * 4 + samples[:, 1], 16)
    assert 0.5 * (freq - model.joint_probs().reshape(-1)).abs().sum() < 0.015


def test_two_variable_model_trained_by_sgd_approaches_the_empirical_joint():
    gen = torch.Generator().manual_seed(7)
    table = torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.1, 0.2], [0.1, 0.1, 0.2]])
    cells = torch.multinomial(table.reshape(-1), 3000, replacement=True, generator=gen)
    x = torch.stack([cells // 3, cells % 3], dim=1)
    empirical = _frequencies(cells, 9).float()
    torch.manual_seed(7)
    model = TwoVariableAR(3, hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        model.nll(x).mean().backward()
        opt.step()
    assert 0.5 * (model.joint_probs().detach().reshape(-1) - empirical).abs().sum() < 0.02


@pytest.mark.parametrize("bad", [torch.tensor([0, 1]), torch.tensor([[0, 1, 2]]), torch.tensor([[0, 3]]),
                                 torch.tensor([[0.0, 1.0]])])
def test_two_variable_model_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        TwoVariableAR(3).nll(bad)
