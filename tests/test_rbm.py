"""The RBM's mathematics on tiny machines whose every state can be enumerated.

The free energy, log Z, the conditionals, the pseudo-likelihood and the CD gradient are each
held against a brute-force sum over the joint distribution p(v, h) = exp(-E(v, h)) / Z,
computed from ``RBM.energy`` alone; block Gibbs sampling against the exact p(v).
"""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.models import RBM
from course_lib.models.energy.rbm import EXACT_MAX_UNITS, pixel_log_odds


def _states(k: int) -> torch.Tensor:
    """All 2^k binary vectors (2^k, k), float64."""
    ints = torch.arange(1 << k)
    return ((ints[:, None] >> torch.arange(k)) & 1).double()


def _rbm(n_visible: int = 5, n_hidden: int = 4, scale: float = 1.0, seed: int = 0) -> RBM:
    """An RBM with weights and biases of size ~``scale`` (far from the small initialisation), in float64."""
    torch.manual_seed(seed)
    rbm = RBM(n_visible=n_visible, n_hidden=n_hidden, init_std=scale).double()
    with torch.no_grad():
        rbm.visible_bias.normal_(0.0, scale)
        rbm.hidden_bias.normal_(0.0, scale)
    return rbm


def _joint_energies(rbm: RBM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(all v (V, D), all h (H', H), E(v, h) (V, H')) from ``rbm.energy`` on every pair."""
    vs, hs = _states(rbm.n_visible), _states(rbm.n_hidden)
    v = vs.repeat_interleave(len(hs), 0)
    h = hs.repeat(len(vs), 1)
    return vs, hs, rbm.energy(v, h).reshape(len(vs), len(hs))


def _brute_log_p_v(rbm: RBM) -> tuple[torch.Tensor, torch.Tensor]:
    """(all v, log p(v)) from the double sum over the joint."""
    vs, _, energies = _joint_energies(rbm)
    log_z = torch.logsumexp(-energies.flatten(), 0)
    return vs, torch.logsumexp(-energies, 1) - log_z


# ----------------------------------------------------------------------------- energies and log Z


def test_energy_is_the_bilinear_form_of_the_convention():
    rbm = _rbm(3, 2)
    v, h = torch.tensor([[1.0, 0.0, 1.0]]).double(), torch.tensor([[0.0, 1.0]]).double()
    W, b, c = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    expected = -(W[0, 1] + W[2, 1]) - (b[0] + b[2]) - c[1]
    torch.testing.assert_close(rbm.energy(v, h), expected.reshape(1))


def test_free_energy_equals_minus_log_sum_over_hidden_states():
    rbm = _rbm(5, 4)
    vs, _, energies = _joint_energies(rbm)
    torch.testing.assert_close(rbm.free_energy(vs), -torch.logsumexp(-energies, 1))


@pytest.mark.parametrize(("n_visible", "n_hidden"), [(5, 4), (3, 6)])  # enumerate h, then v
def test_exact_log_partition_equals_the_double_sum_over_all_states(n_visible, n_hidden):
    rbm = _rbm(n_visible, n_hidden, seed=n_visible)
    _, _, energies = _joint_energies(rbm)
    brute = float(torch.logsumexp(-energies.flatten(), 0).detach())
    assert rbm.exact_log_partition() == pytest.approx(brute, abs=1e-10)


def test_exact_log_partition_in_float32_agrees_with_float64():
    rbm = _rbm(10, 7, seed=3)
    exact = rbm.exact_log_partition()
    assert rbm.float().exact_log_partition() == pytest.approx(exact, abs=1e-4)


def test_exact_log_partition_of_an_rbm_without_weights_is_a_sum_of_softplus():
    rbm = _rbm(6, 30, seed=1)  # 30 hidden units: enumerates the 2^6 visible states
    with torch.no_grad():
        rbm.weight.zero_()
    softplus = torch.nn.functional.softplus
    expected = (softplus(rbm.visible_bias).sum() + softplus(rbm.hidden_bias).sum()).detach()
    assert rbm.exact_log_partition() == pytest.approx(float(expected), abs=1e-9)


def test_log_likelihood_normalises_over_all_visible_states_and_matches_the_brute_force():
    rbm = _rbm(5, 4)
    vs, log_p = _brute_log_p_v(rbm)
    ll = rbm.log_likelihood(vs, rbm.exact_log_partition())
    torch.testing.assert_close(ll, log_p)
    assert float(torch.logsumexp(ll, 0).detach()) == pytest.approx(0.0, abs=1e-10)


# ----------------------------------------------------------------------------- conditionals and sampling


def test_conditionals_equal_the_ratios_of_the_joint():
    rbm = _rbm(4, 3)
    vs, hs, energies = _joint_energies(rbm)
    p_h_given_v = torch.softmax(-energies, 1)  # (V, H') rows: p(h | v)
    p_v_given_h = torch.softmax(-energies, 0)  # columns: p(v | h)
    torch.testing.assert_close(rbm.hidden_probs(vs), p_h_given_v @ hs)  # P(h_j = 1 | v)
    torch.testing.assert_close(rbm.visible_probs(hs), p_v_given_h.T @ vs)  # P(v_i = 1 | h)


def test_samples_follow_their_probabilities_and_the_generator():
    rbm = _rbm(4, 3).float()
    v = torch.tensor([[1.0, 0.0, 1.0, 1.0]]).expand(20_000, 4)
    probs, h = rbm.sample_hidden(v, generator=torch.Generator().manual_seed(0))
    assert set(h.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(h.mean(0), probs[0], atol=0.015, rtol=0)  # 4.5 s.e. of a mean of 20,000
    _, again = rbm.sample_hidden(v, generator=torch.Generator().manual_seed(0))
    assert torch.equal(h, again)
    hs = torch.tensor([[0.0, 1.0, 1.0]]).expand(20_000, 3)
    probs_v, v_new = rbm.sample_visible(hs, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(v_new.mean(0), probs_v[0], atol=0.015, rtol=0)


def test_block_gibbs_chains_converge_to_the_exact_distribution():
    """20,000 chains from one state, 30 steps: their empirical p(v) within 0.02 total variation of the exact one."""
    rbm = _rbm(4, 3, scale=0.8, seed=2)
    vs, log_p = _brute_log_p_v(rbm)
    start = torch.zeros(20_000, 4, dtype=torch.float64)
    v = rbm.gibbs(start, 30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(start, torch.zeros_like(start))  # not modified in place
    codes = (v * (1 << torch.arange(4))).sum(1).long()
    empirical = torch.bincount(codes, minlength=16).double() / len(v)
    total_variation = 0.5 * (empirical - log_p.exp()).abs().sum()
    assert total_variation < 0.02, f"total variation {total_variation:.4f}"
    stuck = rbm.gibbs(start, 1, generator=torch.Generator().manual_seed(0))  # guards the test: one step is not enough
    stuck_codes = torch.bincount((stuck * (1 << torch.arange(4))).sum(1).long(), minlength=16).double() / len(v)
    assert 0.5 * (stuck_codes - log_p.exp()).abs().sum() > 2 * total_variation


def test_sample_draws_binary_images_reproducibly_from_a_start_or_the_visible_marginal():
    rbm = _rbm(6, 4).float()
    a = rbm.sample(8, n_steps=5, generator=torch.Generator().manual_seed(3))
    b = rbm.sample(8, n_steps=5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (8, 6) and torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    means = rbm.sample(8, n_steps=5, generator=torch.Generator().manual_seed(3), return_probs=True)
    assert ((means > 0) & (means < 1)).all()
    start = torch.ones(8, 6)
    c = rbm.sample(8, n_steps=2, start=start, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c, rbm.gibbs(start, 2, torch.Generator().manual_seed(4)))


def test_init_visible_bias_gives_the_log_odds_of_the_pixel_means():
    rbm = RBM(n_visible=3, n_hidden=2)
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    rbm.init_visible_bias(data.reshape(4, 1, 3))
    torch.testing.assert_close(torch.sigmoid(rbm.visible_bias), torch.tensor([0.75, 1e-3, 0.75]))


def test_pixel_log_odds_are_the_clipped_log_odds_of_the_means_in_the_data_dtype():
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    got = pixel_log_odds(data, eps=0.01)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor([math.log(3.0), math.log(0.01 / 0.99), math.log(3.0)]))
    with pytest.raises(ValueError, match=r"non-empty batch of rows \(N, D\).*\(0, 3\)"):
        pixel_log_odds(torch.zeros(0, 3))


# ----------------------------------------------------------------------------- pseudo-likelihood, reconstruction


def test_pseudo_log_likelihood_equals_its_definition_from_the_joint():
    rbm = _rbm(5, 4)
    vs, log_p = _brute_log_p_v(rbm)
    log_p = log_p.detach()
    index = {tuple(v.tolist()): i for i, v in enumerate(vs)}
    expected = []
    for v in vs:
        total = 0.0
        for i in range(5):
            flipped = v.clone()
            flipped[i] = 1 - flipped[i]
            a, b = log_p[index[tuple(v.tolist())]], log_p[index[tuple(flipped.tolist())]]
            total += float(a - torch.logaddexp(a, b))  # log p(v_i | v_-i)
        expected.append(total)
    torch.testing.assert_close(rbm.pseudo_log_likelihood(vs), torch.tensor(expected, dtype=torch.float64))


def test_stochastic_pseudo_log_likelihood_is_unbiased():
    rbm = _rbm(6, 4, seed=5)
    v = _states(6)[[3, 17, 60]]
    exact = rbm.pseudo_log_likelihood(v)
    draws = rbm.pseudo_log_likelihood(v.repeat(20_000, 1), generator=torch.Generator().manual_seed(0)).reshape(-1, 3)
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4 * se).all(), (draws.mean(0), exact, se)
    assert not torch.allclose(draws[0], draws[1])  # it does draw different units


def test_reconstruction_error_is_the_squared_error_of_the_mean_field_reconstruction():
    rbm = _rbm(5, 4)
    v = _states(5)[[1, 30]]
    recon = torch.sigmoid(torch.sigmoid(v @ rbm.weight + rbm.hidden_bias) @ rbm.weight.T + rbm.visible_bias)
    torch.testing.assert_close(rbm.reconstruction_error(v), ((v - recon) ** 2).sum(1))


# ----------------------------------------------------------------------------- gradients


def test_cd_loss_gradient_equals_the_textbook_statistics():
    """d/dθ [mean F(v_data) - mean F(v_model)] = -(<v p(h|v)^T>_data - <v p(h|v)^T>_model), samples held fixed."""
    rbm = _rbm(6, 4, seed=7)
    g = torch.Generator().manual_seed(0)
    data = torch.bernoulli(torch.full((10, 6), 0.4, dtype=torch.float64), generator=g)
    negatives = rbm.gibbs(data, 1, g)  # CD-1
    loss = rbm.free_energy(data).mean() - rbm.free_energy(negatives).mean()
    loss.backward()
    ph_data, ph_model = rbm.hidden_probs(data).detach(), rbm.hidden_probs(negatives).detach()
    torch.testing.assert_close(-rbm.weight.grad, data.T @ ph_data / 10 - negatives.T @ ph_model / 10)
    torch.testing.assert_close(-rbm.visible_bias.grad, data.mean(0) - negatives.mean(0))
    torch.testing.assert_close(-rbm.hidden_bias.grad, ph_data.mean(0) - ph_model.mean(0))


def test_log_likelihood_gradient_is_data_minus_exact_model_statistics():
    """The exact gradient of mean log p(v), with log Z from the double sum, is <v h>_data - <v h>_model."""
    rbm = _rbm(4, 3, seed=8)
    vs, hs, energies = _joint_energies(rbm)
    data = vs[[1, 5, 5, 14]]
    mean_ll = (-rbm.free_energy(data)).mean() - torch.logsumexp(-energies.flatten(), 0)
    mean_ll.backward()
    p_joint = torch.softmax(-energies.flatten().detach(), 0).reshape(len(vs), len(hs))
    model_vh = torch.einsum("vh,vi,hj->ij", p_joint, vs, hs)
    data_vh = data.T @ rbm.hidden_probs(data).detach() / len(data)
    torch.testing.assert_close(rbm.weight.grad, data_vh - model_vh)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.full((2, 5), 0.5), "binary visible states"),
        (torch.tensor([[0.0, 1.0, float("nan"), 0.0, 1.0]]), "binary visible states"),
        (torch.zeros(2, 6), r"shape \(B, 5\)"),
        (torch.zeros(5), r"shape \(B, 5\)"),
    ],
)
def test_bad_visible_input_is_named(bad, message):
    rbm = RBM(n_visible=5, n_hidden=3)
    for method in (rbm.free_energy, rbm.hidden_probs, rbm.pseudo_log_likelihood, rbm.reconstruction_error,
                   lambda v: rbm.gibbs(v, 1)):
        with pytest.raises(ValueError, match=message):
            method(bad)


def test_bad_arguments_are_named():
    rbm = RBM(n_visible=5, n_hidden=3)
    with pytest.raises(TypeError, match="float tensor"):
        rbm.free_energy(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="binary hidden states"):
        rbm.visible_probs(torch.full((1, 3), 2.0))
    with pytest.raises(ValueError, match=r"shape \(B, 3\)"):
        rbm.sample_visible(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="same batch size"):
        rbm.energy(torch.zeros(2, 5), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="n_hidden must be a positive int"):
        RBM(n_visible=5, n_hidden=0)
    with pytest.raises(ValueError, match="init_std"):
        RBM(n_visible=5, n_hidden=2, init_std=float("nan"))
    with pytest.raises(ValueError, match="n_steps"):
        rbm.gibbs(torch.zeros(1, 5), 0)
    with pytest.raises(ValueError, match="start must hold n=4 chains"):
        rbm.sample(4, start=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="log_z must be a finite number"):
        rbm.log_likelihood(torch.zeros(1, 5), float("inf"))
    big = RBM(n_visible=EXACT_MAX_UNITS + 1, n_hidden=EXACT_MAX_UNITS + 2)
    with pytest.raises(ValueError, match="rbm_log_partition"):
        big.exact_log_partition()
