"""The optimizers: Adam (the reference recipe's) or SGD with Nesterov momentum; fused kernels on CUDA."""
from __future__ import annotations

import torch

from ..core.params import choose


def adam(params, optim, lr: float, fused: dict) -> torch.optim.Optimizer:
    """Adam with betas (optim.momentum, optim.beta2)."""
    return torch.optim.Adam(params, lr=lr, betas=(optim.momentum, optim.beta2),
                            weight_decay=optim.weight_decay, **fused)


def sgd(params, optim, lr: float, fused: dict) -> torch.optim.Optimizer:
    """SGD with optim.momentum, Nesterov when optim.nesterov."""
    return torch.optim.SGD(params, lr=lr, momentum=optim.momentum, nesterov=optim.nesterov,
                           weight_decay=optim.weight_decay, **fused)


OPTIMIZERS = {"adam": adam, "sgd": sgd}


def make_optimizer(model: torch.nn.Module, optim, lr: float,
                   device: torch.device) -> torch.optim.Optimizer:
    """The optim.name optimizer over the model's parameters, at `lr` (the schedule sets it per step)."""
    build = choose(OPTIMIZERS, "optim.name", optim.name)
    return build(model.parameters(), optim, lr, {"fused": True} if device.type == "cuda" else {})
