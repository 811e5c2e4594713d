"""What several stages share: the data they train on, the loaders, the model, in the same way each time."""
from __future__ import annotations

import hashlib
import json

import torch

from . import paths
from .artifacts import read_json, torch_load
from .augment import augment_batch, fill_rgb, normalize
from .data import load_dataset
from .loader import DeviceLoader
from .models import build_model
from .training import resolve_device, setup_backend


def load_data(params: dict) -> tuple[dict, dict]:
    """(dataset arrays, channel stats) with the configured subsets."""
    data = load_dataset(paths.DATASET, params["data"]["train_subset"], params["data"]["test_subset"])
    return data, read_json(paths.STATS)


def device_and_model(params: dict) -> tuple[torch.device, torch.nn.Module]:
    """The device, seeded, and a fresh model on it (channels_last on CUDA when asked)."""
    device = resolve_device(params["train"]["device"])
    setup_backend(device, params["train"]["seed"])
    model = build_model(params["model"]["name"]).to(device)
    if _channels_last(params, device):
        model = model.to(memory_format=torch.channels_last)
    return device, model


def augment_settings(params: dict, stats: dict) -> dict:
    """The augment params as `augment_batch` takes them, with the fill resolved to an RGB colour."""
    return {**params["augment"], "fill": fill_rgb(params["augment"]["fill"], stats["mean"])}


def train_loader(params, data, stats, device, generator) -> DeviceLoader:
    """Shuffled, augmented training batches drawn from `generator`."""
    return DeviceLoader(data["x_train"], data["y_train"], mean=stats["mean"], std=stats["std"], device=device,
                        batch_size=params["train"]["batch_size"], channels_last=_channels_last(params, device),
                        augment=augment_settings(params, stats), generator=generator)


def test_loader(params, data, stats, device) -> DeviceLoader:
    return DeviceLoader(data["x_test"], data["y_test"], mean=stats["mean"], std=stats["std"], device=device,
                        batch_size=params["train"]["eval_batch_size"], channels_last=_channels_last(params, device))


def seeded_generator(params: dict, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(params["train"]["seed"])


def fingerprint(*parts) -> str:
    """A short hash of JSON-able values: which params and inputs a checkpoint was made with."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _channels_last(params, device) -> bool:
    return device.type == "cuda" and params["train"]["channels_last"]


def augmented_samples(loader: DeviceLoader, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` training images as the model sees them (augmented, normalised), from their own random stream."""
    g = torch.Generator(device=loader.x.device).manual_seed(seed)
    idx = torch.randperm(len(loader.y), device=loader.x.device, generator=g)[:n]
    x = augment_batch(loader.x[idx], generator=g, **loader.augment)
    return normalize(x, loader.mean, loader.std), loader.y[idx]


def trained_model(params: dict) -> tuple[torch.device, torch.nn.Module]:
    """The trained weights (loaded with weights_only=True) in a fresh model, in eval mode."""
    device, model = device_and_model(params)
    model.load_state_dict(torch_load(paths.MODEL, map_location=device))
    return device, model.eval()
