"""Sizes and training settings of the course's models, per topic and profile, and one factory of models.

Every topic's settings live in a module of their own (``topic01``, ``topic02``, ``topic03``), read by both the
lecture and the benchmark, so that a number measured by the benchmark is the number the
lecture gets in the same profile. A topic writes each model's base settings once and, per
profile, only what differs (:func:`course_lib.presets.merge.by_profile`).

>>> settings = preset("made", "cpu")
>>> settings["model"]["hidden_sizes"], settings["epochs"]
((500,), 20)
>>> model = build_model("made", settings)  # MADE(**settings["model"])

Profiles (see :mod:`course_lib.runtime`):

``smoke``  the whole lecture in well under three minutes on 2 CPU cores: tiny nets,
           data subsets, one epoch, few samples. The numbers mean nothing.
``cpu``    a few minutes per model on a laptop CPU: the best result such a budget gets.
``gpu``    literature-level runs on one CUDA GPU (binarized MNIST: MADE ~88.4-89 nats,
           Gated PixelCNN ~81-83 nats per image).

Keys of a trained model's settings
----------------------------------
``model``                the model class's keyword arguments: :func:`build_model` builds ``Model(**model)``
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
settings into the arguments of :func:`course_lib.training.fit`, :func:`fit_preset` trains a
model with them (loaders included), and :func:`build_and_fit` builds a model from its
preset and trains it, so that the lecture and the benchmark build and train alike.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import torch
from torch import nn

from course_lib.data import make_loader
from course_lib.presets import topic01, topic02, topic03
from course_lib.runtime import PROFILES, get_device
from course_lib.training import (
    ContrastiveDivergenceTask,
    EBMTask,
    History,
    ReconstructionTask,
    TrainHistory,
    fit,
    train,
)
from course_lib.training.task_common import lr_decay

TOPICS: dict[str, ModuleType] = {"01": topic01, "02": topic02, "03": topic03}
"""The presets module of each topic, by the topic's number (the ``NN`` of ``NN_name.ipynb``)."""


def _collect(attribute: str) -> dict[str, Any]:
    """One topic attribute (``PRESETS`` or ``MODELS``) of all topics in one dict; a name used twice is an error."""
    table: dict[str, Any] = {}
    for topic, module in TOPICS.items():
        for name, value in getattr(module, attribute).items():
            if name in table:
                raise ValueError(f"preset name {name!r} of topic {topic} is already used by another topic")
            table[name] = value
    return table


PRESETS: dict[str, dict[str, dict[str, Any]]] = _collect("PRESETS")
"""Settings by model name, then by profile name, over all topics (see the module docstring for the keys)."""

MODELS: dict[str, type[nn.Module]] = _collect("MODELS")
"""The class that :func:`build_model` builds for each preset name that has ``model`` arguments."""


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


def presets_for(profile: str, topic: str | None = None) -> dict[str, dict[str, Any]]:
    """The settings of every model in ``profile``: ``{model: settings}`` (deep copies).

    ``topic`` (``"01"``, ...) keeps that topic's models only; None: every topic's.
    """
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    if topic is not None and topic not in TOPICS:
        raise KeyError(f"no presets for topic {topic!r}; expected one of {', '.join(TOPICS)}")
    names = PRESETS if topic is None else TOPICS[topic].PRESETS
    return {name: preset(name, profile) for name in names}


def build_model(name: str, settings: dict[str, Any], **extra: Any) -> nn.Module:
    """The model of preset ``name`` built from ``settings["model"]``: ``Model(**settings["model"], **extra)``.

    ``settings`` is the preset of one profile (:func:`preset`); ``extra`` holds the arguments
    that come from the data or the run rather than from the preset, e.g. WaveNet's
    ``vocab_size`` or MADE's mask ``seed``. The model's parameters are drawn from torch's
    global generator, in the model's own order: seed it first for a repeatable model.

    Raises:
        KeyError: an unknown name, or a preset that sizes an experiment and has no model.
        TypeError: ``extra`` repeats a preset argument, or the arguments do not fit the class
            (a missing ``vocab_size``, a misspelt argument), naming the class and the problem.
    """
    if name not in MODELS:
        kind = "sizes an experiment and has no model to build" if name in PRESETS else "does not exist"
        raise KeyError(f"preset {name!r} {kind}; presets with a model: {', '.join(MODELS)}")
    if not isinstance(settings.get("model"), dict):
        raise KeyError(f"build_model({name!r}) needs settings with a 'model' dict of arguments, as "
                       f"preset({name!r}, profile) gives; got the keys {', '.join(map(repr, settings))}")
    cls = MODELS[name]
    arguments = dict(settings["model"])
    repeated = sorted(set(arguments) & set(extra))
    if repeated:
        raise TypeError(f"build_model({name!r}): {', '.join(repeated)} given both by the preset and as an extra "
                        f"argument; change the preset's copy instead")
    arguments.update(extra)
    try:
        inspect.signature(cls).bind(**arguments)
    except TypeError as error:
        raise TypeError(f"build_model({name!r}) cannot build {cls.__name__}(**{arguments!r}): {error}") from None
    return cls(**arguments)


def preset_loaders(
    settings: dict[str, Any],
    train_data: Any,
    test_data: Any | None,
    *,
    seed: int,
    test_batch_size: int,
    device: str | torch.device | None = None,
) -> tuple[Any, Any | None, int]:
    """The loaders a preset trains with, and its optimizer steps per epoch.

    The training loader draws ``settings["batch_size"]`` examples at a time, shuffled by a
    generator seeded with ``seed`` (so that a run repeats and resumes exactly); the test loader
    (None without ``test_data``) reads ``test_batch_size`` at a time, in order. Steps per epoch:
    the training loader's length, capped by ``max_steps_per_epoch``. ``device`` is passed to
    :func:`~course_lib.data.make_loader` (pinned memory for CUDA).
    """
    train_loader = make_loader(train_data, settings["batch_size"], shuffle=True,
                               generator=torch.Generator().manual_seed(seed), device=device)
    test_loader = None if test_data is None else make_loader(test_data, test_batch_size, device=device)
    steps_per_epoch = min(len(train_loader), settings.get("max_steps_per_epoch") or len(train_loader))
    return train_loader, test_loader, steps_per_epoch


def scheduler_factory(settings: dict[str, Any], steps_per_epoch: int) -> Callable[[torch.optim.Optimizer], Any] | None:
    """The learning-rate schedule of ``settings`` as a factory ``optimizer -> scheduler`` for ``fit``, or None.

    ``steps_per_epoch`` is the number of optimizer steps in one epoch (the loader's length,
    capped by ``max_steps_per_epoch``). A cosine or linear schedule decays the learning rate to zero
    over ``epochs * steps_per_epoch`` steps (linear: the RBMs' schedule, Tieleman 2008); pass
    ``scheduler_interval="step"`` to ``fit``.
    """
    schedule = settings.get("lr_schedule", "constant")
    if schedule == "constant":
        return None
    if schedule not in ("cosine", "linear"):
        raise ValueError(f"unknown lr_schedule {schedule!r}; expected 'constant', 'cosine' or 'linear'")
    total = max(1, int(settings["epochs"]) * int(steps_per_epoch))
    return lambda optimizer: lr_decay(optimizer, schedule, total)


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
    train_loader, test_loader, steps_per_epoch = preset_loaders(settings, train_data, test_data, seed=seed,
                                                                test_batch_size=test_batch_size, device=device)
    return fit(model, train_loader, test_loader, n_dims=n_dims, loss_fn=loss_fn, device=device, seed=seed,
               desc=desc, progress=progress, **fit_kwargs(settings, steps_per_epoch))


def build_and_fit(
    name: str,
    settings: dict[str, Any],
    train_data: Any,
    test_data: Any,
    *,
    n_dims: int,
    model_args: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    desc: str | None = None,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None,
    test_batch_size: int = 500,
    progress: bool = True,
) -> tuple[nn.Module, History]:
    """Build the model of preset ``name`` and train it as ``settings`` prescribe: returns ``(model, history)``.

    Seeds torch's global generator with ``seed``, builds ``build_model(name, settings, **model_args)``
    (so that the same settings and seed give the same initial parameters), moves it to
    ``device`` and trains it with :func:`fit_preset` (same ``seed``) on ``train_data``/``test_data``.
    """
    torch.manual_seed(seed)
    model = build_model(name, settings, **(model_args or {}))
    if device is not None:
        model = model.to(device)
    history = fit_preset(model, train_data, test_data, settings, n_dims=n_dims, device=device, seed=seed,
                         desc=desc, loss_fn=loss_fn, test_batch_size=test_batch_size, progress=progress)
    return model, history


def build_and_train_reconstruction(
    name: str,
    settings: dict[str, Any],
    train_data: torch.Tensor,
    test_data: torch.Tensor,
    *,
    corruption: tuple[str, float] | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    desc: str | None = None,
    test_batch_size: int = 2_000,
    progress: bool = True,
) -> tuple[nn.Module, TrainHistory]:
    """Build the autoencoder of preset ``name`` and train it to reconstruct, as ``settings`` prescribe.

    The reconstruction counterpart of :func:`build_and_fit`: seeds torch's global generator with
    ``seed``, builds ``build_model(name, settings)``, and trains it with
    :class:`~course_lib.training.ReconstructionTask` (Adam with the preset's ``lr``,
    ``weight_decay`` and ``lr_schedule``; ``corruption`` ``(kind, level)`` for a denoising
    autoencoder) through :func:`~course_lib.training.train` for ``epochs`` epochs on
    ``train_data`` (rows, shuffled by a generator seeded with ``seed``), evaluated on
    ``test_data`` after every epoch (squared error per image). Returns ``(model in eval mode,
    history)``; the history's evaluations hold ``test_error`` (and ``denoising_error``).
    """
    train_loader, test_loader, steps_per_epoch = preset_loaders(settings, train_data, test_data, seed=seed,
                                                                test_batch_size=test_batch_size)
    steps = steps_per_epoch * settings["epochs"]
    torch.manual_seed(seed)
    model = build_model(name, settings)
    task = ReconstructionTask(model, lr=settings["lr"], weight_decay=settings.get("weight_decay", 0.0),
                              corruption=corruption, lr_schedule=settings.get("lr_schedule", "constant"),
                              total_steps=steps)
    history = train(task, train_loader, test_loader, epochs=settings["epochs"], device=device, seed=seed,
                    max_steps_per_epoch=settings.get("max_steps_per_epoch"), desc=desc or name, progress=progress)
    return model.eval(), history



def build_and_train_rbm(
    settings: dict[str, Any],
    train_data: torch.Tensor,
    test_data: torch.Tensor,
    *,
    persistent: bool,
    device: str | torch.device | None = None,
    seed: int = 0,
    desc: str | None = None,
    test_batch_size: int = 1_000,
    progress: bool = True,
) -> tuple[nn.Module, TrainHistory, float]:
    """Build the RBM of preset ``rbm`` and train it by CD-k or persistent CD, as ``settings`` prescribe.

    Seeds torch's global generator with ``seed``, builds ``build_model("rbm", settings)``, sets
    its visible biases to the log-odds of ``train_data``'s pixel means (Hinton's practical guide;
    PCD's chains then start as draws of those means), and trains it with
    :class:`~course_lib.training.ContrastiveDivergenceTask` (``k``, ``n_chains``, ``lr``,
    ``momentum``, ``weight_decay`` of the preset) through :func:`~course_lib.training.train` on
    ``train_data`` (rows in {0, 1}, shuffled by a generator seeded with ``seed``), evaluated on
    ``test_data`` after every epoch. Returns ``(rbm in eval mode, history, training seconds)``.
    """
    device = get_device(device)
    train_loader, test_loader, steps_per_epoch = preset_loaders(settings, train_data, test_data, seed=seed,
                                                                test_batch_size=test_batch_size)
    torch.manual_seed(seed)
    rbm = build_model("rbm", settings).to(device)
    rbm.init_visible_bias(train_data.to(device))
    steps = settings["epochs"] * steps_per_epoch
    task = ContrastiveDivergenceTask(rbm, k=settings["k"], persistent=persistent, n_chains=settings["n_chains"],
                                     lr=settings["lr"], momentum=settings["momentum"],
                                     weight_decay=settings["weight_decay"],
                                     lr_schedule=settings.get("lr_schedule", "constant"), total_steps=steps,
                                     generator_seed=seed)
    start = time.perf_counter()
    history = train(task, train_loader, test_loader, epochs=settings["epochs"], device=device, seed=seed,
                    max_steps_per_epoch=settings.get("max_steps_per_epoch"), progress=progress,
                    desc=desc or f"RBM, {'PCD' if persistent else 'CD'}-{settings['k']}")
    return rbm.eval(), history, time.perf_counter() - start


def build_and_train_ebm(
    name: str,
    settings: dict[str, Any],
    train_data: torch.Tensor,
    test_data: torch.Tensor | None = None,
    *,
    clamp: tuple[float, float],
    device: str | torch.device | None = None,
    seed: int = 0,
    desc: str | None = None,
    test_batch_size: int = 1_000,
    progress: bool = True,
    **task_options: Any,
) -> tuple[nn.Module, EBMTask, TrainHistory, float]:
    """Build the energy model of preset ``name`` and train it by SGLD from a replay buffer, as ``settings`` prescribe.

    Seeds torch's global generator with ``seed``, builds ``build_model(name, settings)`` and trains it with
    :class:`~course_lib.training.EBMTask` (Du & Mordatch 2019: Adam with the preset's ``lr``, ``betas``
    (default (0, 0.999)) and ``lr_schedule``; ``sgld_steps`` steps of size ``step_size`` with noise
    ``noise_std`` and ``grad_clip``; the energy regulariser ``alpha``; ``data_noise``; the replay buffer's
    ``buffer_size`` and ``reinit_prob``), chains clamped to the box ``clamp``, through
    :func:`~course_lib.training.train` on ``train_data`` (shuffled by a generator seeded with ``seed``),
    evaluated on ``test_data`` (when given) after every epoch. ``task_options`` go to ``EBMTask`` as they are
    (``shape``, ``true_log_density`` and ``grid_range`` for a 2-D model's KL to the truth every epoch).
    Returns ``(model in eval mode, task (its ``buffer`` holds the persistent chains), history, training seconds)``.
    """
    device = get_device(device)
    loader, test_loader, steps_per_epoch = preset_loaders(settings, train_data, test_data, seed=seed,
                                                          test_batch_size=test_batch_size)
    steps = settings["epochs"] * steps_per_epoch
    torch.manual_seed(seed)
    model = build_model(name, settings).to(device)
    task = EBMTask(model, lr=settings["lr"], betas=tuple(settings.get("betas", (0.0, 0.999))),
                   lr_schedule=settings.get("lr_schedule", "constant"), total_steps=steps,
                   buffer_size=settings["buffer_size"], reinit_prob=settings["reinit_prob"],
                   sgld_steps=settings["sgld_steps"], step_size=settings["step_size"], noise_std=settings["noise_std"],
                   grad_clip=settings["grad_clip"], alpha=settings["alpha"], data_noise=settings.get("data_noise", 0.0),
                   clamp=clamp, generator_seed=seed, **task_options)
    start = time.perf_counter()
    history = train(task, loader, test_loader, epochs=settings["epochs"], device=device, seed=seed,
                    max_steps_per_epoch=settings.get("max_steps_per_epoch"), progress=progress, desc=desc or name)
    return model.eval(), task, history, time.perf_counter() - start
