"""The protocol every model shares: keyword constructors, ``sample(n, *, generator=None, ...)``, ``nll -> (B,)``."""

from __future__ import annotations

import importlib
import inspect

import pytest
import torch
from torch import nn

import course_lib.models as models
from course_lib.models import (
    MADE,
    DiscretizedLogisticMixture,
    GatedPixelCNN,
    Histogram,
    PixelCNN,
    TwoVariableAR,
    WaveNet,
    random_image,
    receptive_field_map,
)


def _tiny(name: str) -> tuple[nn.Module, dict]:
    """A small instance of each model, and the keyword options its sample() needs here."""
    torch.manual_seed(0)
    return {
        "histogram": (Histogram(5, logits=torch.randn(5)), {}),
        "two_variable": (TwoVariableAR(4, hidden=8), {}),
        "logistic_mixture": (DiscretizedLogisticMixture(n_components=3, n_bins=16), {}),
        "made": (MADE(6, hidden_sizes=(12,), natural_ordering=False), {}),
        "wavenet": (WaveNet(5, channels=8, n_layers=3), {"length": 12}),
        "pixelcnn": (PixelCNN(channels=8, first_kernel_size=3, n_blocks=1, head_channels=8, image_shape=(4, 5)), {}),
        "gated_pixelcnn": (GatedPixelCNN(channels=8, kernel_size=3, n_layers=2, head_channels=8, image_shape=(4, 5),
                                         distribution="categorical", n_bins=7), {}),
    }[name]


NAMES = ["histogram", "two_variable", "logistic_mixture", "made", "wavenet", "pixelcnn", "gated_pixelcnn"]


@pytest.mark.parametrize("name", NAMES)
def test_sample_takes_n_then_keyword_only_options_with_generator(name):
    model, _ = _tiny(name)
    params = list(inspect.signature(model.sample).parameters.values())
    assert params[0].name == "n" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), [str(p) for p in params]
    assert params[1].name == "generator" and params[1].default is None


@pytest.mark.parametrize("name", NAMES)
def test_the_same_generator_seed_gives_the_same_samples(name):
    model, options = _tiny(name)
    a = model.sample(16, generator=torch.Generator().manual_seed(1), **options)
    b = model.sample(16, generator=torch.Generator().manual_seed(1), **options)
    c = model.sample(16, generator=torch.Generator().manual_seed(2), **options)
    assert torch.equal(a, b)
    assert not torch.equal(a, c), "a different seed should give different samples"
    with pytest.raises(TypeError):
        model.sample(16, torch.Generator().manual_seed(1), **options)  # the generator goes by keyword


@pytest.mark.parametrize("name", NAMES)
def test_samples_come_in_the_training_format_and_nll_gives_one_value_each(name):
    model, options = _tiny(name)
    x = model.sample(8, generator=torch.Generator().manual_seed(3), **options)
    nll = model.nll(x)
    assert x.shape[0] == 8 and nll.shape == (8,)
    assert torch.isfinite(nll).all() and (nll >= 0).all(), "a discrete model's NLL is finite and non-negative"


@pytest.mark.parametrize("cls", [Histogram, TwoVariableAR, DiscretizedLogisticMixture, MADE, WaveNet, PixelCNN,
                                 GatedPixelCNN])
def test_constructors_take_keyword_arguments_with_at_most_the_data_size_by_position(cls):
    params = list(inspect.signature(cls).parameters.values())
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert len(positional) <= 1, f"{cls.__name__}: only the data's size may come by position, not {positional}"
    assert all(p.default is inspect.Parameter.empty for p in positional), "the positional one is required"
    assert all(p.default is not inspect.Parameter.empty for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
    for p in params:
        assert p.name in (cls.__doc__ or ""), f"{cls.__name__}'s docstring does not document {p.name!r}"


@pytest.mark.parametrize("make, match", [
    (lambda: TwoVariableAR(4, hidden=0), "hidden"),
    (lambda: WaveNet(5, dilation_cycle=0), "dilation_cycle"),
    (lambda: WaveNet(5, skip_channels=0), "skip_channels"),
    (lambda: MADE(4, connectivity="dense"), "connectivity"),
    (lambda: GatedPixelCNN(n_classes=-1), "n_classes"),
    (lambda: PixelCNN(image_shape=(28,)), "image_shape"),
])
def test_constructors_name_a_bad_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_every_family_states_the_shared_sampling_protocol_and_models_re_exports_the_autoregressive_names():
    for family in ("autoregressive", "latent", "energy", "adversarial", "flows"):
        doc = importlib.import_module(f"course_lib.models.{family}").__doc__ or ""
        assert "sample(n, *, generator=None" in doc, f"course_lib.models.{family} does not state its sampling protocol"
    assert "generator" in (importlib.import_module("course_lib.models.energy.sampling").__doc__ or "")
    autoregressive = importlib.import_module("course_lib.models.autoregressive")
    for name in autoregressive.__all__:
        assert getattr(models, name) is getattr(autoregressive, name)


# ----------------------------------------------------------------------------- receptive fields of any model


def test_receptive_field_of_a_plain_convolution_is_its_kernel_window():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=(3, 5), padding=(1, 2)).double()
    x = random_image(conv, (8, 9), generator=torch.Generator().manual_seed(0)).double()
    assert x.shape == (1, 2, 8, 9), "a model without a discrete support gets a float image of its channels"
    seen = receptive_field_map(conv, (8, 9), (4, 4), x=x) > 0
    expected = torch.zeros(8, 9, dtype=torch.bool)
    expected[3:6, 2:7] = True
    assert torch.equal(seen, expected)


def test_receptive_field_refuses_a_class_for_an_unconditional_model():
    model, _ = _tiny("pixelcnn")
    with pytest.raises(ValueError, match="unconditional.*y=2"):
        receptive_field_map(model, (4, 5), (2, 2), y=2)
