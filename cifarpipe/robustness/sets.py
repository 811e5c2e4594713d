"""Which corrupted sets a model was scored on: a fingerprint of their images, labels and names."""
from __future__ import annotations

import hashlib

import numpy as np


def fingerprint(images: np.ndarray, labels: np.ndarray, corruptions: list[str], severities: list[int]) -> str:
    """16 hex digits that change whenever one pixel, label, corruption or severity does."""
    digest = hashlib.sha256()
    for part in (np.ascontiguousarray(images), np.ascontiguousarray(labels)):
        digest.update(memoryview(part).cast("B"))
    digest.update(repr((list(corruptions), list(severities), images.shape)).encode())
    return digest.hexdigest()[:16]
