"""The data files: lookup order, verification by content, and downloads from real (local) HTTP mirrors.

A small HTTP server on 127.0.0.1 plays the mirrors: one serving the right file, one
serving a file of the right name with the wrong bytes, one serving a truncated gzip,
one that answers too slowly, a path that does not exist (404), and a closed port
(a dead mirror).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from course_lib.data import download as dl
from course_lib.data.download import (
    DATA_FILES,
    DATASETS,
    CorruptFileWarning,
    DataFetchError,
    DataFile,
    arrays_sha256,
    build_binarized_mnist,
    content_sha256,
    parse_amat,
    verify,
)

CONTENT = b"".join(b"line %d of a small data file\n" % i for i in range(2000))
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


def _gzip(data: bytes, level: int = 9, mtime: float = 0) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=mtime) as fh:
        fh.write(data)
    return buf.getvalue()


GOOD_GZ = _gzip(CONTENT)
CORRUPT_GZ = _gzip(CONTENT.replace(b"line 7 ", b"line 8 "))  # a valid gzip of the wrong content
TRUNCATED_GZ = GOOD_GZ[: len(GOOD_GZ) // 2]


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}
    slow: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 (the name http.server expects)
        if self.path in self.slow:
            time.sleep(1.5)
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the slow mirror)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    """A threaded HTTP server on a free port of 127.0.0.1; yields its base URL and its routes."""
    routes: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"routes": routes, "slow": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, routes, handler.slow
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/data.gz"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """An empty cache and an (initially empty) data folder, both named by the environment."""
    cache = tmp_path / "cache"
    data = tmp_path / "shared"
    data.mkdir()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    return cache, data


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time (to prove nothing was written)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _leftovers(folder: Path) -> list[Path]:
    """Temporary files and folders left behind: every one the course writes is hidden (a leading dot)."""
    return [p for p in folder.rglob("*") if p.name.startswith(".")]


def _spec(urls, name="toy-file", path="toy/data.txt.gz", sha256=CONTENT_SHA, **kw) -> DataFile:
    return DataFile(name=name, path=path, urls=tuple(urls), sha256=sha256, **kw)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def test_gzip_files_are_verified_by_their_decompressed_content(tmp_path):
    official, recompressed = tmp_path / "a.gz", tmp_path / "b.gz"
    official.write_bytes(_gzip(CONTENT, level=9, mtime=0))
    recompressed.write_bytes(_gzip(CONTENT, level=1, mtime=12345))
    assert official.read_bytes() != recompressed.read_bytes()
    assert content_sha256(official) == content_sha256(recompressed) == CONTENT_SHA
    assert verify(official, CONTENT_SHA) and verify(recompressed, CONTENT_SHA)


def test_plain_files_are_verified_by_their_bytes(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(CONTENT)
    assert verify(path, CONTENT_SHA)
    path.write_bytes(CONTENT + b"\n")
    assert not verify(path, CONTENT_SHA)


def test_truncated_or_wrong_gzip_fails_verification(tmp_path):
    truncated, wrong, missing = tmp_path / "t.gz", tmp_path / "w.gz", tmp_path / "missing.gz"
    truncated.write_bytes(TRUNCATED_GZ)
    wrong.write_bytes(CORRUPT_GZ)
    assert not verify(truncated, CONTENT_SHA)
    assert not verify(wrong, CONTENT_SHA)
    assert not verify(missing, CONTENT_SHA)
    with pytest.raises(ValueError, match="not a valid gzip file"):
        content_sha256(truncated)


def test_npz_files_are_verified_array_by_array(tmp_path):
    arrays = {"train": np.eye(3, dtype=np.uint8), "test": np.ones((2, 3), dtype=np.uint8)}
    expected = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in arrays.items()}
    compressed, plain = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez_compressed(compressed, **arrays)
    np.savez(plain, **arrays)
    assert arrays_sha256(compressed) == arrays_sha256(plain) == expected
    assert verify(compressed, expected) and verify(plain, expected)
    np.savez(plain, train=arrays["train"].astype(np.int64), test=arrays["test"])  # same values, other dtype
    assert not verify(plain, expected)
    np.savez(plain, train=arrays["train"])
    assert not verify(plain, expected)


# ---------------------------------------------------------------------------------------------
# Where files are looked for
# ---------------------------------------------------------------------------------------------


def test_data_dirs_put_course_data_dir_before_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    assert dl.data_dirs() == [tmp_path / "a", tmp_path / "cache"]


def test_cache_dir_falls_back_to_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dl.data_dirs() == [tmp_path / "xdg" / "course_lib"]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.cache_dir() == tmp_path / "home" / ".cache" / "course_lib"


def test_valid_copy_in_data_dir_is_used_without_any_download(dirs, dead_url):
    cache, data = dirs
    (data / "toy").mkdir()
    (data / "toy" / "data.txt.gz").write_bytes(GOOD_GZ)
    path = dl.fetch_file(_spec([dead_url]), verbose=False)
    assert path == data / "toy" / "data.txt.gz"
    assert not cache.exists()


def test_unknown_file_name_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown data file 'mnist-oops'.*mnist-train-images"):
        dl.fetch("mnist-oops")
    with pytest.raises(ValueError, match="unknown data file"):
        dl.fetch_all(["mnist-oops"])


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------


def test_good_mirror_is_used_after_dead_missing_corrupt_and_truncated_ones(server, dirs, dead_url):
    base, routes, _ = server
    routes.update({"/corrupt/data.gz": CORRUPT_GZ, "/truncated/data.gz": TRUNCATED_GZ, "/good/data.gz": GOOD_GZ})
    cache, data = dirs
    before = _snapshot(data)
    urls = [dead_url, f"{base}/missing/data.gz", f"{base}/corrupt/data.gz", f"{base}/truncated/data.gz"]
    path = dl.fetch_file(_spec([*urls, f"{base}/good/data.gz"]), timeout=5, verbose=False)
    assert path == cache / "toy" / "data.txt.gz"
    assert gzip.decompress(path.read_bytes()) == CONTENT
    assert _leftovers(cache) == []
    assert _snapshot(data) == before  # the data folder is never written to


def test_slow_mirror_times_out_and_the_next_one_is_used(server, dirs):
    base, routes, slow = server
    routes.update({"/slow/data.gz": GOOD_GZ, "/good/data.gz": GOOD_GZ})
    slow.add("/slow/data.gz")
    start = time.perf_counter()
    path = dl.fetch_file(_spec([f"{base}/slow/data.gz", f"{base}/good/data.gz"]), timeout=0.3, verbose=False)
    assert verify(path, CONTENT_SHA)
    assert time.perf_counter() - start < 1.4  # did not wait for the slow mirror to answer


def test_corrupt_cached_file_is_reported_by_path_and_fetched_again(server, dirs):
    base, routes, _ = server
    routes["/good/data.gz"] = GOOD_GZ
    cache, _ = dirs
    spec = _spec([f"{base}/good/data.gz"])
    path = dl.fetch_file(spec, verbose=False)
    path.write_bytes(TRUNCATED_GZ)  # the cached copy gets damaged
    with pytest.warns(CorruptFileWarning, match=re.escape(str(path)) + ".*not a valid gzip file"):
        again = dl.fetch_file(spec, verbose=False)
    assert again == path and gzip.decompress(path.read_bytes()) == CONTENT


def test_corrupt_file_in_data_dir_is_reported_left_alone_and_replaced_by_a_cached_download(server, dirs):
    base, routes, _ = server
    routes["/good/data.gz"] = GOOD_GZ
    cache, data = dirs
    (data / "toy").mkdir()
    bad = data / "toy" / "data.txt.gz"
    bad.write_bytes(CORRUPT_GZ)
    before = _snapshot(data)
    actual = hashlib.sha256(gzip.decompress(CORRUPT_GZ)).hexdigest()
    with pytest.warns(CorruptFileWarning, match=re.escape(str(bad)) + f".*{actual}, expected {CONTENT_SHA}"):
        path = dl.fetch_file(_spec([f"{base}/good/data.gz"]), verbose=False)
    assert path == cache / "toy" / "data.txt.gz" and verify(path, CONTENT_SHA)
    assert _snapshot(data) == before


def test_all_mirrors_failing_raises_an_error_naming_each_mirror_and_how_to_place_the_file(server, dirs, dead_url):
    base, routes, _ = server
    routes.update({"/corrupt/data.gz": CORRUPT_GZ, "/truncated/data.gz": TRUNCATED_GZ})
    cache, data = dirs
    urls = [dead_url, f"{base}/missing/data.gz", f"{base}/corrupt/data.gz", f"{base}/truncated/data.gz"]
    with pytest.raises(DataFetchError) as info:
        dl.fetch_file(_spec(urls), timeout=5, verbose=False)
    message = str(info.value)
    lines = message.splitlines()
    reasons = ["cannot connect", "HTTP error 404", "wrong content: sha256", "not a valid gzip"]
    for url, reason in zip(urls, reasons, strict=True):
        assert any(url in line and reason in line for line in lines), f"{url} / {reason} missing from:\n{message}"
    assert "toy/data.txt.gz" in message and "COURSE_DATA_DIR" in message and CONTENT_SHA in message
    assert not (cache / "toy" / "data.txt.gz").exists()
    assert _leftovers(cache) == []
    assert list(data.iterdir()) == []


def test_fetch_all_reports_failures_without_stopping(monkeypatch, server, dirs):
    base, routes, _ = server
    routes["/good/data.gz"] = GOOD_GZ
    good = _spec([f"{base}/good/data.gz"], name="good")
    bad = _spec([f"{base}/missing/data.gz"], name="bad", path="toy/other.gz")
    monkeypatch.setattr(dl, "DATA_FILES", {"bad": bad, "good": good})
    monkeypatch.setattr(dl, "DATASETS", {"both": ("bad", "good")})
    results = dl.fetch_all(["both"], verbose=False)
    assert list(results) == ["bad", "good"]
    assert isinstance(results["bad"], DataFetchError) and "HTTP error 404" in str(results["bad"])
    assert isinstance(results["good"], Path) and verify(results["good"], CONTENT_SHA)


# ---------------------------------------------------------------------------------------------
# Binarized MNIST: built from text files (or an .npz) and verified array by array
# ---------------------------------------------------------------------------------------------


def _amat(values: np.ndarray) -> bytes:
    return b"".join(b" ".join(b"%d" % v for v in row) + b"\n" for row in values)


def test_parse_amat_reads_rows_of_zeros_and_ones_and_rejects_anything_else():
    values = (np.arange(12).reshape(3, 4) % 3 == 0).astype(np.uint8)
    np.testing.assert_array_equal(parse_amat(_amat(values), width=4), values)
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        parse_amat(b"0 1 2 0\n", width=4)
    with pytest.raises(ValueError, match="4 single-digit values per line"):
        parse_amat(b"0 1 1\n1 0 0 1 1\n", width=4)  # 8 values, but not 4 on each line


def test_binarized_mnist_is_built_from_text_mirrors_or_an_npz_and_verified_by_arrays(server, dirs, dead_url):
    base, routes, _ = server
    rng = np.random.default_rng(0)
    splits = {"train": rng.integers(0, 2, (5, 784)), "valid": rng.integers(0, 2, (2, 784))}
    splits["test"] = rng.integers(0, 2, (3, 784))
    expected = {k: hashlib.sha256(v.astype(np.uint8).tobytes()).hexdigest() for k, v in splits.items()}
    for split, values in splits.items():
        routes[f"/amat/bm_{split}.amat"] = _amat(values)
        bad = values.copy()
        bad[0, 0] = 1 - bad[0, 0]
        routes[f"/flipped/bm_{split}.amat"] = _amat(bad)
    made_style = io.BytesIO()  # the .npz layout of another public copy: float arrays, keys "<split>_data"
    np.savez(made_style, **{f"{k}_data": v.astype(np.float64) for k, v in splits.items()})
    routes["/made/binarized_mnist.npz"] = made_style.getvalue()
    cache, _ = dirs
    spec = DataFile(
        name="bm",
        path="binarized_mnist/binarized_mnist.npz",
        urls=tuple(f"{base}/{folder}/bm_{{split}}.amat" for folder in ("missing", "flipped", "amat")),
        sha256=expected,
        build=build_binarized_mnist,
    )
    path = dl.fetch_file(spec, verbose=False)
    with np.load(path) as npz:
        for split, values in splits.items():
            assert npz[split].dtype == np.uint8
            np.testing.assert_array_equal(npz[split], values)
    assert _leftovers(cache) == []
    path.unlink()
    npz_urls = (dead_url, f"{base}/made/binarized_mnist.npz")
    from_npz = DataFile("bm", spec.path, npz_urls, expected, build=build_binarized_mnist)
    assert verify(dl.fetch_file(from_npz, verbose=False), expected)
    path.unlink()
    with pytest.raises(DataFetchError, match=r"(?s)flipped.*wrong content: array 'train' has sha256"):
        dl.fetch_file(DataFile("bm", spec.path, (spec.urls[1],), expected, build=build_binarized_mnist), verbose=False)


# ---------------------------------------------------------------------------------------------
# The registry and the shared copies
# ---------------------------------------------------------------------------------------------


def test_registry_entries_are_well_formed():
    paths = [f.path for f in DATA_FILES.values()]
    assert len(set(paths)) == len(paths)
    for name, spec in DATA_FILES.items():
        assert spec.name == name and spec.urls and spec.description
        assert all(u.startswith(("https://", "http://")) for u in spec.urls)
    for members in DATASETS.values():
        assert set(members) <= set(DATA_FILES)
    assert set(DATA_FILES) == {m for members in DATASETS.values() for m in members}
    with pytest.raises(ValueError, match="lower-case hex SHA-256"):
        _spec(["http://x"], sha256="abc")
    with pytest.raises(ValueError, match="must be relative"):
        _spec(["http://x"], path="../outside.gz")


def test_every_registered_file_verifies_in_the_shared_copies(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    for name, spec in DATA_FILES.items():
        path = dl.fetch(name, verbose=False, timeout=1)
        assert path == data_dir / spec.path, name
    assert not (tmp_path / "cache").exists()


def test_binarized_mnist_npz_in_the_shared_copy_is_the_reference_file(data_dir):
    path = data_dir / DATA_FILES["binarized-mnist"].path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == dl.BINARIZED_MNIST_NPZ_SHA256

