"""The LR range test (torch-lr-finder): the smoothed training loss while the LR grows exponentially.

Reading LRMAX and LRMIN off the curve is a separate, cheap step (`cifarpipe.lr_rules`, stage `lr_pick`),
so trying another rule never repeats the test. A loss that turns NaN/inf stops the test cleanly; the curve
up to that point is kept, and the model and optimizer are restored to their state before the test.
"""
from __future__ import annotations

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


def range_test(model, optimizer, loader, compute: Compute, *, start_lr: float, end_lr: float, iterations: int,
               smooth: float, diverge: float) -> dict:
    """Run the range test; return {"lr": [...], "loss": [...] (smoothed), "stopped": why it ended}.

    The steps run in the training precision: autocast in bf16 or fp16 (with a loss scaler), as training does.
    """
    amp = {}
    if compute.amp_dtype is not None:
        amp = {"amp_backend": "torch", "amp_config": {"device_type": compute.device.type,
                                                      "dtype": compute.amp_dtype},
               "grad_scaler": compute.grad_scaler()}
    finder = LRFinder(model, optimizer, _criterion, device=compute.device, **amp)
    stopped = "completed"
    try:
        finder.range_test(TrainDataLoaderIter(loader), start_lr=start_lr, end_lr=end_lr, num_iter=iterations,
                          smooth_f=smooth, diverge_th=diverge)
    except _LossBecameNonFinite:
        stopped = "loss became NaN/inf"
    lrs, losses = list(finder.history["lr"]), list(finder.history["loss"])
    if stopped == "completed" and len(lrs) < iterations:
        stopped = f"loss passed {diverge} x its minimum"
    finder.reset()
    return {"lr": lrs, "loss": losses, "stopped": stopped}
