"""What a training run is made of, built once for the train stage and the benchmarks alike."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.loader import DeviceLoader, test_batches, train_batches
from ..model.networks import build_model
from .compile import compile_for_training
from .distributed import wrap
from .loop import TrainConfig, fingerprint


@dataclass
class Training:
    """A network, what its steps call (compiled and/or DistributedDataParallel), its batches, its config."""

    model: torch.nn.Module
    step_model: torch.nn.Module
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    config: TrainConfig
    compile_s: float = 0.0


def set_up_training(params, data: dict, stats: dict, compute, *, seed: int, lr_max: float, lr_min: float,
                    checkpoint: str | None = None) -> Training:
    """The run that params (model, augment, optim, schedule, train, runtime) describe, on `compute`."""
    model = build_model(params.model, compute, seed=seed)
    train_loader = train_batches(data, stats, compute, batch_size=params.train.batch_size,
                                 augment=params.augment, seed=seed)
    test_loader = test_batches(data, stats, compute, params.runtime.eval_batch_size)
    step_model, compile_s = wrap(model, compute), 0.0
    if params.compute.compile:
        step_model, compile_s = compile_for_training(step_model, train_loader, compute,
                                                     mode=params.compute.compile_mode)
    config = TrainConfig(optim=params.optim, epochs=params.schedule.epochs,
                         peak_epoch=params.schedule.peak_epoch, lr_max=lr_max, lr_min=lr_min,
                         progress_updates=params.runtime.progress_updates, checkpoint=checkpoint,
                         fingerprint=fingerprint(params.model_dump(), seed, lr_max, lr_min, stats))
    return Training(model, step_model, train_loader, test_loader, config, compile_s)
