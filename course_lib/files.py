"""Writing files so that a crash never leaves half of one: the course's one atomic write.

Checkpoints, grade tables, results and bundles are written to a temporary file in the
same folder, flushed to disk, then renamed over the destination, which is atomic on
POSIX and Windows: a reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_file", "atomic_path", "atomic_write"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the new file at; on a clean exit it replaces ``path``.

    For writers that want a path rather than an open file (a download, a builder that
    checks what it wrote: raise inside the block and ``path`` is left as it was). On an
    error the temporary file is removed. The folder of ``path`` is created when missing,
    and the new file is readable like any other (0666 less the umask), not private as
    temporary files are.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden, and ending with the name itself, so that what goes by the suffix (.gz) reads it alike
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise). The
    data is flushed to disk before the rename (see :func:`atomic_path`).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes a whole new file: mode must be 'wb' or 'w', got {mode!r}")
    text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
    with atomic_path(path) as tmp, open(tmp, mode, **text) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically; return the path."""
    if isinstance(data, str):
        data = data.encode(encoding)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write writes bytes or str, got {type(data).__name__}")
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
