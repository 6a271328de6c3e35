r"""Adversarial models (topic 05): a generator trained against a critic.

GANs (minimax and non-saturating losses), Wasserstein GANs with gradient penalty and DCGAN
live here. There is no likelihood; samples are scored by the Fréchet distance and the
Inception-style score of :mod:`course_lib.metrics`. The protocol, as topic 05 uses it:

**Generator**
    ``forward(z) -> x``: a latent batch (B, latent_dim) to data (B, ...);
    ``sample(n, *, generator=None, ...)``: :math:`z \sim p(z)` (a standard normal) mapped to data,
    so that it draws like every other model of the course (interpolation between codes by
    calling ``forward`` on chosen ``z``).
**Critic / discriminator**
    ``forward(x) -> (B,)``: one score per example -- the logit of "real" for a discriminator
    (losses from ``binary_cross_entropy_with_logits``), an unbounded value for a Wasserstein
    critic (whose gradient penalty is computed on interpolates between real and generated data).
A training step alternates the critic's and the generator's updates with two optimizers; it
is the course's general training loop that runs it.

Constructors take keyword arguments (``Model(**settings["model"])``), as in every family.
"""
