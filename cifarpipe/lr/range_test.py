"""The LR range test (torch-lr-finder): the smoothed training loss while the LR grows exponentially.

Reading LRMAX and LRMIN off the curve is the next stage's (cifarpipe/lr/rules.py), so another rule never repeats
the test. A loss that turns NaN/inf stops the test; the curve up to it is kept.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch_lr_finder import LRFinder, TrainDataLoaderIter

from ..compute.device import Compute


class _LossBecameNonFinite(Exception):
    pass


def _criterion(logits, labels):
    loss = F.cross_entropy(logits.float(), labels)
    if not torch.isfinite(loss):
        raise _LossBecameNonFinite
    return loss


class RangeTest(NamedTuple):
    lr: list[float]
    loss: list[float]  # smoothed
    stopped: str  # why it ended


def range_test(model, optimizer, loader, compute: Compute, cfg) -> RangeTest:
    """The range test as `cfg` (the lr_find params group) says, in the training precision."""
    amp = {}
    if compute.amp_dtype is not None:
        amp = {"amp_backend": "torch", "amp_config": {"device_type": compute.device.type,
                                                      "dtype": compute.amp_dtype},
               "grad_scaler": compute.grad_scaler()}
    finder = LRFinder(model, optimizer, _criterion, device=compute.device, **amp)
    stopped = "completed"
    try:
        finder.range_test(TrainDataLoaderIter(loader), start_lr=cfg.start_lr, end_lr=cfg.end_lr,
                          num_iter=cfg.iterations, smooth_f=cfg.smooth, diverge_th=cfg.diverge)
    except _LossBecameNonFinite:
        stopped = "loss became NaN/inf"
    lrs, losses = list(finder.history["lr"]), list(finder.history["loss"])
    if stopped == "completed" and len(lrs) < cfg.iterations:
        stopped = f"loss passed {cfg.diverge} x its minimum"
    finder.reset()
    return RangeTest(lrs, losses, stopped)
