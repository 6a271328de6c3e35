"""The course's datasets as tensors, and a loader that batches them quickly.

Every loader gets its file through :func:`course_lib.data.download.fetch` (so it
is verified before it is parsed), parses it once per process (the parsed arrays are
cached), and returns fresh tensors that the caller may modify freely.

==========================  ====================================================
``load_mnist(split)``       uint8 images (N, 1, 28, 28) in 0..255, int64 labels (N,)
``load_binarized_mnist``    float32 (N, 1, 28, 28) in {0, 1}; train/valid/test
``load_digits()``           scikit-learn's 8x8 digits: uint8 (N, 1, 8, 8) in 0..16
``load_tiny_shakespeare``   the text, a ``str`` of 1,115,394 characters
``CharVocab``               characters <-> integer ids
``char_dataset``            a text cut into (seq_len,) chunks of ids
``make_loader``             a ``DataLoader`` over tensors or a dataset
==========================  ====================================================
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from course_lib.data.download import BINARIZED_MNIST_SPLITS, fetch

__all__ = [
    "CharVocab",
    "TensorData",
    "char_dataset",
    "load_binarized_mnist",
    "load_digits",
    "load_mnist",
    "load_tiny_shakespeare",
    "make_loader",
    "parse_idx",
    "read_idx",
]

MNIST_SPLITS = ("train", "test")
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _check_split(split: str, allowed: Sequence[str]) -> str:
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(map(repr, allowed))}")
    return split


def _subset_size(subset: int | None, total: int) -> int:
    """How many leading examples to keep: all when ``subset`` is None, else 1 <= subset <= total."""
    if subset is None:
        return total
    if isinstance(subset, bool) or not isinstance(subset, int) or not 1 <= subset <= total:
        raise ValueError(f"subset must be an int between 1 and {total} (the number of examples), got {subset!r}")
    return subset


# ---------------------------------------------------------------------------------------------
# IDX files (MNIST)
# ---------------------------------------------------------------------------------------------


def parse_idx(data: bytes, *, source: str = "IDX data", magic: int | None = None) -> np.ndarray:
    """Parse IDX bytes (LeCun's format: a big-endian header, then raw values) into an array.

    The header is a magic number ``0x0000TTDD`` (``TT``: the value type, ``DD``: the
    number of dimensions), then one 32-bit size per dimension.

    Args:
        data: the decompressed bytes.
        source: how to name the data in error messages (e.g. its path).
        magic: the magic number to insist on, e.g. ``0x00000803`` for uint8 images
            (N, rows, cols); ``None`` accepts any valid one.

    Returns:
        A read-only array with the header's shape and type (native byte order).

    Raises:
        ValueError: a malformed header, or a data size that does not match it.
    """
    if len(data) < 4:
        raise ValueError(f"{source}: {len(data)} bytes is too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if magic is not None and found != magic:
        raise ValueError(f"{source}: IDX magic number is 0x{found:08x}, expected 0x{magic:08x}")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{source}: 0x{found:08x} is not a valid IDX magic number (is this an IDX file?)")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{source}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header_len})")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_len != expected:
        raise ValueError(
            f"{source}: the header promises dimensions {dims} ({expected} bytes of values) "
            f"but the file holds {len(data) - header_len} bytes after the header"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    if dtype.itemsize > 1:
        values = values.astype(dtype.newbyteorder("="))
        values.setflags(write=False)
    return values


def read_idx(path: str | Path, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed when its name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    return parse_idx(data, source=str(path), magic=magic)


def _mnist_pair(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    """Check that IDX images (N, 28, 28) and labels (N,) in 0..9 belong together."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{source}: images have shape {images.shape}, expected (N, 28, 28)")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{source}: {images.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{source}: label {int(labels.max())} is outside 0..9")


@cache
def _mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read-only uint8 images (N, 28, 28) and labels (N,) of one MNIST split (parsed once)."""
    images_path = fetch(f"mnist-{split}-images")
    labels_path = fetch(f"mnist-{split}-labels")
    images = read_idx(images_path, magic=IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=IDX_LABELS_MAGIC)
    _mnist_pair(images, labels, f"MNIST {split} ({images_path.parent})")
    return images, labels


def load_mnist(split: str = "train", *, subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST (LeCun, Cortes & Burges): 60,000 training and 10,000 test digits.

    Args:
        split: ``"train"`` or ``"test"``.
        subset: keep only the first ``subset`` examples (for small profiles).

    Returns:
        ``(images, labels)``: uint8 (N, 1, 28, 28) with values 0..255 and int64 (N,)
        with values 0..9 (fresh tensors: modifying them leaves the cache intact).
    """
    images, labels = _mnist_arrays(_check_split(split, MNIST_SPLITS))
    n = _subset_size(subset, len(labels))
    x = torch.from_numpy(images[:n].copy()).unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
    y = torch.from_numpy(labels[:n].astype(np.int64))
    return x, y


# ---------------------------------------------------------------------------------------------
# Binarized MNIST
# ---------------------------------------------------------------------------------------------


@cache
def _binarized_arrays() -> dict[str, np.ndarray]:
    """Read-only uint8 (N, 784) arrays of binarized MNIST by split (read once)."""
    path = fetch("binarized-mnist")
    arrays = {}
    with np.load(path, allow_pickle=False) as npz:
        for split in BINARIZED_MNIST_SPLITS:
            values = np.ascontiguousarray(npz[split], dtype=np.uint8)
            if values.ndim != 2 or values.shape[1] != 784:
                raise ValueError(f"{path}: array {split!r} has shape {values.shape}, expected (N, 784)")
            values.setflags(write=False)
            arrays[split] = values
    return arrays


def load_binarized_mnist(split: str = "train", *, subset: int | None = None) -> torch.Tensor:
    """Binarized MNIST with the fixed binarization of Larochelle & Murray (2011).

    The benchmark behind the published likelihoods in nats per image (NADE 88.33,
    MADE 88.40, PixelCNN 81.30): each pixel was drawn once as Bernoulli(intensity / 255).

    Args:
        split: ``"train"`` (50,000), ``"valid"`` (10,000) or ``"test"`` (10,000).
        subset: keep only the first ``subset`` images (for small profiles).

    Returns:
        float32 (N, 1, 28, 28) with values in {0., 1.} (a fresh tensor).
    """
    values = _binarized_arrays()[_check_split(split, BINARIZED_MNIST_SPLITS)]
    n = _subset_size(subset, len(values))
    x = torch.from_numpy(values[:n].astype(np.float32))
    return x.reshape(n, 1, 28, 28)  # (N, 784) -> (N, 1, 28, 28)


# ---------------------------------------------------------------------------------------------
# scikit-learn's digits
# ---------------------------------------------------------------------------------------------


@cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits  # imported here: only this loader needs it

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)  # (N, 8, 8), values 0..16 stored as float64
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(binarize: bool = False, *, subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels (shipped with scikit-learn, offline).

    Args:
        binarize: threshold the 17 grey levels at the middle: value >= 8 -> 1.
        subset: keep only the first ``subset`` examples.

    Returns:
        ``(images, labels)``: images uint8 (N, 1, 8, 8) with values 0..16, or with
        ``binarize`` float32 (N, 1, 8, 8) in {0., 1.}; labels int64 (N,) in 0..9.
    """
    images, labels = _digits_arrays()
    n = _subset_size(subset, len(labels))
    x = torch.from_numpy(images[:n].copy()).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    if binarize:
        x = (x >= 8).to(torch.float32)
    return x, torch.from_numpy(labels[:n].copy())


# ---------------------------------------------------------------------------------------------
# Tiny Shakespeare and character vocabularies
# ---------------------------------------------------------------------------------------------


@cache
def load_tiny_shakespeare() -> str:
    """Tiny Shakespeare: 1,115,394 characters (65 distinct) of plays, the usual character-level corpus."""
    return fetch("tiny-shakespeare").read_text(encoding="utf-8")


class CharVocab:
    """A character vocabulary: the sorted distinct characters of a text, numbered 0..V-1.

    >>> vocab = CharVocab("hello")
    >>> vocab.chars
    ('e', 'h', 'l', 'o')
    >>> vocab.encode("hole").tolist()
    [1, 3, 2, 0]
    >>> vocab.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError(f"CharVocab needs a non-empty str, got {type(text).__name__} of length {len(text)}")
        self.chars: tuple[str, ...] = tuple(sorted(set(text)))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        # Lookup table: code point -> id, -1 for characters outside the vocabulary (last entry catches the rest).
        self._table = np.full(int(codes.max()) + 2, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(codes))

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters: {''.join(self.chars)!r})"

    def encode(self, text: str) -> torch.Tensor:
        """Ids of the characters of ``text``: int64 (len(text),).

        Raises:
            ValueError: a character that is not in the vocabulary (named, with its position).
        """
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        ids = self._table[np.minimum(codes, len(self._table) - 1)]
        unknown = np.flatnonzero(ids < 0)
        if unknown.size:
            pos = int(unknown[0])
            raise ValueError(
                f"character {text[pos]!r} at position {pos} is not in the vocabulary of {len(self)} characters"
            )
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text spelled by a 1-D sequence of ids.

        Raises:
            ValueError: an id outside 0..V-1, or a tensor that is not 1-D.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode expects a 1-D tensor of ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self.chars):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.chars) - 1})")
            out.append(self.chars[int(i)])
        return "".join(out)


def char_dataset(
    text: str,
    seq_len: int,
    vocab: CharVocab | None = None,
    split: str = "train",
    test_fraction: float = 0.1,
) -> TensorData:
    """Cut a text into non-overlapping chunks of ``seq_len`` character ids.

    The split is contiguous: the first ``1 - test_fraction`` of the text is the
    training part, the rest the test part (so that no test sentence was seen in
    training); each part is cut from its start, and a last incomplete chunk dropped.

    Args:
        text: the corpus.
        seq_len: characters per example.
        vocab: the vocabulary (default: ``CharVocab(text)``).
        split: ``"train"`` or ``"test"``.
        test_fraction: the share of the text, at its end, used for testing (0 < f < 1).

    Returns:
        A dataset whose examples are int64 (seq_len,) tensors.
    """
    _check_split(split, ("train", "test"))
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    vocab = vocab if vocab is not None else CharVocab(text)
    n_train = len(text) - int(round(len(text) * test_fraction))
    part = text[:n_train] if split == "train" else text[n_train:]
    n_chunks = len(part) // seq_len
    if n_chunks == 0:
        raise ValueError(f"the {split} part has {len(part)} characters, fewer than seq_len={seq_len}")
    ids = vocab.encode(part[: n_chunks * seq_len])
    return TensorData(ids.reshape(n_chunks, seq_len))  # (n_chunks * seq_len,) -> (n_chunks, seq_len)


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------


class TensorData(Dataset):
    """Examples stored in tensors that share their first dimension.

    Like ``torch.utils.data.TensorDataset``, but a single tensor gives examples
    (and batches) that are tensors rather than 1-tuples, and a batch is taken with
    one indexing operation instead of stacking examples one by one.
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        if not tensors:
            raise ValueError("TensorData needs at least one tensor")
        for t in tensors:
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                raise ValueError(f"TensorData needs tensors with a batch dimension, got {type(t).__name__}")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"the tensors must share their first dimension, got sizes {sizes}")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _take(self, index: int | torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(self.tensors) == 1:
            return self.tensors[0][index]
        return tuple(t[index] for t in self.tensors)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self._take(index)

    def __getitems__(self, indices: list[int]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """A whole batch at once (used by ``DataLoader``): each tensor indexed by ``indices``."""
        return self._take(torch.as_tensor(indices, dtype=torch.long))


def _batch_as_is(batch):
    """Collate function for :class:`TensorData`, whose batches are already tensors."""
    return batch


def make_loader(
    data: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor] | Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A ``DataLoader`` over a tensor, a tuple of tensors, or any ``Dataset``.

    Args:
        data: a tensor (batches are tensors (B, ...)), a tuple of tensors with the
            same first dimension (batches are tuples), or a ``Dataset``.
        batch_size: examples per batch.
        shuffle: reshuffle at every epoch.
        generator: a seeded ``torch.Generator`` for the shuffling, so that the order
            is reproducible (and resumable from its saved state).
        device: where the batches will be used; only decides ``pin_memory`` (on for
            CUDA). Moving the batches is the training loop's job
            (``x.to(device, non_blocking=True)``).
        drop_last: drop the last incomplete batch.
        num_workers: worker processes (0 loads in the main process, best for in-memory tensors).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(data, torch.Tensor):
        dataset: Dataset = TensorData(data)
    elif isinstance(data, (tuple, list)):
        dataset = TensorData(*data)
    elif isinstance(data, Dataset):
        dataset = data
    else:
        raise TypeError(f"make_loader expects a Tensor, a tuple of Tensors or a Dataset, got {type(data).__name__}")
    pin_memory = device is not None and torch.device(device).type == "cuda"
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=_batch_as_is if isinstance(dataset, TensorData) else None,
    )
