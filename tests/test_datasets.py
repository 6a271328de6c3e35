"""Datasets as tensors: IDX parsing, the real datasets' contents, character vocabularies and loaders."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from course_lib.data import (
    CharVocab,
    TensorData,
    char_dataset,
    load_binarized_mnist,
    load_digits,
    load_mnist,
    load_tiny_shakespeare,
    make_loader,
    parse_idx,
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx(values: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">I", (type_code << 8) | values.ndim) + struct.pack(f">{values.ndim}I", *values.shape)
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


def test_parse_idx_reads_shape_type_and_values():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(_idx(images), magic=0x00000803)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)
    floats = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    np.testing.assert_array_equal(parse_idx(_idx(floats, 0x0D)), floats)  # big-endian on disk, native in memory


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", "not a valid IDX magic number"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "not a valid IDX magic number"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00" * 4, r"promises dimensions \(5,\)"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00" * 3, "holds 3 bytes"),
    ],
)
def test_malformed_idx_data_is_a_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(data, source="broken.idx")


def test_idx_with_the_wrong_magic_number_for_its_role_is_rejected():
    labels = _idx(np.zeros(3, dtype=np.uint8))  # a valid label file, 0x00000801
    with pytest.raises(ValueError, match="magic number is 0x00000801, expected 0x00000803"):
        parse_idx(labels, magic=0x00000803, source="labels passed as images")


# ---------------------------------------------------------------------------------------------
# The real datasets (need COURSE_DATA_DIR)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "counts"), [("train", MNIST_TRAIN_COUNTS), ("test", MNIST_TEST_COUNTS)])
def test_mnist_has_the_published_shapes_types_and_label_counts(data_dir, split, counts):
    images, labels = load_mnist(split)
    assert images.shape == (sum(counts), 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (sum(counts),) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == counts
    assert images.max() == 255 and images.min() == 0
    assert images.float().mean().item() == pytest.approx(33.3, abs=0.5)  # MNIST's mean intensity


def test_loaders_return_fresh_tensors_so_the_cache_cannot_be_corrupted(data_dir):
    images, labels = load_mnist("test", subset=5)
    first = images.clone()
    images.zero_()
    labels.fill_(-1)
    again, labels_again = load_mnist("test", subset=5)
    assert torch.equal(again, first) and labels_again.min() >= 0
    x = load_binarized_mnist("valid", subset=3)
    x.fill_(7.0)
    assert load_binarized_mnist("valid", subset=3).max() == 1.0


def test_subset_keeps_the_first_examples_and_rejects_bad_sizes(data_dir):
    images, labels = load_mnist("test", subset=10)
    full_images, full_labels = load_mnist("test")
    assert torch.equal(images, full_images[:10]) and torch.equal(labels, full_labels[:10])
    with pytest.raises(ValueError, match="subset must be an int between 1 and 10000"):
        load_mnist("test", subset=10001)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_mnist("valid")


def test_binarized_mnist_has_the_standard_splits_of_binary_images(data_dir):
    sizes = {"train": 50000, "valid": 10000, "test": 10000}
    for split, n in sizes.items():
        x = load_binarized_mnist(split)
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
        assert ((x == 0) | (x == 1)).all()
        assert 0.12 < x.mean().item() < 0.14  # about 13% of the pixels are on
    with pytest.raises(ValueError, match="unknown split"):
        load_binarized_mnist("validation")


def test_tiny_shakespeare_has_its_published_length_and_alphabet(data_dir):
    text = load_tiny_shakespeare()
    assert len(text) == 1_115_394
    assert text.startswith("First Citizen:\n")
    vocab = CharVocab(text)
    assert len(vocab) == 65
    assert vocab.decode(vocab.encode(text[:1000])) == text[:1000]


def test_digits_are_8x8_with_17_grey_levels_and_binarize_at_the_middle():
    images, labels = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.uint8
    assert images.min() == 0 and images.max() == 16
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    binary, _ = load_digits(binarize=True, subset=100)
    assert binary.dtype == torch.float32
    assert torch.equal(binary, (images[:100] >= 8).float())


# ---------------------------------------------------------------------------------------------
# Characters
# ---------------------------------------------------------------------------------------------


def test_char_vocab_numbers_sorted_characters_and_round_trips():
    vocab = CharVocab("hello, world")
    assert vocab.chars == tuple(sorted(set("hello, world")))
    ids = vocab.encode("low")
    assert ids.dtype == torch.int64 and ids.tolist() == [vocab.stoi["l"], vocab.stoi["o"], vocab.stoi["w"]]
    assert vocab.decode(ids) == "low" and vocab.decode([0, 1]) == " ,"
    unicode = CharVocab("naïve café")
    assert unicode.decode(unicode.encode("café naïve")) == "café naïve"


def test_char_vocab_names_unknown_characters_and_ids():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"character 'z' at position 2 is not in the vocabulary"):
        vocab.encode("abzc")
    with pytest.raises(ValueError, match=r"character 'é' at position 0"):
        vocab.encode("é")
    with pytest.raises(ValueError, match=r"id 3 is outside the vocabulary \(0..2\)"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))


def test_char_dataset_splits_the_text_contiguously_into_chunks():
    text = "".join(chr(97 + (i * 7) % 26) for i in range(1000))
    vocab = CharVocab(text)
    train = char_dataset(text, 16, vocab, split="train", test_fraction=0.1)
    test = char_dataset(text, 16, vocab, split="test", test_fraction=0.1)
    assert len(train) == 900 // 16 and len(test) == 100 // 16
    assert train[0].shape == (16,) and train[0].dtype == torch.int64
    train_text = "".join(vocab.decode(train[i]) for i in range(len(train)))
    test_text = "".join(vocab.decode(test[i]) for i in range(len(test)))
    assert train_text == text[: len(train) * 16]  # the first 90%, in order
    assert test_text == text[900 : 900 + len(test) * 16]  # the last 10%, in order
    with pytest.raises(ValueError, match="fewer than seq_len=200"):
        char_dataset(text, 200, vocab, split="test")


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------


def test_loader_over_a_tensor_yields_tensor_batches_covering_every_example_once():
    x = torch.arange(10).float().unsqueeze(1)  # (10, 1)
    batches = list(make_loader(x, batch_size=4))
    assert [b.shape for b in batches] == [(4, 1), (4, 1), (2, 1)]
    assert torch.equal(torch.cat(batches), x)
    assert [b.shape[0] for b in make_loader(x, batch_size=4, drop_last=True)] == [4, 4]


def test_loader_over_a_tuple_keeps_examples_and_labels_aligned():
    x, y = torch.arange(20).reshape(10, 2), torch.arange(10) * 2
    gen = torch.Generator().manual_seed(0)
    for xb, yb in make_loader((x, y), batch_size=3, shuffle=True, generator=gen):
        assert torch.equal(xb[:, 0], yb)
    with pytest.raises(ValueError, match=r"share their first dimension, got sizes \[10, 9\]"):
        make_loader((x, y[:9]), batch_size=3)


def test_shuffling_with_a_seeded_generator_is_reproducible_and_a_permutation():
    x = torch.arange(100)

    def order(seed: int) -> list[int]:
        loader = make_loader(x, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return torch.cat(list(loader)).tolist()

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert sorted(order(0)) == list(range(100)) and order(0) != list(range(100))


def test_loader_accepts_any_dataset_and_pins_memory_only_for_cuda():
    dataset = torch.utils.data.TensorDataset(torch.zeros(5, 3))
    loader = make_loader(dataset, batch_size=2)
    assert [b[0].shape[0] for b in loader] == [2, 2, 1]
    assert not make_loader(torch.zeros(4), 2, device="cpu").pin_memory
    assert make_loader(torch.zeros(4), 2, device="cuda").pin_memory
    assert make_loader(torch.zeros(4), 2, device=torch.device("cuda", 0)).pin_memory
    with pytest.raises(TypeError, match="got ndarray"):
        make_loader(np.zeros(4), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        make_loader(torch.zeros(4), 0)


def test_tensor_data_batches_are_copies_not_views():
    data = TensorData(torch.zeros(6, 2))
    batch = next(iter(make_loader(data, batch_size=3)))
    batch.fill_(1.0)
    assert data.tensors[0].sum() == 0
