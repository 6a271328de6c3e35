"""The general training loop: several optimizers, carried state, several logged terms, exact resume.

Tiny tasks on 2-D data, on the CPU: a GAN whose critic takes five steps per generator step,
an energy model trained by contrastive divergence from a persistent buffer of Langevin
chains, and a VAE-like model that logs its loss terms.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from resume_checks import Stop, assert_equal, comparable, stop_at
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.plots import plot_training_curves
from course_lib.runtime import STATIC_WIDGETS_ENV
from course_lib.training import (
    CheckpointMismatchError,
    NonFiniteLossError,
    TrainHistory,
    load_checkpoint,
    loop,
    train,
)

N_CRITIC = 5


def _points(n: int = 64, seed: int = 0) -> torch.Tensor:
    """(n, 2) points of two Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    return centres[torch.randint(0, 2, (n,), generator=g)] + 0.3 * torch.randn(n, 2, generator=g)


def _loaders(n_train: int = 64, batch_size: int = 8):
    train_set = TensorDataset(_points(n_train, 0))
    gen = torch.Generator().manual_seed(123)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=gen),
        DataLoader(TensorDataset(_points(20, 1)), batch_size=10),
    )


def _run(task, loaders, **kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("device", "cpu")
    kw.setdefault("progress", False)
    return train(task, *loaders, **kw)


# ----------------------------------------------------------------------------- a GAN: two optimizers


class TinyGAN(nn.Module):
    """A generator z -> x and a critic x -> logit on 2-D points, non-saturating GAN losses.

    The critic takes a step every training step, the generator one every ``n_critic`` steps,
    with a per-epoch scheduler on the critic and a per-step scheduler on the generator.
    """

    def __init__(self, n_critic: int = N_CRITIC, nan_generator_at: int | None = None, record_norms: bool = False):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
        self.critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1))
        self.n_critic = n_critic
        self.hparams = {"n_critic": n_critic}
        self.nan_generator_at = nan_generator_at
        self.record_norms = record_norms
        self.critic_grad_norms: list[float] = []  # after each critic step, when record_norms
        self.optimizers: dict = {}  # as configure_optimizers built them, to look at after training
        self.schedulers: dict = {}

    def configure_optimizers(self):
        critic = torch.optim.Adam(self.critic.parameters(), lr=1e-2)
        generator = torch.optim.SGD(self.generator.parameters(), lr=5e-2, momentum=0.9)
        self.optimizers = {"critic": critic, "generator": generator}
        self.schedulers = {
            "critic": torch.optim.lr_scheduler.StepLR(critic, step_size=1, gamma=0.5),
            "generator": torch.optim.lr_scheduler.ExponentialLR(generator, 0.9),
        }
        return self.optimizers, {
            "critic": self.schedulers["critic"],  # after every epoch
            "generator": {"scheduler": self.schedulers["generator"], "interval": "step"},  # after each of its steps
        }

    def sample(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, 2))  # torch's global random stream

    def training_step(self, batch, ctx):
        (x,) = batch
        with ctx.autocast():
            fake = self.sample(len(x)).detach()
            critic_loss = F.softplus(-self.critic(x)).mean() + F.softplus(self.critic(fake)).mean()
        ctx.optimize(critic_loss, "critic")
        if self.record_norms:
            self.critic_grad_norms.append(_grad_norm(self.critic))
        logged = {"critic_loss": critic_loss.detach()}
        if ctx.global_step % self.n_critic == 0:  # one generator step per n_critic critic steps
            with ctx.autocast():
                generator_loss = F.softplus(-self.critic(self.sample(len(x)))).mean()
            if ctx.global_step == self.nan_generator_at:
                generator_loss = generator_loss * float("nan")
            ctx.optimize(generator_loss, "generator")
            logged["generator_loss"] = generator_loss.detach()
        return logged

    def evaluate(self, loader):
        real = torch.cat([torch.sigmoid(self.critic(x)).flatten() for (x,) in loader])
        fake = torch.sigmoid(self.critic(self.sample(len(real)))).flatten()
        return {"real_score": real.mean(), "fake_score": fake.mean().item()}


def _grad_norm(module: nn.Module) -> float:
    return torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in module.parameters()])).item()


def _new_gan(**kw) -> TinyGAN:
    torch.manual_seed(7)
    return TinyGAN(**kw)


def test_gan_logs_the_generator_loss_every_fifth_step_and_steps_each_scheduler_on_its_own_clock():
    gan = _new_gan()
    history = _run(gan, _loaders())
    assert history.steps_per_epoch == [8, 8, 8]
    assert history.step_numbers["critic_loss"] == list(range(1, 25))
    assert history.step_numbers["generator_loss"] == [5, 10, 15, 20]
    # epoch means over the steps where each was logged: epoch 1 holds generator step 5 only
    assert history.epoch_means["generator_loss"][0] == history.step_values["generator_loss"][0]
    second_epoch = history.step_values["generator_loss"][1:3]  # steps 10 and 15
    assert history.epoch_means["generator_loss"][1] == pytest.approx(sum(second_epoch) / 2)
    assert len(history.eval_values["real_score"]) == len(history.eval_values["fake_score"]) == 4
    assert history.task_name == "TinyGAN" and history.n_params == sum(p.numel() for p in gan.parameters())
    lrs = {n: o.param_groups[0]["lr"] for n, o in gan.optimizers.items()}
    assert lrs == pytest.approx({"critic": 1e-2 * 0.5**3, "generator": 5e-2 * 0.9**4})  # 3 epochs, 4 generator steps


@pytest.mark.parametrize("stop_step", [11, 3, 17])  # mid-epoch 2, inside epoch 1, first step of epoch 3
def test_gan_interrupted_and_resumed_equals_an_uninterrupted_run_bitwise(tmp_path, stop_step):
    reference = _new_gan()
    ref_history = _run(reference, _loaders(), checkpoint_path=tmp_path / "ref.pt")
    ref = load_checkpoint(tmp_path / "ref.pt")

    gan, loaders, path = _new_gan(), _loaders(), tmp_path / "run.pt"
    with pytest.raises(Stop) as info:
        _run(gan, loaders, checkpoint_path=path, callback=stop_at(stop_step))
    expected_epoch = (stop_step - 1) // 8
    assert load_checkpoint(path)["epoch"] == expected_epoch
    assert any(f"holds epoch {expected_epoch}" in note for note in info.value.__notes__)
    history = _run(gan, loaders, checkpoint_path=path)  # the same call again resumes

    assert comparable(history) == comparable(ref_history)
    assert_equal(gan.state_dict(), reference.state_dict(), "parameters")
    for name in ("critic", "generator"):
        assert_equal(gan.optimizers[name].state_dict(), reference.optimizers[name].state_dict(), name)
        assert_equal(gan.schedulers[name].state_dict(), reference.schedulers[name].state_dict(), name)
    assert_equal(load_checkpoint(path)["rng"], ref["rng"], "random states")


def test_gan_runs_depend_on_the_seed_so_that_the_resume_test_can_fail():
    a, b, c = _new_gan(), _new_gan(), _new_gan()
    ha, hb, hc = _run(a, _loaders(), seed=0), _run(b, _loaders(), seed=1), _run(c, _loaders(), seed=0)
    assert ha.step_values != hb.step_values
    assert not torch.equal(a.generator[0].weight, b.generator[0].weight)
    assert comparable(ha) == comparable(hc)
    assert_equal(a.state_dict(), c.state_dict())


def test_gan_nan_in_the_generator_loss_names_that_optimizer_epoch_and_step(tmp_path):
    gan = _new_gan(nan_generator_at=10)
    path = tmp_path / "nan.pt"
    message = r"training loss of optimizer 'generator': nan at epoch 2, step 2 of the epoch \(global step 10\)"
    with pytest.raises(NonFiniteLossError, match=message) as info:
        _run(gan, _loaders(), checkpoint_path=path)
    err = info.value
    assert (err.quantity, err.optimizer, err.epoch, err.step, err.global_step) == ("loss", "generator", 2, 2, 10)
    assert math.isnan(err.value)
    assert all(torch.isfinite(p).all() for p in gan.generator.parameters())  # caught before its step
    assert load_checkpoint(path)["epoch"] == 1


def test_deferred_nan_check_names_the_first_bad_optimizer_step_at_the_next_log_point(monkeypatch):
    """The accelerators' path (values read at log points only), exercised on the CPU."""
    monkeypatch.setattr(loop, "_defer_nonfinite_checks", lambda device: True)
    seen = []
    with pytest.raises(NonFiniteLossError, match=r"optimizer 'generator': nan at epoch 2, step 2 .*global step 10"):
        _run(_new_gan(nan_generator_at=10), _loaders(), log_every=4, callback=lambda r: seen.append(r.global_step))
    assert max(seen) == 12  # found at step 4 of epoch 2, after steps 10..12 ran


def test_a_non_finite_logged_quantity_is_named():
    class LogsNaN(TinyGAN):
        def training_step(self, batch, ctx):
            logged = super().training_step(batch, ctx)
            logged["ratio"] = torch.tensor(float("inf") if ctx.global_step == 3 else 1.0)
            return logged

    torch.manual_seed(7)
    with pytest.raises(NonFiniteLossError, match=r"logged quantity 'ratio': inf at epoch 1, step 3") as info:
        _run(LogsNaN(), _loaders())
    assert info.value.quantity == "ratio" and info.value.optimizer is None


def test_grad_clip_per_optimizer_clips_only_the_named_one():
    gan = _new_gan(record_norms=True)
    _run(gan, _loaders(), epochs=1, grad_clip={"critic": 1e-3})
    assert len(gan.critic_grad_norms) == 8
    assert max(gan.critic_grad_norms) <= 1e-3 * (1 + 1e-5)
    unclipped = _new_gan(record_norms=True)
    _run(unclipped, _loaders(), epochs=1)
    assert max(unclipped.critic_grad_norms) > 1e-2  # the bound above is not met by chance


def test_evaluation_runs_before_the_first_step_in_eval_mode_without_gradients():
    gan = _new_gan()
    seen = []
    evaluate = gan.evaluate

    def spy(loader):
        seen.append((gan.training, torch.is_grad_enabled()))
        return evaluate(loader)

    gan.evaluate = spy
    torch.manual_seed(0)  # train seeds the global stream with seed=0 before evaluating
    gan.eval()
    with torch.no_grad():
        before = evaluate(_loaders()[1])
    gan.train()
    history = _run(gan, _loaders(), epochs=1)
    assert history.eval_values["fake_score"][0] == before["fake_score"]
    assert history.eval_values["real_score"][0] == before["real_score"].item()
    assert seen == [(False, False), (False, False)]
    assert gan.training  # train mode is restored


def test_zero_epochs_only_evaluate():
    gan = _new_gan()
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    history = _run(gan, _loaders(), epochs=0)
    assert history.epochs == 0 and history.step_values == {} and len(history.eval_values["real_score"]) == 1
    assert_equal(gan.state_dict(), before)


def test_a_checkpoint_of_another_task_or_other_hparams_or_optimizers_is_refused(tmp_path):
    path = tmp_path / "gan.pt"
    _run(_new_gan(), _loaders(), epochs=1, checkpoint_path=path)
    with pytest.raises(CheckpointMismatchError, match="TinyGAN, not this EnergyModel.*generator"):
        _run(EnergyModel(), (_loaders()[0], None), checkpoint_path=path)
    with pytest.raises(CheckpointMismatchError, match="saved with n_critic=5, not n_critic=3"):
        _run(_new_gan(n_critic=3), _loaders(), checkpoint_path=path)

    class OneOptimizer(TinyGAN):
        name = "TinyGAN"

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    with pytest.raises(CheckpointMismatchError, match="optimizers 'critic', 'generator' but the task has 'optimizer'"):
        _run(OneOptimizer(), _loaders(), checkpoint_path=path)
    with pytest.raises(CheckpointMismatchError, match="written by a run with an evaluation"):
        _run(_new_gan(), (_loaders()[0], None), checkpoint_path=path)


def test_a_checkpoint_of_an_older_format_is_named_as_such(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "course_lib.training/1", "model": {}}, path)
    with pytest.raises(CheckpointMismatchError, match="found 'course_lib.training/1': an older version"):
        _run(_new_gan(), _loaders(), checkpoint_path=path)


# ----------------------------------------------------------------------------- an energy model: carried state


class EnergyModel(nn.Module):
    """E(x) = 1/2 sum_d ((x_d - mu_d) / sigma_d)^2, trained by persistent contrastive divergence.

    The negative samples come from a persistent buffer of Langevin chains (a registered
    buffer), advanced a few steps per training step with noise from the task's own
    generator, whose state is carried through ``get_extra_state``/``set_extra_state``.
    """

    def __init__(self, n_chains: int = 16, n_langevin: int = 3, step_size: float = 0.05):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(2))
        self.log_sigma = nn.Parameter(torch.zeros(2))
        self.register_buffer("chains", torch.zeros(n_chains, 2))
        self.sampler = torch.Generator().manual_seed(5)
        self.n_langevin, self.step_size = n_langevin, step_size

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (((x - self.mu) / self.log_sigma.exp()) ** 2).sum(-1)  # (B, 2) -> (B,)

    def get_extra_state(self):
        return {"sampler": self.sampler.get_state()}

    def set_extra_state(self, state):
        self.sampler.set_state(state["sampler"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)

    def langevin(self, x: torch.Tensor) -> torch.Tensor:
        """x <- x - (eps / 2) grad E(x) + sqrt(eps) noise, ``n_langevin`` times."""
        for _ in range(self.n_langevin):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x).sum(), x)
            noise = torch.randn(x.shape, generator=self.sampler)
            x = x - 0.5 * self.step_size * grad + math.sqrt(self.step_size) * noise
        return x.detach()

    def training_step(self, batch, ctx):
        (x,) = batch
        self.chains.copy_(self.langevin(self.chains))  # the persistent chains move on
        energy_data, energy_model = self.energy(x).mean(), self.energy(self.chains).mean()
        loss = energy_data - energy_model
        ctx.optimize(loss)
        return {"loss": loss.detach(), "energy_data": energy_data.detach(), "energy_model": energy_model.detach()}


def _new_energy() -> EnergyModel:
    torch.manual_seed(3)
    return EnergyModel()


@pytest.mark.parametrize("stop_step", [11, 17])
def test_energy_model_with_persistent_chains_resumes_bitwise(tmp_path, stop_step):
    reference = _new_energy()
    ref_history = _run(reference, _loaders()[:1], checkpoint_path=tmp_path / "ref.pt")
    assert not torch.equal(reference.chains, torch.zeros_like(reference.chains))  # the chains did move

    model, loaders, path = _new_energy(), _loaders()[:1], tmp_path / "run.pt"
    with pytest.raises(Stop):
        _run(model, loaders, checkpoint_path=path, callback=stop_at(stop_step))
    history = _run(model, loaders, checkpoint_path=path)
    assert comparable(history) == comparable(ref_history)
    assert_equal(model.state_dict(), reference.state_dict(), "state")  # mu, log_sigma, chains, sampler
    assert torch.equal(model.sampler.get_state(), reference.sampler.get_state())
    assert_equal(load_checkpoint(path)["optimizers"], load_checkpoint(tmp_path / "ref.pt")["optimizers"])


def test_energy_model_resume_depends_on_its_carried_sampler_state(tmp_path):
    """Guards the test above: without restoring the sampler's generator the run would differ."""
    reference = _new_energy()
    _run(reference, _loaders()[:1])
    other = _new_energy()
    other.sampler.manual_seed(6)
    _run(other, _loaders()[:1])
    assert not torch.equal(reference.chains, other.chains)


def test_energy_model_learns_the_data_mean():
    model = _new_energy()
    _run(model, _loaders()[:1], epochs=6)
    assert torch.allclose(model.mu, _points(64, 0).mean(0), atol=0.6)


# ----------------------------------------------------------------------------- several logged terms


class TinyVAE(nn.Module):
    """A linear Gaussian VAE on 2-D points: loss = recon + kl, each logged and evaluated."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(2, 2)  # -> (mu, log_var) of a 1-D latent
        self.decoder = nn.Linear(1, 2)

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, log_var = self.encoder(x).unbind(-1)  # (B, 2) -> (B,), (B,)
        z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
        recon = ((self.decoder(z[:, None]) - x) ** 2).sum(-1).mean()
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).mean()
        return {"loss": recon + kl, "recon": recon, "kl": kl}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)

    def training_step(self, batch, ctx):
        with ctx.autocast():
            terms = self.terms(batch[0])
        ctx.optimize(terms["loss"])
        return {k: v.detach() for k, v in terms.items()}

    def evaluate(self, loader):
        return {k: v.item() for k, v in self.terms(next(iter(loader))[0]).items()}


def _new_vae() -> TinyVAE:
    torch.manual_seed(11)
    return TinyVAE()


def test_history_holds_every_logged_term_per_step_per_epoch_and_per_evaluation():
    history = _run(_new_vae(), _loaders(n_train=60), epochs=2)  # batches of 8: 7 full, then 4
    assert list(history.step_values) == ["loss", "recon", "kl"]
    assert history.step_sizes == ([8] * 7 + [4]) * 2
    for q in ("loss", "recon", "kl"):
        values = history.step_values[q]
        assert len(values) == 16 and history.step_numbers[q] == list(range(1, 17))
        expected = sum(v * s for v, s in zip(values[:8], history.step_sizes[:8], strict=True)) / 60
        assert history.epoch_means[q][0] == pytest.approx(expected, rel=1e-12)
        assert len(history.epoch_means[q]) == 2 and len(history.eval_values[q]) == 3
    for step in range(16):  # each step's terms add up
        total = history.step_values["recon"][step] + history.step_values["kl"][step]
        assert history.step_values["loss"][step] == pytest.approx(total, rel=1e-5)
    assert TrainHistory.from_dict(history.to_dict()) == history
    assert "recon" in history.summary() and "TinyVAE" in repr(history)


def test_training_curves_draw_one_panel_per_term_with_steps_epoch_means_and_evaluations():
    history = _run(_new_vae(), _loaders(), epochs=2)
    fig = plot_training_curves(history)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "recon", "kl"]
    for q, ax in zip(["loss", "recon", "kl"], fig.axes, strict=True):
        steps, means, evals = ax.lines
        assert list(steps.get_ydata()) == history.step_values[q]
        assert list(means.get_ydata()) == history.epoch_means[q]
        assert list(evals.get_xdata()) == [0, 1, 2] and list(evals.get_ydata()) == history.eval_values[q]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["TinyVAE train", "TinyVAE eval"]
    one = plot_training_curves(history.to_dict(), quantities=["kl"])
    assert [ax.get_title() for ax in one.axes] == ["kl"]


def test_training_curves_place_a_sparse_quantity_at_its_own_steps():
    history = _run(_new_gan(), _loaders(), epochs=2)
    fig = plot_training_curves([history, history], labels=["a", "b"], quantities=["generator_loss", "fake_score"])
    gen_ax, score_ax = fig.axes
    steps = gen_ax.lines[0]
    assert list(steps.get_xdata()) == pytest.approx([5 / 8, 10 / 8, 15 / 8])  # global steps 5, 10, 15 of 8 per epoch
    assert len(gen_ax.lines) == 4 and len(score_ax.lines) == 2  # steps + means per run; evaluations only
    with pytest.raises(ValueError, match="no quantity named 'fid'"):
        plot_training_curves(history, quantities=["fid"])
    with pytest.raises(ValueError, match="unit='bpd'"):
        plot_training_curves(history, unit="bpd")


# ----------------------------------------------------------------------------- options


def test_reduce_lr_on_plateau_watches_the_named_quantity():
    class Plateau(TinyVAE):
        def configure_optimizers(self):
            self.opt = torch.optim.SGD(self.parameters(), lr=0.1)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5, patience=0)
            return self.opt, {"scheduler": sched, "monitor": "score"}

        def training_step(self, batch, ctx):
            return {**super().training_step(batch, ctx), "lr": self.opt.param_groups[0]["lr"]}

        def evaluate(self, loader):
            return {"score": 1.0}  # never improves after the first epoch

    task, lrs = Plateau(), []
    _run(task, _loaders(), epochs=4, callback=lambda r: lrs.append(r.logged["lr"].item()))
    # epoch 1 sets the best score; epochs 2 and 3 do not improve on it: halved after each
    assert lrs[::8] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_bf16_autocast_and_compile_options_train():
    history = _run(_new_vae(), _loaders(), epochs=2, amp=True)
    assert all(math.isfinite(v) for v in history.step_values["loss"])
    eager = _run(_new_vae(), _loaders(), epochs=1)
    compiled = _run(_new_vae(), _loaders(), epochs=1, compile={"backend": "eager"})
    assert compiled.step_values["loss"] == pytest.approx(eager.step_values["loss"], rel=1e-6)


def test_progress_bar_shows_the_logged_quantities_and_the_evaluation(capsys, monkeypatch):
    monkeypatch.setenv(STATIC_WIDGETS_ENV, "1")
    _run(_new_vae(), _loaders(), epochs=1, progress=True, desc="vae")
    err = capsys.readouterr().err
    assert "vae epoch 1/1" in err
    assert all(f"{q}=" in err for q in ("recon", "kl", "eval_loss", "eval_kl"))


def test_callback_sees_every_step_with_its_logged_tensors():
    results = []
    _run(_new_gan(), _loaders(), epochs=1, callback=results.append)
    assert [r.global_step for r in results] == list(range(1, 9))
    assert set(results[4].logged) == {"critic_loss", "generator_loss"} and set(results[3].logged) == {"critic_loss"}


# ----------------------------------------------------------------------------- wrong use, named


class _Task(nn.Module):
    """A one-parameter task whose parts the tests below replace."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def training_step(self, batch, ctx):
        loss = (batch[0] * self.w).sum(-1).pow(2).mean()
        ctx.optimize(loss)
        return {"loss": loss.detach()}


def _task(**methods) -> _Task:
    task = _Task()
    for name, fn in methods.items():
        setattr(task, name, fn.__get__(task))
    return task


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": -1}, "epochs must be a non-negative int, got -1"),
        ({"log_every": 0}, "log_every must be a positive int, got 0"),
        ({"max_steps_per_epoch": 0}, "max_steps_per_epoch must be a positive int or None, got 0"),
        ({"grad_clip": -1.0}, "grad_clip must be positive.*-1.0"),
        ({"grad_clip": {"critic": 1.0}}, "grad_clip names the optimizer 'critic'.*'optimizer'"),
        ({"seed": "0"}, "seed must be an int or None, got '0'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(_task(), _loaders(), **kwargs)


def test_wrong_tasks_are_named():
    with pytest.raises(TypeError, match="Linear has no configure_optimizers"):
        _run(nn.Linear(2, 2), _loaders())
    with pytest.raises(TypeError, match="_Task has no evaluate method.*eval_loader"):
        _run(_task(), _loaders())
    loaders = (_loaders()[0], None)
    with pytest.raises(TypeError, match="must return a dict"):
        _run(_task(training_step=lambda self, batch, ctx: 1.0), loaders)
    with pytest.raises(ValueError, match=r"logged 'loss' as \(8,\)"):
        _run(_task(training_step=lambda self, batch, ctx: {"loss": batch[0].sum(-1)}), loaders)
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        _run(_task(training_step=lambda self, batch, ctx: ctx.optimize(batch[0].sum())), loaders)
    with pytest.raises(ValueError, match="yielded no batches in epoch 1"):
        _run(_task(), ([], None))


def test_any_object_with_the_methods_is_a_task_and_a_checkpoint_needs_its_state(tmp_path):
    class Plain:
        def __init__(self):
            self.w = nn.Parameter(torch.ones(2))

        def configure_optimizers(self):
            return torch.optim.SGD([self.w], lr=0.1)

        def training_step(self, batch, ctx):
            loss = (batch[0] @ self.w).pow(2).mean()
            ctx.optimize(loss)
            return {"loss": loss.detach()}

    task = Plain()
    history = _run(task, (_loaders()[0], None), epochs=2)
    assert history.task_name == "Plain" and history.n_params == 2
    assert history.epoch_means["loss"][1] < history.epoch_means["loss"][0]
    with pytest.raises(TypeError, match="Plain has no state_dict method"):
        _run(Plain(), (_loaders()[0], None), checkpoint_path=tmp_path / "plain.pt")


def test_wrong_optimizer_configurations_are_named():
    loaders = (_loaders()[0], None)
    both = _task(configure_optimizers=lambda self: {"a": torch.optim.SGD([self.w]), "b": torch.optim.SGD([self.w])})
    with pytest.raises(ValueError, match="in both optimizers 'a' and 'b'"):
        _run(both, loaders)
    foreign = _task(configure_optimizers=lambda self: torch.optim.SGD([nn.Parameter(torch.ones(1))], 0.1))
    with pytest.raises(ValueError, match="not parameters of _Task"):
        _run(foreign, loaders)

    def two(self):
        self.v = nn.Parameter(torch.ones(2))
        return {"a": torch.optim.SGD([self.w], 0.1), "b": torch.optim.SGD([self.v], 0.1)}

    with pytest.raises(ValueError, match="optimizers 'a', 'b': name one"):
        _run(_task(configure_optimizers=two), loaders)

    def unknown(self, batch, ctx):
        ctx.optimize((self.w**2).sum(), "c")

    with pytest.raises(ValueError, match="no optimizer named 'c'"):
        _run(_task(configure_optimizers=two, training_step=unknown), loaders)

    def keyed_wrong(self):
        opt = torch.optim.SGD([self.w], 0.1)
        return {"a": opt}, {"b": torch.optim.lr_scheduler.StepLR(opt, 1)}

    with pytest.raises(ValueError, match="scheduler is keyed 'b'.*'a'"):
        _run(_task(configure_optimizers=keyed_wrong), loaders)

    def plateau_blind(self):
        opt = torch.optim.SGD([self.w], 0.1)
        return opt, torch.optim.lr_scheduler.ReduceLROnPlateau(opt)

    with pytest.raises(ValueError, match="ReduceLROnPlateau.*monitor"):
        _run(_task(configure_optimizers=plateau_blind), loaders)


# ----------------------------------------------------------------------------- no host sync per step on CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_inner_loop_never_waits_for_the_gpu():
    """A CUDA call that waits for the GPU is an error from the start of each training step to
    the callback after it: the step, ctx.optimize, clipping, schedulers and the loop's own
    bookkeeping (only log points read values, after the callback)."""

    class OnGPU(TinyGAN):
        def sample(self, n):
            return self.generator(torch.randn(n, 2, device="cuda"))

        def training_step(self, batch, ctx):
            torch.cuda.set_sync_debug_mode("error")
            return super().training_step(batch, ctx)

    data = TensorDataset(_points(64, 0).cuda())  # already on the device: no copies of the batches
    loader = DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(7)
    task = OnGPU().cuda()
    try:
        history = train(
            task,
            loader,
            epochs=2,
            device="cuda",
            progress=False,
            log_every=4,
            grad_clip=1.0,
            callback=lambda result: torch.cuda.set_sync_debug_mode(0),
        )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert history.steps_per_epoch == [8, 8] and history.step_numbers["generator_loss"] == [5, 10, 15]
