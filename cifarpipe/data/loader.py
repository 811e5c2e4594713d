"""Batches straight from a data set that lives on the training device (docs/design.md, "Data on the
device")."""
from __future__ import annotations

import numpy as np
import torch
from torch.profiler import record_function

from ..core.seeds import stream_seed
from .augment import augment_batch
from .augment import settings as augment_settings
from .normalize import Normalize

BATCH_PART = "batch (index, augment, normalise)"  # how the step profile (cifarpipe bench profile) names it


def random_streams(seed: int, device="cpu") -> dict[str, torch.Generator]:
    """The batch order's and each augmentation's generator, each seeded from `seed` and its name."""
    return {name: torch.Generator(device=device).manual_seed(stream_seed(seed, name))
            for name in ("order", "crop", "flip", "cutout")}


class DeviceLoader:
    """Iterate (images, labels) batches: float images (B, 3, H, W) normalised with `stats`, and int64 labels,
    on `compute`'s device and memory format.

    With `augment` (the augment params, `fill` as RGB) and a `seed`, batches are shuffled and augmented, the
    order and each augmentation from a stream of their own (cifarpipe/core/seeds.py), so a saved
    `random_state()` replays the same epoch. In a run over several processes (compute.ranks), every rank draws
    the same global batches and yields only its slice of each.
    """

    def __init__(self, x_nhwc: np.ndarray, y: np.ndarray, stats: dict, compute, batch_size: int, *,
                 augment: dict | None = None, seed: int | None = None):
        device = compute.device
        self.x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).to(device)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.normalize = Normalize(stats["mean"], stats["std"]).to(device)
        self.batch_size, self.augment = batch_size, augment
        self.streams = {} if seed is None else random_streams(seed, device)
        self.rank, self.world = compute.ranks.rank, compute.ranks.world
        self.memory_format = compute.memory_format
        n = len(self.y)
        # BatchNorm cannot train on a batch of one image: a lone leftover image is skipped that epoch
        self.stop = n - 1 if augment is not None and n % batch_size == 1 and n > 1 else n

    def __len__(self) -> int:
        return -(-self.stop // self.batch_size)

    def batch_sizes(self) -> list[int]:
        """The distinct sizes of the batches this rank yields in an epoch: the full one, then a partial one
        if any."""
        sizes = {min(self.batch_size, self.stop - start) for start in range(0, self.stop, self.batch_size)}
        return sorted({len(range(self.rank, size, self.world)) for size in sizes}, reverse=True)

    def random_state(self) -> dict:
        """Where each stream stands: saved in a checkpoint, restored by `set_random_state`."""
        return {name: stream.get_state() for name, stream in self.streams.items()}

    def set_random_state(self, state: dict) -> None:
        for name, stream in self.streams.items():
            stream.set_state(state[name])

    def __iter__(self):
        if self.augment is not None:
            order = torch.randperm(len(self.y), device=self.y.device, generator=self.streams["order"])
        else:
            order = torch.arange(len(self.y), device=self.y.device)
        for start in range(0, self.stop, self.batch_size):
            with record_function(BATCH_PART):
                idx = order[start:start + self.batch_size]
                x = self.x[idx]
                if self.augment is not None:
                    x = augment_batch(x, streams=self.streams, **self.augment)
                y = self.y[idx]
                # the whole batch was drawn and augmented, so every rank's stream stays in step
                if self.world > 1:
                    x, y = x[self.rank::self.world], y[self.rank::self.world]
                x = self.normalize(x).contiguous(memory_format=self.memory_format)
            yield x, y


def train_batches(data: dict, stats: dict, compute, *, batch_size: int, augment, seed: int) -> DeviceLoader:
    """Shuffled training batches, augmented as the `augment` params say, from the streams of `seed`."""
    return DeviceLoader(data["x_train"], data["y_train"], stats, compute, batch_size,
                        augment=augment_settings(augment, stats["mean"]), seed=seed)


def test_batches(data: dict, stats: dict, compute, batch_size: int) -> DeviceLoader:
    """The test images in order, normalised, unaugmented."""
    return DeviceLoader(data["x_test"], data["y_test"], stats, compute, batch_size)


def test_images(data: dict, stats: dict, compute, idx) -> torch.Tensor:
    """The test images at `idx`, normalised, on the compute device."""
    x = torch.from_numpy(data["x_test"][idx]).permute(0, 3, 1, 2).to(compute.device)
    normalize = Normalize(stats["mean"], stats["std"]).to(compute.device)
    return normalize(x).contiguous(memory_format=compute.memory_format)
