"""What several stages share: the data they train on, the loaders, the model, in the same way each time."""
from __future__ import annotations

import hashlib
import json

import torch

from . import paths
from .artifacts import read_json, torch_load
from .augment import augment_batch, fill_rgb, normalize
from .data import load_dataset
from .device import Compute, setup_compute
from .loader import DeviceLoader
from .models import build_model


def load_data(params: dict, *, train: bool = True, test: bool = True) -> tuple[dict, dict]:
    """(dataset arrays, channel stats) with the configured subsets of the splits asked for (others left empty)."""
    data = load_dataset(paths.DATASET, params["data"]["train_subset"] if train else 0,
                        params["data"]["test_subset"] if test else 0)
    return data, read_json(paths.STATS)


def compute_and_model(params: dict, *, seeded: bool = True, autocast: bool = True,
                      device: str | None = None) -> tuple[Compute, torch.nn.Module]:
    """The device and precision (backend flags set; torch seeded with train.seed when `seeded`) and a fresh model.

    Stages that only run a trained model pass seeded=False; GradCAM, which computes in fp32, autocast=False:
    then they neither read nor declare train.seed or train.precision. `device` overrides train.device (a rank
    of a distributed run trains on its own GPU).
    """
    t = params["train"]
    compute = setup_compute(device=device or t["device"], precision=t["precision"] if autocast else "fp32",
                            channels_last=t["channels_last"], deterministic=t["deterministic"],
                            seed=t["seed"] if seeded else None)
    model = build_model(params["model"]["name"]).to(compute.device, memory_format=compute.memory_format)
    return compute, model


def augment_settings(params: dict, stats: dict) -> dict:
    """The augment params as `augment_batch` takes them, with the fill resolved to an RGB colour."""
    return {**params["augment"], "fill": fill_rgb(params["augment"]["fill"], stats["mean"])}


def train_loader(params, data, stats, compute: Compute, shard: tuple[int, int] = (0, 1)) -> DeviceLoader:
    """Shuffled, augmented training batches drawn from their own generator, seeded with train.seed.

    `shard=(rank, world)`: every rank draws the same batches and yields its slice of each."""
    generator = torch.Generator(device=compute.device).manual_seed(params["train"]["seed"])
    return DeviceLoader(data["x_train"], data["y_train"], mean=stats["mean"], std=stats["std"], device=compute.device,
                        batch_size=params["train"]["batch_size"], channels_last=compute.channels_last,
                        augment=augment_settings(params, stats), generator=generator, shard=shard)


def test_loader(data, stats, compute: Compute, batch_size: int) -> DeviceLoader:
    return DeviceLoader(data["x_test"], data["y_test"], mean=stats["mean"], std=stats["std"], device=compute.device,
                        batch_size=batch_size, channels_last=compute.channels_last)


def test_images(data, stats, compute: Compute, idx) -> torch.Tensor:
    """The test images at `idx`, normalised, on the compute device."""
    x = torch.from_numpy(data["x_test"][idx]).permute(0, 3, 1, 2).to(compute.device)
    mean, std = (torch.tensor(stats[k], device=compute.device) for k in ("mean", "std"))
    return normalize(x, mean, std).contiguous(memory_format=compute.memory_format)


def fingerprint(*parts) -> str:
    """A short hash of JSON-able values: which params and inputs a checkpoint was made with."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def augmented_samples(loader: DeviceLoader, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` training images as the model sees them (augmented, normalised), from their own random stream."""
    g = torch.Generator(device=loader.x.device).manual_seed(seed)
    idx = torch.randperm(len(loader.y), device=loader.x.device, generator=g)[:n]
    x = augment_batch(loader.x[idx], generator=g, **loader.augment)
    return normalize(x, loader.mean, loader.std), loader.y[idx]


def trained_model(params: dict, *, autocast: bool = True) -> tuple[Compute, torch.nn.Module]:
    """The trained weights (loaded with weights_only=True) in a fresh model, in eval mode."""
    compute, model = compute_and_model(params, seeded=False, autocast=autocast)
    model.load_state_dict(torch_load(paths.MODEL, map_location=compute.device))
    return compute, model.eval()
