"""Per-profile settings: complete, safe to modify, and turned into the same training everywhere."""

import pytest
import torch
from torch import nn

from course_lib.presets import PRESETS, fit_kwargs, fit_preset, preset, presets_for
from course_lib.runtime import PROFILES


def test_every_model_has_every_profile():
    for name, by_profile in PRESETS.items():
        assert tuple(by_profile) == PROFILES, f"{name} has profiles {tuple(by_profile)}"


def test_preset_is_a_copy_that_callers_may_modify():
    s = preset("made", "cpu")
    s["model"]["hidden_sizes"] = (1,)
    s["epochs"] = -1
    assert preset("made", "cpu")["epochs"] > 0
    assert preset("made", "cpu")["model"]["hidden_sizes"] != (1,)


def test_unknown_names_are_named_with_the_valid_ones():
    with pytest.raises(KeyError, match="'vae'.*made"):
        preset("vae", "cpu")
    with pytest.raises(KeyError, match="'laptop'.*smoke, cpu, gpu"):
        preset("made", "laptop")
    with pytest.raises(KeyError, match="'laptop'"):
        presets_for("laptop")


@pytest.mark.parametrize("name", [n for n in PRESETS if "epochs" in PRESETS[n]["smoke"]])
def test_smoke_trains_on_no_more_data_and_epochs_than_cpu(name):
    smoke, cpu = preset(name, "smoke"), preset(name, "cpu")
    assert smoke["epochs"] <= cpu["epochs"]
    if cpu["n_train"] is not None:
        assert smoke["n_train"] is not None and smoke["n_train"] <= cpu["n_train"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", [n for n in PRESETS if "epochs" in PRESETS[n]["smoke"]])
def test_fit_kwargs_builds_a_working_optimizer_and_schedule(name, profile):
    s = preset(name, profile)
    kwargs = fit_kwargs(s, steps_per_epoch=10)
    assert kwargs["epochs"] == s["epochs"] and kwargs["lr"] == s["lr"]
    param = nn.Parameter(torch.zeros(3))
    opt = kwargs["optimizer"]([param]) if kwargs["optimizer"] else torch.optim.Adam([param], lr=kwargs["lr"])
    if kwargs["scheduler"] is None:
        assert s["lr_schedule"] == "constant"
        return
    sched = kwargs["scheduler"](opt)
    for _ in range(s["epochs"] * 10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12), "a cosine schedule decays to zero"


def test_unknown_schedule_is_an_error():
    s = preset("made", "smoke") | {"lr_schedule": "linear"}
    with pytest.raises(ValueError, match="'linear'"):
        fit_kwargs(s, 10)


class _Bernoulli(nn.Module):
    """Independent pixels: the smallest likelihood model."""

    def __init__(self, d: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(d))

    def nll(self, x):
        x = x.flatten(1)
        return nn.functional.binary_cross_entropy_with_logits(self.logits.expand_as(x), x, reduction="none").sum(1)


def test_fit_preset_is_repeatable_and_lowers_the_test_nll():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(256, 1, 4, 4, generator=g) < torch.linspace(0.05, 0.95, 16).view(1, 1, 4, 4)).float()
    s = preset("made", "smoke") | {"epochs": 2, "batch_size": 32, "lr": 0.1}
    runs = []
    for _ in range(2):
        model = _Bernoulli(16)
        runs.append(fit_preset(model, x[:192], x[192:], s, n_dims=16, seed=3, progress=False, device="cpu"))
    assert runs[0].test_nats == runs[1].test_nats
    assert runs[0].test_nats[-1] < runs[0].test_nats[0] - 1.0  # 16 ln 2 = 11.1 nats at the start
