r"""Words for skip-gram (topic 03): tokens, a vocabulary, (center, context) pairs and the noise distribution.

Mikolov et al. (2013) learn word vectors by telling the (center, context) pairs that occur in a
text from pairs whose context word is drawn from a noise distribution. The data side:

``tokenize_words(text)``
    lowercase words (letters, with inner apostrophes: ``"thou'rt"``), punctuation dropped.
``WordVocab.from_tokens(tokens, min_count=5)``
    the words seen at least ``min_count`` times, numbered by decreasing count; rarer words are
    dropped from the token stream before the pairs are made (as word2vec does).
``subsample_frequent(ids, counts, threshold=1e-3)``
    Mikolov et al.'s subsampling: each occurrence of a word of frequency :math:`f` is dropped with
    probability :math:`1 - \sqrt{t / f}` (kept always when :math:`f \le t`), so that "the" and "and"
    stop dominating the pairs.
``skipgram_pairs(ids, window=2)``
    every (center, context) with the context at most ``window`` positions away, both directions.
``noise_distribution(counts, power=0.75)``
    the unigram distribution raised to the power 3/4 and renormalised, which draws rare words
    more often than their frequency: the negatives.
``skipgram_dataset(text, ...)``
    all of it on a text, with the text's last part held out for testing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SkipGramData",
    "WordVocab",
    "noise_distribution",
    "skipgram_dataset",
    "skipgram_pairs",
    "subsample_frequent",
    "tokenize_words",
]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def tokenize_words(text: str) -> list[str]:
    """The lowercase words of ``text``, in order: runs of letters with inner apostrophes ("o'er", "thou'rt").

    >>> tokenize_words("First Citizen: Before we proceed, hear me speak! 'Tis so.")
    ['first', 'citizen', 'before', 'we', 'proceed', 'hear', 'me', 'speak', 'tis', 'so']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize_words needs a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _check_ids(ids: Tensor, name: str = "ids") -> Tensor:
    ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must be a 1-D integer tensor of word ids, got {ids.dtype} of shape "
                         f"{tuple(ids.shape)}")
    return ids.long()


class WordVocab:
    """The words of a corpus seen at least ``min_count`` times, numbered 0..V-1 by decreasing count.

    Build it with :meth:`from_tokens`. ``words[i]`` is word ``i``; ``counts[i]`` (int64 (V,)) its
    number of occurrences in the tokens it was built from; ``vocab["king"]`` its id.
    """

    def __init__(self, words: Sequence[str], counts: Sequence[int], *, min_count: int = 1) -> None:
        if len(words) == 0 or len(words) != len(counts):
            raise ValueError(f"need as many counts as words, at least one: got {len(words)} words and "
                             f"{len(counts)} counts")
        if len(set(words)) != len(words):
            raise ValueError("the words of a vocabulary must be distinct")
        self.words: tuple[str, ...] = tuple(words)
        self.counts: Tensor = torch.as_tensor(list(counts), dtype=torch.int64)
        if bool((self.counts < 1).any()):
            raise ValueError(f"every word's count must be >= 1, got a minimum of {int(self.counts.min())}")
        self.min_count = int(min_count)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], *, min_count: int = 5) -> WordVocab:
        """The words of ``tokens`` seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        if isinstance(tokens, str):
            raise TypeError("from_tokens needs a sequence of words (e.g. tokenize_words(text)), got one str")
        counts = Counter(tokens)
        if not counts:
            raise ValueError("no tokens: cannot build a vocabulary from an empty text")
        kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if not kept:
            raise ValueError(f"no word occurs min_count={min_count} times or more (the most frequent, "
                             f"{counts.most_common(1)[0][0]!r}, occurs {counts.most_common(1)[0][1]} times)")
        return cls([w for w, _ in kept], [c for _, c in kept], min_count=min_count)

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words with count >= {self.min_count}, {int(self.counts.sum())} tokens)"

    def __contains__(self, word: object) -> bool:
        return word in self.stoi

    def __getitem__(self, word: str) -> int:
        """The id of ``word``; a KeyError that says why when it is not in the vocabulary."""
        try:
            return self.stoi[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self)} words (words seen fewer than "
                           f"min_count={self.min_count} times, and words never seen, are left out)") from None

    def encode(self, tokens: Iterable[str]) -> Tensor:
        """The ids (int64 (n,)) of the tokens that are in the vocabulary, in order; the others are dropped."""
        if isinstance(tokens, str):
            raise TypeError("encode needs a sequence of words (e.g. tokenize_words(text)), got one str")
        return torch.tensor([self.stoi[t] for t in tokens if t in self.stoi], dtype=torch.int64)

    def decode(self, ids: Iterable[int] | Tensor) -> list[str]:
        """The words of the ids."""
        ids = [int(i) for i in (ids.tolist() if isinstance(ids, Tensor) else ids)]
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"word id {bad[0]} is out of range for a vocabulary of {len(self)} words")
        return [self.words[i] for i in ids]

    def frequencies(self) -> Tensor:
        """Each word's share of the (kept) tokens: float64 (V,), sums to 1."""
        return self.counts.double() / self.counts.sum()


def subsample_frequent(ids: Tensor, counts: Tensor, *, threshold: float = 1e-3,
                       generator: torch.Generator | None = None) -> Tensor:
    r"""Drop each occurrence of word :math:`w` with probability :math:`\max(0, 1 - \sqrt{t / f_w})`.

    Args:
        ids: int64 (n,) word ids.
        counts: (V,) each word's count; :math:`f_w` = ``counts[w] / counts.sum()``.
        threshold: :math:`t`; words rarer than it are always kept.
        generator: the randomness.

    Returns:
        the kept ids, in order (int64 (m,), m <= n).
    """
    ids = _check_ids(ids)
    counts = torch.as_tensor(counts)
    if counts.dim() != 1 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError(f"counts must be a non-negative vector (V,) with a positive sum, got shape "
                         f"{tuple(counts.shape)}")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= counts.numel()):
        raise ValueError(f"ids must be in [0, {counts.numel()}), got [{int(ids.min())}, {int(ids.max())}]")
    frequency = counts.double() / counts.double().sum()
    keep_probability = torch.sqrt(threshold / frequency.clamp_min(1e-300)).clamp(max=1.0)
    keep = torch.rand(ids.shape, generator=generator, dtype=torch.float64) < keep_probability[ids]
    return ids[keep]


def skipgram_pairs(ids: Tensor, *, window: int = 2) -> tuple[Tensor, Tensor]:
    """Every (center, context) pair of ``ids`` with the context 1..``window`` positions before or after.

    A sequence of n ids gives ``2 * sum_{o=1}^{window} (n - o)`` pairs, grouped by offset
    (+1, -1, +2, -2, ...). Returns ``(centers, contexts)``, int64 tensors of that length.
    """
    ids = _check_ids(ids)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    centers, contexts = [], []
    for offset in range(1, window + 1):
        if offset >= ids.numel():
            break
        centers += [ids[:-offset], ids[offset:]]  # context after the center, then before it
        contexts += [ids[offset:], ids[:-offset]]
    if not centers:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    return torch.cat(centers), torch.cat(contexts)


def noise_distribution(counts: Tensor, power: float = 0.75) -> Tensor:
    """The negatives' distribution: ``counts ** power``, normalised; float64 (V,).

    ``power = 1`` is the unigram distribution, 0 the uniform one; Mikolov et al. found 3/4 best.
    """
    counts = torch.as_tensor(counts).double()
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"counts must be a vector (V,), got shape {tuple(counts.shape)}")
    if not torch.isfinite(counts).all() or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError("counts must be finite, non-negative, with a positive sum")
    if not (isinstance(power, (int, float)) and math.isfinite(power) and power >= 0):
        raise ValueError(f"power must be a non-negative number, got {power!r}")
    weights = counts.pow(power) * (counts > 0)  # a word never seen is never drawn, even at power 0
    return weights / weights.sum()


@dataclass
class SkipGramData:
    """What :func:`skipgram_dataset` builds: the vocabulary and the pairs, (centers, contexts) int64 each."""

    vocab: WordVocab
    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]

    def __repr__(self) -> str:
        return (f"SkipGramData({self.vocab!r}, {len(self.train[0])} training pairs, "
                f"{len(self.test[0])} test pairs)")


def skipgram_dataset(text: str, *, min_count: int = 5, window: int = 2, subsample: float | None = 1e-3,
                     test_fraction: float = 0.1, seed: int = 0) -> SkipGramData:
    """Skip-gram pairs of a text: the last ``test_fraction`` of its words held out for testing.

    The text is tokenized (:func:`tokenize_words`) and cut in two at a word: the vocabulary is
    built on the first part (``min_count``), both parts are encoded (rarer words dropped),
    subsampled (``subsample``: the threshold of :func:`subsample_frequent`, None: no subsampling;
    seeded by ``seed``), and their pairs made within each part (``window``).
    """
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    tokens = tokenize_words(text)
    cut = int(round(len(tokens) * (1 - test_fraction)))
    vocab = WordVocab.from_tokens(tokens[:cut], min_count=min_count)
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for part in (tokens[:cut], tokens[cut:]):
        ids = vocab.encode(part)
        if subsample is not None:
            ids = subsample_frequent(ids, vocab.counts, threshold=subsample, generator=generator)
        parts.append(skipgram_pairs(ids, window=window))
    if len(parts[1][0]) == 0:
        raise ValueError(f"the held-out {test_fraction:.0%} of the text gives no pairs; use a longer text")
    return SkipGramData(vocab=vocab, train=parts[0], test=parts[1])
