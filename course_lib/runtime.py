"""Where and how code runs: device choice, seeding, wall-clock timing and the course's profiles.

Nothing here touches CUDA at import time: the device is chosen when a function is
called, so ``import course_lib`` is cheap and safe on any machine.

Profiles
--------
Every notebook sizes its models and data by a *profile*:

``smoke``  tiny sizes, so that CI runs the whole course in minutes on 2 CPU cores;
``cpu``    the default without a GPU: the best result a laptop gets in minutes;
``gpu``    the default with CUDA: literature-level results.

The profile comes from the notebook's ``PROFILE`` parameter, else the
``COURSE_PROFILE`` environment variable, else the hardware.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu")
"""The course's profiles, from the smallest to the largest."""

PROFILE_ENV = "COURSE_PROFILE"
DEVICE_ENV = "COURSE_DEVICE"
STATIC_WIDGETS_ENV = "COURSE_STATIC_WIDGETS"
"""Set to 1 by the course's headless notebook runs: widgets and progress bars draw static output."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """A yes/no environment variable: ``1``/``true``/``yes``/``on`` (any case) is yes, unset or
    ``0``/``false``/``no``/``off`` is no; anything else is an error that names the variable."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"${name} is {os.environ[name]!r}; expected 1/true/yes/on or 0/false/no/off")


def static_widgets() -> bool:
    """Whether ``$COURSE_STATIC_WIDGETS`` asks for static figures and plain-text progress bars."""
    return env_flag(STATIC_WIDGETS_ENV)


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: CUDA, then Apple MPS, then the CPU.

    ``device`` (or the ``COURSE_DEVICE`` environment variable) forces a choice,
    e.g. ``"cpu"`` to compare with a GPU run; asking for a device that this
    machine does not have is an error rather than a silent fallback.
    """
    wanted = device if device is not None else os.environ.get(DEVICE_ENV) or None
    if wanted is not None:
        dev = torch.device(wanted)
        if dev.type == "cuda" and not _cuda_available():
            raise RuntimeError(f"device {str(wanted)!r} was asked for, but CUDA is not available here")
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {str(wanted)!r} was asked for, but Apple MPS is not available here")
        return dev
    if _cuda_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_profile(profile: str | None = None) -> str:
    """The profile to run in: ``profile`` if given, else ``$COURSE_PROFILE``, else the hardware.

    The hardware rule: ``gpu`` when CUDA is available, otherwise ``cpu``
    (an Apple GPU gets the ``cpu`` sizes, which it runs faster).
    """
    source = "the PROFILE parameter"
    if profile is None or profile == "":
        profile = os.environ.get(PROFILE_ENV) or None
        source = f"${PROFILE_ENV}"
    if profile is None:
        return "gpu" if _cuda_available() else "cpu"
    name = str(profile).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} from {source}; expected one of {', '.join(PROFILES)}")
    return name


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator seeded alike.

    Use the returned generator for data shuffling so that a run can be resumed
    exactly (its state is saved in checkpoints).
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA/MPS lazily
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def synchronize(device: str | torch.device) -> None:
    """Wait for the work queued on a CUDA ``device`` (nothing to wait for on the CPU), so that a wall-clock
    time measures the work and not its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu", repeats: int = 1) -> tuple[Any, float]:
    """``(fn(), the best wall time in seconds of `repeats` calls)``, waiting for ``device`` before and after each."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    best, out = float("inf"), None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        out = fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return out, best


def describe_hardware() -> str:
    """One line naming the CPU/GPU this process runs on, for results tables."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads"]
    if _cuda_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    elif _mps_available():
        parts.append("Apple MPS")
    parts.append(f"torch {torch.__version__}")
    return "; ".join(parts)
