r"""Topic 03 (maximum entropy, energy-based models and MCMC): the sizes and settings of the lecture and the benchmark.

Each experiment's settings are written once, as the ``cpu`` profile uses them (a few minutes at
most per experiment on a laptop's CPU), and each other profile lists only what it changes (see
:func:`~course_lib.presets.merge.by_profile`): ``smoke`` shrinks everything so that the whole
lecture runs in about a minute on 2 CPU cores (its numbers mean nothing); ``gpu`` runs the
papers' sizes.

Conventions are those of :mod:`course_lib.models.energy`: an energy :math:`E(x)` defines
:math:`p(x) \propto e^{-E(x)}`; step sizes are Langevin's :math:`\epsilon` in
:math:`x' = x - \epsilon \nabla E(x) + \sqrt{2\epsilon}\,\xi` or a random walk's standard deviation; Ising
temperatures are in units of the coupling (:math:`J = 1`, :math:`k_B = 1`); RBM log-likelihoods are in
nats per image of binarized MNIST. Numbers of steps count sampler steps (Ising: sweeps of the
whole lattice). The keys of every experiment are described next to their values. ``MODELS`` names
the class that :func:`course_lib.presets.build_model` builds from a preset's ``model`` arguments;
the other presets size an experiment, not a model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from course_lib.models import RBM, ConvEnergy, MLPEnergy, SkipGram
from course_lib.presets.merge import by_profile

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # ---------------------------------------------------------------- maximum entropy on a grid: the dual by Newton
    "maxent_grid": by_profile(
        {
            "low": -4.0, "high": 4.0, "n_states": 201,  # the state space: a grid of n_states points on [low, high]
            "bumps": ((0.35, -1.5, 0.5), (0.65, 1.2, 0.8)),  # the data on the grid: (weight, mean, std) of 2 bumps
            "degrees": (2, 4, 6),  # fit the moments of x, ..., x^degree for each degree
        },
    ),
    # ---------------------------------------------------------------- texture synthesis by matching statistics
    "texture": by_profile(
        {
            "crop": (0, 347, 5, 80),  # (image, top, left, size) of scikit-learn's sample photographs: foliage
            "bank": {"n_scales": 3, "n_orientations": 4},  # FilterBank's arguments
            "n_steps": 300, "lr": 0.02,  # Adam steps on the pixels, learning rate in grey levels
            "noise_std": 0.0,  # Langevin-type noise after each step (0: plain descent)
        },
        smoke={"n_steps": 10},
        gpu={"n_steps": 1_500},
    ),
    # ---------------------------------------------------------------- random-walk Metropolis: proposal widths
    "mh_widths": by_profile(
        {
            # random-walk standard deviations on a 2-D Gaussian with correlation 0.9 (scales 0.32 and 1.38)
            "step_sizes": (0.02, 0.1, 0.5, 2.5, 12.5),
            "n_chains": 8,  # chains from dispersed starts (for ESS and split R-hat)
            "n_steps": 5_000, "burn_in": 500,
            "max_lag": 200,  # autocorrelations shown up to this lag
        },
        smoke={"n_steps": 600, "burn_in": 100, "max_lag": 100},
        gpu={"n_steps": 20_000, "burn_in": 2_000},
    ),
    # ---------------------------------------------------------------- the 2-D Ising model: checkerboard Gibbs
    "ising": by_profile(
        {
            "exact_temperatures": (2.0, 2.5, 3.5),  # the 4x4 sanity check against exact enumeration
            "exact_chains": 4_000, "exact_sweeps": 100,  # independent chains and their burn-in on the 4x4 torus
            "L": 32,  # side of the torus of the magnetisation curve
            "t_low": 1.5, "t_high": 3.5, "n_temperatures": 11,
            "n_repeats": 4,  # independent chains per temperature (error bars)
            "burn_in": 500, "n_sweeps": 1_000,  # sweeps discarded, then averaged
            "n_timing_chains": 2,  # chains of the site-by-site timing (a Python loop over L * L sites)
        },
        smoke={"exact_chains": 2_000, "exact_sweeps": 30, "L": 16, "n_temperatures": 6, "n_repeats": 2,
               "burn_in": 50, "n_sweeps": 100, "n_timing_chains": 1},
        gpu={"L": 128, "n_temperatures": 21, "n_repeats": 8, "burn_in": 2_000, "n_sweeps": 5_000},
    ),
    # ---------------------------------------------------------------- ULA's O(step) bias, MALA's none; chain viewer
    "langevin_bias": by_profile(
        {
            "sigma": 1.0, "check_step": 0.5,  # the Gaussian check: ULA too wide, MALA exact
            "check_chains": 20_000, "check_steps": 100,
            "mixture": ((0.4, -1.0, 0.6), (0.6, 1.5, 0.9)),  # the 1-D target: (weight, mean, std) of 2 Gaussians
            "step_sizes": (0.03, 0.06, 0.12, 0.25, 0.5),
            "n_chains": 2_000, "n_steps": 500,  # chains started at exact draws; every step is kept
            "viewer_chains": 8, "viewer_steps": 200,  # the chain viewer on eight Gaussians
            "viewer_mh_step": 0.3, "viewer_mala_step": 0.02,
        },
        smoke={"check_chains": 5_000, "check_steps": 30, "n_chains": 500, "n_steps": 100, "viewer_steps": 60},
        gpu={"n_chains": 10_000, "n_steps": 2_000},
    ),
    # ---------------------------------------------------------------- an MLP energy of 2-D data: buffer and Langevin
    "ebm_2d": by_profile(
        {
            "model": {"n_features": 2, "hidden": (128, 128), "activation": "silu"},  # MLPEnergy's arguments
            "toy": "eight_gaussians", "range": ((-4.0, 4.0), (-4.0, 4.0)),  # the data and the box of the grid
            "check_chains": 5_000, "check_step": 0.01, "check_steps": 300, "check_tv": 0.15,  # ULA on the truth
            # EBMTask: Adam (lr, betas, cosine decay), SGLD with step_size and noise sqrt(2 step_size) (a proper
            # Langevin sampler at this scale), the replay buffer, alpha of the energy regulariser, Gaussian noise
            # of std data_noise on the data. Measured with one thread: KL on the grid 1.33 (uniform) -> 0.025,
            # 0.031, 0.037 nats for seeds 0, 1, 2 in 20-35 s; alpha 0.1 stalls near 0.064; Adam's beta1 = 0 (Du &
            # Mordatch's choice for images) leaves a ring, KL about 0.45
            "epochs": 20, "batch_size": 256, "lr": 1e-2, "lr_schedule": "cosine", "betas": (0.9, 0.999),
            "n_train": 20_000, "max_steps_per_epoch": None,
            "sgld_steps": 20, "step_size": 0.01, "noise_std": 0.1414, "grad_clip": None, "alpha": 0.01,
            "buffer_size": 2_000, "reinit_prob": 0.05, "data_noise": 0.05,
            "grid_n": 100,  # cells per side of the grid on which the KL to the truth is computed
            "n_samples": 1_000, "sample_steps": 300, "sample_step_size": 0.01,  # fresh ULA chains shown
        },
        # smoke: 64 steps, KL 1.33 -> 0.46 in 2.7 s (with alpha 0.01 so short a run wobbles)
        smoke={"check_chains": 1_000, "check_steps": 60, "check_tv": 0.3, "epochs": 2, "n_train": 4_096,
               "batch_size": 128, "sgld_steps": 10, "buffer_size": 1_024, "alpha": 0.1, "grid_n": 60,
               "n_samples": 300, "sample_steps": 50},
        gpu={"epochs": 40, "n_train": 65_536, "sgld_steps": 60, "buffer_size": 8_192},
    ),
    # ---------------------------------------------------------------- RBMs on binarized MNIST: CD-k and PCD
    "rbm": by_profile(
        {
            # RBM(n_visible, n_hidden, init_std); ContrastiveDivergenceTask: SGD with momentum on the mean
            # gradient of a batch, the learning rate decayed linearly to 0 (Tieleman 2008), weight decay on the
            # weights, k Gibbs steps per update, n_chains persistent chains for PCD. Measured with one torch thread
            # on 2 cores: PCD-1, 50 epochs (25,000 updates) in 232 s, AIS test log-likelihood -95.6, -97.7, -96.7
            # nats per image over three AIS repeats; 30 epochs: -100 to -102.5; 20 epochs without weight decay:
            # -106 to -108; lr 0.02: -112; lr 0.05-0.1 with momentum 0.5: -127 to -136 after 5 epochs
            "model": {"n_visible": 784, "n_hidden": 500},
            "k": 1, "n_chains": 100,
            "epochs": 50, "batch_size": 100, "lr": 0.01, "lr_schedule": "linear", "momentum": 0.9,
            "weight_decay": 1e-4,
            "n_train": None, "n_test": None, "max_steps_per_epoch": None,  # binarized MNIST: 50,000 / 10,000
            "n_filters": 64, "n_samples": 64, "sample_steps": 1_000,  # filters and Gibbs samples shown
        },
        smoke={"model": {"n_hidden": 64}, "epochs": 1, "lr": 0.05, "lr_schedule": "constant", "momentum": 0.5,
               "n_train": 2_000, "n_test": 500, "max_steps_per_epoch": 10,
               "n_filters": 16, "n_samples": 16, "sample_steps": 50},
        gpu={"k": 25, "epochs": 50},  # Salakhutdinov & Murray's CD-25, 500 hidden units
    ),
    # ---------------------------------------------------------------- AIS: a tiny RBM by enumeration, then MNIST
    "rbm_ais": by_profile(
        {
            "tiny_visible": 10, "tiny_hidden": 6, "tiny_weight_std": 1.0,  # the tiny RBM whose log Z is enumerated
            "tiny_runs": 200, "tiny_betas": 1_000,
            # AIS runs and temperatures per estimate, Salakhutdinov & Murray's 100 runs and 14,500 temperatures
            # (their three-piece schedule): about 37 s per estimate for 500 hidden units on one thread; the repeats
            # of one RBM spread by about 2 nats, more than each estimate's own error bar (0.35-0.6) says
            "n_runs": 100, "n_betas": 14_500,
            "n_repeats": 3,  # independent AIS estimates of each MNIST RBM's log Z (the spread)
            "base_clamp": 1e-3,  # the base rate model's pixel means are clamped to [c, 1 - c]
        },
        smoke={"tiny_runs": 100, "tiny_betas": 300, "n_runs": 16, "n_betas": 200, "n_repeats": 2},
        gpu={"n_runs": 100, "n_betas": 30_000, "n_repeats": 5},
    ),
    # ---------------------------------------------------------------- a convolutional EBM of MNIST (Du & Mordatch)
    "conv_ebm": by_profile(
        {
            "model": {"channels": (16, 32, 32), "activation": "silu"},  # ConvEnergy's arguments
            # measured with one thread: 500 steps in 87 s; the buffer holds recognisable digits; AUROC of test digits
            # against uniform noise 1.000, constant grey 0.981, pixel-shuffled digits 0.998
            "epochs": 1, "batch_size": 64, "lr": 1e-3, "lr_schedule": "constant",
            "n_train": 32_000, "n_test": 2_000, "max_steps_per_epoch": 500,
            # EBMTask, Du & Mordatch's decoupled SGLD: gradient step 10, noise 0.005, gradient clip 0.03; a buffer
            # small enough that a short run revisits its chains
            "sgld_steps": 20, "step_size": 10.0, "noise_std": 0.005, "grad_clip": 0.03, "alpha": 0.1,
            "data_noise": 0.005, "buffer_size": 2_048, "reinit_prob": 0.05,
            "n_samples": 36, "sample_steps": 80,  # fresh chains from noise shown
            "n_ood": 1_000,  # test digits and unlike inputs scored
        },
        smoke={"model": {"channels": (8, 16, 16)}, "batch_size": 32, "n_train": 1_000, "n_test": 200,
               "max_steps_per_epoch": 30, "sgld_steps": 10, "buffer_size": 256, "n_samples": 16, "sample_steps": 10,
               "n_ood": 200},
        # gpu: Du & Mordatch's sizes (not yet measured)
        gpu={"model": {"channels": (32, 64, 128, 128)}, "epochs": 30, "batch_size": 128, "lr": 1e-4,
             "n_train": None, "n_test": None, "max_steps_per_epoch": None, "sgld_steps": 60, "buffer_size": 10_000},
    ),
    # ---------------------------------------------------------------- skip-gram with negative sampling
    "skipgram": by_profile(
        {
            "model": {"dim": 64},  # SkipGram's arguments (vocab_size comes from the data)
            "min_count": 5, "window": 2,  # words seen fewer times are dropped; pairs within this distance
            "subsample": 1e-3, "test_fraction": 0.1,  # subsampling threshold of frequent words; held-out text
            "noise_power": 0.75, "n_negatives": 5,  # q(c) ~ count(c)^0.75; noise pairs per real pair
            "epochs": 5, "batch_size": 1_024, "lr": 3e-3, "lr_schedule": "constant",
            "n_train": None, "n_test": 20_000, "max_steps_per_epoch": None,  # pairs used (None: all)
            "query_words": ("king", "love", "death", "night", "lord", "sweet", "blood", "thou"),
            "n_neighbours": 5,
        },
        smoke={"epochs": 1, "n_train": 20_000, "n_test": 2_000},
        gpu={"epochs": 20, "n_test": None},
    ),
}
"""Settings by experiment name, then by profile name."""

MODELS: dict[str, type[nn.Module]] = {
    "ebm_2d": MLPEnergy,
    "rbm": RBM,
    "conv_ebm": ConvEnergy,
    "skipgram": SkipGram,
}
"""The class that each preset with ``model`` arguments builds."""
