"""Sizes and training settings of the course's models, per profile: one place for the lecture and the benchmark.

Topic 01's lecture notebook and the benchmark script read their settings from here, so
that a number measured by the benchmark is the number the lecture gets in the same
profile.

>>> settings = preset("made", "cpu")
>>> settings["model"]["hidden_sizes"], settings["epochs"]
((500,), 20)

Profiles (see :mod:`course_lib.runtime`):

``smoke``  the whole lecture in well under three minutes on 2 CPU cores: tiny nets,
           data subsets, one epoch, few samples. The numbers mean nothing.
``cpu``    a few minutes per model on a laptop CPU: the best result such a budget gets.
``gpu``    literature-level runs on one CUDA GPU (binarized MNIST: MADE ~88.4-89 nats,
           Gated PixelCNN ~81-83 nats per image).

Keys of a trained model's settings
----------------------------------
``model``                constructor keyword arguments (for the PixelCNNs: the config dataclass's fields)
``epochs``               passes over the training data
``batch_size``           examples per minibatch
``lr``                   Adam's learning rate
``lr_schedule``          ``"constant"`` or ``"cosine"`` (cosine decay to zero over all the optimizer steps,
                         stepped after every step: see :func:`scheduler_factory`)
``weight_decay``         Adam's (L2) weight decay
``grad_clip``            clip of the gradient's global norm, or None
``n_train``, ``n_test``  how many leading examples of the standard splits to use (None: all;
                         binarized MNIST: train 50,000, test 10,000). A test subset only follows
                         training: headline NLLs are measured on the whole test set, whose
                         leading images are easier than the rest
``max_steps_per_epoch``  cut every epoch after this many steps (None: whole epochs)
``n_samples``            samples to draw and show
Model-specific keys are documented next to their values. :func:`fit_kwargs` turns these
settings into the arguments of :func:`course_lib.training.fit`, and :func:`fit_preset`
trains a model with them (loaders included), so that the lecture and the benchmark train
alike.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch

from course_lib.data import make_loader
from course_lib.runtime import PROFILES
from course_lib.training import History, fit

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # ---------------------------------------------------------------- 1-D histogram on a discrete toy distribution
    "histogram": {
        "smoke": {
            "n_train": 2_000,  # draws from the toy distribution for fitting
            "n_test": 2_000,  # independent draws for the test NLL
            "n_check": 20_000,  # samples drawn to check the sampler's frequencies
            "sgd_steps": 300,  # full-batch gradient steps of the SGD fit
            "lr": 0.1,  # Adam's learning rate on the logits
        },
        "cpu": {"n_train": 10_000, "n_test": 10_000, "n_check": 200_000, "sgd_steps": 2_000, "lr": 0.1},
        "gpu": {"n_train": 10_000, "n_test": 10_000, "n_check": 1_000_000, "sgd_steps": 2_000, "lr": 0.1},
    },
    # ---------------------------------------------------------------- p(x1) p(x2 | x1) on the 2-D "smiley" grid
    "two_variable": {
        "smoke": {
            "model": {"n_bins": 32, "hidden": 32},  # TwoVariableAR(n_bins, hidden): K x K grid, MLP width
            "epochs": 5, "batch_size": 256, "lr": 1e-2, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 5_000, "n_test": 5_000, "max_steps_per_epoch": None, "n_samples": 2_000,
        },
        "cpu": {
            "model": {"n_bins": 32, "hidden": 128},
            "epochs": 20, "batch_size": 256, "lr": 1e-2, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 50_000, "n_test": 20_000, "max_steps_per_epoch": None, "n_samples": 10_000,
        },
        "gpu": {
            "model": {"n_bins": 32, "hidden": 128},
            "epochs": 20, "batch_size": 256, "lr": 1e-2, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 50_000, "n_test": 20_000, "max_steps_per_epoch": None, "n_samples": 10_000,
        },
    },
    # ---------------------------------------------------------------- MADE, one mask (the headline model)
    "made": {
        "smoke": {
            "model": {"d": 784, "hidden_sizes": (64,), "n_masks": 1, "natural_ordering": True},
            "epochs": 1, "batch_size": 100, "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 2_000, "n_test": 500, "max_steps_per_epoch": None, "n_samples": 8,
        },
        "cpu": {  # one hidden layer of 500 units and one mask as in Germain et al. (2015), with the masked
            # direct input-to-output connection (a logistic-regression path, as in FVSBN): it speeds the
            # start of training a lot (test NLL 93.7 vs 116.3 nats after 3 epochs); ~7 s per epoch on 2 cores
            "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 1, "natural_ordering": True,
                      "direct_connection": True},
            "epochs": 20, "batch_size": 100, "lr": 5e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 16,
        },
        "gpu": {
            "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 1, "natural_ordering": True,
                      "direct_connection": True},
            "epochs": 100, "batch_size": 100, "lr": 5e-3, "lr_schedule": "cosine", "weight_decay": 1e-4,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 36,
        },
    },
    # ---------------------------------------------------------------- MADE trained over many orderings (an ensemble)
    "made_orderings": {
        "smoke": {
            "model": {"d": 784, "hidden_sizes": (64,), "n_masks": 2, "natural_ordering": False},
            "epochs": 1, "batch_size": 100, "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 2_000, "n_test": 500, "max_steps_per_epoch": None, "n_samples": 8,
            "n_orderings_test": 2,  # masks averaged at test time: -log (1/M) sum_m p_m(x)
        },
        "cpu": {
            "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 8, "natural_ordering": False},
            "epochs": 10, "batch_size": 100, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 16,
            "n_orderings_test": 8,
        },
        "gpu": {
            "model": {"d": 784, "hidden_sizes": (500, 500), "n_masks": 32, "natural_ordering": False},
            "epochs": 100, "batch_size": 100, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 36,
            "n_orderings_test": 32,
        },
    },
    # ---------------------------------------------------------------- WaveNet on Tiny Shakespeare (characters)
    "wavenet": {
        "smoke": {
            # WaveNet(vocab_size, **model): dilations 1, 2, 4, ... restarting every dilation_cycle layers
            "model": {"channels": 16, "n_layers": 6, "kernel_size": 2, "dilation_cycle": None},
            "seq_len": 64,  # characters per training example (non-overlapping chunks of the text)
            "epochs": 1, "batch_size": 32, "lr": 3e-3, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 960, "n_test": 200,  # examples (chunks of seq_len characters); None: all
            "max_steps_per_epoch": 30, "n_samples": 1,
            "sample_length": 300,  # characters generated for display
            "timing_length": 200,  # characters generated by each sampler for the speed comparison
        },
        "cpu": {  # receptive field 2 + 255 = 257 characters; ~0.8 s per step on one laptop core
            "model": {"channels": 64, "n_layers": 8, "kernel_size": 2, "dilation_cycle": None},
            "seq_len": 256, "epochs": 2, "batch_size": 32, "lr": 3e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 1,
            "sample_length": 600, "timing_length": 1_000,
        },
        "gpu": {  # two cycles of dilations 1..128: receptive field 2 + 2 * 255 = 512 characters
            "model": {"channels": 128, "n_layers": 16, "kernel_size": 2, "dilation_cycle": 8},
            "seq_len": 1024, "epochs": 60, "batch_size": 16, "lr": 2e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 1,
            "sample_length": 1_000, "timing_length": 2_000,
        },
    },
    # ---------------------------------------------------------------- plain PixelCNN (blind spot) on binarized MNIST
    "pixelcnn": {
        "smoke": {
            "model": {"channels": 16, "first_kernel_size": 7, "kernel_size": 3, "n_blocks": 2, "head_channels": 32},
            "epochs": 1, "batch_size": 64, "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 512, "n_test": 256, "max_steps_per_epoch": None, "n_samples": 4,
        },
        "cpu": {  # ~0.3 s per step of 64 images on one CPU core
            "model": {"channels": 32, "first_kernel_size": 7, "kernel_size": 3, "n_blocks": 4, "head_channels": 64},
            "epochs": 2, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 10_000, "n_test": 2_000, "max_steps_per_epoch": None, "n_samples": 16,
        },
        "gpu": {  # van den Oord et al. (2016a): 7x7 mask A, residual blocks of 3x3 mask B, h = 64
            "model": {"channels": 128, "first_kernel_size": 7, "kernel_size": 3, "n_blocks": 12, "head_channels": 256},
            "epochs": 30, "batch_size": 128, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 36,
        },
    },
    # ---------------------------------------------------------------- Gated PixelCNN on binarized MNIST (headline)
    "gated_pixelcnn": {
        "smoke": {
            "model": {"channels": 16, "kernel_size": 5, "n_layers": 3, "head_channels": 32},
            "epochs": 1, "batch_size": 64, "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 512, "n_test": 256, "max_steps_per_epoch": None, "n_samples": 4,
            "n_timing": 1,  # images drawn by each sampler (naive, fast) for the speed comparison
            "n_completions": 4,  # occluded test digits to complete, each completed n_completion_samples times
            "n_completion_samples": 2,
        },
        "cpu": {  # ~3 s per step of 64 images on one CPU core
            "model": {"channels": 32, "kernel_size": 5, "n_layers": 5, "head_channels": 64},
            "epochs": 2, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 10_000, "n_test": 2_000, "max_steps_per_epoch": None, "n_samples": 16,
            "n_timing": 2, "n_completions": 4, "n_completion_samples": 2,
        },
        "gpu": {  # van den Oord et al. (2016b) style: 15 gated layers; kernel 5 reaches the whole 28 x 28 image
            "model": {"channels": 96, "kernel_size": 5, "n_layers": 15, "head_channels": 256},
            "epochs": 30, "batch_size": 128, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 36,
            "n_timing": 16, "n_completions": 8, "n_completion_samples": 4,
        },
    },
    # ---------------------------------------------------------------- PixelCNN++'s discretised logistic mixture (1-D)
    "logistic_mixture": {
        "smoke": {
            "n_components": 5,  # logistics in the mixture
            "n_train": 500,  # toy draws to fit (few, so that the 256-way softmax overfits)
            "n_test": 5_000,
            "n_images": 100,  # MNIST images whose pixel intensities are fitted (None: all 60,000)
            "steps": 500, "lr": 0.05,  # full-batch Adam steps of each fit (on the 256 counts: cheap)
        },
        "cpu": {"n_components": 5, "n_train": 500, "n_test": 50_000, "n_images": None, "steps": 2_000, "lr": 0.05},
        "gpu": {"n_components": 5, "n_train": 500, "n_test": 50_000, "n_images": None, "steps": 2_000, "lr": 0.05},
    },
}
"""Settings by model name, then by profile name (see the module docstring for the keys)."""


def preset(model: str, profile: str) -> dict[str, Any]:
    """A deep copy of the settings of ``model`` in ``profile`` (safe to modify).

    Raises:
        KeyError: an unknown model or profile, naming the valid ones.
    """
    if model not in PRESETS:
        raise KeyError(f"no preset for model {model!r}; expected one of {', '.join(sorted(PRESETS))}")
    if profile not in PRESETS[model]:
        raise KeyError(f"no preset for profile {profile!r} of model {model!r}; expected one of "
                       f"{', '.join(PRESETS[model])}")
    return copy.deepcopy(PRESETS[model][profile])


def presets_for(profile: str) -> dict[str, dict[str, Any]]:
    """The settings of every model in ``profile``: ``{model: settings}`` (deep copies)."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return {name: preset(name, profile) for name in PRESETS}


def scheduler_factory(settings: dict[str, Any], steps_per_epoch: int) -> Callable[[torch.optim.Optimizer], Any] | None:
    """The learning-rate schedule of ``settings`` as a factory ``optimizer -> scheduler`` for ``fit``, or None.

    ``steps_per_epoch`` is the number of optimizer steps in one epoch (the loader's length,
    capped by ``max_steps_per_epoch``). A cosine schedule decays the learning rate to zero over
    ``epochs * steps_per_epoch`` steps; pass ``scheduler_interval="step"`` to ``fit``.
    """
    schedule = settings.get("lr_schedule", "constant")
    if schedule == "constant":
        return None
    if schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {schedule!r}; expected 'constant' or 'cosine'")
    total = max(1, int(settings["epochs"]) * int(steps_per_epoch))

    def cosine(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)

    return cosine


def fit_kwargs(settings: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """The keyword arguments of :func:`course_lib.training.fit` that ``settings`` prescribe.

    ``epochs``, ``lr``, ``optimizer`` (Adam with ``weight_decay``, or None for fit's default Adam),
    ``grad_clip``, ``max_steps_per_epoch``, ``scheduler`` and ``scheduler_interval``. The caller
    adds the model, the loaders, ``n_dims`` and the device.
    """
    lr, weight_decay = float(settings["lr"]), float(settings.get("weight_decay", 0.0))
    optimizer = None
    if weight_decay > 0:
        def optimizer(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:  # a factory, as fit accepts
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return {
        "epochs": int(settings["epochs"]),
        "lr": lr,
        "optimizer": optimizer,
        "grad_clip": settings.get("grad_clip"),
        "max_steps_per_epoch": settings.get("max_steps_per_epoch"),
        "scheduler": scheduler_factory(settings, steps_per_epoch),
        "scheduler_interval": "step",
    }


def fit_preset(
    model: torch.nn.Module,
    train_data: Any,
    test_data: Any,
    settings: dict[str, Any],
    *,
    n_dims: int,
    device: str | torch.device | None = None,
    seed: int = 0,
    desc: str | None = None,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None,
    test_batch_size: int = 500,
    progress: bool = True,
) -> History:
    """Train ``model`` by maximum likelihood as ``settings`` (a preset) prescribe; return its History.

    ``train_data``/``test_data`` are tensors (or datasets) of examples; the training loader
    shuffles with a generator seeded by ``seed``, so that a run is repeatable and resumable.
    ``n_dims`` is the number of dimensions per example (784 for MNIST), for bits/dim.
    """
    train_loader = make_loader(train_data, settings["batch_size"], shuffle=True,
                               generator=torch.Generator().manual_seed(seed), device=device)
    test_loader = make_loader(test_data, test_batch_size, device=device)
    steps_per_epoch = min(len(train_loader), settings.get("max_steps_per_epoch") or len(train_loader))
    return fit(model, train_loader, test_loader, n_dims=n_dims, loss_fn=loss_fn, device=device, seed=seed,
               desc=desc, progress=progress, **fit_kwargs(settings, steps_per_epoch))
