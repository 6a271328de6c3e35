r"""Latent-variable models (topics 02 and 04): a code :math:`z` behind every :math:`x`.

Sparse coding, autoencoders (linear = PCA, denoising, predictive sparse decomposition, deep)
and variational autoencoders live here. Their protocol, as those topics use it:

``encode(x)``
    the code of each example: a tensor (B, latent_dim) for sparse coding (ISTA's codes) and
    autoencoders; for a VAE, the parameters of :math:`q_\phi(z \mid x)` (mean and log-variance,
    (B, latent_dim) each).
``decode(z)``
    the reconstruction (B, ...) for an autoencoder; for a VAE, the parameters of
    :math:`p_\theta(x \mid z)` (e.g. Bernoulli logits of every pixel).
``loss(x) -> (B,)``
    what an autoencoder or sparse coder minimises per example: reconstruction error plus its
    penalty (sparsity, denoising), in the units its docstring names.
``elbo(x) -> (B,)`` (VAEs)
    :math:`\mathbb{E}_{q}[\log p_\theta(x \mid z)] - \mathrm{KL}(q_\phi(z \mid x) \,\|\, p(z))` in nats,
    with both terms available apart (``reconstruction`` and ``kl``) for the training curves.
``nll(x, *, n_importance=...) -> (B,)`` (VAEs)
    :math:`-\log p_\theta(x)` in nats estimated by importance sampling with ``n_importance``
    draws from :math:`q_\phi` (the IWAE bound), so that a VAE is compared with the likelihood
    models of topic 01 in the same units.
``sample(n, *, generator=None, ...)`` (generative models)
    :math:`z \sim p(z)`, then :math:`x \sim p_\theta(x \mid z)` (or its mean, by keyword).

Constructors take keyword arguments (``Model(**settings["model"])``), as in every family.
"""

# ----------------------------------------------------------------------------- autoencoders, PCA and binary codes
from course_lib.models.latent.autoencoder import Autoencoder, LinearAutoencoder, corrupt, gaussian_noise, mask_noise
from course_lib.models.latent.hashing import RandomProjectionHash
from course_lib.models.latent.pca import PCA

# ----------------------------------------------------------------------------- sparse coding
from course_lib.models.latent.sparse_coding import (
    LISTA,
    SparseCoder,
    dictionary_update,
    fista,
    ista,
    lasso_objective,
    learn_dictionary,
    lipschitz_constant,
    normalize_atoms,
    soft_threshold,
)

__all__ = [
    # autoencoders, PCA and binary codes
    "PCA",
    "Autoencoder",
    "LinearAutoencoder",
    "RandomProjectionHash",
    "corrupt",
    "gaussian_noise",
    "mask_noise",
    # sparse coding
    "LISTA",
    "SparseCoder",
    "dictionary_update",
    "fista",
    "ista",
    "lasso_objective",
    "learn_dictionary",
    "lipschitz_constant",
    "normalize_atoms",
    "soft_threshold",
]
