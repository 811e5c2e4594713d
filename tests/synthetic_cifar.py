"""Tiny CIFAR-10 archives in the official layout, with images a small network learns in a few steps.

Classes come in pairs of one colour; within a pair, the stripes run across or down. Colour is learned in
a few steps, stripe direction more slowly, so a short CPU run beats chance by far yet still makes
mistakes for the gallery and GradCAM to show.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def make_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32, 3) uint8 images and their labels 0..9, balanced."""
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    palette = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [128, 128, 128]], float)
    yy, xx = np.mgrid[0:32, 0:32]
    stripes = [np.sin(yy / 1.5), np.sin(xx / 1.5)]
    images = palette[labels // 2][:, None, None, :] + 25 * np.stack([stripes[c % 2]
                                                                     for c in labels])[..., None]
    images += rng.normal(0, 40, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def batch_bytes(x: np.ndarray, y: np.ndarray, label: str) -> bytes:
    """One batch pickled like the official files read with encoding="bytes" (bytes keys, CHW rows)."""
    return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                         b"data": np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072)),
                         b"filenames": [f"img_{i}.png".encode() for i in range(len(x))]}, protocol=2)


def archive_files(n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, bytes]:
    """{member name under cifar-10-batches-py/: bytes} for a complete archive."""
    rng = np.random.default_rng(seed)
    x_train, y_train = make_images(n_train, rng)
    x_test, y_test = make_images(n_test, rng)
    files = {"batches.meta": pickle.dumps({b"label_names": [c.encode() for c in CLASSES],
                                           b"num_cases_per_batch": n_train // 5, b"num_vis": 3072},
                                           protocol=2)}
    for i, part in enumerate(np.array_split(np.arange(n_train), 5)):
        files[BATCHES[i]] = batch_bytes(x_train[part], y_train[part], f"training batch {i + 1} of 5")
    files["test_batch"] = batch_bytes(x_test, y_test, "testing batch 1 of 1")
    return files


def write_tar_gz(path: Path, members: dict[str, bytes], prefix: str = "cifar-10-batches-py/") -> str:
    """Write members into a .tar.gz; return its md5."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_archive(path: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> str:
    """A complete tiny CIFAR-10 archive at `path`; returns its md5."""
    return write_tar_gz(path, archive_files(n_train, n_test, seed))
