"""Fetch the CIFAR-10 archive over http(s) or from a file:// URL, with retries, limits and an md5 check."""
from __future__ import annotations

import hashlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..core.artifacts import atomic_path
from ..core.errors import DataError
from .retry import Backoff, GaveUp, StopTrying, retried

CHUNK = 1 << 20  # bytes read per call: how often the size limit and the deadline are checked


@dataclass(frozen=True)
class Expected:
    """What a download should be, for its error lines: its name and size, its file name, and the params group
    whose url and md5 point at it."""
    what: str
    file: str
    group: str


CIFAR10 = Expected("the CIFAR-10 archive (163 MiB)", "cifar-10-python.tar.gz", "data")


def _local_hint(url: str, expected: Expected) -> str:
    g = expected.group
    return (f"Could not reach {url}. If this machine has no internet, copy or build the archive locally and "
            f"point the pipeline at it: dvc exp run -S {g}.url=file:///ABS/PATH/{expected.file} "
            f"-S {g}.md5=<md5sum of that file> (or set {g}.url and {g}.md5 in params.yaml).")


def file_md5(path: Path) -> str:
    """The md5 of a file, read in chunks."""
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def mismatch(source: str, md5: str, actual: str, expected: Expected = CIFAR10) -> DataError:
    return DataError(f"checksum mismatch for {source}: expected md5 {md5}, got {actual}. The file is corrupt "
                     f"or a different archive: download it again, or if you trust this file set "
                     f"{expected.group}.md5 to {actual}.")


class _TooBig(DataError):
    """Larger than the limit: not tried again."""


class _Incomplete(DataError):
    """Stopped short (the connection broke, the deadline passed): tried again while time is left."""


@dataclass(frozen=True)
class Limits:
    """How a download is tried: per request, the timeout; all tries together, the deadline; each, the size.
    `Limits.of(runtime)` reads them from params.yaml's runtime group."""
    timeout_s: float = 60
    tries: int = 3
    backoff_s: float = 1.0  # the wait before the second try, doubled before each next one
    max_bytes: int = 2**30
    deadline_s: float = 3600

    @classmethod
    def of(cls, runtime) -> Limits:
        return cls(timeout_s=runtime.download_timeout_s, tries=runtime.download_retries,
                   backoff_s=runtime.download_backoff_s, max_bytes=int(runtime.download_max_mb * 2**20),
                   deadline_s=runtime.download_deadline_s)


def _fetch_once(url: str, dest: Path, limits: Limits, deadline: float, progress, expected: Expected) -> str:
    """Stream `url` into `dest`, drawing a progress bar on `progress` when it is a terminal; return the md5.
    Raises DataError on a short read, an oversized file or a deadline."""
    md5, size, max_bytes = hashlib.md5(), 0, limits.max_bytes
    with urllib.request.urlopen(url, timeout=limits.timeout_s) as resp, open(dest, "wb") as out, \
            tqdm(total=int(resp.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                 unit_divisor=1024, desc=f"download {Path(urllib.parse.urlsplit(url).path).name}",
                 # bytes, rate and time left; none in a log file
                 file=progress, disable=None, mininterval=0.5) as bar:
        length = resp.headers.get("Content-Length")
        if length is not None and int(length) > max_bytes:
            raise _TooBig(f"{url} is {int(length) / 2**20:.0f} MiB, more than runtime.download_max_mb "
                          f"({max_bytes / 2**20:.0f} MiB): it is not {expected.what}. Check "
                          f"{expected.group}.url")
        while chunk := resp.read1(CHUNK):  # what has arrived, so the deadline is checked as data trickles in
            md5.update(chunk)
            out.write(chunk)
            size += len(chunk)
            bar.update(len(chunk))
            if size > max_bytes:
                raise _TooBig(f"{url} sent more than runtime.download_max_mb ({max_bytes / 2**20:.0f} MiB) "
                              f"and was stopped: it is not {expected.what}. Check {expected.group}.url")
            if time.monotonic() > deadline:
                raise _Incomplete(f"download of {url} passed its deadline (runtime.download_deadline_s) "
                                  f"after {size / 2**20:.1f} MiB")
    if length is not None and size != int(length):
        raise _Incomplete(f"download of {url} stopped after {size} of {length} bytes")
    return md5.hexdigest()


def download(url: str, md5: str, dest: Path, limits: Limits, progress=None,
             expected: Expected = CIFAR10) -> None:
    """Download `url` to `dest` (atomically), retrying with exponential backoff, then verify its md5.

    No try may exceed `limits.max_bytes`, and all tries together stop at `limits.deadline_s`: a wrong URL
    or a misbehaving server can neither fill the disk nor hang the stage.
    """
    deadline = time.monotonic() + limits.deadline_s

    def once(tmp: Path) -> str:
        try:
            return _fetch_once(url, tmp, limits, deadline, progress or sys.stderr, expected)
        except urllib.error.HTTPError as err:
            if err.code == 404:  # not there: no retry finds it
                raise StopTrying() from err
            raise

    with atomic_path(dest) as tmp:
        try:  # timeouts are OSErrors
            actual = retried(lambda: once(tmp), Backoff(limits.tries, limits.backoff_s), deadline=deadline,
                             retry_on=(urllib.error.URLError, OSError, _Incomplete))
        except GaveUp as gave_up:
            raise DataError(f"{_local_hint(url, expected)} Last error after {gave_up.tries} attempt(s): "
                            f"{gave_up.error}") from None
        if actual != md5.lower():
            raise mismatch(url, md5, actual, expected)
