r"""Autoregressive likelihood models (topic 01): exact likelihoods by the chain rule.

:math:`p(x) = \prod_i p(x_i \mid x_{<i})`, one network pass computing every conditional.

The protocol of a likelihood model
----------------------------------
``nll(x) -> (B,)``
    the negative log-likelihood of each example in nats, summed over its dimensions (the
    training loop minimises its mean; :mod:`course_lib.metrics` turns it into bits/dim).
``sample(n, *, generator=None, ...) -> (n, ...)``
    ``n`` draws in the format the model was trained on. ``generator`` (a ``torch.Generator``)
    makes them reproducible; the model's own options come after it, by keyword only
    (``image_shape``, ``temperature``, ``fast``, a WaveNet's ``length`` and ``prompt``, ...).
    Models with an exact fast sampler (PixelCNN's cropped passes, WaveNet's cached queues)
    take ``fast=True`` (the default) or ``fast=False`` (the naive one), with the same samples.
``forward(x)``
    the parameters (logits) of every conditional, in one pass.
Constructors take keyword arguments, each documented in the class docstring and checked when
the model is built; the one required size of the data (``d``, ``n_bins``, ``vocab_size``) may
also come first, by position. :func:`course_lib.presets.build_model` builds a model from a
preset as ``Model(**settings["model"])``.

Modules: ``histogram`` (histograms, the two-variable AR model), ``logistic_mixture``
(PixelCNN++'s discretised logistic mixture), ``made`` (MADE), ``wavenet`` (causal dilated
convolutions for text, with a cached sampler), ``pixelcnn`` (masked convolutions, PixelCNN,
Gated PixelCNN, exact fast sampling).
"""

from course_lib.models.autoregressive.histogram import Histogram, TwoVariableAR, histogram_mle, sample_categorical
from course_lib.models.autoregressive.logistic_mixture import (
    DiscretizedLogisticMixture,
    discretized_logistic_log_prob,
    discretized_logistic_mixture_log_prob,
    sample_discretized_logistic_mixture,
)
from course_lib.models.autoregressive.made import MADE, MaskedLinear, made_degrees, made_masks
from course_lib.models.autoregressive.pixelcnn import GatedPixelCNN, MaskedConv2d, PixelCNN, pixelcnn_mask
from course_lib.models.autoregressive.wavenet import CausalConv1d, WaveNet

__all__ = [
    "MADE",
    "CausalConv1d",
    "DiscretizedLogisticMixture",
    "GatedPixelCNN",
    "Histogram",
    "MaskedConv2d",
    "MaskedLinear",
    "PixelCNN",
    "TwoVariableAR",
    "WaveNet",
    "discretized_logistic_log_prob",
    "discretized_logistic_mixture_log_prob",
    "histogram_mle",
    "made_degrees",
    "made_masks",
    "pixelcnn_mask",
    "sample_categorical",
    "sample_discretized_logistic_mixture",
]
