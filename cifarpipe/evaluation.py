"""Predictions and the numbers computed from them: loss, accuracy, per-class accuracy, confusion matrix."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .device import Compute


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


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels, preds), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    totals = confusion.sum(1)
    return np.divide(np.diag(confusion), totals, out=np.zeros(len(totals)), where=totals > 0)
