"""The one normalisation of the pipeline: training, evaluation, GradCAM, export and predict all use it."""
from __future__ import annotations

import torch


class Normalize(torch.nn.Module):
    """uint8 images (N, 3, H, W) -> float32, scaled to 0..1, minus the channel mean, over the channel std."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255 - self.mean) / self.std
