"""Subspace angles, Hamming distances, precision at k and random-projection hashing (topic 02)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from course_lib.metrics import hamming_distances, precision_at_k, principal_angles
from course_lib.models import RandomProjectionHash

# ----------------------------------------------------------------------------- principal angles


def test_the_same_subspace_in_two_bases_has_zero_angles():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    b = a @ torch.randn(3, 3, generator=gen, dtype=torch.float64)  # another basis of the same span
    angles = principal_angles(a, b)
    assert angles.shape == (3,) and angles.dtype == torch.float64
    assert angles.abs().max() < 1e-7


def test_orthogonal_subspaces_are_at_right_angles():
    eye = torch.eye(6)
    angles = principal_angles(eye[:, :2], eye[:, 2:5])
    assert angles.shape == (2,)
    assert torch.allclose(angles, torch.full((2,), math.pi / 2))


@pytest.mark.parametrize("t", [1e-6, 0.3, 1.2])
def test_a_plane_tilted_by_a_known_angle(t):
    """span(e1, e2) against span(e1, cos t e2 + sin t e3): angles (0, t), small t included."""
    e = torch.eye(4, dtype=torch.float64)
    a = torch.stack([e[0], e[1]], dim=1)
    v = math.cos(t) * e[1] + math.sin(t) * e[2]
    b = torch.stack([e[0] + v, v], dim=1)  # a basis of span(e1, v), not orthonormal on purpose
    angles = principal_angles(a, b)
    assert angles[0] == pytest.approx(0.0, abs=1e-12)
    assert angles[1] == pytest.approx(t, rel=1e-6), "a small angle must come from its sine, not arccos(cos t)"


def test_principal_angles_agree_with_scipy_for_subspaces_of_different_sizes():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(9, 4, generator=gen, dtype=torch.float64), torch.randn(9, 2, generator=gen, dtype=torch.float64)
    expected = np.sort(scipy.linalg.subspace_angles(a.numpy(), b.numpy()))
    assert np.allclose(principal_angles(a, b).numpy(), expected)
    assert np.allclose(principal_angles(b, a).numpy(), expected)


@pytest.mark.parametrize("a, b, match", [
    (torch.ones(5, 2), torch.randn(5, 2), "rank 1"),
    (torch.randn(5, 2), torch.randn(6, 2), "same number of rows"),
    (torch.randn(5), torch.randn(5, 2), r"matrices \(d, k\)"),
    (torch.full((5, 2), float("nan")), torch.randn(5, 2), "non-finite"),
])
def test_principal_angles_name_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        principal_angles(a, b)


# ----------------------------------------------------------------------------- Hamming distances


def test_hamming_distances_count_differing_bits():
    a = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 0]])
    b = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]])
    expected = torch.tensor([[0, 4, 2], [2, 2, 4]])
    assert torch.equal(hamming_distances(a, b), expected)
    assert torch.equal(hamming_distances(a.bool(), b.float()), expected), "bool and 0/1 codes mix"
    assert hamming_distances(a, b).dtype == torch.int64


@pytest.mark.parametrize("a, b, match", [
    (torch.tensor([[0, 2]]), torch.tensor([[0, 1]]), "bits"),
    (torch.tensor([[0.5, 1.0]]), torch.tensor([[0, 1]]), "bits"),
    (torch.tensor([[0, 1]]), torch.tensor([[0, 1, 1]]), "same number of bits"),
    (torch.tensor([0, 1]), torch.tensor([[0, 1]]), r"\(N, n_bits\)"),
])
def test_hamming_distances_name_bad_codes(a, b, match):
    with pytest.raises(ValueError, match=match):
        hamming_distances(a, b)


# ----------------------------------------------------------------------------- precision at k

DB = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
DB_LABELS = torch.tensor([1, 0, 1, 1, 0])
QUERY, QUERY_LABEL = torch.tensor([[0, 0, 0, 0]]), torch.tensor([1])
# distances to the query: [0, 1, 1, 4, 0] -> order by (distance, index): 0, 4, 1, 2, 3 with labels 1, 0, 0, 1, 1


@pytest.mark.parametrize("k, expected", [(1, 1.0), (2, 1 / 2), (3, 1 / 3), (4, 2 / 4), (5, 3 / 5)])
def test_precision_at_k_on_a_hand_made_case_breaks_ties_by_database_index(k, expected):
    assert precision_at_k(QUERY, QUERY_LABEL, DB, DB_LABELS, k) == pytest.approx(expected)


def test_leave_one_out_precision_never_retrieves_the_query_itself():
    # nearest other item: 0 -> 4 (miss), 1 -> 0 (tied with 4; miss), 2 -> 0 (hit), 3 -> 1 (tied with 2; miss), 4 -> 0
    assert precision_at_k(DB, DB_LABELS, DB, DB_LABELS, 1, exclude_self=True) == pytest.approx(1 / 5)
    # without it, items 0..3 find themselves; item 4 finds its duplicate, item 0, first (the smaller index)
    assert precision_at_k(DB, DB_LABELS, DB, DB_LABELS, 1) == pytest.approx(4 / 5)


def test_precision_at_k_matches_a_brute_force_in_any_block_size():
    gen = torch.Generator().manual_seed(2)
    db, db_labels = torch.rand(300, 8, generator=gen) < 0.5, torch.randint(0, 3, (300,), generator=gen)
    q, q_labels = torch.rand(50, 8, generator=gen) < 0.5, torch.randint(0, 3, (50,), generator=gen)
    k = 7
    dist = (q.numpy()[:, None, :] != db.numpy()[None, :, :]).sum(-1)  # (50, 300)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # stable: ties by index
    expected = (db_labels.numpy()[order] == q_labels.numpy()[:, None]).mean()
    for block_size in (1, 16, 1024):
        assert precision_at_k(q, q_labels, db, db_labels, k, block_size=block_size) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 0}, "k must be"),
    ({"k": 6}, r"1\.\.5"),
    ({"k": 5, "exclude_self": True, "query_codes": DB, "query_labels": DB_LABELS}, r"1\.\.4"),
    ({"k": 1, "query_labels": torch.tensor([1, 0])}, r"query_labels must have shape \(1,\)"),
    ({"k": 1, "db_labels": torch.tensor([1])}, r"db_labels must have shape \(5,\)"),
])
def test_precision_at_k_names_bad_arguments(kwargs, match):
    arguments = {"query_codes": QUERY, "query_labels": QUERY_LABEL, "db_codes": DB, "db_labels": DB_LABELS, **kwargs}
    with pytest.raises(ValueError, match=match):
        precision_at_k(**arguments)


def test_exclude_self_needs_the_queries_to_be_the_database():
    with pytest.raises(ValueError, match="exclude_self"):
        precision_at_k(QUERY, QUERY_LABEL, DB, DB_LABELS, 1, exclude_self=True)


# ----------------------------------------------------------------------------- random-projection hashing


def test_random_projection_bits_disagree_with_probability_angle_over_pi():
    """Charikar's SimHash: two vectors at angle t differ on each bit with probability t / pi."""
    t, n_bits = math.pi / 3, 20_000
    x = torch.tensor([[1.0, 0.0, 0.0], [math.cos(t), math.sin(t), 0.0]])
    lsh = RandomProjectionHash(n_features=3, n_bits=n_bits, seed=0).fit(torch.zeros(1, 3))  # centre at 0
    codes = lsh.codes(x)
    assert codes.shape == (2, n_bits) and codes.dtype == torch.bool
    rate = hamming_distances(codes[:1], codes[1:]).item() / n_bits
    sd = math.sqrt((1 / 3) * (2 / 3) / n_bits)
    assert abs(rate - 1 / 3) < 5 * sd, f"disagreement rate {rate:.4f}, expected 1/3"


def test_random_projection_hash_is_reproducible_by_seed_and_centres_on_the_data():
    x = torch.rand(40, 1, 2, 5, generator=torch.Generator().manual_seed(3))  # images are flattened
    a = RandomProjectionHash(n_features=10, n_bits=16, seed=1).fit(x)
    b = RandomProjectionHash(n_features=10, n_bits=16, seed=1).fit(x)
    c = RandomProjectionHash(n_features=10, n_bits=16, seed=2).fit(x)
    assert torch.equal(a.codes(x), b.codes(x)) and not torch.equal(a.codes(x), c.codes(x))
    assert torch.allclose(a.mean, x.reshape(40, 10).mean(0))
    restored = RandomProjectionHash(n_features=10, n_bits=16, seed=1)
    restored.load_state_dict(a.state_dict())
    assert torch.equal(restored.codes(x), a.codes(x))


def test_random_projection_hash_refuses_unfitted_use_and_bad_shapes():
    lsh = RandomProjectionHash(n_features=4, n_bits=8)
    with pytest.raises(RuntimeError, match="fit"):
        lsh.codes(torch.rand(2, 4))
    lsh.fit(torch.rand(5, 4))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        lsh.codes(torch.rand(2, 5))
    with pytest.raises(ValueError, match="n_bits"):
        RandomProjectionHash(n_features=4, n_bits=0)
