"""course_lib: the tested implementations behind the course on deep generative models.

Layers import one way: ``data`` -> ``models`` -> ``training``/``metrics`` ->
``plots``/``widgets`` -> notebooks and the ``course`` command.
"""

from course_lib.metrics import bits_per_dim_to_nats, dequantized_bits_per_dim, nats_to_bits_per_dim
from course_lib.results import collect_results, record_result
from course_lib.runtime import PROFILES, describe_hardware, get_device, resolve_profile, seed_everything

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "bits_per_dim_to_nats",
    "collect_results",
    "dequantized_bits_per_dim",
    "describe_hardware",
    "get_device",
    "nats_to_bits_per_dim",
    "record_result",
    "resolve_profile",
    "seed_everything",
]
