"""The published CIFAR-10-C as the corrupted sets (corrupt.source: published): the archive at corrupt.url,
checked like the CIFAR-10 one (md5, members, shapes) and read in place, only the rows the params ask for.

Its layout: CIFAR-10-C.tar holds CIFAR-10-C/<corruption>.npy, each (5 x K, 32, 32, 3) uint8, the K test images
at severity 1, then 2, ... 5 (K = 10,000), and CIFAR-10-C/labels.npy, their K labels five times over.
"""
from __future__ import annotations

import contextlib
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zlib
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from ..core.errors import DataError
from ..core.params import IMAGE_SIZE
from ..download.archive import check_member
from ..download.fetch import Expected, Limits, download, file_md5, mismatch

FOLDER = "CIFAR-10-C"
LABELS = "labels.npy"
SEVERITIES = 5
ARCHIVE_BYTES = 2_918_471_680  # the published CIFAR-10-C.tar (Zenodo record 2535967)
PUBLISHED = Expected(f"the CIFAR-10-C archive ({ARCHIVE_BYTES / 2**30:.1f} GiB)", "CIFAR-10-C.tar", "corrupt")
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3


@contextlib.contextmanager
def _local_archive(url: str, md5: str, runtime, folder: Path):
    """The archive as a local file whose md5 has been checked: a file:// URL read in place (no 2.7 GiB copy),
    anything else downloaded beside the output and deleted afterwards."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.request.url2pathname(parts.path))
        if not path.is_file():
            raise DataError(f"corrupt.url {url}: no such file. Download {PUBLISHED.file} there, or point "
                            "corrupt.url at it")
        actual = file_md5(path)
        if actual != md5.lower():
            raise mismatch(url, md5, actual, PUBLISHED)
        yield path
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # on the output's disk, gone on failure
        path = Path(tmp) / PUBLISHED.file
        # the published archive is larger than the CIFAR-10 guard: it may be as large as itself, never larger
        limits = Limits.of(runtime)
        download(url, md5, path, replace(limits, max_bytes=max(limits.max_bytes, ARCHIVE_BYTES)),
                 expected=PUBLISHED)
        yield path


def _header(f, name: str, size: int) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, offset of the data) of the .npy file `f` of `size` bytes, or the one-line error."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(f)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{FOLDER}/{name} in the archive is not a readable .npy file ({err})") from None
    if fortran:
        raise DataError(f"{FOLDER}/{name} is stored in Fortran order, not as the published set")
    if size != f.tell() + int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{FOLDER}/{name} in the archive is truncated: download it again")
    return shape, dtype, f.tell()


def _read_rows(f, offset: int, start: int, rows: int, row_bytes: int, dtype, name: str) -> np.ndarray:
    f.seek(offset + start * row_bytes)
    raw = f.read(rows * row_bytes)
    if len(raw) != rows * row_bytes:
        raise DataError(f"{FOLDER}/{name} in the archive is truncated")
    return np.frombuffer(raw, dtype)


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    found = {}
    for member in tar:
        check_member(member)
        path = PurePosixPath(member.name)
        if member.isfile() and len(path.parts) == 2 and path.parts[0] == FOLDER:
            found[path.name] = member
    return found


def read_archive(archive: Path, names: list[str], severities: list[int], images: int) -> tuple:
    """(x (corruptions, severities, images, 32, 32, 3) uint8, y (images,) int64): the first `images` of each
    severity's block of each corruption's .npy, after checking every member, shape and label."""
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError):
        raise DataError(f"{archive.name} is not a tar archive: check corrupt.url points at {PUBLISHED.file}"
                        ) from None
    with tar:
        try:
            members = _members(tar)
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise DataError(f"{archive.name} is truncated or damaged ({err}): download it again") from None
        missing = [n for n in [LABELS] + [f"{name}.npy" for name in names] if n not in members]
        if missing:
            raise DataError(f"the archive lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}: it is not the "
                            f"published CIFAR-10-C (or take those corruptions out of corrupt.corruptions)")
        f = tar.extractfile(members[LABELS])
        shape, dtype, offset = _header(f, LABELS, members[LABELS].size)
        if len(shape) != 1 or dtype.kind not in "iu" or shape[0] % SEVERITIES or not shape[0]:
            raise DataError(f"{FOLDER}/{LABELS} has shape {shape} and dtype {dtype}, expected (5 x K,) "
                            "integers")
        per_severity = shape[0] // SEVERITIES
        if images > per_severity:
            raise DataError(f"corrupt.images = {images}, but the archive holds {per_severity} images per "
                            f"severity: set corrupt.images to at most {per_severity}")
        labels = _read_rows(f, offset, 0, shape[0], dtype.itemsize, dtype, LABELS).reshape(SEVERITIES, -1)
        if (labels != labels[0]).any() or labels.min() < 0 or labels.max() > 9:
            raise DataError(f"{FOLDER}/{LABELS}: the five severities' labels differ or leave 0..9: not the "
                            "published layout")
        sets = np.empty((len(names), len(severities), images, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for i, name in enumerate(names):
            f = tar.extractfile(members[f"{name}.npy"])
            shape, dtype, offset = _header(f, f"{name}.npy", members[f"{name}.npy"].size)
            if shape != (SEVERITIES * per_severity, IMAGE_SIZE, IMAGE_SIZE, 3) or dtype != np.uint8:
                raise DataError(f"{FOLDER}/{name}.npy has shape {shape} and dtype {dtype}, expected "
                                f"({SEVERITIES * per_severity}, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) uint8 like "
                                f"{LABELS}")
            for k, severity in enumerate(severities):
                rows = _read_rows(f, offset, (severity - 1) * per_severity, images, IMAGE_BYTES, np.uint8,
                                  f"{name}.npy")
                sets[i, k] = rows.reshape(images, IMAGE_SIZE, IMAGE_SIZE, 3)
    return sets, labels[0, :images].astype(np.int64)


def published_sets(url: str, md5: str, names: list[str], severities: list[int], images: int, runtime,
                   folder: Path) -> tuple:
    """The sets read from the CIFAR-10-C archive at `url` (md5 `md5`): see read_archive."""
    with _local_archive(url, md5, runtime, folder) as archive:
        return read_archive(archive, names, severities, images)
