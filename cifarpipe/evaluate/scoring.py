"""Predictions of a model over a loader, and the loss and accuracy they score: used by training (one test pass
per epoch) and by the evaluate stage."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..compute.device import Compute


@torch.no_grad()
def predict_logits(model, loader, compute: Compute, *, tta_flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits fp32, labels) for every batch of an un-augmented loader, left on the loader's device.

    With `tta_flip`, the logits are the mean over the image and its horizontal mirror.
    """
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        with compute.autocast():
            out = model(x).float()
            if tta_flip:
                out = (out + model(x.flip(3)).float()) / 2
        logits.append(out)
        labels.append(y)
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy; one device-to-host sync."""
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(1) == labels).float().mean()
    loss, acc = torch.stack([loss, acc]).tolist()
    return loss, acc
