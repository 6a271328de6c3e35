"""Skip-gram with negative sampling: the loss by hand, its gradients, the negatives, training and resume."""

import math

import pytest
import torch

from course_lib.data import make_loader
from course_lib.data.words import noise_distribution, skipgram_pairs
from course_lib.models.energy.skipgram import SkipGram
from course_lib.training import train
from course_lib.training.skipgram import SkipGramTask


def _model_with(center_vectors, context_vectors) -> SkipGram:
    center_vectors = torch.tensor(center_vectors, dtype=torch.float32)
    model = SkipGram(vocab_size=center_vectors.shape[0], dim=center_vectors.shape[1])
    with torch.no_grad():
        model.center.weight.copy_(center_vectors)
        model.context.weight.copy_(torch.tensor(context_vectors, dtype=torch.float32))
    return model


def _sigmoid(s: float) -> float:
    return 1 / (1 + math.exp(-s))


def test_the_loss_against_a_hand_computation():
    model = _model_with([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], [[0.5, 0.5], [1.0, -1.0], [-2.0, 0.0]])
    center, context = torch.tensor([0, 2]), torch.tensor([1, 0])
    negatives = torch.tensor([[2, 0], [1, 1]])
    # pair 0: u_0 . v_1 = 1; noise u_0 . v_2 = -2, u_0 . v_0 = 0.5
    # pair 1: u_2 . v_0 = 1; noise u_2 . v_1 = 0 twice
    expected = [-math.log(_sigmoid(1.0)) - math.log(_sigmoid(2.0)) - math.log(_sigmoid(-0.5)),
                -math.log(_sigmoid(1.0)) - 2 * math.log(_sigmoid(0.0))]
    assert model.score(center, context).tolist() == [1.0, 1.0]
    assert torch.allclose(model.loss(center, context, negatives), torch.tensor(expected), atol=1e-6)


def test_an_untrained_model_scores_every_pair_0_and_its_loss_is_1_plus_k_log_2():
    model = SkipGram(vocab_size=30, dim=8)
    center, context = torch.randint(0, 30, (10,)), torch.randint(0, 30, (10,))
    negatives = torch.randint(0, 30, (10, 4))
    assert torch.equal(model.score(center, context), torch.zeros(10))
    assert torch.allclose(model.loss(center, context, negatives), torch.full((10,), 5 * math.log(2)))


def test_the_gradients_pull_the_real_pair_together_and_push_the_noise_pair_apart():
    """dl/dv_o = -sigma(-s) u_c and dl/dv_n = sigma(s_n) u_c: descent raises the real score, lowers the noise one."""
    g = torch.Generator().manual_seed(0)
    model = _model_with(torch.randn(5, 3, generator=g).tolist(), torch.randn(5, 3, generator=g).tolist())
    center, context, negatives = torch.tensor([0]), torch.tensor([1]), torch.tensor([[3]])
    with torch.no_grad():
        s_real, s_noise = float(model.score(center, context)), float(model.score(center, torch.tensor([3])))
    model.loss(center, context, negatives).sum().backward()
    u = model.center.weight[0].detach()
    grad_v = model.context.weight.grad
    assert torch.allclose(grad_v[1], -_sigmoid(-s_real) * u, atol=1e-6)
    assert torch.allclose(grad_v[3], _sigmoid(s_noise) * u, atol=1e-6)
    assert torch.count_nonzero(grad_v[[0, 2, 4]]) == 0
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
        assert float(model.score(center, context)) > s_real
        assert float(model.score(center, torch.tensor([3]))) < s_noise


def test_nearest_ranks_by_cosine_and_leaves_the_word_out():
    model = _model_with([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, -0.2]], [[0.0, 0.0]] * 4)
    ids, cosines = model.nearest(torch.tensor([0, 2]), k=2)
    assert ids.tolist() == [[1, 2], [1, 0]]
    assert cosines[0, 0] == pytest.approx(2 / math.hypot(2, 0.1), abs=1e-6)
    assert cosines[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_bad_ids_and_shapes_are_named():
    model = SkipGram(vocab_size=10, dim=4)
    with pytest.raises(ValueError, match=r"center holds word ids in \[0, 10\], outside \[0, 10\)"):
        model.score(torch.tensor([0, 10]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="same length"):
        model.score(torch.tensor([0, 1]), torch.tensor([1]))
    with pytest.raises(TypeError, match="integer tensor"):
        model.score(torch.tensor([0.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"negatives must be \(B, K\) = \(2, K\)"):
        model.loss(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="k must be an int"):
        model.nearest(torch.tensor([0]), k=10)


def test_negatives_follow_the_noise_distribution():
    noise = noise_distribution(torch.tensor([1000, 300, 100, 10, 0]))
    task = SkipGramTask(SkipGram(vocab_size=5, dim=2), noise=noise, n_negatives=4)
    negatives = task.draw_negatives(25_000)
    assert negatives.shape == (25_000, 4) and negatives.dtype == torch.int64
    frequencies = torch.bincount(negatives.reshape(-1), minlength=5).double() / negatives.numel()
    standard_error = (noise * (1 - noise) / negatives.numel()).sqrt()
    assert torch.all((frequencies - noise).abs() <= 4 * standard_error + 1e-12), (frequencies, noise)
    assert frequencies[4] == 0  # a word never seen is never a negative


def test_the_task_refuses_a_noise_that_is_not_a_distribution_over_the_vocabulary():
    model = SkipGram(vocab_size=5, dim=2)
    with pytest.raises(ValueError, match="sum to 1"):
        SkipGramTask(model, noise=torch.ones(5))
    with pytest.raises(ValueError, match="noise has 4 entries but the model has vocab_size=5"):
        SkipGramTask(model, noise=torch.ones(4) / 4)
    with pytest.raises(ValueError, match="n_negatives"):
        SkipGramTask(model, noise=torch.ones(5) / 5, n_negatives=0)


def _grouped_corpus(seed: int, n_words: int = 6000) -> torch.Tensor:
    """Words 0..19 in 4 groups of 5; the text stays in one group for 8 words, then jumps to another."""
    g = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, 4, (n_words // 8,), generator=g).repeat_interleave(8)
    return groups * 5 + torch.randint(0, 5, (len(groups),), generator=g)


def _task_and_loaders(seed: int = 0):
    train_ids, test_ids = _grouped_corpus(0), _grouped_corpus(1, 1200)
    model = SkipGram(vocab_size=20, dim=8)
    noise = noise_distribution(torch.bincount(train_ids, minlength=20))
    task = SkipGramTask(model, noise=noise, n_negatives=3, lr=0.02, generator_seed=seed)
    loader = make_loader(skipgram_pairs(train_ids, window=2), 256, shuffle=True,
                         generator=torch.Generator().manual_seed(0))
    return task, loader, make_loader(skipgram_pairs(test_ids, window=2), 1024)


def test_training_tells_real_pairs_from_noise_and_groups_the_words():
    torch.manual_seed(0)
    task, loader, test_loader = _task_and_loaders()
    history = train(task, loader, test_loader, epochs=2, progress=False, device="cpu")
    assert history.eval_values["test_auc"][0] == 0.5  # all scores 0: every comparison a tie
    assert history.eval_values["test_loss"][0] == pytest.approx(4 * math.log(2), abs=1e-6)
    # The best possible scorer says "same group": a real pair is in one group with probability
    # p = (7/8 + 1/32 + 6/8 + 2/32) / 2 = 0.859 (runs of 8, offsets 1 and 2), a noise pair with q = 1/4, so
    # AUC = p (1 - q) + (p q + (1 - p)(1 - q)) / 2 = 0.805 at best.
    assert history.eval_values["test_auc"][-1] > 0.78
    assert history.eval_values["test_loss"][-1] < 0.75 * 4 * math.log(2)
    ids, _ = task.model.nearest(torch.arange(20), k=3)
    same_group = (ids // 5 == torch.arange(20)[:, None] // 5).double().mean()
    assert float(same_group) > 0.9


def test_training_resumes_exactly_with_the_negatives_generator(tmp_path):
    torch.manual_seed(0)
    task, loader, test_loader = _task_and_loaders(seed=3)
    full = train(task, loader, test_loader, epochs=2, progress=False, device="cpu", max_steps_per_epoch=20)
    torch.manual_seed(0)
    task2, loader2, test_loader2 = _task_and_loaders(seed=3)
    path = tmp_path / "skipgram.pt"
    train(task2, loader2, test_loader2, epochs=1, progress=False, device="cpu", max_steps_per_epoch=20,
          checkpoint_path=path)
    task2.generator.manual_seed(12345)  # what a fresh process would hold: the checkpoint must restore it
    torch.manual_seed(99)
    task3, loader3, test_loader3 = _task_and_loaders(seed=77)
    resumed = train(task3, loader3, test_loader3, epochs=2, progress=False, device="cpu", max_steps_per_epoch=20,
                    checkpoint_path=path)
    assert resumed.eval_values["test_loss"] == full.eval_values["test_loss"]
    for a, b in zip(task.state_dict().values(), task3.state_dict().values(), strict=True):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)
