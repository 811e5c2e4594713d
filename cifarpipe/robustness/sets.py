"""The corrupted sets as the robustness stage reads them: what data/corrupted.npz says it holds, then its
images a batch at a time, straight from the file, never all at once (10,000 images x 19 x 5 sets: 2.9 GB)."""
from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .scores import Layout


def read_layout(path: str | Path) -> tuple[Layout, np.ndarray, str]:
    """(the sets' Layout, the labels of each set's images, the sets' fingerprint), reading no image."""
    with np.load(path) as z:
        names = {k: [str(c) for c in z[k]] for k in ("corruptions", "benchmark", "extras")}
        layout = Layout(**names, severities=[int(s) for s in z["severities"]],
                        scale=[int(s) for s in z["scale"]])
        return layout, z["y"], str(z["fingerprint"])


def image_batches(path: str | Path, batch_size: int, member: str = "x",
                  image_dims: int = 3) -> Iterator[np.ndarray]:
    """The array `member` of the npz at `path` with its leading axes flattened (every set, one after another),
    `batch_size` images of `image_dims` axes at a time, read in order from the file."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{member}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(f)
        if fortran:
            raise DataError(f"{path}: {member} is stored in Fortran order; the corrupt stage writes C order")
        image = shape[len(shape) - image_dims:]
        left, size = math.prod(shape[:len(shape) - image_dims]), dtype.itemsize * math.prod(image)
        while left:
            batch = np.empty((min(batch_size, left), *image), dtype)
            if f.readinto(memoryview(batch).cast("B")) != batch.nbytes:
                raise DataError(f"{path}: {member} is truncated")
            yield batch
            left -= len(batch)
