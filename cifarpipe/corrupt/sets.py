"""The corrupted sets as the corrupt stage writes them: made from the test images, over a pool of processes,
and fingerprinted, so that a comparison of two revisions can check that both scored the same sets."""
from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .corruptions import corrupt, stream


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_CLEAN: dict = {}  # a worker's clean images and seed, handed over once when it starts


def _keep(clean: np.ndarray, seed: int) -> None:
    _CLEAN.update(clean=clean, seed=seed)


def _one_thread_each(clean: np.ndarray, seed: int) -> None:
    """A worker's start: its clean images, and OpenCV and ImageMagick on one thread each, since the pool
    already takes every core (their threads would only wait on each other; no pixel depends on them)."""
    import cv2

    cv2.setNumThreads(1)
    try:
        from wand.resource import limits
        limits["thread"] = 1
    except ImportError:  # no ImageMagick: no corruption that needs it was asked for (require() said so)
        pass
    _keep(clean, seed)


def _one_set(name: str, severity: int) -> np.ndarray:
    clean, seed = _CLEAN["clean"], _CLEAN["seed"]
    return corrupt(clean, name, severity, stream(seed, name, severity))


def make_sets(clean: np.ndarray, names: list[str], severities: list[int], seed: int,
              workers: int = 1) -> np.ndarray:
    """(corruptions, severities, N, H, W, 3) uint8: `clean` under each corruption at each severity, each from
    the stream its name, the severity and `seed` choose, made on `workers` processes (1: in this one).

    Each set draws only from its own stream, so where it is made cannot change a byte of it."""
    jobs = [(name, severity) for name in names for severity in severities]
    out = np.empty((len(names), len(severities), *clean.shape), np.uint8)
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        _keep(clean, seed)
        pool = contextlib.nullcontext(None)
    else:  # forked where the OS can: the workers inherit the imports and the checks already done
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_one_thread_each, initargs=(clean, seed))
    with pool as running:
        made = (running.map if running else map)(_one_set, *zip(*jobs))
        for k, result in enumerate(made):
            out[k // len(severities), k % len(severities)] = result
    return out


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
