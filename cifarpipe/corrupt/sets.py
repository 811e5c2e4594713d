"""The corrupted sets as the corrupt stage writes them: made from the test images, and fingerprinted, so that
a comparison of two revisions can check that both scored the same sets."""
from __future__ import annotations

import hashlib

import numpy as np

from .corruptions import corrupt, stream


def make_sets(clean: np.ndarray, names: list[str], severities: list[int], seed: int) -> np.ndarray:
    """(corruptions, severities, N, H, W, 3) uint8: `clean` under each corruption at each severity, each from
    the stream its name, the severity and `seed` choose."""
    return np.stack([np.stack([corrupt(clean, name, severity, stream(seed, name, severity))
                               for severity in severities]) for name in names])


def fingerprints(x: np.ndarray, y: np.ndarray, names: list[str], severities: list[int]) -> dict:
    """{"fingerprints": each corruption's sha256 of its name, the severities, the labels and its images;
    "fingerprint": the sha256 of those, in order}: equal fingerprints, equal sets, however they were made."""
    each = []
    for name, sets in zip(names, x):
        digest = hashlib.sha256(f"{name}|{list(map(int, severities))}|{sets.shape}|".encode())
        digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(sets).tobytes())
        each.append(digest.hexdigest())
    return {"fingerprints": np.array(each), "fingerprint": np.array(hashlib.sha256("|".join(
        f"{n}:{d}" for n, d in zip(names, each)).encode()).hexdigest())}
