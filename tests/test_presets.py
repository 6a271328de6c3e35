"""Per-topic, per-profile settings: complete, safe to modify, merged from a base; models built and trained alike."""

import pytest
import torch
from torch import nn

from course_lib.presets import (
    MODELS,
    PRESETS,
    TOPICS,
    build_and_fit,
    build_model,
    fit_kwargs,
    fit_preset,
    preset,
    presets_for,
)
from course_lib.presets.merge import by_profile, merge
from course_lib.runtime import PROFILES


def test_every_model_has_every_profile():
    for name, table in PRESETS.items():
        assert tuple(table) == PROFILES, f"{name} has profiles {tuple(table)}"


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
@pytest.mark.parametrize("name", [n for n in PRESETS if {"epochs", "lr"} <= set(PRESETS[n]["smoke"])])
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
    s = preset("made", "smoke") | {"lr_schedule": "step"}
    with pytest.raises(ValueError, match="'step'"):
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


# ----------------------------------------------------------------------------- per-topic presets: the merge


def test_a_profile_without_overrides_gets_the_base_and_the_base_is_left_alone():
    base = {"epochs": 20, "model": {"channels": 64, "hidden_sizes": (500,)}}
    table = by_profile(base, smoke={"epochs": 1, "model": {"channels": 8}})
    assert table["cpu"] == table["gpu"] == base
    assert table["smoke"] == {"epochs": 1, "model": {"channels": 8, "hidden_sizes": (500,)}}
    assert base == {"epochs": 20, "model": {"channels": 64, "hidden_sizes": (500,)}}
    table["cpu"]["model"]["channels"] = 1
    assert table["gpu"]["model"]["channels"] == 64, "profiles must not share nested dicts"


def test_nested_dicts_merge_key_by_key_and_other_values_are_replaced_whole():
    base = {"model": {"d": 784, "hidden_sizes": (500, 500)}, "n_train": None}
    merged = merge(base, {"model": {"hidden_sizes": (64,), "direct_connection": True}, "n_train": 2_000})
    assert merged == {"model": {"d": 784, "hidden_sizes": (64,), "direct_connection": True}, "n_train": 2_000}
    assert merge(base, {"model": {"hidden_sizes": None}})["model"]["hidden_sizes"] is None


def test_a_misspelt_setting_or_profile_is_an_error_naming_it():
    with pytest.raises(KeyError, match="'epoch'.*epochs"):
        merge({"epochs": 1}, {"epoch": 2})
    with pytest.raises(KeyError, match="'laptop'.*smoke, cpu, gpu"):
        by_profile({"epochs": 1}, laptop={"epochs": 2})


def test_made_cpu_is_exactly_the_published_setup_and_key_values_hold():
    assert preset("made", "cpu") == {
        "model": {"d": 784, "hidden_sizes": (500,), "n_masks": 1, "natural_ordering": True,
                  "direct_connection": True},
        "epochs": 20, "batch_size": 100, "lr": 5e-3, "lr_schedule": "cosine", "weight_decay": 0.0,
        "grad_clip": None, "n_train": None, "n_test": None, "max_steps_per_epoch": None, "n_samples": 16,
    }
    assert "direct_connection" not in preset("made", "smoke")["model"]
    assert preset("made", "smoke")["model"]["hidden_sizes"] == (64,)
    assert preset("made", "gpu")["weight_decay"] == 1e-4 and preset("made", "gpu")["epochs"] == 100
    assert preset("made_orderings", "gpu")["model"] == {"d": 784, "hidden_sizes": (500, 500), "n_masks": 32,
                                                          "natural_ordering": False}
    assert preset("wavenet", "gpu")["model"] == {"channels": 128, "n_layers": 16, "kernel_size": 2,
                                                  "dilation_cycle": 8}
    assert preset("wavenet", "smoke")["max_steps_per_epoch"] == 30 and preset("wavenet", "cpu")["lr"] == 3e-3
    assert preset("gated_pixelcnn", "smoke")["n_timing"] == 1 and preset("gated_pixelcnn", "gpu")["n_timing"] == 16
    assert preset("histogram", "gpu")["n_check"] == 1_000_000 and preset("histogram", "cpu")["n_check"] == 200_000
    assert preset("logistic_mixture", "smoke")["n_images"] == 100
    assert preset("logistic_mixture", "gpu")["n_images"] is None


def test_presets_for_a_topic_holds_that_topics_models():
    assert set(presets_for("smoke", topic="01")) == set(TOPICS["01"].PRESETS) == {
        "histogram", "two_variable", "made", "made_orderings", "wavenet", "pixelcnn", "gated_pixelcnn",
        "logistic_mixture"}
    assert presets_for("cpu", topic="01")["pixelcnn"] == preset("pixelcnn", "cpu")
    assert set(presets_for("smoke", topic="02")) == set(TOPICS["02"].PRESETS) == {
        "fista_vs_ista", "sparse_coding", "lista", "linear_ae", "deep_ae", "denoising_ae", "semantic_hashing"}
    assert set(presets_for("smoke", topic="03")) == set(TOPICS["03"].PRESETS) == {
        "maxent_grid", "texture", "mh_widths", "ising", "langevin_bias", "ebm_2d", "rbm", "rbm_ais", "conv_ebm",
        "skipgram"}
    with pytest.raises(KeyError, match="'99'.*01, 02, 03"):
        presets_for("cpu", topic="99")


@pytest.mark.parametrize("profile", PROFILES)
def test_topic02_sparse_coding_experiments_share_one_over_complete_problem(profile):
    coding, lista, lasso = (preset(name, profile) for name in ("sparse_coding", "lista", "fista_vs_ista"))
    model = coding["model"]
    assert model["n_features"] == coding["patch_size"] ** 2
    assert model["n_atoms"] >= 2 * model["n_features"], "the issue asks for an at least 2x over-complete dictionary"
    assert {k: lista["model"][k] for k in ("n_features", "n_atoms", "lam")} == {
        k: model[k] for k in ("n_features", "n_atoms", "lam")}, "LISTA learns the codes of the learned dictionary"
    assert lasso["lam"] == model["lam"]
    assert lista["model"]["target"] == "codes" and lista["fista_iter"] == 100  # the comparison
    assert lista["n_train"] <= coding["n_train"] and lista["n_test"] == coding["n_test"]
    assert coding["whitening_eps"] > 0


def test_topic02_autoencoders_have_the_papers_shapes():
    for profile in PROFILES:
        assert preset("deep_ae", profile)["model"]["sizes"] == (784, 1000, 500, 250, 30)  # Hinton & Salakhutdinov
        hashing = preset("semantic_hashing", profile)["model"]
        assert hashing["sizes"][0] == 784 and hashing["sizes"][-1] == 32 and hashing["code"] == "binary"
        assert hashing["code_noise"] > 0, "semantic hashing saturates its code with noise"
        dae = preset("denoising_ae", profile)
        assert {0.0, 0.25, 0.5} <= set(dae["mask_levels"]) and dae["mask_levels"][0] == 0.0
        assert set(dae["mask_levels"]) <= set(dae["eval_mask_levels"])
        assert dae["gaussian_sigma"] in dae["eval_gaussian_sigmas"]
        assert round(dae["n_filters"] ** 0.5) ** 2 == dae["n_filters"], "the filters are drawn as a square grid"
        assert 10 in preset("semantic_hashing", profile)["ks"]
        assert preset("linear_ae", profile)["model"]["bias"] is False  # trained on centred data
    assert preset("semantic_hashing", "smoke")["n_database"] <= 60_000


@pytest.mark.parametrize("profile", PROFILES)
def test_topic03_presets_keep_the_lectures_conventions(profile):
    ising = preset("ising", profile)
    assert ising["L"] % 2 == 0, "checkerboard Gibbs needs an even side"
    assert ising["t_low"] < 2.269 < ising["t_high"], "the magnetisation curve must cross Onsager's T_c"
    mh = preset("mh_widths", profile)
    assert mh["burn_in"] < mh["n_steps"] and mh["n_chains"] >= 2, "split R-hat and ESS need several chains"
    assert list(mh["step_sizes"]) == sorted(mh["step_sizes"])
    langevin = preset("langevin_bias", profile)
    assert langevin["check_step"] < 2 * langevin["sigma"] ** 2, "ULA on a Gaussian is unstable beyond 2 sigma^2"
    ebm = preset("ebm_2d", profile)
    assert ebm["noise_std"] == pytest.approx((2 * ebm["step_size"]) ** 0.5, rel=1e-3), \
        "the 2-D EBM's Langevin noise is sqrt(2 step): a sampler of exp(-E) itself"
    rbm, ais = preset("rbm", profile), preset("rbm_ais", profile)
    assert rbm["model"]["n_visible"] == 784 and rbm["k"] >= 1
    assert min(ais["tiny_visible"], ais["tiny_hidden"]) <= 20, "the tiny RBM's log Z is enumerated"
    assert ais["n_repeats"] >= 2, "the spread of the AIS estimate needs several runs"
    assert preset("conv_ebm", profile)["grad_clip"] > 0


def test_topic03_gpu_rbm_is_salakhutdinov_and_murrays_setup():
    rbm = preset("rbm", "gpu")
    assert rbm["model"]["n_hidden"] == 500 and rbm["k"] == 25


# ----------------------------------------------------------------------------- the model factory

# Parameter counts of every preset's model in every profile, as the models were first built
# (WaveNet with Tiny Shakespeare's 65 characters). A change here changes the lecture's numbers.
PARAMETERS = {
    "two_variable": {"smoke": 2_144, "cpu": 8_384, "gpu": 8_384},
    "made": {"smoke": 101_200, "cpu": 1_399_940, "gpu": 1_399_940},
    "made_orderings": {"smoke": 101_200, "cpu": 785_284, "gpu": 1_035_784},
    "wavenet": {"smoke": 12_545, "cpu": 219_457, "gpu": 1_647_169},
    "pixelcnn": {"smoke": 3_105, "cpu": 17_345, "gpu": 681_729},
    "gated_pixelcnn": {"smoke": 24_577, "cpu": 182_785, "gpu": 5_514_369},
    "sparse_coding": {"smoke": 8_192, "cpu": 8_192, "gpu": 16_384},
    "lista": {"smoke": 24_704, "cpu": 24_704, "gpu": 82_176},
    "linear_ae": {"smoke": 9_408, "cpu": 9_408, "gpu": 9_408},
    "deep_ae": {"smoke": 2_837_314, "cpu": 2_837_314, "gpu": 2_837_314},
    "denoising_ae": {"smoke": 402_448, "cpu": 785_284, "gpu": 1_569_784},
    "semantic_hashing": {"smoke": 2_603_816, "cpu": 2_603_816, "gpu": 2_603_816},
    "ebm_2d": {"smoke": 17_025, "cpu": 17_025, "gpu": 17_025},
    "rbm": {"smoke": 51_024, "cpu": 393_284, "gpu": 393_284},
    "conv_ebm": {"smoke": 7_825, "cpu": 30_753, "gpu": 306_561},
    "skipgram": {"smoke": 128_000, "cpu": 128_000, "gpu": 128_000},
}
EXTRA = {"wavenet": {"vocab_size": 65}, "skipgram": {"vocab_size": 1_000}}


def test_every_preset_with_model_arguments_has_a_class_and_a_frozen_size():
    assert set(MODELS) == set(PARAMETERS) == {name for name in PRESETS if "model" in PRESETS[name]["smoke"]}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_build_model_builds_every_preset_with_its_parameter_count(name, profile):
    model = build_model(name, preset(name, profile), **EXTRA.get(name, {}))
    assert type(model) is MODELS[name]
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name][profile]


def test_the_same_settings_and_seed_give_the_same_model():
    s = preset("gated_pixelcnn", "smoke")
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        states.append(build_model("gated_pixelcnn", s).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_build_model_passes_extra_arguments_and_names_every_problem():
    made = build_model("made", preset("made", "smoke"), seed=7)
    assert made.seed == 7 and made.hidden_sizes == (64,)
    with pytest.raises(KeyError, match="'histogram' sizes an experiment.*made"):
        build_model("histogram", preset("histogram", "smoke"))
    with pytest.raises(KeyError, match="'vae' does not exist"):
        build_model("vae", {"model": {}})
    with pytest.raises(KeyError, match="'model' dict.*'n_check'"):
        build_model("made", preset("histogram", "smoke"))
    with pytest.raises(TypeError, match="WaveNet.*vocab_size"):
        build_model("wavenet", preset("wavenet", "smoke"))
    with pytest.raises(TypeError, match="hidden_sizes given both"):
        build_model("made", preset("made", "smoke"), hidden_sizes=(8,))
    with pytest.raises(TypeError, match="PixelCNN.*n_block"):
        build_model("pixelcnn", {"model": {"n_block": 3}})


def test_build_and_fit_is_build_model_then_fit_preset_with_the_same_seed():
    g = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 4, (300, 2), generator=g)
    s = preset("two_variable", "smoke") | {"model": {"n_bins": 4, "hidden": 8}, "epochs": 2, "batch_size": 50}
    runs = [build_and_fit("two_variable", s, xy[:200], xy[200:], n_dims=2, seed=5, progress=False, device="cpu")
            for _ in range(2)]
    torch.manual_seed(5)
    by_hand = build_model("two_variable", s)
    history = fit_preset(by_hand, xy[:200], xy[200:], s, n_dims=2, seed=5, progress=False, device="cpu")
    for model, run_history in runs:
        assert run_history.test_nats == history.test_nats
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), by_hand.state_dict().values(),
                                                      strict=True))
    assert history.test_nats[-1] < history.test_nats[0]
