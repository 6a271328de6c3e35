"""Dataset files: where they live, where they come from, and how they are checked.

Every file the course reads is described once, in :data:`DATA_FILES`, by a
:class:`DataFile`: a name, the relative path it is stored under, a list of mirror
URLs and the SHA-256 of its *content*.

Lookup
    :func:`fetch` looks in each folder of :func:`data_dirs`, in order:

    1. ``$COURSE_DATA_DIR`` (one or more folders separated by ``os.pathsep``; it
       may be read-only and is never written to), e.g. a shared, pre-verified copy;
    2. the user cache: ``$COURSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/course_lib``,
       else ``~/.cache/course_lib``.

    A file that is found but fails verification (corrupt, truncated, not a valid
    gzip stream) is reported with a :class:`CorruptFileWarning` naming its path and
    the expected and actual hashes, and is never used. When no valid copy is found,
    the file is downloaded into the cache.

Verification
    The hash is taken over the *decompressed* content: a ``.gz`` file is
    decompressed first, so that a recompressed copy verifies like the official one.
    A ``.npz`` file is verified array by array (``sha256`` is then a mapping from
    array name to the SHA-256 of that array's bytes in C order), so that a copy
    rebuilt from the original text files verifies like any other. Every call to
    :func:`fetch` verifies the file it returns (hashing MNIST's 47 MB of images takes
    a fraction of a second); the loaders in :mod:`course_lib.data.datasets` then
    parse each file once per process.

Download
    Mirrors are tried in turn; a timeout, a refused connection, an HTTP error or
    content with the wrong hash moves on to the next one. Each attempt writes to a
    temporary file beside the destination, which is renamed into place (atomically)
    only after it has been verified, and removed otherwise. When every mirror fails,
    :class:`DataFetchError` lists each one with the reason, and says where to put
    the file by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from course_lib.files import atomic_path

__all__ = [
    "BINARIZED_MNIST_NPZ_SHA256",
    "CorruptFileWarning",
    "DATASETS",
    "DATA_FILES",
    "DataFetchError",
    "DataFile",
    "arrays_sha256",
    "build_binarized_mnist",
    "cache_dir",
    "content_sha256",
    "data_dirs",
    "download_url",
    "fetch",
    "fetch_all",
    "fetch_file",
    "find_local",
    "parse_amat",
    "verify",
]

DATA_DIR_ENV = "COURSE_DATA_DIR"
CACHE_DIR_ENV = "COURSE_CACHE_DIR"
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a mirror to connect or to send the next block."""
USER_AGENT = "course_lib/0.1 (Python urllib)"
_CHUNK = 1 << 20  # bytes read at a time while hashing or downloading
_TMP_PREFIX = ".tmp-"

Expected = str | Mapping[str, str]
"""A file's expected hash: one SHA-256 (hex) of its content, or for ``.npz`` one per array."""
Downloader = Callable[[str, Path], None]
"""``download(url, dest)``: writes the bytes at ``url`` to the file ``dest``."""
Builder = Callable[[str, Path, Downloader], None]
"""``build(mirror, dest, download)``: makes the stored file ``dest`` from one mirror."""


class CorruptFileWarning(UserWarning):
    """A data file was found but failed verification; it is not used."""


class DataFetchError(RuntimeError):
    """No verified copy of a data file could be found or downloaded."""


@dataclass(frozen=True)
class DataFile:
    """One dataset file: its name, stored path, mirrors and expected content hash.

    Attributes:
        name: the key in :data:`DATA_FILES`, e.g. ``"mnist-train-images"``.
        path: where the file is stored, relative to a data folder, with ``/``
            separators, e.g. ``"mnist/train-images-idx3-ubyte.gz"``.
        urls: mirror URLs, tried in this order.
        sha256: SHA-256 (lower-case hex) of the decompressed content, or for a
            ``.npz`` file a mapping ``{array name: SHA-256 of its C-order bytes}``.
        description: one line for people (what the file is, its licence).
        build: how to turn one mirror into the stored file, when that is more than
            downloading it (e.g. parsing text files into an ``.npz``); ``None``
            downloads the URL as is.
    """

    name: str
    path: str
    urls: tuple[str, ...]
    sha256: Expected
    description: str = ""
    build: Builder | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", tuple(self.urls))
        rel = Path(self.path)
        if rel.is_absolute() or ".." in rel.parts or not self.path:
            raise ValueError(f"DataFile {self.name!r}: path must be relative (inside a data folder), got {self.path!r}")
        hashes = self.sha256.values() if isinstance(self.sha256, Mapping) else [self.sha256]
        if isinstance(self.sha256, Mapping) and not self.path.endswith(".npz"):
            raise ValueError(f"DataFile {self.name!r}: per-array hashes need an .npz path, got {self.path!r}")
        for value in hashes:
            if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
                raise ValueError(f"DataFile {self.name!r}: expected a lower-case hex SHA-256, got {value!r}")

    def placement_hint(self) -> str:
        """How to put this file in place by hand (used in error messages)."""
        lines = [
            f"To place the file by hand, save it as <folder>/{self.path} and set {DATA_DIR_ENV}=<folder>,",
            f"or save it as {cache_dir() / self.path}.",
        ]
        if isinstance(self.sha256, Mapping):
            lines.append(
                "It must be an .npz file holding uint8 arrays "
                + ", ".join(repr(k) for k in self.sha256)
                + "; each array is verified by the SHA-256 of its bytes in C order: "
                + ", ".join(f"{k}={v}" for k, v in self.sha256.items())
            )
        else:
            kind = "decompressed content" if self.path.endswith(".gz") else "content"
            lines.append(f"It is verified by the SHA-256 of its {kind}: {self.sha256}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Where files are looked for
# ---------------------------------------------------------------------------------------------


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache that downloads go to.

    ``$COURSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/course_lib``, else
    ``~/.cache/course_lib``. It is created when a file is downloaded.
    """
    explicit = _env_path(CACHE_DIR_ENV)
    if explicit is not None:
        return explicit
    xdg = _env_path("XDG_CACHE_HOME")
    base = xdg if xdg is not None else Path.home() / ".cache"
    return base / "course_lib"


def data_dirs() -> list[Path]:
    """The folders searched for data files, in order: ``$COURSE_DATA_DIR`` entries, then :func:`cache_dir`."""
    dirs: list[Path] = []
    for entry in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep):
        if entry.strip():
            dirs.append(Path(entry.strip()).expanduser())
    dirs.append(cache_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def content_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's content, decompressing it first when its name ends in ``.gz``.

    Raises:
        ValueError: the file is not a valid gzip stream (e.g. truncated).
        OSError: the file cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path} is not a valid gzip file ({type(err).__name__}: {err})") from err
    return digest.hexdigest()


def arrays_sha256(path: str | Path) -> dict[str, str]:
    """SHA-256 (hex) of each array in an ``.npz`` file, over the array's bytes in C order.

    Raises:
        ValueError: the file is not a readable ``.npz`` archive.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: hashlib.sha256(np.ascontiguousarray(npz[key]).tobytes()).hexdigest() for key in npz.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError, zlib.error) as err:
        raise ValueError(f"{path} is not a valid .npz file ({type(err).__name__}: {err})") from err


def _problem(path: Path, expected: Expected) -> str | None:
    """``None`` when ``path`` matches ``expected``, else a sentence saying what is wrong."""
    try:
        if isinstance(expected, Mapping):
            actual = arrays_sha256(path)
            for key, want in expected.items():
                if key not in actual:
                    return f"array {key!r} is missing (found {sorted(actual)})"
                if actual[key] != want:
                    return f"array {key!r} has sha256 {actual[key]}, expected {want}"
            return None
        actual_hash = content_sha256(path)
    except (ValueError, OSError) as err:
        return str(err)
    if actual_hash != expected:
        kind = "decompressed content" if path.name.endswith(".gz") else "content"
        return f"sha256 of its {kind} is {actual_hash}, expected {expected}"
    return None


def verify(path: str | Path, sha256: Expected) -> bool:
    """Whether the file at ``path`` has the expected content hash (see :class:`DataFile`).

    A missing, unreadable, truncated or otherwise corrupt file gives ``False``.
    """
    path = Path(path)
    return path.is_file() and _problem(path, sha256) is None


# ---------------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------------


def download_url(url: str, dest: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Write the bytes served at ``url`` to ``dest`` (urllib only; raises on any failure)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        announced = response.headers.get("Content-Length")
        received = 0
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            received += len(chunk)
    if announced is not None and announced.isdigit() and received != int(announced):
        raise OSError(f"connection closed after {received} of {announced} bytes")


def _describe_failure(err: BaseException, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP error {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        if isinstance(err.reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return f"cannot connect ({err.reason})"
    if isinstance(err, TimeoutError):
        return f"timed out after {timeout:g} s"
    return f"{type(err).__name__}: {err}"


def _download_as_is(url: str, dest: Path, download: Downloader) -> None:
    download(url, dest)


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(f"course_lib: {message}", file=sys.stderr, flush=True)


class _WrongContent(Exception):
    """A mirror's file did not verify (its message says how)."""


def _download(spec: DataFile, dest: Path, *, timeout: float, verbose: bool) -> tuple[Path | None, list[str]]:
    """Try each mirror; return (verified destination, []) or (None, one failure line per mirror)."""
    failures: list[str] = []
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return None, [f"cannot create the cache folder {dest.parent} ({err}); set {CACHE_DIR_ENV} to a writable folder"]
    build = spec.build or _download_as_is
    for url in spec.urls:
        try:
            _say(verbose, f"downloading {spec.path} from {url}")
            with atomic_path(dest) as tmp:  # dest is replaced only by verified content
                build(url, tmp, partial(download_url, timeout=timeout))
                problem = _problem(tmp, spec.sha256)
                if problem is not None:
                    raise _WrongContent(problem)
            _say(verbose, f"  saved and verified {dest}")
            return dest, []
        except _WrongContent as err:
            failures.append(f"{url}: wrong content: {err}")
            _say(verbose, f"  wrong content: {err}")
        except Exception as err:  # any failure of one mirror moves on to the next
            reason = _describe_failure(err, timeout)
            failures.append(f"{url}: {reason}")
            _say(verbose, f"  failed: {reason}")
    if not spec.urls:
        failures.append("(no mirror is known for this file)")
    return None, failures


# ---------------------------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------------------------


def _find_local(spec: DataFile) -> tuple[Path | None, list[str]]:
    rejected: list[str] = []
    for folder in data_dirs():
        path = folder / spec.path
        if not path.is_file():
            continue
        problem = _problem(path, spec.sha256)
        if problem is None:
            return path, rejected
        message = f"{path} failed verification and is not used: {problem}"
        warnings.warn(message, CorruptFileWarning, stacklevel=4)
        rejected.append(message)
    return None, rejected


def find_local(spec: str | DataFile) -> Path | None:
    """The first verified local copy of a data file, or ``None``; never downloads.

    Copies that fail verification are reported with a :class:`CorruptFileWarning`.
    """
    return _find_local(_resolve(spec))[0]


def fetch_file(spec: DataFile, *, timeout: float = DEFAULT_TIMEOUT, verbose: bool = True) -> Path:
    """The path of a verified local copy of ``spec``, downloading it into the cache if needed.

    Args:
        spec: the file to get (an entry of :data:`DATA_FILES`, or your own
            :class:`DataFile`, e.g. with other mirrors).
        timeout: seconds to wait for a mirror to connect or to send the next block.
        verbose: print one line per download attempt to stderr.

    Raises:
        DataFetchError: no valid local copy, and every mirror failed; the message
            lists each mirror with its reason and how to place the file by hand.
    """
    found, rejected = _find_local(spec)
    if found is not None:
        return found
    dest = cache_dir() / spec.path
    saved, failures = _download(spec, dest, timeout=timeout, verbose=verbose)
    if saved is not None:
        return saved
    searched = ", ".join(str(d) for d in data_dirs())
    lines = [f"could not get a verified copy of {spec.name!r} ({spec.path}).", f"Searched: {searched}."]
    if rejected:
        lines.append("Found but rejected:")
        lines += [f"  - {r}" for r in rejected]
    lines.append(f"Tried {len(spec.urls)} mirror(s):")
    lines += [f"  {i}. {f}" for i, f in enumerate(failures, 1)]
    lines.append(spec.placement_hint())
    raise DataFetchError("\n".join(lines))


def _resolve(spec: str | DataFile) -> DataFile:
    if isinstance(spec, DataFile):
        return spec
    if spec not in DATA_FILES:
        raise ValueError(f"unknown data file {spec!r}; known files: {', '.join(DATA_FILES)}")
    return DATA_FILES[spec]


def fetch(name: str, *, timeout: float = DEFAULT_TIMEOUT, verbose: bool = True) -> Path:
    """The path of a verified local copy of the data file ``name`` (a key of :data:`DATA_FILES`).

    Looks in :func:`data_dirs`, then downloads into :func:`cache_dir`; see
    :func:`fetch_file` for the arguments and errors.
    """
    return fetch_file(_resolve(name), timeout=timeout, verbose=verbose)


def fetch_all(
    names: Iterable[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT, verbose: bool = True
) -> dict[str, Path | DataFetchError]:
    """Fetch several data files; one failure does not stop the others.

    Args:
        names: file names (keys of :data:`DATA_FILES`) or dataset names (keys of
            :data:`DATASETS`, e.g. ``"mnist"`` for its four files); ``None`` means all.

    Returns:
        ``{file name: verified path}``, with a :class:`DataFetchError` as the value
        for each file that could not be had.
    """
    wanted: list[str] = []
    for name in DATA_FILES if names is None else names:
        members = DATASETS.get(name, (name,))
        for member in members:
            _resolve(member)  # unknown names fail before anything is downloaded
            if member not in wanted:
                wanted.append(member)
    results: dict[str, Path | DataFetchError] = {}
    for name in wanted:
        try:
            results[name] = fetch(name, timeout=timeout, verbose=verbose)
        except DataFetchError as err:
            results[name] = err
    return results


# ---------------------------------------------------------------------------------------------
# Binarized MNIST: stored as one .npz, published as three text files
# ---------------------------------------------------------------------------------------------

BINARIZED_MNIST_SPLITS = ("train", "valid", "test")
BINARIZED_MNIST_NPZ_SHA256 = "350243cb824d66d022e0c3e87cac231231668817ff03f5f6d7b6533017d56b4b"
"""SHA-256 of the whole reference ``binarized_mnist.npz`` (for the record; the arrays are what is verified)."""


def parse_amat(data: bytes, width: int = 784, *, source: str = "amat data") -> np.ndarray:
    """Parse a text matrix of 0/1 values, one row per line, separated by spaces -> uint8 (N, width).

    Raises:
        ValueError: a value other than 0 or 1, or a line without ``width`` values.
    """
    rows = [row for row in data.translate(None, b" \t\r").split(b"\n") if row]  # one string of digits per line
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if not rows or bad is not None:
        found = f"{len(rows[bad])} in row {bad + 1}" if rows else "no values"
        raise ValueError(f"{source}: expected {width} single-digit values per line, found {found}")
    digits = b"".join(rows)
    values = np.frombuffer(digits, dtype=np.uint8) - np.uint8(ord("0"))
    if values.max() > 1:
        raise ValueError(f"{source}: found values other than 0 and 1")
    return values.reshape(len(rows), width)  # (N * width,) -> (N, width)


def _binary_arrays_from_npz(path: Path, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays of an .npz holding ``split`` or ``split_data`` keys with 0/1 values -> uint8 (N, D)."""
    out = {}
    with np.load(path, allow_pickle=False) as npz:
        for split in splits:
            key = split if split in npz.files else f"{split}_data"
            if key not in npz.files:
                raise ValueError(f"{path.name} has no array {split!r} (keys: {npz.files})")
            values = np.asarray(npz[key])
            if not np.isin(values, (0, 1)).all():
                raise ValueError(f"array {key!r} has values other than 0 and 1")
            out[split] = np.ascontiguousarray(values.reshape(len(values), -1).astype(np.uint8))
    return out


def build_binarized_mnist(
    url: str, dest: Path, download: Downloader, splits: tuple[str, ...] = BINARIZED_MNIST_SPLITS
) -> None:
    """Make the stored ``binarized_mnist.npz`` (uint8 arrays, one per split, (N, 784)) from one mirror.

    A mirror is either a URL template containing ``{split}`` (Larochelle's text
    files ``binarized_mnist_{split}.amat``, one row of 784 values per image), or the
    URL of an ``.npz`` holding keys ``train``/``valid``/``test`` or
    ``train_data``/``valid_data``/``test_data`` with 0/1 values.
    """
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=_TMP_PREFIX) as tmp:
        if "{split}" in url:
            arrays = {}
            for split in splits:
                part = Path(tmp) / f"{split}.amat"
                download(url.format(split=split), part)
                arrays[split] = parse_amat(part.read_bytes(), source=url.format(split=split))
        else:
            part = Path(tmp) / "download.npz"
            download(url, part)
            arrays = _binary_arrays_from_npz(part, splits)
    with open(dest, "wb") as fh:  # a file object, so that numpy does not append ".npz"
        np.savez_compressed(fh, **arrays)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _mnist(name: str, filename: str, sha256: str, what: str) -> DataFile:
    return DataFile(
        name=name,
        path=f"mnist/{filename}",
        urls=tuple(m + filename for m in MNIST_MIRRORS),
        sha256=sha256,
        description=f"MNIST {what} (LeCun, Cortes & Burges), IDX format, gzip; CC BY-SA 3.0",
    )


_FILES = (
    _mnist(
        "mnist-train-images",
        "train-images-idx3-ubyte.gz",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "training images, 60000x28x28 uint8",
    ),
    _mnist(
        "mnist-train-labels",
        "train-labels-idx1-ubyte.gz",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "training labels, 60000 uint8",
    ),
    _mnist(
        "mnist-test-images",
        "t10k-images-idx3-ubyte.gz",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test images, 10000x28x28 uint8",
    ),
    _mnist(
        "mnist-test-labels",
        "t10k-labels-idx1-ubyte.gz",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "test labels, 10000 uint8",
    ),
    DataFile(
        name="binarized-mnist",
        path="binarized_mnist/binarized_mnist.npz",
        urls=(
            "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{split}.amat",
            "https://github.com/mgermain/MADE/releases/download/ICML2015/binarized_mnist.npz",
        ),
        sha256={
            "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
            "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
            "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
        },
        description=(
            "binarized MNIST with the fixed binarization of Larochelle & Murray (2011): "
            "uint8 (N, 784) arrays train 50000, valid 10000, test 10000"
        ),
        build=build_binarized_mnist,
    ),
    DataFile(
        name="tiny-shakespeare",
        path="tinyshakespeare/input.txt",
        urls=(
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "https://storage.googleapis.com/download.tensorflow.org/data/shakespeare.txt",
        ),
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        description="Tiny Shakespeare: 1,115,394 characters of ASCII text, 65 distinct; public domain",
    ),
)

DATA_FILES: dict[str, DataFile] = {f.name: f for f in _FILES}
"""Every data file the course knows, by name."""

DATASETS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist-train-images", "mnist-train-labels", "mnist-test-images", "mnist-test-labels"),
    "binarized-mnist": ("binarized-mnist",),
    "tiny-shakespeare": ("tiny-shakespeare",),
}
"""Datasets as groups of file names (for ``fetch_all`` and the ``course data`` command)."""
