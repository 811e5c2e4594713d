"""The training curves, drawn after training from the train stage's per-epoch history."""
from __future__ import annotations

from .common import plt


def training_curves(history: list[dict]):
    """Loss, accuracy (train vs test) and LR per epoch, side by side."""
    epochs = [h["epoch"] for h in history]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, label in ((a, "loss", "loss"), (b, "acc", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], marker="o", label="train")
        ax.plot(epochs, [h[f"test_{key}"] for h in history], marker="o", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    c.plot(epochs, [h["lr"] for h in history], marker="o")
    c.set_xlabel("epoch")
    c.set_ylabel("learning rate (last step of the epoch)")
    fig.tight_layout()
    return fig
