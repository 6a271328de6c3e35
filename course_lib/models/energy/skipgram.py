r"""Skip-gram with negative sampling (topic 03): word vectors from telling real pairs from noise pairs.

Mikolov et al. (2013) give each word :math:`w` two vectors, :math:`u_w` when it is the center and
:math:`v_w` when it is the context, and score a pair by :math:`s(c, o) = u_c \cdot v_o`. The
model is a binary classifier: a pair is *real* (it occurs in the text) with probability
:math:`\sigma(s(c, o))`. Each real pair is shown with :math:`K` *noise* pairs :math:`(c, n_k)`
whose context :math:`n_k` is drawn from a noise distribution :math:`q` (the unigram distribution
to the power 3/4), and the loss of the pair is the logistic loss of that classification,

.. math:: \ell(c, o, n_{1..K}) = -\log \sigma(u_c \cdot v_o) - \sum_{k=1}^K \log \sigma(-u_c \cdot v_{n_k}).

This is self-supervision by contrast with noise, a cousin of noise-contrastive estimation
(Gutmann & Hyvärinen 2010): NCE's classifier uses the logit :math:`s - \log(K q(o))` and then
learns a normalised model of :math:`p(o \mid c) \propto e^{s(c, o)}` (an energy model with energy
:math:`-s`); negative sampling drops the :math:`\log K q` term, which is simpler and gives good
vectors, but not a normalised model. At the optimum, with enough data,
:math:`u_c \cdot v_o = \log \frac{p(o \mid c)}{K q(o)}` (Levy & Goldberg 2014): a shifted pointwise
mutual information, so words that occur in the same contexts get similar vectors :math:`u`.

Conventions: word ids are int64; ``score`` gives logits (B,); ``loss`` the per-pair loss (B,) in
nats; similarities are cosines of the center vectors :math:`u`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SkipGram"]


class SkipGram(nn.Module):
    """Two embedding tables, center vectors ``u`` (``center``) and context vectors ``v`` (``context``).

    Args:
        vocab_size: number of words V.
        dim: vector dimension.

    Initialisation as in word2vec: ``u`` uniform in ``[-0.5/dim, 0.5/dim]``, ``v`` zero, so that
    every score starts at 0 (each pair is real with probability 1/2, the loss is ``(1 + K) log 2``).
    """

    def __init__(self, *, vocab_size: int, dim: int = 64) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.vocab_size, self.dim = vocab_size, dim
        self.center = nn.Embedding(vocab_size, dim)  # u_w
        self.context = nn.Embedding(vocab_size, dim)  # v_w
        with torch.no_grad():
            self.center.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.context.weight.zero_()

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, dim={self.dim}"

    def _check(self, ids: Tensor, name: str) -> Tensor:
        if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{name} must be an integer tensor of word ids, got "
                            f"{ids.dtype if isinstance(ids, Tensor) else type(ids).__name__}")
        # the range is checked on the CPU; on an accelerator the check would wait for the device at every
        # step, and the embedding's own device-side assertion catches a bad id there
        if ids.device.type == "cpu" and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"{name} holds word ids in [{int(ids.min())}, {int(ids.max())}], outside "
                             f"[0, {self.vocab_size})")
        return ids

    def score(self, center: Tensor, context: Tensor) -> Tensor:
        r"""The logits :math:`u_c \cdot v_o`, (B,), of pairs given as ids (B,) and (B,)."""
        center, context = self._check(center, "center"), self._check(context, "context")
        if center.shape != context.shape or center.dim() != 1:
            raise ValueError(f"center and context must be (B,) ids of the same length, got shapes "
                             f"{tuple(center.shape)} and {tuple(context.shape)}")
        return (self.center(center) * self.context(context)).sum(dim=-1)

    def loss(self, center: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
        r"""The negative-sampling loss of each real pair and its noise pairs: (B,) nats.

        Args:
            center, context: ids (B,) of the real pairs.
            negatives: ids (B, K) of the noise contexts of each center.

        Returns:
            :math:`-\log \sigma(u_c \cdot v_o) - \sum_k \log \sigma(-u_c \cdot v_{n_k})` per pair.
        """
        real = self.score(center, context)  # (B,)
        negatives = self._check(negatives, "negatives")
        if negatives.dim() != 2 or negatives.shape[0] != center.shape[0]:
            raise ValueError(f"negatives must be (B, K) = ({center.shape[0]}, K) ids, got shape "
                             f"{tuple(negatives.shape)}")
        u = self.center(center)  # (B, D)
        noise = torch.einsum("bd,bkd->bk", u, self.context(negatives))  # (B, K) logits of the noise pairs
        return F.softplus(-real) + F.softplus(noise).sum(dim=-1)  # -log sigma(s) = softplus(-s)

    @torch.no_grad()
    def nearest(self, word_ids: Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
        """The ``k`` words whose center vectors have the largest cosine with each word's, itself excluded.

        Returns ``(ids, cosines)``, each (len(word_ids), k), most similar first.
        """
        word_ids = self._check(torch.as_tensor(word_ids).reshape(-1), "word_ids").to(self.center.weight.device)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < self.vocab_size:
            raise ValueError(f"k must be an int in [1, {self.vocab_size - 1}], got {k!r}")
        vectors = F.normalize(self.center.weight, dim=-1)  # (V, D)
        cosines = vectors[word_ids] @ vectors.T  # (n, V)
        cosines[torch.arange(len(word_ids)), word_ids] = -float("inf")
        top = cosines.topk(k, dim=-1)
        return top.indices, top.values
