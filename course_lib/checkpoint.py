"""Checkpoints that let a training run stop anywhere and resume to the same result.

A checkpoint holds the model, the optimizer (and scheduler), the history, the number of
completed epochs, and every random state that the next epoch will consume: Python's,
NumPy's, torch's (CPU, CUDA, MPS) and the data loaders' shuffling generators. It is
written atomically (a temporary file, ``fsync``, then a rename), so a crash never leaves a
half-written file, and read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.files import atomic_file

CHECKPOINT_FORMAT = "course_lib.training/1"


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model (or the run) it is being loaded into."""


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch.Generators that drive a loader's shuffling (loader, sampler, batch sampler), without repeats."""
    if loader is None:
        return []
    found: list[torch.Generator] = []
    candidates = [
        getattr(loader, "generator", None),
        getattr(getattr(loader, "sampler", None), "generator", None),
        getattr(getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None),
    ]
    for gen in candidates:
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def get_rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])),
        "torch": torch.get_rng_state(),
        "cuda": None,
        "mps": None,
    }
    if device.type == "cuda" and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(_tuples(state["python"]))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn(
                f"the checkpoint holds RNG states of {len(cuda_states)} GPUs but {torch.cuda.device_count()} are "
                "visible: the GPU random streams are not restored, so a resumed run may differ",
                stacklevel=3,
            )
    if state.get("mps") is not None and device.type == "mps":
        torch.mps.set_rng_state(state["mps"])


def _tuples(value: Any) -> Any:
    """random.setstate wants nested tuples; serialisation may have turned them into lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` so that a crash never leaves a half-written checkpoint."""
    with atomic_file(path, "wb") as fh:
        torch.save(obj, fh)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit` (tensors on the CPU).

    Keys: ``model`` (state dict), ``optimizer``, ``scheduler``, ``epoch`` (completed
    epochs), ``history`` (``History.to_dict()`` data), ``rng``, ``loader_generators``,
    ``model_class``, ``n_dims``.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointMismatchError(f"cannot read the checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(
            f"{path} is not a checkpoint written by course_lib.training.fit (format {CHECKPOINT_FORMAT!r})"
        )
    return ckpt


def check_model_matches(model: nn.Module, ckpt: dict[str, Any], path: Path) -> None:
    saved: dict[str, torch.Tensor] = ckpt["model"]
    current = model.state_dict()
    problems = []
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    if missing:
        problems.append(f"parameters missing from the checkpoint: {_few(missing)}")
    if unexpected:
        problems.append(f"parameters in the checkpoint that the model lacks: {_few(unexpected)}")
    shapes = [
        f"{k} has shape {tuple(saved[k].shape)} in the checkpoint but {tuple(v.shape)} in the model"
        for k, v in current.items()
        if k in saved and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if shapes:
        problems.append("; ".join(shapes[:5]) + (f" (and {len(shapes) - 5} more)" if len(shapes) > 5 else ""))
    if problems:
        saved_cls, cls = ckpt.get("model_class", "?"), type(model).__name__
        which = f"a {saved_cls}" + (f", not this {cls}" if saved_cls != cls else " of a different configuration")
        raise CheckpointMismatchError(
            f"the checkpoint {path} was saved from {which}: "
            + "; ".join(problems)
            + ". Use another checkpoint_path for a different model."
        )


def _few(names: Sequence[str], k: int = 5) -> str:
    shown = ", ".join(names[:k])
    return shown + (f" (and {len(names) - k} more)" if len(names) > k else "")
