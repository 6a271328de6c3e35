"""The course's models, one file each, named as the lectures name them.

Every likelihood model follows one protocol: ``nll(x) -> (B,)`` is the negative
log-likelihood of each example in nats, and ``sample(...)`` draws data in the format the
model was trained on.

Topic 01 (likelihood models): ``histogram`` (histograms, the two-variable AR model),
``logistic_mixture`` (PixelCNN++'s discretised logistic mixture), ``made`` (MADE),
``wavenet`` (causal dilated convolutions for text, with a cached sampler), ``pixelcnn``
(masked convolutions, PixelCNN, Gated PixelCNN, exact fast sampling) and
``receptive_field`` (input-gradient receptive-field maps).
"""

from course_lib.models.histogram import Histogram, TwoVariableAR, histogram_mle, sample_categorical
from course_lib.models.logistic_mixture import (
    DiscretizedLogisticMixture,
    discretized_logistic_log_prob,
    discretized_logistic_mixture_log_prob,
    sample_discretized_logistic_mixture,
)
from course_lib.models.made import MADE, MaskedLinear, made_degrees, made_masks
from course_lib.models.pixelcnn import (
    GatedPixelCNN,
    GatedPixelCNNConfig,
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    pixelcnn_mask,
)
from course_lib.models.receptive_field import receptive_field_map
from course_lib.models.wavenet import CausalConv1d, WaveNet

__all__ = [
    "MADE",
    "CausalConv1d",
    "DiscretizedLogisticMixture",
    "GatedPixelCNN",
    "GatedPixelCNNConfig",
    "Histogram",
    "MaskedConv2d",
    "MaskedLinear",
    "PixelCNN",
    "PixelCNNConfig",
    "TwoVariableAR",
    "WaveNet",
    "discretized_logistic_log_prob",
    "discretized_logistic_mixture_log_prob",
    "histogram_mle",
    "made_degrees",
    "made_masks",
    "pixelcnn_mask",
    "receptive_field_map",
    "sample_categorical",
    "sample_discretized_logistic_mixture",
]
