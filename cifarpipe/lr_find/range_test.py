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


def range_test(model, optimizer, loader, compute: Compute, cfg: dict) -> dict:
    """Run the range test as `cfg` (the lr_find params group) says: the LR from start_lr to end_lr over
    `iterations` steps, the loss smoothed by `smooth`, stopped at `diverge` x its minimum. Returns {"lr":
    [...], "loss": [...] (smoothed), "stopped": why it ended}.

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
        finder.range_test(TrainDataLoaderIter(loader), start_lr=cfg["start_lr"], end_lr=cfg["end_lr"],
                          num_iter=cfg["iterations"], smooth_f=cfg["smooth"], diverge_th=cfg["diverge"])
    except _LossBecameNonFinite:
        stopped = "loss became NaN/inf"
    lrs, losses = list(finder.history["lr"]), list(finder.history["loss"])
    if stopped == "completed" and len(lrs) < cfg["iterations"]:
        stopped = f"loss passed {cfg['diverge']} x its minimum"
    finder.reset()
    return {"lr": lrs, "loss": losses, "stopped": stopped}
