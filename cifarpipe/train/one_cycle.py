"""The reference recipe's one-cycle learning-rate policy, without annihilation.

Per optimizer step: linear from LRMIN up to LRMAX at `peak_epoch`, then linear back down to LRMIN at
the last step. The LR never drops below LRMIN (torch's OneCycleLR would anneal to LRMIN / 1e4).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the aggregate stage draws the schedule without loading torch (a second per stage start)
    import torch


def one_cycle_lr(step: int, total_steps: int, peak_step: int, lr_max: float, lr_min: float) -> float:
    """LR for optimizer step `step` (0-based) of `total_steps`; step `peak_step` gets LRMAX."""
    if step <= peak_step:
        frac = step / max(peak_step, 1)
        return lr_min + frac * (lr_max - lr_min)
    frac = (step - peak_step) / max(total_steps - 1 - peak_step, 1)
    return lr_max - min(frac, 1.0) * (lr_max - lr_min)


def schedule_steps(epochs: int, peak_epoch: float, steps_per_epoch: int) -> tuple[int, int]:
    """(total steps, peak step) of a run."""
    return epochs * steps_per_epoch, round(peak_epoch * steps_per_epoch)


def schedule_rows(epochs: int, peak_epoch: float, steps_per_epoch: int, lr_max: float,
                  lr_min: float) -> list[dict]:
    """[{"step", "lr"}] of every optimizer step of a run."""
    total, peak = schedule_steps(epochs, peak_epoch, steps_per_epoch)
    return [{"step": s, "lr": one_cycle_lr(s, total, peak, lr_max, lr_min)} for s in range(total)]


def build_scheduler(optimizer: torch.optim.Optimizer, *, lr_max: float, lr_min: float, epochs: int,
                    peak_epoch: float, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per batch; sets the optimizer's base LR to lr_max."""
    import torch

    total, peak = schedule_steps(epochs, peak_epoch, steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr_max
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: one_cycle_lr(step, total, peak, lr_max, lr_min) / lr_max)
