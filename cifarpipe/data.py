"""Fetch, verify and parse the CIFAR-10 archive ("python version"), and load the compact artifact.

The archive is checked three ways before anything is written: its md5 against params, every tar member
against path traversal and links, and every pickled batch against the official layout. The batches are
read straight from the tar into memory (nothing is extracted to disk) and unpickled with an unpickler
that only admits numpy arrays, so a malicious archive cannot run code.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .artifacts import atomic_path
from .errors import DataError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ROOT = "cifar-10-batches-py"
PIXELS = 3 * 32 * 32
CHUNK = 1 << 20


def _local_hint(url: str) -> str:
    return (f"Could not reach {url}. If this machine has no internet, copy or build the archive locally and "
            "point the pipeline at it: dvc exp run -S data.url=file:///ABS/PATH/cifar-10-python.tar.gz "
            "-S data.md5=<md5sum of that file> (or set data.url and data.md5 in params.yaml).")


class _TooBig(DataError):
    pass


def _fetch_once(url: str, dest: Path, timeout_s: float, max_bytes: int, deadline: float) -> str:
    """Stream `url` into `dest`; return the md5. Raises DataError on a short read, an oversized file or a deadline."""
    md5, size = hashlib.md5(), 0
    with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(dest, "wb") as out:
        expected = resp.headers.get("Content-Length")
        if expected is not None and int(expected) > max_bytes:
            raise _TooBig(f"{url} is {int(expected) / 2**20:.0f} MiB, more than runtime.download_max_mb "
                          f"({max_bytes / 2**20:.0f} MiB): it is not the CIFAR-10 archive (163 MiB). Check data.url")
        while chunk := resp.read1(CHUNK):  # what has arrived, so the deadline is checked as data trickles in
            md5.update(chunk)
            out.write(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise _TooBig(f"{url} sent more than runtime.download_max_mb ({max_bytes / 2**20:.0f} MiB) and was "
                              "stopped: it is not the CIFAR-10 archive (163 MiB). Check data.url")
            if time.monotonic() > deadline:
                raise DataError(f"download of {url} passed its deadline (runtime.download_deadline_s) after "
                                f"{size / 2**20:.1f} MiB")
    if expected is not None and size != int(expected):
        raise DataError(f"download of {url} stopped after {size} of {expected} bytes")
    return md5.hexdigest()


def download(url: str, md5: str, dest: Path, timeout_s: float, retries: int, max_bytes: int = 2**30,
             deadline_s: float = 3600, backoff_s: float = 1.0) -> None:
    """Download `url` to `dest` (atomically), retrying with exponential backoff, then verify its md5.

    No attempt may exceed `max_bytes`, and all attempts together stop at `deadline_s`: a wrong URL or a
    misbehaving server can neither fill the disk nor hang the stage.
    """
    actual, last_error = None, None
    deadline = time.monotonic() + deadline_s
    with atomic_path(dest) as tmp:
        for attempt in range(retries):
            if attempt:
                time.sleep(min(backoff_s * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic())))
            if time.monotonic() > deadline:
                break
            try:
                actual = _fetch_once(url, tmp, timeout_s, max_bytes, deadline)
                break
            except _TooBig:
                raise
            except (urllib.error.URLError, OSError, DataError) as err:  # timeouts are OSErrors
                last_error = err
                if isinstance(err, urllib.error.HTTPError) and err.code == 404:
                    break
        if actual is None:
            raise DataError(f"{_local_hint(url)} Last error after {attempt + 1} attempt(s): {last_error}")
        if actual != md5.lower():
            raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got {actual}. The file is "
                            "corrupt or a different archive: download it again, or if you trust this file "
                            f"set data.md5 to {actual}.")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts, lists, strings, numpy arrays) and refuses everything else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # protocol-2 pickles written by Python 3 wrap raw bytes in codecs.encode

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DataError(f"archive batch wants to load {module}.{name}: refused (only numpy arrays are allowed)")


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{ROOT}/{name} in the archive is not a readable CIFAR-10 batch: {err}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{ROOT}/{name} holds a {type(obj).__name__}, expected a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _check_member(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if member.issym() or member.islnk():
        raise DataError(f"archive member {member.name!r} is a link: refused (a CIFAR-10 archive has none)")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"archive member {member.name!r} is not a regular file: refused")
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"archive member {member.name!r} would land outside the target folder: refused")


def read_archive_members(archive: Path) -> dict[str, bytes]:
    """Return {name: bytes} for the batch files inside the archive, after checking every member."""
    wanted = {f"{ROOT}/{n}" for n in TRAIN_BATCHES + [TEST_BATCH, META]}
    found = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                _check_member(member)
                if member.name in wanted:
                    found[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{archive.name} is truncated or not a gzip-compressed tar archive ({err}). "
                        "Delete it and download again, or check data.url points at cifar-10-python.tar.gz.") from None
    missing = sorted(set(n.split("/", 1)[1] for n in wanted) - set(found))
    if missing:
        raise DataError(f"archive is missing {', '.join(f'{ROOT}/{m}' for m in missing)}: "
                        "it is not a complete CIFAR-10 python archive")
    return found


def _images_labels(batch: dict, name: str, n_classes: int):
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{ROOT}/{name} lacks 'data' or 'labels'")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(f"{ROOT}/{name}: 'data' has shape {data.shape} and dtype {data.dtype}, "
                        f"expected (N, {PIXELS}) uint8")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(f"{ROOT}/{name}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{ROOT}/{name}: labels outside 0..{n_classes - 1}")
    # rows hold the R, G and B planes one after the other: (N, 3, 32, 32) -> NHWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def parse_archive(archive: Path) -> dict[str, np.ndarray]:
    """Parse a verified archive into arrays: x_train (N,32,32,3) uint8, y_train, x_test, y_test, classes."""
    members = read_archive_members(archive)
    names = _unpickle(members[META], META).get("label_names")
    if not names:
        raise DataError(f"{ROOT}/{META} lacks 'label_names'")
    classes = np.array([n.decode() if isinstance(n, bytes) else str(n) for n in names])
    train = [_images_labels(_unpickle(members[b], b), b, len(classes)) for b in TRAIN_BATCHES]
    x_test, y_test = _images_labels(_unpickle(members[TEST_BATCH], TEST_BATCH), TEST_BATCH, len(classes))
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "x_test": np.ascontiguousarray(x_test), "y_test": y_test, "classes": classes}


def save_dataset(arrays: dict[str, np.ndarray], target: Path) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_dataset(path: str | Path, train_subset: int | None = None, test_subset: int | None = None) -> dict:
    """Load the artifact written by the download stage; keep the first N images of each split if asked."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    if train_subset is not None:
        d["x_train"], d["y_train"] = d["x_train"][:train_subset], d["y_train"][:train_subset]
    if test_subset is not None:
        d["x_test"], d["y_test"] = d["x_test"][:test_subset], d["y_test"][:test_subset]
    d["classes"] = [str(c) for c in d["classes"]]
    return d


def channel_stats(x_train: np.ndarray) -> dict[str, list[float]]:
    """Per-channel mean and std of uint8 NHWC images, on the 0..1 scale."""
    channels = [x_train[..., c].astype(np.float64) / 255.0 for c in range(3)]
    return {"mean": [round(float(c.mean()), 6) for c in channels],
            "std": [round(float(c.std()), 6) for c in channels], "images": int(len(x_train))}
