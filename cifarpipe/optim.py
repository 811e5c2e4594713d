"""The optimizers of the recipe: Adam (the seeds' choice) or SGD with Nesterov momentum."""
from __future__ import annotations

import torch


def make_optimizer(model: torch.nn.Module, optim: dict, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam (beta1 = optim.momentum) or SGD (momentum, Nesterov); fused kernels on CUDA."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if optim["name"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(optim["momentum"], 0.999),
                                weight_decay=optim["weight_decay"], **fused)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=optim["momentum"], nesterov=optim["nesterov"],
                           weight_decay=optim["weight_decay"], **fused)
