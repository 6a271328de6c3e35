"""PCA by SVD against scikit-learn's, and its reconstruction error (topic 02)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.decomposition
import torch

from course_lib.models import PCA


def _data(n: int = 300, d: int = 10, seed: int = 0) -> torch.Tensor:
    """Correlated rows with well separated variances along their principal axes, and an offset mean."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(1, -1, d, dtype=torch.float64)  # 10 .. 0.1
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return (torch.randn(n, d, generator=gen, dtype=torch.float64) * scales) @ rotation.T + 3.0


def test_pca_matches_scikit_learn_up_to_the_sign_of_each_component():
    x = _data()
    ours = PCA(n_components=4).fit(x)
    theirs = sklearn.decomposition.PCA(n_components=4, svd_solver="full").fit(x.numpy())
    signs = np.sign((ours.components.numpy() * theirs.components_).sum(axis=1))  # (4,) of +-1
    assert np.allclose(ours.components.numpy(), signs[:, None] * theirs.components_, atol=1e-10)
    assert np.allclose(ours.explained_variance.numpy(), theirs.explained_variance_, rtol=1e-10)
    assert np.allclose(ours.explained_variance_ratio.numpy(), theirs.explained_variance_ratio_, rtol=1e-10)
    assert np.allclose(ours.mean.numpy(), theirs.mean_)
    assert np.allclose(ours.encode(x).numpy(), theirs.transform(x.numpy()) * signs, atol=1e-10)


def test_components_are_orthonormal_by_decreasing_variance_with_their_largest_entry_positive():
    pca = PCA(n_components=5).fit(_data(seed=1))
    c = pca.components
    assert torch.allclose(c @ c.T, torch.eye(5, dtype=c.dtype), atol=1e-12)
    assert (pca.explained_variance[:-1] > pca.explained_variance[1:]).all()
    largest = c.gather(1, c.abs().argmax(dim=1, keepdim=True))
    assert (largest > 0).all()


def test_reconstruction_error_is_the_variance_left_out():
    """Summed over the training set, the squared error is sum_{j > k} s_j^2 = (N - 1) * (discarded variance)."""
    x = _data(seed=2)
    full = PCA(n_components=10).fit(x)
    pca = PCA(n_components=3).fit(x)
    left_out = full.explained_variance[3:].sum() * (len(x) - 1)
    assert pca.loss(x).shape == (len(x),)
    assert pca.loss(x).sum().item() == pytest.approx(left_out.item(), rel=1e-10)
    assert torch.allclose(full.loss(x), torch.zeros(len(x), dtype=x.dtype), atol=1e-18), "all components: exact"
    z = pca.encode(x)
    assert z.shape == (len(x), 3) and torch.allclose(pca.decode(z), pca(x))


def test_pca_takes_image_batches_and_survives_a_state_dict_round_trip():
    x = torch.rand(50, 1, 3, 4, generator=torch.Generator().manual_seed(3))
    pca = PCA(n_components=2).fit(x)
    assert pca.n_features == 12 and pca.encode(x).shape == (50, 2) and pca(x).shape == (50, 12)
    restored = PCA(n_components=2)
    assert not restored.fitted
    restored.load_state_dict(pca.state_dict())
    assert torch.equal(restored.encode(x), pca.encode(x))


def test_pca_names_bad_use():
    with pytest.raises(RuntimeError, match="fit"):
        PCA(n_components=2).encode(torch.rand(3, 4))
    with pytest.raises(ValueError, match="n_components"):
        PCA(n_components=0)
    with pytest.raises(ValueError, match=r"n_components=5 must be at most min\(N, d\) = min\(10, 4\)"):
        PCA(n_components=5).fit(torch.rand(10, 4))
    with pytest.raises(ValueError, match="non-finite"):
        PCA(n_components=1).fit(torch.tensor([[0.0, 1.0], [float("inf"), 2.0]]))
    pca = PCA(n_components=2).fit(torch.rand(10, 4))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        pca.encode(torch.rand(3, 5))
    with pytest.raises(ValueError, match=r"codes must have shape \(B, 2\)"):
        pca.decode(torch.rand(3, 3))
    with pytest.raises(TypeError, match="float"):
        pca.encode(torch.ones(3, 4, dtype=torch.uint8))
