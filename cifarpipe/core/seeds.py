"""One seed, many streams: each kind of random draw in a run has a generator of its own, seeded by the run's
seed and the stream's name (common random numbers, docs/noise.md). A change that draws more or less from one
stream (cutout 8 -> 0) leaves every other stream as it was, so two runs at one seed differ only by the change."""
from __future__ import annotations

import hashlib

# the initial weights, the batch order and each augmentation's draws
STREAMS = ("weights", "order", "crop", "flip", "cutout")


def stream_seed(seed: int, name: str) -> int:
    """The seed of stream `name` of a run seeded `seed`: 63 bits of SHA-256 of both."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little") >> 1
