"""Energy networks and their training by SGLD from a replay buffer (topic 03): grids, KL, loss, resume, OOD."""

from __future__ import annotations

import math

import pytest
import torch
from resume_checks import Stop, assert_equal, comparable, stop_at
from sklearn.metrics import roc_auc_score
from torch import nn

from course_lib.data import load_mnist, make_loader
from course_lib.data.toy import TOY_2D
from course_lib.models import ConvEnergy, MLPEnergy, grid_kl, grid_log_density, grid_points, ood_auroc, ood_scores
from course_lib.training import EBMTask, load_checkpoint, train

# ----------------------------------------------------------------------------- grids and KL


def _gaussian_energy(mean: tuple[float, float], std: float):
    """The energy -log N(x; mean, std^2 I) of 2-D points, normalised (x (M, 2) -> (M,))."""
    mu = torch.tensor(mean)

    def energy(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x - mu) ** 2).sum(1) / std**2 + 2 * math.log(std) + math.log(2 * math.pi)

    return energy


def test_grid_log_density_integrates_to_one_over_the_grid():
    torch.manual_seed(0)
    log_p, area = grid_log_density(MLPEnergy(hidden=(16,)), range=((-3, 5), (-2, 2)), n=50)
    assert log_p.shape == (50, 50) and log_p.dtype == torch.float64
    assert area == pytest.approx(8 / 50 * 4 / 50)
    assert float(log_p.exp().sum() * area) == pytest.approx(1.0, abs=1e-12)


def test_grid_rows_run_along_y_and_columns_along_x_as_the_plots_draw_them():
    xs, ys, points, _ = grid_points(((0, 4), (-1, 1)), n=4)
    assert torch.allclose(xs, torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64))
    assert torch.allclose(ys, torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64))
    assert points[1].tolist() == [1.5, -0.75] and points[4].tolist() == [0.5, -0.25]  # [i * n + j] = (xs[j], ys[i])
    log_p, _ = grid_log_density(lambda x: x[:, 0], range=((0, 4), (-1, 1)), n=4)  # E depends on x only
    assert torch.allclose(log_p, log_p[:1].expand(4, 4)), "rows should not change along x2 for E(x1)"
    assert (log_p[0].diff() < 0).all(), "the density of E = x1 should fall along each row"


def test_a_known_density_on_a_wide_grid_matches_its_log_prob():
    toy = TOY_2D["eight_gaussians"]
    log_p, _ = grid_log_density(lambda x: -toy.log_prob(x), range=((-6, 6), (-6, 6)), n=120)
    _, _, points, _ = grid_points(((-6, 6), (-6, 6)), n=120)
    truth = toy.log_prob(points).reshape(120, 120)
    near = truth > -10  # where the Riemann sum's relative error is small
    assert (log_p[near] - truth[near]).abs().max() < 0.01


def test_grid_kl_is_zero_for_identical_densities_and_positive_otherwise():
    log_p, area = grid_log_density(_gaussian_energy((0.0, 0.0), 1.0), n=60)
    log_q, _ = grid_log_density(_gaussian_energy((0.5, 0.0), 1.0), n=60)
    assert grid_kl(log_p, log_p, area) == pytest.approx(0.0, abs=1e-12)
    assert grid_kl(log_p, log_q, area) > 0.1


@pytest.mark.parametrize(("mean", "std"), [((1.0, -0.5), 1.0), ((0.0, 0.0), 1.5), ((-0.7, 0.3), 0.8)])
def test_grid_kl_of_two_gaussians_matches_the_closed_form(mean, std):
    """KL(N(0, I) || N(m, s^2 I)) in 2-D = sum_d [log s + (1 + m_d^2) / (2 s^2) - 1/2] nats."""
    grid = {"range": ((-9.0, 9.0), (-9.0, 9.0)), "n": 360}
    log_p, area = grid_log_density(_gaussian_energy((0.0, 0.0), 1.0), **grid)
    log_q, _ = grid_log_density(_gaussian_energy(mean, std), **grid)
    exact = sum(math.log(std) + (1 + m**2) / (2 * std**2) - 0.5 for m in mean)
    assert grid_kl(log_p, log_q, area) == pytest.approx(exact, rel=2e-3, abs=1e-4)


def test_grid_kl_leaves_out_cells_of_zero_true_density_and_is_infinite_where_the_model_has_none():
    rng = ((-2.0, 2.0), (-2.0, 2.0))
    board = TOY_2D["checkerboard"]
    log_p, area = grid_log_density(lambda x: -board.log_prob(x), range=rng, n=40)
    assert torch.isneginf(log_p).sum() == 40 * 40 // 2
    uniform, _ = grid_log_density(lambda x: torch.zeros(len(x)), range=rng, n=40)
    assert grid_kl(log_p, uniform, area) == pytest.approx(math.log(2.0), abs=1e-9)  # half the area: log 2 nats
    assert grid_kl(uniform, log_p, area) == math.inf


def test_grid_functions_name_bad_inputs():
    log_p, area = grid_log_density(lambda x: torch.zeros(len(x)), n=10)
    with pytest.raises(ValueError, match="integrate to 1"):
        grid_kl(log_p + 1.0, log_p, area)
    with pytest.raises(ValueError, match="integrate to 1"):
        grid_kl(log_p, log_p - 1.0, area)
    with pytest.raises(ValueError, match="differ in shape"):
        grid_kl(log_p, log_p[:5], area)
    with pytest.raises(ValueError, match="cell_area"):
        grid_kl(log_p, log_p, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        grid_kl(log_p, torch.full_like(log_p, math.nan), area)
    with pytest.raises(ValueError, match="energies \\(M,\\)"):
        grid_log_density(lambda x: torch.zeros(len(x), 1), n=10)
    with pytest.raises(ValueError, match="NaN or -inf"):
        grid_log_density(lambda x: torch.full((len(x),), math.nan), n=10)
    with pytest.raises(ValueError, match="no mass"):
        grid_log_density(lambda x: torch.full((len(x),), math.inf), n=10)
    with pytest.raises(ValueError, match="xmin < xmax"):
        grid_log_density(lambda x: torch.zeros(len(x)), range=((1, -1), (0, 1)))


# ----------------------------------------------------------------------------- the energy networks


def test_mlp_energy_gives_one_energy_per_point_and_samples_inside_its_starting_box_shape():
    torch.manual_seed(0)
    model = MLPEnergy(n_features=3, hidden=(8, 8), activation="elu")
    assert model.energy(torch.randn(5, 3)).shape == (5,) and model(torch.randn(2, 3)).shape == (2,)
    a = model.sample(7, n_steps=3, step_size=1e-3, generator=torch.Generator().manual_seed(1))
    b = model.sample(7, n_steps=3, step_size=1e-3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 3) and not a.requires_grad and torch.equal(a, b)
    assert all(p.grad is None for p in model.parameters()), "sampling must not leave gradients on the parameters"


def test_conv_energy_maps_mnist_images_to_energies_with_or_without_spectral_norm():
    torch.manual_seed(0)
    for channels in [(8,), (8, 16, 16), (4, 4, 4, 4, 4)]:
        assert ConvEnergy(channels=channels).energy(torch.rand(3, 1, 28, 28)).shape == (3,)
    model = ConvEnergy(channels=(8, 16), spectral_norm=True)
    assert any("parametrizations" in k for k in model.state_dict())
    x = model.sample(4, n_steps=2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 28, 28) and x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ConvEnergy().energy(torch.rand(2, 784)), ValueError, r"\(B, 1, 28, 28\), got shape \(2, 784\)"),
        (lambda: ConvEnergy().energy(torch.rand(2, 3, 28, 28)), ValueError, r"got shape \(2, 3, 28, 28\)"),
        (lambda: ConvEnergy().energy(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)), TypeError, "x.float\\(\\) / 255"),
        (lambda: ConvEnergy(channels=(8,) * 6), ValueError, "1 to 5"),
        (lambda: ConvEnergy(channels=(8, 0)), ValueError, r"channels\[1\]"),
        (lambda: ConvEnergy(activation="relu"), ValueError, "activation"),
        (lambda: MLPEnergy().energy(torch.rand(4, 3)), ValueError, r"\(B, 2\), got shape \(4, 3\)"),
        (lambda: MLPEnergy(hidden=()), ValueError, "at least one"),
        (lambda: MLPEnergy(n_features=0), ValueError, "n_features"),
        (lambda: MLPEnergy().sample(3, n_steps=1, low=1.0, high=-1.0), ValueError, "low < high"),
    ],
)
def test_energy_networks_name_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------------------- out-of-distribution scores


def test_ood_auroc_matches_scikit_learn_with_ties():
    gen = torch.Generator().manual_seed(0)
    scores_in = torch.randint(0, 6, (40,), generator=gen).float()  # many ties
    scores_out = torch.randint(2, 9, (30,), generator=gen).float()
    labels = [0] * 40 + [1] * 30
    expected = roc_auc_score(labels, torch.cat([scores_in, scores_out]).numpy())
    assert ood_auroc(scores_in, scores_out) == pytest.approx(expected, abs=1e-12)
    assert ood_auroc(torch.zeros(3), torch.ones(2)) == 1.0 and ood_auroc(torch.ones(3), torch.zeros(2)) == 0.0
    assert ood_auroc(torch.ones(3), torch.ones(4)) == 0.5
    with pytest.raises(ValueError, match="scores_out"):
        ood_auroc(torch.ones(3), torch.ones(0))


def test_ood_scores_are_the_energies_in_batches_and_leave_the_mode_alone():
    torch.manual_seed(0)
    model = ConvEnergy(channels=(4, 8))
    x = torch.rand(7, 1, 28, 28)
    scores = ood_scores(model, x, batch_size=3)
    assert torch.allclose(scores, model.energy(x).detach(), atol=1e-6) and model.training
    assert torch.allclose(ood_scores(model.energy, x), scores, atol=1e-6)


# ----------------------------------------------------------------------------- the loss of EBMTask


class LinearEnergy(nn.Module):
    """E(x) = theta * x on the line: data at +1 and samples at -1 pull theta in opposite directions."""

    input_shape = (1,)

    def __init__(self, theta: float = 0.3):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta * x[:, 0]


def test_the_loss_is_the_contrastive_divergence_plus_the_l2_regulariser_on_energies():
    task = EBMTask(LinearEnergy(0.3), alpha=0.1, clamp=(-2.0, 2.0), buffer_size=8)
    data, samples = torch.tensor([[1.0], [2.0]]), torch.tensor([[-1.0], [0.0]])
    terms = task.loss_terms(data, samples)
    # E(data) = (0.3, 0.6), E(samples) = (-0.3, 0.0)
    regularizer = ((0.3**2 + 0.3**2) + (0.6**2 + 0.0**2)) / 2
    assert terms["energy_data"].item() == pytest.approx(0.45)
    assert terms["energy_samples"].item() == pytest.approx(-0.15)
    assert terms["regularizer"].item() == pytest.approx(regularizer)
    assert terms["loss"].item() == pytest.approx(0.45 + 0.15 + 0.1 * regularizer)


def test_a_step_on_the_loss_lowers_the_energy_of_data_and_raises_that_of_samples():
    model = LinearEnergy(0.3)
    task = EBMTask(model, alpha=0.0, clamp=(-2.0, 2.0), buffer_size=8)
    data, samples = torch.ones(4, 1), -torch.ones(4, 1)
    before_data, before_samples = model.energy(data).mean().item(), model.energy(samples).mean().item()
    task.loss_terms(data, samples)["loss"].backward()
    assert model.theta.grad.item() == pytest.approx(2.0)  # d/dtheta [theta * 1 - theta * (-1)]
    with torch.no_grad():
        model.theta -= 0.1 * model.theta.grad
    assert model.energy(data).mean().item() < before_data
    assert model.energy(samples).mean().item() > before_samples


# ----------------------------------------------------------------------------- training and exact resume


def _toy_loaders(n_train: int = 512, batch_size: int = 64):
    toy = TOY_2D["eight_gaussians"]
    gen = torch.Generator().manual_seed(7)
    return make_loader(toy.sample(n_train, seed=1), batch_size, shuffle=True, generator=gen), make_loader(
        toy.sample(256, seed=2), 256
    )


def _toy_task(hidden: tuple[int, ...] = (32, 32), **kw) -> EBMTask:
    torch.manual_seed(0)
    settings = {"lr": 3e-3, "betas": (0.9, 0.999), "buffer_size": 256, "sgld_steps": 5, "step_size": 0.01,
                "noise_std": math.sqrt(0.02), "grad_clip": None, "alpha": 0.1, "data_noise": 0.05,
                "clamp": (-4.0, 4.0)}
    return EBMTask(MLPEnergy(hidden=hidden), **{**settings, **kw})


@pytest.mark.parametrize("stop_step", [5, 13])
def test_a_run_interrupted_and_resumed_from_its_checkpoint_ends_bitwise_equal(tmp_path, stop_step):
    reference = _toy_task()
    ref_history = train(reference, *_toy_loaders(), epochs=3, device="cpu", progress=False,
                        checkpoint_path=tmp_path / "ref.pt")
    assert not torch.equal(reference.buffer.samples, _toy_task().buffer.samples), "the buffer did not change"

    task, loaders, path = _toy_task(), _toy_loaders(), tmp_path / "run.pt"
    with pytest.raises(Stop):
        train(task, *loaders, epochs=3, device="cpu", progress=False, checkpoint_path=path,
              callback=stop_at(stop_step))
    resumed = _toy_task()  # a fresh process would build the task anew
    history = train(resumed, *loaders, epochs=3, device="cpu", progress=False, checkpoint_path=path)
    assert comparable(history) == comparable(ref_history)
    assert_equal(resumed.state_dict(), reference.state_dict(), "state_dict")
    saved = load_checkpoint(path)["model"]
    assert "buffer.samples" in saved and saved["_extra_state"]["generator"] is not None


def test_the_resumed_run_depends_on_the_sampler_state_that_the_checkpoint_carries():
    """Guards the test above: another generator seed, or another buffer, gives another run."""
    runs = []
    for kw in ({}, {"generator_seed": 1}):
        task = _toy_task(**kw)
        train(task, _toy_loaders()[0], epochs=1, device="cpu", progress=False)
        runs.append(task.state_dict())
    assert not torch.equal(runs[0]["buffer.samples"], runs[1]["buffer.samples"])
    assert not torch.equal(runs[0]["model.net.0.weight"], runs[1]["model.net.0.weight"])


def test_training_step_logs_its_terms_and_moves_the_buffer():
    task = _toy_task()
    history = train(task, _toy_loaders()[0], epochs=1, device="cpu", progress=False, max_steps_per_epoch=2)
    assert set(history.step_values) == {"loss", "energy_data", "energy_samples", "regularizer"}
    for name, values in history.step_values.items():
        assert len(values) == 2 and all(math.isfinite(v) for v in values), name
    assert not torch.equal(task.buffer.samples, _toy_task().buffer.samples)
    assert task.buffer.samples.abs().max() <= 4.0  # clamped to the box


def test_a_short_run_on_eight_gaussians_lowers_the_grid_kl_to_the_truth():
    toy, rng = TOY_2D["eight_gaussians"], ((-4.0, 4.0), (-4.0, 4.0))
    truth, _ = grid_log_density(lambda x: -toy.log_prob(x), range=rng, n=64)
    train_loader, test_loader = _toy_loaders(n_train=4096, batch_size=128)
    task = _toy_task(hidden=(64, 64), lr=1e-2, lr_schedule="cosine", total_steps=2 * len(train_loader),
                     buffer_size=1024, sgld_steps=10, true_log_density=truth, grid_range=rng)
    history = train(task, train_loader, test_loader, epochs=2, device="cpu", progress=False)
    kl = history.eval_values["kl"]
    assert kl[0] > 1.0, f"the untrained model should be near uniform on the box (KL about 1.3 nats), got {kl[0]:.3f}"
    assert kl[-1] < 0.7 * kl[0], f"KL(true || model) went from {kl[0]:.3f} to only {kl[-1]:.3f} nats"
    assert set(history.eval_values) == {"energy_test", "energy_buffer", "kl"}


def test_ebm_task_trains_a_conv_energy_on_images_in_the_unit_box():
    torch.manual_seed(0)
    task = EBMTask(ConvEnergy(channels=(4, 8)), buffer_size=32, sgld_steps=2, data_noise=0.005)
    images = torch.rand(16, 1, 28, 28)
    history = train(task, make_loader(images, 8), make_loader(images, 16), epochs=1, device="cpu", progress=False)
    assert len(history.step_values["loss"]) == 2
    assert set(history.eval_values) == {"energy_test", "energy_buffer"}
    assert 0.0 <= task.buffer.samples.min() and task.buffer.samples.max() <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_size": 0.0}, "step_size"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"sgld_steps": 0}, "sgld_steps"),
        ({"reinit_prob": 1.5}, "reinit_prob"),
        ({"alpha": math.nan}, "alpha"),
        ({"clamp": (1.0, -1.0)}, "clamp"),
        ({"betas": (1.0, 0.999)}, "betas"),
        ({"lr": 0.0}, "lr"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"lr_schedule": "cosine"}, "total_steps"),
        ({"true_log_density": torch.zeros(4, 5)}, "square grid"),
    ],
)
def test_ebm_task_names_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EBMTask(MLPEnergy(hidden=(4,)), **kwargs)


class _ShapelessEnergy(nn.Module):
    """An energy that does not say the shape of its inputs."""

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1)


def test_ebm_task_names_a_model_without_energy_and_a_batch_of_the_wrong_shape():
    with pytest.raises(TypeError, match="energy"):
        EBMTask(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="input_shape"):
        EBMTask(_ShapelessEnergy())
    task = EBMTask(MLPEnergy(hidden=(4,)), clamp=(-4.0, 4.0), buffer_size=16)
    with pytest.raises(ValueError, match=r"float batches \(B, 2\)"):
        train(task, make_loader(torch.rand(8, 3), 4), epochs=1, device="cpu", progress=False)


def test_a_few_steps_on_mnist_give_noise_and_constant_images_higher_energies_than_test_digits():
    x, _ = load_mnist("train", subset=2000)
    x_test, _ = load_mnist("test", subset=500)
    x, x_test = x.float() / 255, x_test.float() / 255
    gen = torch.Generator().manual_seed(1)
    outliers = {"uniform noise": torch.rand(500, 1, 28, 28, generator=gen),
                "constant": torch.rand(500, 1, 1, 1, generator=gen).expand(-1, 1, 28, 28).contiguous()}
    torch.manual_seed(2)  # an initialisation that scores the outliers *below* the digits
    model = ConvEnergy(channels=(8, 16, 16))
    before = {k: ood_auroc(ood_scores(model, x_test), ood_scores(model, v)) for k, v in outliers.items()}
    assert max(before.values()) < 0.5, f"the test needs an initialisation that fails: {before}"
    task = EBMTask(model, lr=1e-3, buffer_size=256, sgld_steps=10, data_noise=0.005)
    loader = make_loader(x, 32, shuffle=True, generator=torch.Generator().manual_seed(0))
    train(task, loader, epochs=1, max_steps_per_epoch=30, device="cpu", progress=False)
    after = {k: ood_auroc(ood_scores(model, x_test), ood_scores(model, v)) for k, v in outliers.items()}
    assert min(after.values()) > 0.95, f"AUROC of test digits against outliers after 30 steps: {after}"
