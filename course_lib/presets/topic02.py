r"""Topic 02 (sparse coding and autoencoders): the sizes and training settings of the lecture and the benchmark.

Each experiment's settings are written once, as the ``cpu`` profile uses them (a few minutes at
most per model on a laptop's CPU), and each other profile lists only what it changes (see
:func:`~course_lib.presets.merge.by_profile`): ``smoke`` shrinks everything so that the whole
lecture runs in about a minute on 2 CPU cores (its numbers mean nothing); ``gpu`` trains the
papers' sizes.

Units and conventions are those of :mod:`course_lib.models.latent`: patches are rows of
``patch_size ** 2`` whitened grey levels, dictionaries are (d, K) with unit-norm atoms, ``lam``
weighs the l1 penalty of :math:`\frac12\lVert x - Da\rVert^2 + \lambda\lVert a\rVert_1`; MNIST images are
rows of 784 intensities in [0, 1] and reconstruction errors are squared errors per image.

The keys shared by every model trained with :class:`~course_lib.training.ReconstructionTask`
(``model``, ``epochs``, ``batch_size``, ``lr``, ``lr_schedule``, ``weight_decay``, ``n_train``,
``n_test``, ``max_steps_per_epoch``) mean what :mod:`course_lib.presets` says; ``n_train`` and
``n_test`` count MNIST's leading training and test images (None: all 60,000 / 10,000). The other
keys are described next to their values. ``MODELS`` names the class that
:func:`course_lib.presets.build_model` builds from a preset's ``model`` arguments; the
``fista_vs_ista`` preset sizes an experiment, not a model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from course_lib.models import LISTA, Autoencoder, LinearAutoencoder, SparseCoder
from course_lib.presets.merge import by_profile

LAM = 0.7
"""The l1 weight of every sparse-coding experiment on whitened patches (``whitening_eps`` below): about 10 of
128 atoms active per patch. LISTA is trained on the codes of the same objective."""

WHITENING_EPS = 3e-3
"""ZCA's regulariser, in squared grey levels (images in [0, 1], halved in size by ``load_image_patches``):
the strong, coarse directions of the patches come out with variance near 1, the finest (pixel noise,
compression artefacts) damped to about 0.25. With 1e-3 more atoms learn that noise; with 3e-2 the atoms
grow longer and smoother and more of them turn into gratings."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # ---------------------------------------------------------------- ISTA vs FISTA on one lasso problem
    "fista_vs_ista": by_profile(
        {
            "lam": LAM,
            "n_patches": 200,  # patches coded for the convergence figure, with a dictionary of 2d other patches
            "n_iter": 500,  # ISTA and FISTA iterations shown
            "n_reference_iter": 5_000,  # FISTA iterations for the reference optimum F*
            "n_sklearn_checks": 3,  # patches whose optimum is checked against scikit-learn's Lasso
            "n_timing": 10_000,  # patches coded by FISTA and by scikit-learn's sparse_encode for the speed ratio
        },
        smoke={"n_patches": 64, "n_iter": 200, "n_reference_iter": 2_000, "n_sklearn_checks": 1, "n_timing": 1_000},
    ),
    # ---------------------------------------------------------------- dictionary learning on whitened patches
    "sparse_coding": by_profile(
        {
            # SparseCoder(n_features = patch_size^2, n_atoms = K, lam, n_iter = FISTA iterations of encode)
            "model": {"n_features": 64, "n_atoms": 128, "lam": LAM, "n_iter": 50},
            "patch_size": 8,  # side of a patch in pixels
            "whitening_eps": WHITENING_EPS,
            "n_train": 50_000,  # whitened patches to learn from
            "n_test": 10_000,  # held-out patches for the objective
            "n_steps": 2_000,  # alternations of learn_dictionary (one FISTA coding and one pass over the atoms each)
            "batch_size": 256,  # patches per alternation
        },
        smoke={"n_train": 5_000, "n_test": 1_000, "n_steps": 60},
        # 4x over-complete, as Olshausen & Field's later work; Mairal et al. (2009) use batches of 256-1024
        gpu={"model": {"n_atoms": 256}, "n_train": 200_000, "n_test": 20_000, "n_steps": 10_000, "batch_size": 1_024},
    ),
    # ---------------------------------------------------------------- LISTA: a feed-forward encoder of the codes
    "lista": by_profile(
        {
            # LISTA(n_features, n_atoms, lam, n_layers = soft thresholdings, target = what it learns, lr = Adam's);
            # the lecture builds it with LISTA.from_dictionary(learned dictionary, lam, ...)
            "model": {"n_features": 64, "n_atoms": 128, "lam": LAM, "n_layers": 3, "target": "codes", "lr": 1e-3},
            "fista_iter": 100,  # FISTA iterations of the target codes and of the comparison
            "epochs": 10, "batch_size": 256, "n_train": 50_000, "n_test": 10_000, "max_steps_per_epoch": None,
            "n_timing": 10_000,  # held-out patches coded by LISTA and by FISTA for the speed-up
        },
        smoke={"epochs": 2, "n_train": 5_000, "n_test": 1_000, "n_timing": 1_000},
        gpu={"model": {"n_atoms": 256}, "epochs": 30, "n_train": 200_000, "n_test": 20_000},
    ),
    # ---------------------------------------------------------------- linear autoencoder vs PCA on MNIST
    "linear_ae": by_profile(
        {
            # LinearAutoencoder on centred images, without biases (the theorem's setting: the biases would have to
            # learn the mean, which Adam does slowly); code size 6: the spectrum has a clear gap after the 6th
            # eigenvalue (2.33 vs 1.73), so the subspace converges in seconds
            "model": {"n_features": 784, "code_size": 6, "bias": False},
            "epochs": 30, "batch_size": 250, "lr": 3e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "n_train": 20_000, "n_test": None, "max_steps_per_epoch": None,
            "max_angle": 0.05,  # radians: the largest principal angle to PCA's subspace the lecture accepts
        },
        smoke={"epochs": 20, "lr": 1e-2, "n_train": 5_000, "n_test": 2_000},
        gpu={"n_train": None},
    ),
    # ---------------------------------------------------------------- the deep autoencoder of Hinton & Salakhutdinov
    "deep_ae": by_profile(
        {
            # 784-1000-500-250-30, ReLU, linear 30-D code, sigmoid output; from scratch (He initialisation) with Adam,
            # no RBM pretraining. Measured on all 10,000 test images: 5.3 squared error per image after 4 epochs
            # (about 2 minutes on one core), against 13.9 for PCA with 30 components
            "model": {"sizes": (784, 1000, 500, 250, 30), "activation": "relu", "output": "sigmoid", "code": "linear"},
            "epochs": 5, "batch_size": 128, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "n_train": None, "n_test": None, "max_steps_per_epoch": None,
        },
        smoke={"epochs": 1, "lr_schedule": "constant", "n_train": 2_000, "n_test": 1_000},
        gpu={"epochs": 50},
    ),
    # ---------------------------------------------------------------- denoising autoencoders on MNIST
    "denoising_ae": by_profile(
        {
            # one hidden layer of sigmoid units, as Vincent et al. (2008); the filters are its first layer's rows
            "model": {"sizes": (784, 500), "activation": "sigmoid", "output": "sigmoid", "code": "sigmoid"},
            "epochs": 5, "batch_size": 128, "lr": 3e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "n_train": 20_000, "n_test": 2_000, "max_steps_per_epoch": None,  # ~20 s per model on 2 cores
            "mask_levels": (0.0, 0.25, 0.5),  # masking probabilities of the trained models (0: a plain autoencoder)
            "gaussian_sigma": 0.3,  # the noise std of the model trained with Gaussian corruption
            "eval_mask_levels": (0.0, 0.1, 0.25, 0.5, 0.75),  # test corruptions of the denoising curves
            "eval_gaussian_sigmas": (0.0, 0.1, 0.2, 0.3, 0.5),
            "n_eval": 2_000,  # test images of the denoising curves
            "n_filters": 49,  # first-layer filters shown per model (a square number)
        },
        # 64 steps of a smaller layer at a large learning rate: enough to denoise better than doing nothing
        smoke={"model": {"sizes": (784, 256)}, "epochs": 2, "batch_size": 64, "lr": 1e-2, "lr_schedule": "constant",
               "n_train": 2_000, "n_test": 500, "n_eval": 500, "n_filters": 36},
        gpu={"model": {"sizes": (784, 1000)}, "epochs": 50, "n_train": None, "n_test": None, "n_eval": 10_000,
             "n_filters": 100},
    ),
    # ---------------------------------------------------------------- semantic hashing: 32-bit binary codes of MNIST
    "semantic_hashing": by_profile(
        {
            # logistic code with Gaussian noise on its input during training (Salakhutdinov & Hinton, 2009). Measured
            # on 1,000 test queries against the 60,000 training digits, precision at 10: 0.86 against 0.68 for random
            # projections after these 5 epochs (under 3 minutes on one core); 784-500-250-32 with noise 4 reached
            # only 0.71 in 3 epochs, with a quarter of its bits constant
            "model": {"sizes": (784, 1000, 500, 32), "activation": "relu", "output": "sigmoid", "code": "binary",
                      "code_noise": 2.0},
            "epochs": 5, "batch_size": 128, "lr": 3e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "n_train": None, "n_test": None, "max_steps_per_epoch": None,
            "n_database": 60_000,  # leading training images searched (the database)
            "n_queries": 1_000,  # leading test images used as queries
            "ks": (1, 3, 10, 30, 100, 300, 1_000),  # precision at these k (precision@10 is the headline)
        },
        smoke={"epochs": 1, "lr_schedule": "constant", "n_train": 2_000, "n_test": 500, "n_database": 2_000,
               "n_queries": 300},
        gpu={"epochs": 50, "n_queries": 10_000},
    ),
}
"""Settings by experiment name, then by profile name."""

MODELS: dict[str, type[nn.Module]] = {
    "sparse_coding": SparseCoder,
    "lista": LISTA,
    "linear_ae": LinearAutoencoder,
    "deep_ae": Autoencoder,
    "denoising_ae": Autoencoder,
    "semantic_hashing": Autoencoder,
}
"""The class that each preset with ``model`` arguments builds."""
