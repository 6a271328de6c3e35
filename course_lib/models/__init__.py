"""The course's models, one folder per family, each family with one protocol.

==================  ============================================================  =====
family              what its models share                                         topic
==================  ============================================================  =====
``autoregressive``  exact likelihoods by the chain rule: histograms, MADE,          01
                    WaveNet, PixelCNN, Gated PixelCNN, the logistic mixture
``latent``          a code z behind x: sparse coding, autoencoders, VAEs           02, 04
``energy``          an unnormalised density exp(-E(x)): energy models, RBMs,       03
                    and their MCMC samplers (``energy.sampling``)
``adversarial``     a generator trained against a critic: GANs, WGAN-GP            05
``flows``           invertible maps with tractable Jacobians: RealNVP, MAF, IAF    06
==================  ============================================================  =====

Each family's ``__init__`` states its protocol; across families every generative model
draws with ``sample(n, *, generator=None, ...)`` (its own options by keyword) and is built
from keyword arguments, ``Model(**settings["model"])`` (see :mod:`course_lib.presets`).

``receptive_field`` measures which inputs an output depends on, by input gradients, for a
model of any family; it sits here, beside the families.

The public names of the families are re-exported here: ``from course_lib.models import MADE``.
"""

from course_lib.models import autoregressive, energy, latent
from course_lib.models.autoregressive import *  # noqa: F403 -- the family's public names, listed in its __all__
from course_lib.models.energy import *  # noqa: F403 -- the family's public names, listed in its __all__
from course_lib.models.latent import *  # noqa: F403 -- the family's public names, listed in its __all__
from course_lib.models.receptive_field import random_image, receptive_field_map

__all__ = [*autoregressive.__all__, *energy.__all__, *latent.__all__, "random_image", "receptive_field_map"]
