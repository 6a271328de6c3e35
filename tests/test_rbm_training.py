"""Training RBMs by CD-k and persistent CD through the course's loop.

A small RBM on 4x4 bars and stripes (30 binary images) is trained until its exact
log-likelihood, computed by enumerating its 8 hidden units, is far above where it started;
a PCD run interrupted and resumed from its checkpoint ends bitwise equal to an uninterrupted
one (the persistent chains and the sampler's generator are carried state).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from resume_checks import Stop, comparable, stop_at

from course_lib.data import make_loader
from course_lib.models import RBM
from course_lib.training import ContrastiveDivergenceTask, TrainHistory, load_checkpoint, train


def bars_and_stripes(n: int = 4) -> torch.Tensor:
    """The 2^(n+1) - 2 distinct n x n images whose rows (or columns) are each all on or all off, (N, n*n)."""
    images = []
    for bits in itertools.product([0.0, 1.0], repeat=n):
        line = torch.tensor(bits)
        images += [line[:, None].expand(n, n).reshape(-1), line[None, :].expand(n, n).reshape(-1)]
    return torch.unique(torch.stack(images), dim=0)


DATA = bars_and_stripes()


def _task(persistent: bool = False, *, lr: float = 0.2, seed: int = 0, **kw) -> ContrastiveDivergenceTask:
    torch.manual_seed(seed)
    rbm = RBM(n_visible=16, n_hidden=8, init_std=0.1)
    rbm.init_visible_bias(DATA)
    return ContrastiveDivergenceTask(rbm, persistent=persistent, n_chains=30, lr=lr, **kw)


def _loaders(repeat: int = 10):
    train_loader = make_loader(DATA.repeat(repeat, 1), batch_size=30, shuffle=True,
                               generator=torch.Generator().manual_seed(0))
    return train_loader, make_loader(DATA, batch_size=30)


def _run(task, epochs: int, **kw) -> TrainHistory:
    return train(task, *_loaders(), epochs=epochs, device="cpu", progress=False, **kw)


def test_bars_and_stripes_has_its_thirty_images():
    assert DATA.shape == (30, 16)
    assert DATA.sum(1).unique().tolist() == [0.0, 4.0, 8.0, 12.0, 16.0]


@pytest.mark.parametrize(("persistent", "lr", "gain"), [(False, 0.2, 4.0), (True, 0.1, 2.5)])
def test_contrastive_divergence_raises_the_exact_log_likelihood(persistent, lr, gain):
    """From -16 log 2 = -11.09 nats (independent fair pixels) towards -log 30 = -3.40 (the data's own distribution)."""
    task = _task(persistent, lr=lr)
    history = _run(task, epochs=60)
    ll = history.eval_values["log_likelihood"]
    assert ll[0] == pytest.approx(-11.09, abs=0.1)
    assert ll[-1] > ll[0] + gain, ll[::10]
    assert ll[-1] <= -math.log(30)  # no model beats the data's own distribution
    assert history.eval_values["pseudo_log_likelihood"][-1] > history.eval_values["pseudo_log_likelihood"][0]
    assert history.eval_values["reconstruction_error"][-1] < history.eval_values["reconstruction_error"][0]
    assert set(history.step_values) == {"free_energy_gap", "reconstruction_error"}
    assert history.step_numbers["reconstruction_error"][:3] == [1, 11, 21]  # every monitor_every = 10 steps


def test_evaluate_gives_per_image_measures_of_the_rbm():
    task = _task()
    values = task.evaluate(make_loader(DATA, batch_size=7))
    rbm = task.rbm
    log_z = rbm.exact_log_partition()
    with torch.no_grad():
        assert values["log_likelihood"] == pytest.approx(float(rbm.log_likelihood(DATA, log_z).mean()), abs=1e-5)
        assert values["reconstruction_error"] == pytest.approx(float(rbm.reconstruction_error(DATA).mean()), abs=1e-5)
        exact_pll = float(rbm.pseudo_log_likelihood(DATA).mean())
    assert values["pseudo_log_likelihood"] == pytest.approx(exact_pll, rel=0.5)  # one random unit per image
    assert task.evaluate(make_loader(DATA, batch_size=7)) == values  # the same units every time


def test_a_training_step_is_sgd_on_the_textbook_cd_statistics():
    """One CD-3 step on a fixed batch moves W by lr * (<v p(h|v)^T>_data - <v p(h|v)^T>_model), the negatives
    drawn by the task's own generator; the batch is left as it was."""
    task = _task(k=3, momentum=0.0)
    v = DATA[:10].clone()
    negatives = task.rbm.gibbs(v, 3, torch.Generator().manual_seed(task.generator_seed))  # what the task will draw
    ph_data, ph_model = task.rbm.hidden_probs(v).detach(), task.rbm.hidden_probs(negatives).detach()
    expected = task.rbm.weight.detach() + task.lr * (v.T @ ph_data - negatives.T @ ph_model) / 10
    expected_c = task.rbm.hidden_bias.detach() + task.lr * (ph_data - ph_model).mean(0)
    train(task, make_loader(v, batch_size=10), epochs=1, device="cpu", progress=False)
    torch.testing.assert_close(task.rbm.weight.detach(), expected)
    torch.testing.assert_close(task.rbm.hidden_bias.detach(), expected_c)
    assert torch.equal(v, DATA[:10])


@pytest.mark.parametrize("stop_step", [7, 23])
def test_pcd_interrupted_and_resumed_equals_an_uninterrupted_run_bitwise(tmp_path, stop_step):
    reference = _task(persistent=True, k=2, lr=0.1)
    ref_history = _run(reference, epochs=3, checkpoint_path=tmp_path / "ref.pt")
    task = _task(persistent=True, k=2, lr=0.1)
    with pytest.raises(Stop):
        _run(task, epochs=3, checkpoint_path=tmp_path / "run.pt", callback=stop_at(stop_step))
    task = _task(persistent=True, k=2, lr=0.1)  # a fresh process: nothing but the checkpoint carries over
    history = _run(task, epochs=3, checkpoint_path=tmp_path / "run.pt")
    assert comparable(history) == comparable(ref_history)
    for name, value in reference.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(task.state_dict()[name], value), name
    assert torch.equal(task.chains, reference.chains)
    cpu = torch.device("cpu")
    assert torch.equal(task.sampler(cpu).get_state(), reference.sampler(cpu).get_state())
    saved = load_checkpoint(tmp_path / "run.pt")["model"]
    assert "chains" in saved and saved["_extra_state"]["generator"] is not None


def test_pcd_runs_depend_on_the_sampler_seed_so_that_the_resume_test_can_fail():
    a, b = _task(persistent=True, k=2, lr=0.1), _task(persistent=True, k=2, lr=0.1, generator_seed=1)
    _run(a, epochs=1)
    _run(b, epochs=1)
    assert not torch.equal(a.chains, b.chains)
    assert not torch.equal(a.rbm.weight, b.rbm.weight)


def test_the_linear_schedule_decays_the_learning_rate_to_zero():
    task = _task(lr_schedule="linear", total_steps=20)
    optimizer, scheduled = task.configure_optimizers()
    assert scheduled["interval"] == "step"
    lrs = []
    for _ in range(20):
        optimizer.step()
        scheduled["scheduler"].step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.2 * 19 / 20) and lrs[-1] == pytest.approx(0.0)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]  # the weights' group, then the biases'
    decayed = _task(weight_decay=1e-4).configure_optimizers()
    assert [g["weight_decay"] for g in decayed.param_groups] == [1e-4, 0.0]  # no decay on the biases


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ValueError, "k .Gibbs steps per update. must be a positive int"),
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay must be a finite number >= 0"),
        ({"n_chains": 0}, ValueError, "n_chains must be a positive int"),
        ({"lr_schedule": "linear"}, ValueError, "needs total_steps"),
        ({"lr_schedule": "cosine"}, ValueError, "lr_schedule must be one of"),
        ({"persistent": 1}, TypeError, "persistent must be True or False"),
        ({"monitor_every": 0}, ValueError, "monitor_every must be a positive int"),
    ],
)
def test_bad_settings_are_named(kwargs, error, message):
    rbm = RBM(n_visible=16, n_hidden=8)
    with pytest.raises(error, match=message):
        ContrastiveDivergenceTask(rbm, **kwargs)


def test_a_non_binary_or_misshapen_batch_is_named():
    task = _task()
    grey = make_loader(torch.full((30, 16), 0.5), batch_size=30)
    with pytest.raises(ValueError, match="batch must hold binary visible states"):
        train(task, grey, epochs=1, device="cpu", progress=False)
    wide = make_loader(torch.zeros(30, 17), batch_size=30)
    with pytest.raises(ValueError, match=r"batch must have shape \(B, 16\)"):
        train(task, wide, epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="course_lib RBM"):
        ContrastiveDivergenceTask(torch.nn.Linear(2, 2))
