"""Words for skip-gram: tokens, the vocabulary, the pairs, subsampling and the noise distribution."""

import math
from collections import Counter

import pytest
import torch

from course_lib.data.words import (
    WordVocab,
    noise_distribution,
    skipgram_dataset,
    skipgram_pairs,
    subsample_frequent,
    tokenize_words,
)


def test_tokens_are_lowercase_words_with_inner_apostrophes():
    text = "KING RICHARD III:\nNow is the winter of our discontent -- thou'rt O'er-wrought; 'tis 3 o'clock."
    assert tokenize_words(text) == ["king", "richard", "iii", "now", "is", "the", "winter", "of", "our",
                                    "discontent", "thou'rt", "o'er", "wrought", "tis", "o'clock"]
    assert tokenize_words("") == []
    with pytest.raises(TypeError, match="needs a str"):
        tokenize_words(["a", "b"])


def test_the_vocabulary_keeps_words_seen_min_count_times_most_frequent_first():
    tokens = "b a c a b a d c b a e".split()  # a:4 b:3 c:2 d:1 e:1
    vocab = WordVocab.from_tokens(tokens, min_count=2)
    assert vocab.words == ("a", "b", "c")
    assert vocab.counts.tolist() == [4, 3, 2]
    assert len(vocab) == 3 and "c" in vocab and "d" not in vocab
    assert vocab["b"] == 1
    assert torch.allclose(vocab.frequencies(), torch.tensor([4, 3, 2], dtype=torch.float64) / 9)
    # ties are broken alphabetically, so that the numbering does not depend on the order of the text
    assert WordVocab.from_tokens("y x z".split(), min_count=1).words == ("x", "y", "z")


def test_encode_drops_words_outside_the_vocabulary_and_decode_inverts_it():
    tokens = "b a c a b a d c b a e".split()
    vocab = WordVocab.from_tokens(tokens, min_count=2)
    ids = vocab.encode(tokens)
    assert ids.dtype == torch.int64
    assert vocab.decode(ids) == [t for t in tokens if t in ("a", "b", "c")]
    assert vocab.decode(torch.tensor([2, 0])) == ["c", "a"]


def test_vocabulary_errors_say_what_is_wrong():
    vocab = WordVocab.from_tokens("a a b b c".split(), min_count=2)
    with pytest.raises(KeyError, match=r"'c' is not in the vocabulary of 2 words .*min_count=2"):
        vocab["c"]
    with pytest.raises(ValueError, match="word id 5 is out of range for a vocabulary of 2 words"):
        vocab.decode([0, 5])
    with pytest.raises(ValueError, match=r"no word occurs min_count=3 times or more \(the most frequent, 'a', "
                                         r"occurs 2 times\)"):
        WordVocab.from_tokens("a a b b c".split(), min_count=3)
    with pytest.raises(ValueError, match="min_count must be a positive int"):
        WordVocab.from_tokens(["a"], min_count=0)
    with pytest.raises(ValueError, match="empty text"):
        WordVocab.from_tokens([], min_count=1)
    with pytest.raises(TypeError, match="got one str"):
        WordVocab.from_tokens("a a b", min_count=1)
    with pytest.raises(TypeError, match="got one str"):
        vocab.encode("a b")


def test_pairs_of_a_tiny_text_by_hand():
    centers, contexts = skipgram_pairs(torch.tensor([10, 11, 12, 13]), window=2)
    pairs = Counter(zip(centers.tolist(), contexts.tolist(), strict=True))
    expected = Counter([(10, 11), (11, 12), (12, 13), (11, 10), (12, 11), (13, 12),  # offset 1, both directions
                        (10, 12), (11, 13), (12, 10), (13, 11)])  # offset 2
    assert pairs == expected
    # window 1 gives the neighbours only; a window longer than the text gives every ordered pair
    assert len(skipgram_pairs(torch.tensor([1, 2, 3]), window=1)[0]) == 4
    centers, contexts = skipgram_pairs(torch.tensor([1, 2, 3]), window=10)
    assert Counter(zip(centers.tolist(), contexts.tolist(), strict=True)) == Counter(
        [(1, 2), (2, 3), (2, 1), (3, 2), (1, 3), (3, 1)])
    assert skipgram_pairs(torch.tensor([7]), window=2)[0].numel() == 0


def test_pair_counts_on_a_longer_text():
    """n ids and window w give 2 * sum_{o=1}^{w} (n - o) pairs; each position is the center of as many
    pairs as it has neighbours within w, and (c, o) occurs as often as (o, c)."""
    ids = torch.randint(0, 7, (50,), generator=torch.Generator().manual_seed(0))
    centers, contexts = skipgram_pairs(ids, window=3)
    assert len(centers) == 2 * (49 + 48 + 47)
    pairs = Counter(zip(centers.tolist(), contexts.tolist(), strict=True))
    assert all(pairs[(c, o)] == pairs[(o, c)] for c, o in pairs)
    neighbours = torch.tensor([min(i, 3) + min(49 - i, 3) for i in range(50)])
    expected = torch.zeros(7, dtype=torch.int64).index_add_(0, ids, neighbours)
    assert torch.equal(torch.bincount(centers, minlength=7), expected)
    with pytest.raises(ValueError, match="window must be a positive int"):
        skipgram_pairs(ids, window=0)
    with pytest.raises(ValueError, match="1-D integer tensor"):
        skipgram_pairs(ids.float(), window=2)


def test_the_noise_distribution_is_the_unigram_distribution_to_the_power_three_quarters():
    counts = torch.tensor([100, 10, 1, 0])
    q = noise_distribution(counts)
    assert q.dtype == torch.float64 and float(q.sum()) == pytest.approx(1.0, abs=1e-15)
    weights = torch.tensor([100**0.75, 10**0.75, 1.0, 0.0], dtype=torch.float64)
    assert torch.allclose(q, weights / weights.sum())
    assert torch.allclose(noise_distribution(counts, power=1.0), counts.double() / 111)
    assert torch.allclose(noise_distribution(counts, power=0.0), torch.tensor([1, 1, 1, 0], dtype=torch.float64) / 3)
    # flattening: the rarest seen word gets more than its share, the most frequent less
    unigram = counts.double() / counts.sum()
    assert q[2] > unigram[2] and q[0] < unigram[0]
    with pytest.raises(ValueError, match="non-negative"):
        noise_distribution(torch.tensor([1, -1]))
    with pytest.raises(ValueError, match="power"):
        noise_distribution(counts, power=-1.0)


def test_subsampling_keeps_a_word_with_probability_sqrt_threshold_over_frequency():
    counts = torch.tensor([9000, 900, 90, 10])  # frequencies 0.9, 0.09, 0.009, 0.001
    ids = torch.arange(4).repeat_interleave(counts)
    kept = subsample_frequent(ids, counts, threshold=1e-3, generator=torch.Generator().manual_seed(0))
    fraction = torch.bincount(kept, minlength=4).double() / counts
    expected = torch.tensor([math.sqrt(1e-3 / f) for f in (0.9, 0.09, 0.009, 0.001)]).clamp(max=1.0).double()
    standard_error = (expected * (1 - expected) / counts).sqrt()
    assert torch.all((fraction - expected).abs() <= 4 * standard_error + 1e-12), (fraction, expected)
    assert int(torch.bincount(kept, minlength=4)[3]) == 10  # at the threshold: always kept
    # the order of the kept words is the text's
    assert torch.equal(kept, kept.sort(stable=True).values)
    again = subsample_frequent(ids, counts, threshold=1e-3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kept, again)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\)"):
        subsample_frequent(torch.tensor([4]), counts)


def test_the_dataset_holds_out_the_end_of_the_text():
    letters = "abcdefg"
    words = [letters[i % 7] * 2 for i in range(200)] + [letters[i % 5] * 2 for i in range(50)]
    data = skipgram_dataset(" ".join(words), min_count=5, window=2, subsample=None, test_fraction=0.2)
    assert len(data.vocab) == 7
    n_test = 50  # the last 20% of 250 words
    assert len(data.test[0]) == 2 * ((n_test - 1) + (n_test - 2))
    assert len(data.train[0]) == 2 * (199 + 198)
    # the held-out part only has aa..ee, in its own order: no pair crosses the cut
    assert set(data.vocab.decode(data.test[0])) == {"aa", "bb", "cc", "dd", "ee"}
    test_pairs = set(zip(data.vocab.decode(data.test[0]), data.vocab.decode(data.test[1]), strict=True))
    assert ("ee", "aa") in test_pairs and ("gg", "aa") not in test_pairs


def test_tiny_shakespeare_gives_a_vocabulary_of_a_few_thousand_words(data_dir):
    from course_lib.data import load_tiny_shakespeare

    data = skipgram_dataset(load_tiny_shakespeare(), min_count=5, window=2)
    assert 2500 < len(data.vocab) < 4000
    assert data.vocab.words[0] == "the"
    for word in ("king", "queen", "thou", "thee", "love", "night"):
        assert word in data.vocab
    assert len(data.train[0]) > 300_000 and len(data.test[0]) > 30_000
