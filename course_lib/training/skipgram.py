"""Training skip-gram with negative sampling: :class:`SkipGramTask`, a task for :func:`~course_lib.training.train`.

::

    data = skipgram_dataset(load_tiny_shakespeare(), min_count=5, window=2)
    model = SkipGram(vocab_size=len(data.vocab), dim=64)
    task = SkipGramTask(model, noise=noise_distribution(data.vocab.counts), n_negatives=5, lr=3e-3)
    history = train(task, make_loader(data.train, 1024, shuffle=True, generator=g),
                    make_loader(data.test, 4096), epochs=3)
    history.eval_values["test_auc"][-1]          # held-out real pairs ranked above their noise pairs

Batches are ``(centers, contexts)`` of real pairs. Each step draws ``n_negatives`` noise
contexts per pair from ``noise`` with the task's own ``torch.Generator`` (on the CPU; its state
is carried in the task's ``state_dict``, so a resumed run draws the same negatives) and takes an
Adam step on the mean negative-sampling loss (:meth:`SkipGram.loss`). ``evaluate`` measures, on
held-out pairs with negatives drawn from a generator seeded with ``eval_seed`` (the same ones
at every evaluation): ``test_loss``, the negative-sampling loss per pair in nats, and
``test_auc``, how often a real pair scores above a noise pair of the same center (the area under
the ROC curve of the real-vs-noise classifier, per center; a tie counts 1/2). The untrained
model, whose scores are all 0, gets a loss of ``(1 + K) log 2`` and an AUC of 1/2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.training.loop import StepContext, to_device

__all__ = ["SkipGramTask"]


class SkipGramTask(nn.Module):
    """Train a :class:`~course_lib.models.energy.skipgram.SkipGram` on (center, context) pairs with negative sampling.

    Args:
        model: a module with ``loss(center, context, negatives) -> (B,)`` and ``score(center, context) -> (B,)``.
        noise: (V,) the noise distribution of the negatives (e.g. ``noise_distribution(vocab.counts)``).
        n_negatives: K, noise pairs per real pair.
        lr: Adam's learning rate.
        generator_seed: seed of the generator that draws the training negatives.
        eval_seed: seed of the negatives of the held-out pairs (the same at every evaluation).
    """

    def __init__(self, model: nn.Module, *, noise: Tensor, n_negatives: int = 5, lr: float = 3e-3,
                 generator_seed: int = 0, eval_seed: int = 0) -> None:
        super().__init__()
        for method in ("loss", "score"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"SkipGramTask trains a model with loss(center, context, negatives) and "
                                f"score(center, context); {type(model).__name__} has no {method}")
        noise = torch.as_tensor(noise, dtype=torch.float64).cpu()
        if noise.dim() != 1 or not torch.isfinite(noise).all() or bool((noise < 0).any()):
            raise ValueError(f"noise must be a finite, non-negative vector (V,) of probabilities, got shape "
                             f"{tuple(noise.shape)}")
        if abs(float(noise.sum()) - 1.0) > 1e-6:
            raise ValueError(f"noise must sum to 1 (a distribution over the words), got {float(noise.sum()):.6g}")
        vocab_size = getattr(model, "vocab_size", None)
        if vocab_size is not None and noise.numel() != vocab_size:
            raise ValueError(f"noise has {noise.numel()} entries but the model has vocab_size={vocab_size}")
        if isinstance(n_negatives, bool) or not isinstance(n_negatives, int) or n_negatives < 1:
            raise ValueError(f"n_negatives must be a positive int, got {n_negatives!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.model = model
        self.name = type(model).__name__
        self.noise = noise  # configuration, not state: kept on the CPU, where the generator draws
        self.n_negatives, self.lr, self.eval_seed = n_negatives, float(lr), int(eval_seed)
        self.generator = torch.Generator().manual_seed(int(generator_seed))
        self.hparams = {"n_negatives": n_negatives}

    # the sampler's state travels with the task's state_dict, so that a resumed run draws the same negatives
    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def draw_negatives(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n x K`` noise context ids (n, K) drawn from ``noise`` (with the task's generator by default), CPU."""
        flat = torch.multinomial(self.noise, n * self.n_negatives, replacement=True,
                                 generator=self.generator if generator is None else generator)
        return flat.view(n, self.n_negatives)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.model.parameters())
        fused = params[0].device.type in ("cpu", "cuda", "mps")
        return torch.optim.Adam(params, lr=self.lr, fused=fused or None)

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, Tensor]:
        center, context = _pairs(batch)
        negatives = self.draw_negatives(len(center)).to(center.device, non_blocking=True)
        with ctx.autocast():
            loss = self.model.loss(center, context, negatives).mean()
        ctx.optimize(loss)
        return {"loss": loss.detach()}

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        device = next(self.model.parameters()).device
        generator = torch.Generator().manual_seed(self.eval_seed)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        wins = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for batch in loader:
            center, context = _pairs(to_device(batch, device))
            negatives = self.draw_negatives(len(center), generator).to(device)
            loss_sum += self.model.loss(center, context, negatives).double().sum()
            real = self.model.score(center, context)  # (B,)
            noise = self.model.score(center.repeat_interleave(self.n_negatives), negatives.reshape(-1))
            noise = noise.view(-1, self.n_negatives)  # (B, K)
            # the real pair against each of its noise pairs: a win counts 1, a tie 1/2
            wins += ((real[:, None] > noise).double() + 0.5 * (real[:, None] == noise).double()).sum()
            count += len(center)
        if count == 0:
            raise ValueError("evaluate got an empty loader: no held-out pairs")
        return {"test_loss": float(loss_sum) / count, "test_auc": float(wins) / (count * self.n_negatives)}


def _pairs(batch: Any) -> tuple[Tensor, Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError(f"a skip-gram batch is (centers, contexts), got {type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    return batch[0], batch[1]
