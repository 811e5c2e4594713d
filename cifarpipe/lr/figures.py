"""The LR range test's picture, drawn by the lr_pick stage."""
from __future__ import annotations

import numpy as np

from ..figures.common import plt
from .rules import LRMIN_RULES, RULES


def range_test_figure(lrs, losses, picked, pick_cfg, stopped: str):
    """The curve on a log axis, with the minimum, the chosen LRMAX and LRMIN, and the rules that chose
    them."""
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    kept = np.zeros(len(lrs), bool)
    kept[pick_cfg.skip_start:len(lrs) - pick_cfg.skip_end] = True
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(lrs, losses, color="lightgrey", label="skipped points")
    ax.plot(np.where(kept, lrs, np.nan), np.where(kept, losses, np.nan), color="tab:blue",
            label="smoothed training loss")
    ax.plot(picked.loss_min_lr, picked.loss_min, "o", color="black",
            label=f"loss minimum {picked.loss_min:.3f} at {picked.loss_min_lr:.2e}")
    rule = RULES[picked.rule].label.format(**pick_cfg.model_dump())
    rule += ", as a fallback: the loss was still falling" if picked.fallback else ""
    lrmin_rule = LRMIN_RULES[pick_cfg.lrmin].format(**pick_cfg.model_dump())
    ax.axvline(picked.lr_max, color="tab:red", linestyle="--",
               label=f"LRMAX = {picked.lr_max:.2e} ({rule})")
    ax.axvline(picked.lr_min, color="tab:green", linestyle=":",
               label=f"LRMIN = {picked.lr_min:.2e} ({lrmin_rule})")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test: {len(lrs)} steps, {stopped}; LRMAX rule: {picked.rule}", fontsize=10)
    if picked.still_falling:
        ax.text(0.02, 0.03, "the loss was still falling at the last LR: raise lr_find.end_lr",
                color="tab:red", transform=ax.transAxes, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fixed_lr_figure(lr_max: float, lr_min: float):
    """What stands in for the curve when optim.lr is set and the range test did not run."""
    fig, ax = plt.subplots(figsize=(8, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, f"No LR range test: optim.lr is set.\nLRMAX = optim.lr = {lr_max:.3g}, "
            f"LRMIN = LRMAX / schedule.lrmin_div = {lr_min:.3g}", ha="center", va="center", fontsize=11)
    return fig
