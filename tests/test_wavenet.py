import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from course_lib.models.autoregressive.wavenet import CausalConv1d, WaveNet


def _model(vocab: int = 5, channels: int = 8, n_layers: int = 3, seed: int = 0, **kwargs) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(vocab, channels=channels, n_layers=n_layers, **kwargs).double()


def _dependence(model: WaveNet, t_len: int, seed: int = 0) -> torch.Tensor:
    """dep[t, s]: whether logits[:, :, t] change with the embedding of token s, (T, T) bool."""
    gen = torch.Generator().manual_seed(seed)
    e = torch.randn(1, model.embed.embedding_dim, t_len, generator=gen, dtype=torch.float64)
    jac = jacobian(lambda v: model.forward_embedded(v)[0], e)  # (V, T_out, 1, C, T_in)
    return jac.abs().sum(dim=(0, 2, 3)) > 0


def _measured_receptive_field(dep: torch.Tensor) -> int:
    t = dep.shape[0] - 1
    return t - int(dep[t].nonzero().min())


@pytest.mark.parametrize("kernel_size, dilation, exclude", [(2, 1, False), (3, 2, False), (2, 4, True), (3, 1, True)])
def test_causal_conv_sees_exactly_its_window(kernel_size, dilation, exclude):
    torch.manual_seed(0)
    conv = CausalConv1d(2, 3, kernel_size, dilation, exclude_current=exclude).double()
    x = torch.randn(1, 2, 16, dtype=torch.float64)
    jac = jacobian(lambda v: conv(v)[0], x)  # (3, T_out, 1, 2, T_in)
    dep = jac.abs().sum(dim=(0, 2, 3)) > 0  # (T_out, T_in)
    for t in range(16):
        newest = t - 1 if exclude else t
        expected = {newest - j * dilation for j in range(kernel_size) if newest - j * dilation >= 0}
        assert set(dep[t].nonzero().flatten().tolist()) == expected


@pytest.mark.parametrize("kwargs", [
    dict(n_layers=3, kernel_size=2),
    dict(n_layers=4, kernel_size=2, dilation_cycle=2),
    dict(n_layers=3, kernel_size=3),
])
def test_causality_and_receptive_field_by_gradient(kwargs):
    model = _model(**kwargs)
    rf = model.receptive_field
    t_len = rf + 6
    dep = _dependence(model, t_len)
    for t in range(t_len):
        for s in range(t_len):
            if s >= t:
                assert not dep[t, s], f"logits at {t} depend on token {s} >= {t}: the model sees the future"
            elif s < t - rf:
                assert not dep[t, s], f"logits at {t} depend on token {s}, beyond the receptive field {rf}"
            else:
                assert dep[t, s], f"logits at {t} should depend on token {s} (within the receptive field {rf})"
    assert _measured_receptive_field(dep) == rf


def test_receptive_field_formula():
    assert _model(n_layers=3, kernel_size=2).receptive_field == 2 + 1 + 2 + 4
    assert _model(n_layers=4, kernel_size=2, dilation_cycle=2).receptive_field == 2 + 1 + 2 + 1 + 2
    assert _model(n_layers=3, kernel_size=3).receptive_field == 3 + 2 * (1 + 2 + 4)
    assert _model(n_layers=10).receptive_field == 2**10 + 1


def test_first_token_distribution_is_unconditional():
    model = _model()
    x = torch.randint(0, 5, (6, 10), generator=torch.Generator().manual_seed(1))
    logits = model(x)[:, :, 0]  # (6, V)
    assert torch.allclose(logits, logits[:1].expand(6, -1))


def test_probabilities_of_all_short_sequences_sum_to_one():
    model = _model(vocab=3)
    x = torch.tensor(list(itertools.product(range(3), repeat=4)))  # all 81 sequences of length 4
    assert torch.exp(-model.nll(x)).sum().item() == pytest.approx(1.0, abs=1e-12)


def test_nll_by_hand_with_constant_logits():
    model = _model(vocab=3)
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.copy_(torch.tensor([0.5, 0.3, 0.2]).log())
    x = torch.tensor([[0, 0, 2], [1, 2, 1]])
    expected = torch.tensor([-2 * math.log(0.5) - math.log(0.2), -2 * math.log(0.3) - math.log(0.2)])
    assert torch.allclose(model.nll(x), expected.double(), atol=1e-12)


def test_nll_is_the_summed_cross_entropy_of_the_logits():
    model = _model()
    x = torch.randint(0, 5, (4, 12), generator=torch.Generator().manual_seed(2))
    log_p = F.log_softmax(model(x), dim=1)  # (B, V, T)
    expected = torch.stack([-sum(log_p[b, x[b, t], t] for t in range(12)) for b in range(4)])
    assert model.nll(x).shape == (4,)
    assert torch.allclose(model.nll(x), expected, atol=1e-10)


def test_cached_step_logits_equal_the_full_forward():
    model = _model(n_layers=4, kernel_size=3, dilation_cycle=3)
    x = torch.randint(0, 5, (3, 2 * model.receptive_field), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(model.forward_cached(x), model(x), atol=1e-12)


def test_naive_sampler_step_sees_enough_context_to_reproduce_the_full_forward():
    model = _model(n_layers=4, kernel_size=2, dilation_cycle=3)
    x = torch.randint(0, 5, (3, 3 * model.receptive_field), generator=torch.Generator().manual_seed(3))
    full = model(x)  # (B, V, T)
    for t in range(x.shape[1]):
        assert torch.allclose(model._window_logits(x, t), full[:, :, t], atol=1e-12, rtol=0), f"step {t}"


@pytest.mark.parametrize("prompt", [None, torch.tensor([1, 2, 3, 4])])
def test_cached_and_naive_samplers_give_identical_samples(prompt):
    model = _model(n_layers=3)
    length = 3 * model.receptive_field  # long enough for the naive sampler's window to slide
    naive = model.sample(6, length=length, prompt=prompt, temperature=0.8, generator=torch.Generator().manual_seed(4),
                         fast=False)
    cached = model.sample(6, length=length, prompt=prompt, temperature=0.8, generator=torch.Generator().manual_seed(4),
                          fast=True)
    n_prompt = 0 if prompt is None else len(prompt)
    assert naive.shape == (6, n_prompt + length) and naive.dtype == torch.long
    assert naive.min() >= 0 and naive.max() < 5
    assert torch.equal(naive, cached)
    if prompt is not None:
        assert (naive[:, :n_prompt] == prompt).all()


def test_first_sampled_token_follows_the_unconditional_distribution():
    model = _model()
    probs = F.softmax(model(torch.zeros(1, 1, dtype=torch.long))[0, :, 0], dim=0)
    samples = model.sample(20_000, length=1, generator=torch.Generator().manual_seed(5), fast=True)[:, 0]
    freq = torch.bincount(samples, minlength=5).double() / 20_000
    assert 0.5 * (freq - probs).abs().sum() < 0.015


def test_low_temperature_sampling_is_greedy():
    model = _model()
    samples = model.sample(3, length=8, temperature=1e-4, generator=torch.Generator().manual_seed(6), fast=True)
    greedy = model(samples).argmax(dim=1)  # (B, T): the most likely token at each step given the samples
    assert torch.equal(samples, greedy)


def test_learns_a_repeating_sequence():
    torch.manual_seed(0)
    period, t_len = "abcde", 24
    pattern = torch.arange(len(period)).repeat(8)
    x = torch.stack([pattern[i:i + t_len] for i in range(len(period))])  # every phase, (5, 24)
    model = WaveNet(len(period), channels=16, n_layers=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        model.nll(x).mean().backward()
        opt.step()
    # Only the first token is uncertain (log 5 nats); the rest follow from the previous one.
    assert model.nll(x).mean().item() < math.log(len(period)) + 0.05
    sample = model.sample(2, length=20, prompt=torch.tensor([2]), generator=torch.Generator().manual_seed(7),
                          fast=False)
    assert torch.equal(sample[0], (torch.arange(21) + 2) % 5)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(2, 5), "integer"),
        (torch.zeros(2, 5, dtype=torch.bool), "integer"),
        (torch.tensor([[0, 5]]), r"\[0, 5\)"),
        (torch.tensor([[-1, 0]]), r"\[0, 5\)"),
        (torch.zeros(5, dtype=torch.long), "shape"),
        (torch.zeros(2, 0, dtype=torch.long), "shape"),
    ],
)
def test_bad_input_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        _model().nll(bad)


def test_bad_generation_arguments_raise_value_error():
    model = _model()
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, length=3, temperature=0.0)
    with pytest.raises(ValueError, match="prompt"):
        model.sample(2, length=3, prompt=torch.tensor([7]))
    with pytest.raises(ValueError, match="prompt"):
        model.sample(2, length=3, prompt=torch.zeros(3, 2, dtype=torch.long))
