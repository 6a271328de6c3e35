"""course_lib: the tested implementations behind the course on deep generative models.

What students import, in layers that import one way (each only from those above it)::

    runtime, files, metrics, results    devices, seeds, profiles; atomic writes; units; recorded results
    data                                datasets (verified downloads, toy distributions) and loaders
    models                              one folder per family, each with one protocol: autoregressive,
                                        latent, energy (with its MCMC samplers), adversarial, flows
    training                            one loop for every model (train), maximum likelihood on it (fit)
    presets                             each topic's sizes per profile (topicNN), one model factory
    plots, widgets                      figures, training curves, explorers that degrade to figures
    notebooks (lectures, solutions, exercises)

The instructor's tools (running notebooks, releasing exercises, grading) live apart in
:mod:`course_lib.instructor`, which the student bundle leaves out; the ``course`` command
(:mod:`course_lib.cli`) loads them when they are there.
"""

from course_lib.metrics import bits_per_dim_to_nats, dequantized_bits_per_dim, nats_to_bits_per_dim
from course_lib.results import LectureResults, collect_results, record_result
from course_lib.runtime import PROFILES, describe_hardware, get_device, resolve_profile, seed_everything, timed

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "LectureResults",
    "bits_per_dim_to_nats",
    "collect_results",
    "dequantized_bits_per_dim",
    "describe_hardware",
    "get_device",
    "nats_to_bits_per_dim",
    "record_result",
    "resolve_profile",
    "seed_everything",
    "timed",
]
