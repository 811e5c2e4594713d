"""Predictions of a model over a loader or a stream of image batches, and the loss and accuracy they score:
used by training (one test pass per epoch), the evaluate and the robustness stages.

Scoring runs at the forward pass's limit (`cifarpipe bench forward` measures both): no autograd, one autocast
for the whole pass (the weights are cast once), and with the mirror average each batch and its mirror go
through the network as one batch of twice the images."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..compute.device import Compute
from ..data.normalize import Normalize


def forward_logits(model, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """fp32 logits of a batch; with `tta_flip` the mean over each image and its horizontal mirror, both in one
    pass of the network."""
    if not tta_flip:
        return model(x).float()
    both = model(torch.cat([x, x.flip(3)])).float()
    return (both[:len(x)] + both[len(x):]) / 2


@torch.inference_mode()
def predict_logits(model, loader, compute: Compute, *, tta_flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits fp32, labels) for every batch of an un-augmented loader, left on the loader's device.

    With `tta_flip`, the logits are the mean over the image and its horizontal mirror.
    """
    was_training = model.training
    model.eval()
    logits, labels = [], []
    with compute.autocast():
        for x, y in loader:
            logits.append(forward_logits(model, x, tta_flip))
            labels.append(y)
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


@torch.inference_mode()
def predict_images(model, batches: Iterable[np.ndarray], stats: dict, compute: Compute, *,
                   tta_flip: bool) -> np.ndarray:
    """fp32 logits (N, classes) of uint8 NHWC image batches as they come, normalised with `stats` on
    `compute`'s device and memory format, scored as `predict_logits` scores: one batch in memory at a time."""
    model.eval()
    normalize = Normalize(stats["mean"], stats["std"]).to(compute.device)
    logits = []
    with compute.autocast():
        for images in batches:
            x = torch.from_numpy(images).to(compute.device).permute(0, 3, 1, 2)
            x = normalize(x).contiguous(memory_format=compute.memory_format)
            logits.append(forward_logits(model, x, tta_flip).cpu())
    return torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy; one device-to-host sync."""
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(1) == labels).float().mean()
    loss, acc = torch.stack([loss, acc]).tolist()
    return loss, acc
