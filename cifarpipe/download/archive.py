"""Check and parse the CIFAR-10 archive ("python version") into arrays, running none of its code.

Every member is checked before anything is written; batches are unpickled from memory as numpy arrays only."""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..core.errors import DataError
from ..core.params import IMAGE_SIZE

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ROOT = "cifar-10-batches-py"
PIXELS = 3 * IMAGE_SIZE * IMAGE_SIZE


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts, lists, strings, numpy arrays) and refuses everything else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               # protocol-2 pickles written by Python 3 wrap raw bytes in codecs.encode
               ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DataError(f"archive batch wants to load {module}.{name}: refused (only numpy arrays are "
                        "allowed)")


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


def check_member(member: tarfile.TarInfo) -> None:
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
                check_member(member)
                if member.name in wanted:
                    found[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{archive.name} is truncated or not a gzip-compressed tar archive ({err}). "
                        "Delete it and download again, or check data.url points at "
                        "cifar-10-python.tar.gz.") from None
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
    # rows hold the R, G and B planes one after the other: (N, 3, H, W) -> NHWC
    return data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1), labels


def parse_archive(archive: Path) -> dict[str, np.ndarray]:
    """Parse a verified archive into arrays: x_train (N,32,32,3) uint8, y_train, x_test, y_test, classes."""
    members = read_archive_members(archive)
    names = _unpickle(members[META], META).get("label_names")
    if not names:
        raise DataError(f"{ROOT}/{META} lacks 'label_names'")
    classes = np.array([n.decode() if isinstance(n, bytes) else str(n) for n in names])
    train = [_images_labels(_unpickle(members[b], b), b, len(classes)) for b in TRAIN_BATCHES]
    x_test, y_test = _images_labels(_unpickle(members[TEST_BATCH], TEST_BATCH), TEST_BATCH, len(classes))
    return {"x_train": np.concatenate([x for x, _ in train]),
            "y_train": np.concatenate([y for _, y in train]), "x_test": np.ascontiguousarray(x_test),
            "y_test": y_test, "classes": classes}
