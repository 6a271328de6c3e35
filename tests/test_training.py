"""The training loop: what it measures, and exact checkpoint/resume, on tiny models and random data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.metrics import nats_to_bits_per_dim
from course_lib.runtime import STATIC_WIDGETS_ENV
from course_lib.training import (
    CheckpointMismatchError,
    History,
    NonFiniteLossError,
    StepInfo,
    evaluate,
    fit,
    load_checkpoint,
    loop,
)
from course_lib.training.nonfinite import NonFiniteMonitor

D = 6  # dimensions per example


class FactorisedBernoulli(nn.Module):
    """p(x) = prod_d Bernoulli(x_d; sigmoid(logit_d)): exact NLL in closed form."""

    def __init__(self, n_dims: int = D):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_dims))

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        # (B, D) -> (B,)
        return F.binary_cross_entropy_with_logits(self.logits.expand_as(x), x, reduction="none").sum(-1)


class DropoutAutoregressive(nn.Module):
    """One masked linear layer on dropped-out inputs: p(x_d | x_<d), so training consumes random numbers."""

    def __init__(self, n_dims: int = D, p: float = 0.3):
        super().__init__()
        self.linear = nn.Linear(n_dims, n_dims)
        self.drop = nn.Dropout(p)
        self.register_buffer("mask", torch.tril(torch.ones(n_dims, n_dims), diagonal=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, D) -> (B, D) logits of x_d given x_<d
        return F.linear(self.drop(x), self.linear.weight * self.mask, self.linear.bias)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(-1)


def _data(n: int = 60, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    probs = torch.linspace(0.1, 0.9, D)
    return torch.bernoulli(probs.expand(n, D), generator=g)


def _loaders(batch_size: int = 8, generator: bool = True, labels: bool = False):
    x_train, x_test = _data(60, 0), _data(20, 1)
    train = TensorDataset(x_train, torch.zeros(len(x_train))) if labels else TensorDataset(x_train)
    gen = torch.Generator().manual_seed(123) if generator else None
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen)
    test_loader = DataLoader(TensorDataset(x_test), batch_size=batch_size)
    return train_loader, test_loader


def _new_model(cls=DropoutAutoregressive) -> nn.Module:
    torch.manual_seed(7)
    return cls()


def _fit(model, loaders, **kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("n_dims", D)
    kw.setdefault("device", "cpu")
    kw.setdefault("progress", False)
    kw.setdefault("lr", 0.05)
    return fit(model, *loaders, **kw)


def _comparable(history: History) -> dict:
    """The history without its wall-clock times."""
    data = history.to_dict()
    for key in ("epoch_seconds", "eval_seconds", "device"):
        data.pop(key)
    return data


def _assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), f"{name} differs"


class _Stop(RuntimeError):
    pass


def _stop_at(global_step: int, exc: type[BaseException] = _Stop):
    def callback(info: StepInfo) -> None:
        if info.global_step == global_step:
            raise exc(f"stopped at {global_step}")

    return callback


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_is_the_example_weighted_mean_nll_with_uneven_batches():
    model = FactorisedBernoulli()
    with torch.no_grad():
        model.logits.copy_(torch.linspace(-1, 1, D))
    x = _data(23)
    expected = model.nll(x).mean().item()
    loader = DataLoader(TensorDataset(x), batch_size=5)  # batches 5,5,5,5,3
    assert evaluate(model, loader) == pytest.approx(expected, rel=1e-6)
    # a plain tensor batch (no tuple) works too
    assert evaluate(model, DataLoader(x, batch_size=7)) == pytest.approx(expected, rel=1e-6)


def test_evaluate_matches_the_closed_form_bernoulli_nll():
    model = FactorisedBernoulli()  # logits 0: every pixel has probability 1/2
    loader = DataLoader(TensorDataset(_data(10)), batch_size=4)
    assert evaluate(model, loader) == pytest.approx(D * math.log(2), rel=1e-6)


def test_evaluate_uses_eval_mode_without_gradients_and_restores_train_mode():
    model = DropoutAutoregressive(p=0.9)
    model.train()
    seen = []

    def loss_fn(m, batch):
        seen.append((m.training, torch.is_grad_enabled()))
        return m.nll(batch[0])

    loader = DataLoader(TensorDataset(_data(12)), batch_size=6)
    first = evaluate(model, loader, loss_fn=loss_fn)
    second = evaluate(model, loader, loss_fn=loss_fn)
    assert seen == [(False, False)] * 4
    assert model.training
    assert first == second  # dropout off: deterministic


def test_evaluate_rejects_an_empty_loader_and_a_batch_averaged_loss():
    model = FactorisedBernoulli()
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [])
    loader = DataLoader(TensorDataset(_data(8)), batch_size=4)
    with pytest.raises(ValueError, match=r"shape \(B,\).*got shape \(\)"):
        evaluate(model, loader, loss_fn=lambda m, b: m.nll(b[0]).mean())


def test_default_loss_names_a_model_without_nll():
    with pytest.raises(TypeError, match="Linear has no nll"):
        evaluate(nn.Linear(D, 1), DataLoader(TensorDataset(_data(4)), batch_size=4))


# ----------------------------------------------------------------------------- what fit measures


def test_fit_history_measures_test_nll_before_training_and_after_every_epoch():
    loaders = _loaders()
    model = _new_model(FactorisedBernoulli)
    initial = evaluate(model, loaders[1])
    history = _fit(model, loaders, epochs=3)
    assert len(history.train_nats) == 3
    assert len(history.test_nats) == 4
    assert history.test_nats[0] == pytest.approx(initial)
    assert history.test_nats[0] == pytest.approx(D * math.log(2))  # logits 0 before the first step
    assert history.test_nats[-1] == pytest.approx(evaluate(model, loaders[1]))
    assert history.test_nats[-1] < history.test_nats[0]  # it learned something
    assert history.steps_per_epoch == [8, 8, 8]  # 60 examples in batches of 8
    assert len(history.step_losses) == 24
    assert history.n_params == D
    assert history.model_name == "FactorisedBernoulli"


def test_fit_train_nats_is_the_example_weighted_mean_of_step_losses():
    history = _fit(_new_model(), _loaders(), epochs=2)
    sizes = history.step_sizes[:8]
    assert sizes == [8] * 7 + [4]
    expected = sum(v * s for v, s in zip(history.step_losses[:8], sizes, strict=True)) / 60
    assert history.train_nats[0] == pytest.approx(expected, rel=1e-12)


def test_fit_reports_bits_per_dim_with_the_metrics_conversion():
    history = _fit(_new_model(), _loaders(), epochs=2)
    assert history.train_bpd == pytest.approx([nats_to_bits_per_dim(v, D) for v in history.train_nats])
    assert history.test_bpd[0] == pytest.approx(history.test_nats[0] / (D * math.log(2)))
    data = history.to_dict()
    assert data["test_bpd"] == history.test_bpd
    assert data["best_test_nats"] == min(history.test_nats)
    assert History.from_dict(data) == history
    summary = history.summary()
    assert "DropoutAutoregressive" in summary and "bits/dim" in summary
    assert f"{history.test_nats[-1]:.2f} nats" in summary


def test_fit_with_zero_epochs_only_measures_the_initial_test_nll():
    model = _new_model()
    before = [p.clone() for p in model.parameters()]
    history = _fit(model, _loaders(), epochs=0)
    assert history.train_nats == [] and len(history.test_nats) == 1
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def test_fit_max_steps_per_epoch_cuts_epochs_short():
    history = _fit(_new_model(), _loaders(), epochs=2, max_steps_per_epoch=3)
    assert history.steps_per_epoch == [3, 3]
    assert len(history.step_losses) == 6


def test_fit_passes_tuple_batches_and_a_custom_loss():
    calls = []

    def loss_fn(model, batch):
        calls.append((model.training, len(batch)))
        return model.nll(batch[0])

    history = _fit(_new_model(), _loaders(labels=True), epochs=1, loss_fn=loss_fn)
    # the test set (x,) before and after the epoch, in 3 batches of <= 8; the 8 training batches are (x, y)
    assert calls == [(False, 1)] * 3 + [(True, 2)] * 8 + [(False, 1)] * 3
    assert history.epochs == 1


def test_fit_keeps_a_float64_model_in_float64():
    model = _new_model(FactorisedBernoulli).double()
    dtypes = []
    train, test = _loaders()
    to64 = [DataLoader(TensorDataset(loader.dataset.tensors[0].double()), batch_size=8) for loader in (train, test)]
    history = _fit(model, to64, epochs=1, callback=lambda info: dtypes.append(info.loss.dtype))
    assert set(dtypes) == {torch.float64} and model.logits.dtype == torch.float64
    assert history.test_nats[-1] == evaluate(model, to64[1])


def test_fit_rejects_a_loss_fn_that_averages_over_the_batch():
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        _fit(_new_model(), _loaders(), loss_fn=lambda m, b: m.nll(b[0]).mean())


def test_fit_rejects_bad_arguments_with_their_values():
    with pytest.raises(ValueError, match="n_dims must be a positive int.*0"):
        _fit(_new_model(), _loaders(), n_dims=0)
    with pytest.raises(ValueError, match="epochs.*-1"):
        _fit(_new_model(), _loaders(), epochs=-1)


def test_fit_clips_the_gradient_norm():
    norms = []

    def callback(info):
        grads = [p.grad for p in info_model.parameters()]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

    info_model = _new_model()
    _fit(info_model, _loaders(), epochs=1, lr=1.0, grad_clip=0.01, callback=callback)
    assert len(norms) == 8
    assert max(norms) <= 0.01 * (1 + 1e-5)


def test_fit_steps_a_scheduler_per_epoch_or_per_step():
    model = _new_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _fit(model, _loaders(), epochs=2, optimizer=opt, scheduler=sched)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)

    # per step: the default Adam's learning rate after each of the 8 steps of one epoch
    lrs, box = [], {}
    model = _new_model()

    def make(o):
        box["opt"] = o
        return torch.optim.lr_scheduler.StepLR(o, 1, 0.9)

    _fit(
        model,
        _loaders(),
        epochs=1,
        lr=0.1,
        scheduler=make,
        scheduler_interval="step",
        callback=lambda info: lrs.append(box["opt"].param_groups[0]["lr"]),
    )
    assert lrs == pytest.approx([0.1 * 0.9**k for k in range(1, 9)])


def test_fit_steps_reduce_lr_on_plateau_with_the_test_nll_else_the_train_nll():
    class Recording(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics, *args, **kwargs):
            seen.append(metrics)
            super().step(metrics, *args, **kwargs)

    seen = []
    history = _fit(_new_model(), _loaders(), epochs=2, scheduler=Recording)
    assert seen == history.test_nats[1:]
    seen = []
    history = _fit(_new_model(), (_loaders()[0], None), epochs=2, scheduler=Recording)
    assert seen == history.train_nats and history.test_nats == []


def test_fit_rejects_a_scheduler_of_another_optimizer():
    model = _new_model()
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        _fit(model, _loaders(), scheduler=torch.optim.lr_scheduler.StepLR(other, 1))


def test_fit_with_bf16_autocast_on_cpu_trains():
    history = _fit(_new_model(), _loaders(), epochs=2, amp=True)
    assert all(math.isfinite(v) for v in history.step_losses)
    assert history.test_nats[-1] < history.test_nats[0]


def test_fit_with_compile_gives_the_same_run_as_eager():
    eager_model, compiled_model = _new_model(FactorisedBernoulli), _new_model(FactorisedBernoulli)
    eager = _fit(eager_model, _loaders(), epochs=1)
    compiled = _fit(compiled_model, _loaders(), epochs=1, compile={"backend": "eager"})
    assert compiled.step_losses == pytest.approx(eager.step_losses, rel=1e-6)
    assert torch.allclose(eager_model.logits, compiled_model.logits, rtol=1e-6)


def test_fit_progress_bar_shows_epoch_and_nlls(capsys, monkeypatch):
    monkeypatch.setenv(STATIC_WIDGETS_ENV, "1")
    _fit(_new_model(), _loaders(), epochs=2, progress=True, desc="tiny")
    err = capsys.readouterr().err
    assert "tiny epoch 2/2" in err and "train_nats" in err and "test_nats" in err
    _fit(_new_model(), _loaders(), epochs=1, progress=False)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- checkpoint and resume


def test_resume_test_is_sensitive_to_the_random_streams():
    """Guards the exact-resume tests below: shuffling and dropout do change the result."""
    a, b, c = _new_model(), _new_model(), _new_model()
    ha = _fit(a, _loaders(), seed=0)
    hb = _fit(b, _loaders(), seed=1)
    hc = _fit(c, _loaders(), seed=0)
    assert ha.step_losses != hb.step_losses
    assert not torch.equal(a.linear.weight, b.linear.weight)
    assert _comparable(ha) == _comparable(hc)
    _assert_same_parameters(a, c)


@pytest.mark.parametrize(
    ("stop_step", "generator", "exc"),
    [
        (11, True, _Stop),  # mid-epoch 2 (8 steps per epoch)
        (3, True, _Stop),  # inside epoch 1: resumes from the epoch-0 checkpoint
        (11, False, _Stop),  # shuffling from torch's global stream
        (17, True, KeyboardInterrupt),  # first step of epoch 3
    ],
)
def test_interrupted_and_resumed_run_equals_an_uninterrupted_run_bitwise(tmp_path, stop_step, generator, exc):
    reference = _new_model()
    ref_history = _fit(reference, _loaders(generator=generator), checkpoint_path=tmp_path / "ref.pt")

    model = _new_model()
    loaders = _loaders(generator=generator)
    path = tmp_path / "run.pt"
    with pytest.raises(exc) as info:
        _fit(model, loaders, checkpoint_path=path, callback=_stop_at(stop_step, exc))
    expected_epoch = (stop_step - 1) // 8
    assert load_checkpoint(path)["epoch"] == expected_epoch
    assert any(f"holds epoch {expected_epoch}" in note for note in getattr(info.value, "__notes__", []))
    # the same model object (trained part-way in memory) and the same loaders (generators advanced)
    history = _fit(model, loaders, checkpoint_path=path)
    assert _comparable(history) == _comparable(ref_history)
    _assert_same_parameters(model, reference)


def test_resume_after_a_scheduler_and_sgd_momentum_is_exact(tmp_path):
    def run(callback=None, model=None):
        model = model or _new_model()
        return model, _fit(
            model,
            loaders,
            epochs=3,
            optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.7),
            checkpoint_path=tmp_path / "s.pt",
            callback=callback,
        )

    loaders = _loaders()
    with pytest.raises(_Stop):
        run(_stop_at(13))
    model, history = run()
    (tmp_path / "s.pt").unlink()
    ref_model, ref_history = run()
    assert _comparable(history) == _comparable(ref_history)
    _assert_same_parameters(model, ref_model)


def test_fit_on_a_finished_checkpoint_returns_its_history_without_training(tmp_path):
    path = tmp_path / "done.pt"
    model = _new_model()
    history = _fit(model, _loaders(), checkpoint_path=path)
    again_model = _new_model()  # freshly initialised: the checkpoint's parameters are loaded
    steps = []
    again = _fit(again_model, _loaders(), checkpoint_path=path, callback=steps.append)
    assert steps == []
    assert _comparable(again) == _comparable(history)
    _assert_same_parameters(again_model, model)


def test_fit_extends_a_checkpoint_to_more_epochs_like_a_longer_run(tmp_path):
    ref = _new_model()
    ref_history = _fit(ref, _loaders(), epochs=3)
    model, path = _new_model(), tmp_path / "ext.pt"
    _fit(model, _loaders(), epochs=2, checkpoint_path=path)
    history = _fit(model, _loaders(), epochs=3, checkpoint_path=path)
    assert _comparable(history) == _comparable(ref_history)
    _assert_same_parameters(model, ref)
    with pytest.raises(CheckpointMismatchError, match="3 completed epochs, more than epochs=2"):
        _fit(model, _loaders(), epochs=2, checkpoint_path=path)


def test_checkpoint_of_another_model_is_refused_naming_the_mismatch(tmp_path):
    path = tmp_path / "m.pt"
    _fit(_new_model(), _loaders(), epochs=1, checkpoint_path=path)
    with pytest.raises(CheckpointMismatchError, match="DropoutAutoregressive, not this FactorisedBernoulli.*logits"):
        _fit(FactorisedBernoulli(), _loaders(), checkpoint_path=path)
    wrong_shape = r"linear.weight has shape \(6, 6\) in the checkpoint but \(7, 7\)"
    with pytest.raises(CheckpointMismatchError, match=wrong_shape):
        fit(DropoutAutoregressive(n_dims=7), *_loaders(), epochs=1, n_dims=D, checkpoint_path=path, progress=False)
    with pytest.raises(CheckpointMismatchError, match="n_dims=6, not n_dims=5"):
        _fit(_new_model(), _loaders(), n_dims=5, checkpoint_path=path)


def test_checkpoint_is_written_atomically_without_leftovers(tmp_path):
    path = tmp_path / "sub" / "a.pt"
    _fit(_new_model(), _loaders(), epochs=1, checkpoint_path=path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.pt"]
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1 and ckpt["model_class"] == "DropoutAutoregressive"
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


# ----------------------------------------------------------------------------- NaN / inf


def _nan_at(global_step: int):
    """A loss that becomes NaN at one training step (counted over training calls only)."""
    count = {"n": 0}

    def loss_fn(model, batch):
        nll = model.nll(batch[0])
        if model.training:
            count["n"] += 1
            if count["n"] == global_step:
                return nll * float("nan")
        return nll

    return loss_fn


def test_nan_loss_raises_naming_epoch_step_and_value_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "nan.pt"
    model = _new_model()
    message = r"loss nan at epoch 2, step 3 of the epoch \(global step 11\)"
    with pytest.raises(NonFiniteLossError, match=message) as info:
        _fit(model, _loaders(), checkpoint_path=path, loss_fn=_nan_at(11))
    assert isinstance(info.value, FloatingPointError)
    assert (info.value.epoch, info.value.step, info.value.global_step) == (2, 3, 11)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # caught before the update
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1
    one_epoch = _new_model()
    _fit(one_epoch, _loaders(), epochs=1)
    for name, value in one_epoch.state_dict().items():
        assert torch.equal(ckpt["model"][name], value), name


def test_infinite_loss_is_reported_with_its_sign():
    def loss_fn(model, batch):
        return model.nll(batch[0]) - float("inf") if model.training else model.nll(batch[0])

    with pytest.raises(NonFiniteLossError, match="loss -inf at epoch 1, step 1"):
        _fit(_new_model(), _loaders(), loss_fn=loss_fn)


def test_deferred_nan_check_still_names_the_first_bad_step(monkeypatch):
    """The GPU path (checks at log points only), exercised on the CPU."""
    monkeypatch.setattr(loop, "_defer_nonfinite_checks", lambda device: True)
    seen = []
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3 of the epoch \(global step 11\)"):
        _fit(_new_model(), _loaders(), loss_fn=_nan_at(11), log_every=5, callback=lambda i: seen.append(i.global_step))
    assert max(seen) == 13  # found at the next log point, step 5 of epoch 2, after steps 11..13 ran


def test_deferred_monitor_keeps_the_first_of_several_bad_values():
    monitor = NonFiniteMonitor(deferred=True)
    values = [1.0, 2.0, float("inf"), float("nan"), 3.0]
    for k, v in enumerate(values, start=1):
        monitor.observe(torch.tensor(v), epoch=1 + (k > 2), step=k if k <= 2 else k - 2, global_step=k, quantity="loss")
    with pytest.raises(NonFiniteLossError, match=r"loss inf at epoch 2, step 1 of the epoch \(global step 3\)"):
        monitor.check()


def test_non_finite_gradient_norm_is_caught_when_clipping():
    def loss_fn(model, batch):
        nll = model.nll(batch[0])
        if model.training:  # finite value, infinite gradient
            return nll + 0.0 * torch.sqrt(model.linear.bias.abs() * 0).sum()
        return nll

    with pytest.raises(NonFiniteLossError, match="gradient norm (nan|inf) at epoch 1, step 1"):
        _fit(_new_model(), _loaders(), loss_fn=loss_fn, grad_clip=1.0)
