"""Topic 01 (likelihood models): the sizes and training settings of the lecture and the benchmark.

Each model's settings are written once, as the ``cpu`` profile uses them (the default on a
laptop), and each other profile lists only what it changes (see :func:`~course_lib.presets.merge.by_profile`):
``smoke`` shrinks everything so that the whole lecture runs in well under three minutes on
2 CPU cores (its numbers mean nothing); ``gpu`` trains the papers' sizes (binarized MNIST: MADE
~88.4-89 nats, Gated PixelCNN ~81-83 nats per image).

The keys shared by every trained model are described in :mod:`course_lib.presets`; the
others are described next to their values. ``MODELS`` names the class that
:func:`course_lib.presets.build_model` builds from a preset's ``model`` arguments; the
``histogram`` and ``logistic_mixture`` presets size experiments, not a network.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from course_lib.models import MADE, GatedPixelCNN, PixelCNN, TwoVariableAR, WaveNet
from course_lib.presets.merge import by_profile

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # ---------------------------------------------------------------- 1-D histogram on a discrete toy distribution
    "histogram": by_profile(
        {
            "n_train": 10_000,  # draws from the toy distribution for fitting
            "n_test": 10_000,  # independent draws for the test NLL
            "n_check": 200_000,  # samples drawn to check the sampler's frequencies
            "sgd_steps": 2_000,  # full-batch gradient steps of the SGD fit
            "lr": 0.1,  # Adam's learning rate on the logits
        },
        smoke={"n_train": 2_000, "n_test": 2_000, "n_check": 20_000, "sgd_steps": 300},
        gpu={"n_check": 1_000_000},
    ),
    # ---------------------------------------------------------------- p(x1) p(x2 | x1) on the 2-D "smiley" grid
    "two_variable": by_profile(
        {
            "model": {"n_bins": 32, "hidden": 128},  # TwoVariableAR(n_bins, hidden): K x K grid, MLP width
            "epochs": 20, "batch_size": 256, "lr": 1e-2, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": 50_000, "n_test": 20_000, "max_steps_per_epoch": None, "n_samples": 10_000,
        },
        smoke={"model": {"hidden": 32}, "epochs": 5, "lr_schedule": "constant", "n_train": 5_000, "n_test": 5_000,
               "n_samples": 2_000},
    ),
    # ---------------------------------------------------------------- MADE, one mask (the headline model)
    "made": by_profile(
        {
            # one hidden layer of 500 units and one mask as in Germain et al. (2015)
            "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 1, "natural_ordering": True},
            "epochs": 20, "batch_size": 100, "lr": 5e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 16,
        },
        smoke={"model": {"hidden_sizes": (64,)}, "epochs": 1, "lr": 1e-3, "lr_schedule": "constant",
               "n_train": 2_000, "n_test": 500, "n_samples": 8},
        # with the masked direct input-to-output connection (a logistic-regression path, as in FVSBN): it
        # speeds the start of training a lot (test NLL 93.7 vs 116.3 nats after 3 epochs); ~7 s per epoch on 2 cores
        cpu={"model": {"direct_connection": True}},
        gpu={"model": {"direct_connection": True}, "epochs": 100, "weight_decay": 1e-4, "n_samples": 36},
    ),
    # ---------------------------------------------------------------- MADE trained over many orderings (an ensemble)
    "made_orderings": by_profile(
        {
            "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 8, "natural_ordering": False},
            "epochs": 10, "batch_size": 100, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 16,
            "n_orderings_test": 8,  # masks averaged at test time: -log (1/M) sum_m p_m(x)
        },
        smoke={"model": {"hidden_sizes": (64,), "n_masks": 2}, "epochs": 1, "lr_schedule": "constant",
               "n_train": 2_000, "n_test": 500, "n_samples": 8, "n_orderings_test": 2},
        gpu={"model": {"hidden_sizes": (500, 500), "n_masks": 32}, "epochs": 100, "n_samples": 36,
             "n_orderings_test": 32},
    ),
    # ---------------------------------------------------------------- WaveNet on Tiny Shakespeare (characters)
    "wavenet": by_profile(
        {
            # WaveNet(vocab_size, **model): dilations 1, 2, 4, ... restarting every dilation_cycle layers;
            # receptive field 2 + 255 = 257 characters; ~0.8 s per step on one laptop core
            "model": {"channels": 64, "n_layers": 8, "kernel_size": 2, "dilation_cycle": None},
            "seq_len": 256,  # characters per training example (non-overlapping chunks of the text)
            "epochs": 2, "batch_size": 32, "lr": 3e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": None, "n_test": None,  # examples (chunks of seq_len characters); None: all
            "max_steps_per_epoch": None, "n_samples": 1,
            "sample_length": 600,  # characters generated for display
            "timing_length": 1_000,  # characters generated by each sampler for the speed comparison
        },
        smoke={"model": {"channels": 16, "n_layers": 6}, "seq_len": 64, "epochs": 1, "lr_schedule": "constant",
               "n_train": 960, "n_test": 200, "max_steps_per_epoch": 30, "sample_length": 300, "timing_length": 200},
        # two cycles of dilations 1..128: receptive field 2 + 2 * 255 = 512 characters
        gpu={"model": {"channels": 128, "n_layers": 16, "dilation_cycle": 8}, "seq_len": 1024, "epochs": 60,
             "batch_size": 16, "lr": 2e-3, "sample_length": 1_000, "timing_length": 2_000},
    ),
    # ---------------------------------------------------------------- plain PixelCNN (blind spot) on binarized MNIST
    "pixelcnn": by_profile(
        {  # ~0.3 s per step of 64 images on one CPU core
            "model": {"channels": 32, "first_kernel_size": 7, "kernel_size": 3, "n_blocks": 4, "head_channels": 64},
            "epochs": 2, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 10_000, "n_test": 2_000, "max_steps_per_epoch": None, "n_samples": 16,
        },
        smoke={"model": {"channels": 16, "n_blocks": 2, "head_channels": 32}, "epochs": 1, "lr_schedule": "constant",
               "n_train": 512, "n_test": 256, "n_samples": 4},
        # van den Oord et al. (2016a): 7x7 mask A, residual blocks of 3x3 mask B, h = 64
        gpu={"model": {"channels": 128, "n_blocks": 12, "head_channels": 256}, "epochs": 30, "batch_size": 128,
             "n_train": None, "n_test": None, "n_samples": 36},
    ),
    # ---------------------------------------------------------------- Gated PixelCNN on binarized MNIST (headline)
    "gated_pixelcnn": by_profile(
        {  # ~3 s per step of 64 images on one CPU core
            "model": {"channels": 32, "kernel_size": 5, "n_layers": 5, "head_channels": 64},
            "epochs": 2, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
            "grad_clip": 1.0, "n_train": 10_000, "n_test": 2_000, "max_steps_per_epoch": None, "n_samples": 16,
            "n_timing": 2,  # images drawn by each sampler (naive, fast) for the speed comparison
            "n_completions": 4,  # occluded test digits to complete, each completed n_completion_samples times
            "n_completion_samples": 2,
        },
        smoke={"model": {"channels": 16, "n_layers": 3, "head_channels": 32}, "epochs": 1, "lr_schedule": "constant",
               "n_train": 512, "n_test": 256, "n_samples": 4, "n_timing": 1},
        # van den Oord et al. (2016b) style: 15 gated layers; kernel 5 reaches the whole 28 x 28 image
        gpu={"model": {"channels": 96, "n_layers": 15, "head_channels": 256}, "epochs": 30, "batch_size": 128,
             "n_train": None, "n_test": None, "n_samples": 36, "n_timing": 16, "n_completions": 8,
             "n_completion_samples": 4},
    ),
    # ---------------------------------------------------------------- PixelCNN++'s discretised logistic mixture (1-D)
    "logistic_mixture": by_profile(
        {
            "n_components": 5,  # logistics in the mixture
            "n_train": 500,  # toy draws to fit (few, so that the 256-way softmax overfits)
            "n_test": 50_000,
            "n_images": None,  # MNIST images whose pixel intensities are fitted (None: all 60,000)
            "steps": 2_000, "lr": 0.05,  # full-batch Adam steps of each fit (on the 256 counts: cheap)
        },
        smoke={"n_test": 5_000, "n_images": 100, "steps": 500},
    ),
}
"""Settings by model name, then by profile name."""

MODELS: dict[str, type[nn.Module]] = {
    "two_variable": TwoVariableAR,
    "made": MADE,
    "made_orderings": MADE,
    "wavenet": WaveNet,
    "pixelcnn": PixelCNN,
    "gated_pixelcnn": GatedPixelCNN,
}
"""The class that each preset with ``model`` arguments builds."""
