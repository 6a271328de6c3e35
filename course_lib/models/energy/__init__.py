r"""Energy-based models (topic 03): an unnormalised density :math:`p(x) = e^{-E(x)} / Z`.

Maximum-entropy models, energy models trained by contrastive divergence or persistent chains,
and restricted Boltzmann machines live here; their MCMC samplers live in
:mod:`course_lib.models.energy.sampling`. The protocol, as topic 03 uses it:

``energy(x) -> (B,)``
    :math:`E(x)` of each example; :math:`Z` is not computed (it is what makes these models
    hard). Lower energy = more probable.
``free_energy(v) -> (B,)`` (RBMs and other models with hidden units)
    :math:`F(v) = -\log \sum_h e^{-E(v, h)}`, so that :math:`p(v) \propto e^{-F(v)}`; RBMs also
    give the factorised conditionals :math:`p(h \mid v)` and :math:`p(v \mid h)` that block Gibbs
    sampling alternates.
``sample(n, *, generator=None, ...)``
    ``n`` draws by running a sampler of :mod:`~course_lib.models.energy.sampling` from a fresh
    start (the number of steps and the step size by keyword).
Training differentiates :math:`\mathbb{E}_{\text{data}}[E] - \mathbb{E}_{\text{model}}[E]`, the model's
expectation taken over the chains' states; the log-partition function for a likelihood in nats
comes from annealed importance sampling (:mod:`~course_lib.models.energy.ais`).

Constructors take keyword arguments (``Model(**settings["model"])``), as in every family.
"""

# ----------------------------------------------------------------------------- annealed importance sampling
from course_lib.models.energy.ais import (
    AISEstimate,
    RBMLogLikelihood,
    annealed_importance_sampling,
    annealing_betas,
    log_mean_exp,
    rbm_log_likelihood,
    rbm_log_partition,
)

# ----------------------------------------------------------------------------- energy networks (Du & Mordatch)
from course_lib.models.energy.ebm import (
    ConvEnergy,
    MLPEnergy,
    grid_kl,
    grid_log_density,
    grid_points,
    ood_auroc,
    ood_scores,
)

# ----------------------------------------------------------------------------- the Ising model
from course_lib.models.energy.ising import (
    critical_temperature,
    exact_ising,
    ising_energy,
    magnetization,
    onsager_magnetization,
)

# ----------------------------------------------------------------------------- maximum entropy
from course_lib.models.energy.maxent import (
    entropy,
    expected_features,
    fit_maxent,
    gibbs_distribution,
    log_partition,
    maxent_dual,
)

# ----------------------------------------------------------------------------- restricted Boltzmann machines
from course_lib.models.energy.rbm import RBM, pixel_log_odds

# ----------------------------------------------------------------------------- MCMC samplers
from course_lib.models.energy.sampling import (
    MCMCResult,
    ReplayBuffer,
    acceptance_probability,
    block_gibbs,
    checkerboard_gibbs,
    mala,
    metropolis_hastings,
    sgld,
    sitewise_gibbs,
    ula,
)

# ----------------------------------------------------------------------------- skip-gram with negative sampling
from course_lib.models.energy.skipgram import SkipGram

# ----------------------------------------------------------------------------- a maximum-entropy texture model
from course_lib.models.energy.texture import TEXTURE_CROP, FilterBank, load_texture, synthesize_texture

__all__ = [
    # energy networks
    "ConvEnergy",
    "MLPEnergy",
    "grid_kl",
    "grid_log_density",
    "grid_points",
    "ood_auroc",
    "ood_scores",
    # the Ising model
    "critical_temperature",
    "exact_ising",
    "ising_energy",
    "magnetization",
    "onsager_magnetization",
    # MCMC samplers
    "MCMCResult",
    "ReplayBuffer",
    "acceptance_probability",
    "block_gibbs",
    "checkerboard_gibbs",
    "mala",
    "metropolis_hastings",
    "sgld",
    "sitewise_gibbs",
    "ula",
    # maximum entropy on a finite state space
    "entropy",
    "expected_features",
    "fit_maxent",
    "gibbs_distribution",
    "log_partition",
    "maxent_dual",
    # a maximum-entropy texture model
    "TEXTURE_CROP",
    "FilterBank",
    "load_texture",
    "synthesize_texture",
    # restricted Boltzmann machines and annealed importance sampling
    "AISEstimate",
    "RBMLogLikelihood",
    "RBM",
    "pixel_log_odds",
    "annealed_importance_sampling",
    "annealing_betas",
    "log_mean_exp",
    "rbm_log_likelihood",
    "rbm_log_partition",
    # skip-gram with negative sampling
    "SkipGram",
]
