"""The LR range test (torch-lr-finder) that picks LRMAX for the one-cycle schedule.

The suggestion is torch-lr-finder's: the LR where the smoothed loss falls fastest (steepest negative
gradient). A loss that turns NaN/inf stops the test cleanly; the curve up to that point is kept.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch_lr_finder import LRFinder, TrainDataLoaderIter

from .errors import PipelineError


class _LossBecameNonFinite(Exception):
    pass


def _criterion(logits, labels):
    loss = F.cross_entropy(logits.float(), labels)
    if not torch.isfinite(loss):
        raise _LossBecameNonFinite
    return loss


def range_test(model, optimizer, loader, *, start_lr: float, end_lr: float, iterations: int, smooth: float,
               diverge: float, skip_start: int, skip_end: int, bf16: bool) -> dict:
    """Run the range test; return {"lr": [...], "loss": [...], "suggested_lr": float, "stopped": str}.

    The suggestion ignores the first `skip_start` and last `skip_end` points (noisy warm-up, divergence).
    """
    device = next(model.parameters()).device
    amp = {}
    if device.type == "cuda" and bf16:
        amp = {"amp_backend": "torch", "amp_config": {"device_type": "cuda", "dtype": torch.bfloat16},
               "grad_scaler": torch.amp.GradScaler("cuda", enabled=False)}
    finder = LRFinder(model, optimizer, _criterion, device=device, **amp)
    stopped = "completed"
    try:
        finder.range_test(TrainDataLoaderIter(loader), start_lr=start_lr, end_lr=end_lr, num_iter=iterations,
                          smooth_f=smooth, diverge_th=diverge)
    except _LossBecameNonFinite:
        stopped = "loss became NaN/inf"
    lrs, losses = list(finder.history["lr"]), list(finder.history["loss"])
    if stopped == "completed" and len(lrs) < iterations:
        stopped = "loss diverged"
    finder.reset()
    if len(lrs) < skip_start + skip_end + 2:
        raise PipelineError(f"the LR range test stopped after {len(lrs)} steps ({stopped}), too few to suggest an "
                           f"LR (needs {skip_start + skip_end + 2}): lower lr_find.start_lr or raise "
                           "lr_find.iterations, or set optim.lr to a number")
    fig, ax = plt.subplots(figsize=(6, 4))
    _, suggested = finder.plot(skip_start=skip_start, skip_end=skip_end, log_lr=True, ax=ax, suggest_lr=True)
    plt.close(fig)
    return {"lr": lrs, "loss": losses, "suggested_lr": float(suggested), "stopped": stopped,
            "skip": (skip_start, skip_end)}


def plot_range_test(result: dict):
    """The loss-vs-LR curve on a log axis with the suggested LR marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lrs, losses = np.array(result["lr"]), np.array(result["loss"])
    keep = slice(result["skip"][0], len(lrs) - result["skip"][1])
    ax.plot(lrs[keep], losses[keep], label="smoothed training loss")
    ax.axvline(result["suggested_lr"], color="tab:red", linestyle="--",
               label=f"suggested LRMAX = {result['suggested_lr']:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test ({result['stopped']})")
    ax.legend()
    return fig
