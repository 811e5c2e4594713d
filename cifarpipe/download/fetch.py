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
    pass


def _fetch_once(url: str, dest: Path, timeout_s: float, max_bytes: int, deadline: float, progress,
                expected: Expected) -> str:
    """Stream `url` into `dest`, drawing a progress bar on `progress` when it is a terminal; return the md5.
    Raises DataError on a short read, an oversized file or a deadline."""
    md5, size = hashlib.md5(), 0
    with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(dest, "wb") as out, \
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
                raise DataError(f"download of {url} passed its deadline (runtime.download_deadline_s) after "
                                f"{size / 2**20:.1f} MiB")
    if length is not None and size != int(length):
        raise DataError(f"download of {url} stopped after {size} of {length} bytes")
    return md5.hexdigest()


def download(url: str, md5: str, dest: Path, timeout_s: float, retries: int, max_bytes: int = 2**30,
             deadline_s: float = 3600, backoff_s: float = 1.0, progress=None,
             expected: Expected = CIFAR10) -> None:
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
                actual = _fetch_once(url, tmp, timeout_s, max_bytes, deadline, progress or sys.stderr,
                                     expected)
                break
            except _TooBig:
                raise
            except (urllib.error.URLError, OSError, DataError) as err:  # timeouts are OSErrors
                last_error = err
                if isinstance(err, urllib.error.HTTPError) and err.code == 404:
                    break
        if actual is None:
            raise DataError(f"{_local_hint(url, expected)} Last error after {attempt + 1} attempt(s): "
                            f"{last_error}")
        if actual != md5.lower():
            raise mismatch(url, md5, actual, expected)
