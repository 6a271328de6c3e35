import itertools

import pytest
import torch
from torch.autograd.functional import jacobian

from course_lib.models.autoregressive.made import MADE, MaskedLinear, made_degrees, made_masks


def _all_binary(d: int) -> torch.Tensor:
    """Every x in {0,1}^d, shape (2^d, d), float64."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=torch.float64)


def _path_counts(masks: list[torch.Tensor]) -> torch.Tensor:
    """Number of paths from input d' (column) to output d (row), (D, D)."""
    paths = masks[0].double()
    for mask in masks[1:]:
        paths = mask.double() @ paths
    return paths


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("connectivity", ["random", "even"])
def test_masks_leave_no_path_from_an_input_to_outputs_of_lower_or_equal_degree(seed, connectivity):
    d, hidden = 7, [12, 9, 10]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(d, generator=gen)
    masks = made_masks(d, hidden, order, generator=gen, connectivity=connectivity)
    assert [tuple(m.shape) for m in masks] == [(12, 7), (9, 12), (10, 9), (7, 10)]
    m0 = torch.empty(d, dtype=torch.long)
    m0[order] = torch.arange(1, d + 1)
    allowed = m0[:, None] > m0[None, :]  # output degree > input degree
    paths = _path_counts(masks)
    assert (paths[~allowed] == 0).all()
    if connectivity == "even":  # every degree 1..D-1 is present in every layer: full autoregressive connectivity
        assert (paths[allowed] > 0).all()


def test_hidden_degrees_lie_between_the_previous_minimum_and_d_minus_one():
    degrees = made_degrees(5, [50, 50], generator=torch.Generator().manual_seed(0))
    assert sorted(degrees[0].tolist()) == [1, 2, 3, 4, 5]
    for previous, current in zip(degrees[:-1], degrees[1:], strict=True):
        assert current.min() >= previous.min() and current.max() <= 4
    assert set(degrees[1].tolist()) == {1, 2, 3, 4}  # 50 uniform draws hit every degree


def test_masked_linear_ignores_masked_weights():
    layer = MaskedLinear(3, 2)
    layer.set_mask(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    x = torch.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    assert (x.grad[:, 2] == 0).all() and (x.grad[:, 0] != 0).all()
    with pytest.raises(ValueError, match="shape"):
        layer.set_mask(torch.ones(3, 2))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("direct", [False, True])
def test_autoregressive_property_by_jacobian_for_random_orderings(seed, direct):
    d = 6
    torch.manual_seed(seed)
    model = MADE(d, hidden_sizes=[32, 32], n_masks=3, natural_ordering=False, seed=seed,
                 direct_connection=direct).double()
    for m in range(model.n_masks):
        model.set_mask(m)
        order = model.order.tolist()
        x = torch.rand(d, dtype=torch.float64)
        jac = jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), x)  # (D out, D in)
        for i in range(d):
            for j in range(i, d):
                assert jac[order[i], order[j]] == 0, f"output {order[i]} depends on input {order[j]} (step {j} >= {i})"
        earlier = [jac[order[i], order[j]] != 0 for i in range(d) for j in range(i)]
        assert sum(earlier) >= len(earlier) // 2, "too few of the allowed dependencies are present"
        assert (jac[order[-1], order[:-1]] != 0).any()


def test_first_dimension_in_the_ordering_is_unconditional():
    model = MADE(4, hidden_sizes=[16], natural_ordering=False, seed=3).double()
    first = model.order[0].item()
    logits = model(_all_binary(4))
    assert torch.allclose(logits[:, first], logits[0, first].expand(16))


@pytest.mark.parametrize("natural", [True, False])
def test_probabilities_of_all_binary_inputs_sum_to_one(natural):
    torch.manual_seed(0)
    model = MADE(3, hidden_sizes=[8, 8], natural_ordering=natural, seed=1).double()
    x = _all_binary(3)  # (8, 3)
    assert torch.exp(-model.nll(x)).sum().item() == pytest.approx(1.0, abs=1e-12)


def test_images_are_flattened_and_probabilities_still_sum_to_one():
    torch.manual_seed(1)
    model = MADE(4, hidden_sizes=[10], seed=2).double()
    x = _all_binary(4)
    images = x.reshape(16, 1, 2, 2)
    assert torch.allclose(model.nll(images), model.nll(x))
    assert torch.exp(-model.nll(images)).sum().item() == pytest.approx(1.0, abs=1e-12)


def test_nll_is_the_sum_of_bernoulli_cross_entropies():
    model = MADE(3, hidden_sizes=[5]).double()
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    p = torch.sigmoid(model(x))[0]
    expected = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(p[2]))
    assert model.nll(x).item() == pytest.approx(expected.item(), abs=1e-12)


def test_sample_frequencies_match_the_exact_probabilities():
    torch.manual_seed(2)
    model = MADE(3, hidden_sizes=[16], natural_ordering=False, seed=4).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(3)  # a less uniform distribution
    x = _all_binary(3)
    probs = torch.exp(-model.nll(x))
    n = 50_000
    samples = model.sample(n, generator=torch.Generator().manual_seed(5))
    assert samples.shape == (n, 3) and set(samples.unique().tolist()) <= {0.0, 1.0}
    index = (samples * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(index, minlength=8).double() / n
    assert 0.5 * (freq - probs).abs().sum() < 0.015
    assert model.sample(5, image_shape=(1, 1, 3)).shape == (5, 1, 1, 3)


def test_ensemble_of_one_ordering_equals_nll():
    model = MADE(5, hidden_sizes=[20], n_masks=4, natural_ordering=False).double().eval()
    x = _all_binary(5)
    assert torch.allclose(model.nll_ensemble(x, n_orderings=1), model.nll(x), atol=1e-12)


def test_ensemble_averages_the_probabilities_of_its_orderings():
    model = MADE(3, hidden_sizes=[10], n_masks=3, natural_ordering=False, seed=7).double().eval()
    x = _all_binary(3)
    per_mask = []
    for m in range(3):
        model.set_mask(m)
        per_mask.append(torch.exp(-model.nll(x)))
    model.set_mask(1)
    ensemble = torch.exp(-model.nll_ensemble(x))
    assert torch.allclose(ensemble, torch.stack(per_mask).mean(0), atol=1e-12)
    assert ensemble.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert model.mask_index == 1, "nll_ensemble must restore the mask in use"


def test_training_mode_moves_to_a_new_mask_each_minibatch():
    model = MADE(6, hidden_sizes=[16], n_masks=3, natural_ordering=False, seed=0)
    x = torch.zeros(2, 6)
    orders = []
    for _ in range(3):
        model.nll(x)
        orders.append(tuple(model.order.tolist()))
    assert len(set(orders)) == 3, "three masks should give three orderings"
    model.nll(x)
    assert tuple(model.order.tolist()) == orders[0], "the masks should cycle"
    model.eval()
    model.nll(x)
    assert tuple(model.order.tolist()) == orders[0], "evaluation must not change the mask"


def test_made_learns_a_small_joint_distribution():
    gen = torch.Generator().manual_seed(8)
    table = torch.tensor([0.3, 0.0, 0.05, 0.15, 0.0, 0.2, 0.25, 0.05])  # p(x) for x = 000, 001, ..., 111
    cells = torch.multinomial(table, 2000, replacement=True, generator=gen)
    x = torch.stack([(cells >> 2) & 1, (cells >> 1) & 1, cells & 1], dim=1).float()
    empirical = torch.bincount(cells, minlength=8).float() / 2000
    torch.manual_seed(8)
    model = MADE(3, hidden_sizes=[32, 32])
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        model.nll(x).mean().backward()
        opt.step()
    probs = torch.exp(-model.nll(_all_binary(3).float())).detach()
    assert 0.5 * (probs - empirical).abs().sum() < 0.02


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((2, 4), 0.5), "0 and 1"),
        (torch.zeros(2, 5), "shape"),
        (torch.zeros(2, 1, 3, 3), "shape"),
        (torch.zeros(4), "shape"),
    ],
)
def test_bad_input_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        MADE(4, hidden_sizes=[8]).nll(bad)


def test_bad_constructor_arguments_raise_value_error():
    with pytest.raises(ValueError):
        MADE(0, hidden_sizes=[8])
    with pytest.raises(ValueError, match="connectivity"):
        made_masks(3, [4], connectivity="dense")
    with pytest.raises(ValueError, match="permutation"):
        made_masks(3, [4], order=torch.tensor([0, 0, 1]))
