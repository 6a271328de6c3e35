"""Checkpoints that let a training run stop anywhere and resume to the same result.

A checkpoint of :func:`course_lib.training.train` holds the task's ``state_dict()`` (its
parameters and every buffer it carries: persistent chains, a replay buffer, a sampler's
generator), every optimizer and scheduler by name, the history, the number of completed
epochs, and every random state that the next epoch will consume: Python's, NumPy's,
torch's (CPU, CUDA, MPS) and the data loaders' shuffling generators. It is written
atomically (a temporary file, ``fsync``, then a rename), so a crash never leaves a
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

from course_lib.files import atomic_file

CHECKPOINT_FORMAT = "course_lib.training/2"
"""Version 2: several optimizers and schedulers by name, the general history, the task's hparams."""


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the task (model, optimizers, hyperparameters or run) it is being loaded into."""


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
    """Read a checkpoint written by :func:`~course_lib.training.train` or :func:`~course_lib.training.fit`.

    Keys (tensors on the CPU): ``model`` (the task's state dict; for ``fit``, the model's),
    ``model_class`` (the task's name), ``hparams``, ``epoch`` (completed epochs),
    ``optimizers`` and ``schedulers`` (state dicts by name), ``history``
    (``TrainHistory.to_dict()`` data), ``rng``, ``loader_generators``.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointMismatchError(f"cannot read the checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        raise CheckpointMismatchError(
            f"{path} is not a checkpoint written by course_lib.training (format {CHECKPOINT_FORMAT!r}"
            + (f", found {found!r}: an older version; delete it to train afresh" if found else "")
            + ")"
        )
    return ckpt


def check_state_matches(current: dict[str, Any], ckpt: dict[str, Any], path: Path, name: str) -> None:
    """Refuse a checkpoint whose saved state has other entries or shapes than ``current``, the state of ``name``."""
    saved: dict[str, Any] = ckpt["model"]
    problems = []
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    if missing:
        problems.append(f"entries missing from the checkpoint: {_few(missing)}")
    if unexpected:
        problems.append(f"entries in the checkpoint that the model lacks: {_few(unexpected)}")
    shapes = [
        f"{k} has shape {tuple(saved[k].shape)} in the checkpoint but {tuple(v.shape)} in the model"
        for k, v in current.items()
        if k in saved and isinstance(v, torch.Tensor) and isinstance(saved[k], torch.Tensor)
        and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if shapes:
        problems.append("; ".join(shapes[:5]) + (f" (and {len(shapes) - 5} more)" if len(shapes) > 5 else ""))
    if problems:
        saved_name = ckpt.get("model_class", "?")
        which = f"a {saved_name}" + (f", not this {name}" if saved_name != name else " of a different configuration")
        raise CheckpointMismatchError(
            f"the checkpoint {path} was saved from {which}: "
            + "; ".join(problems)
            + ". Use another checkpoint_path for a different model."
        )


def check_hparams_match(hparams: dict[str, Any], ckpt: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint saved with other hyperparameters (``task.hparams``), naming the first that differs."""
    saved = ckpt.get("hparams") or {}
    for key in sorted(set(saved) | set(hparams), key=str):
        if key not in saved or key not in hparams or saved[key] != hparams[key]:
            was = f"{key}={saved[key]!r}" if key in saved else f"no {key}"
            now = f"{key}={hparams[key]!r}" if key in hparams else f"no {key}"
            raise CheckpointMismatchError(
                f"the checkpoint {path} was saved with {was}, not {now}; resume with the same hyperparameters "
                "or use another checkpoint_path"
            )


def check_names_match(kind: str, current: Sequence[str], saved: Sequence[str], path: Path) -> None:
    """Refuse a checkpoint with another set of optimizers (or schedulers), naming both sets."""
    if sorted(current) != sorted(saved):
        raise CheckpointMismatchError(
            f"the checkpoint {path} holds the {kind} {_names(saved)} but the task has {_names(current)}; "
            "use another checkpoint_path for a different task"
        )


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names)) if names else "none"


def _few(names: Sequence[str], k: int = 5) -> str:
    shown = ", ".join(names[:k])
    return shown + (f" (and {len(names) - k} more)" if len(names) > k else "")
