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
        smoke={"n_steps": 25},
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
            "sigma": 1.0, "check_step": 0.5,  # the Gaussian check: closed-form stationary variance of ULA
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
}
"""Settings by experiment name, then by profile name."""

MODELS: dict[str, type[nn.Module]] = {}
"""The class that each preset with ``model`` arguments builds."""
