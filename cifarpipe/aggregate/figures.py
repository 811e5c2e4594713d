"""The training curves over the seeds, drawn by the aggregate stage from what train logged."""
from __future__ import annotations

import pandas as pd

from ..figures.common import plt


def training_curves(history: pd.DataFrame):
    """Loss, accuracy (train and test) and LR per epoch: the mean over the seeds, and their min-max band."""
    seeds = history["seed"].nunique()
    over = history.groupby("epoch")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = ((axes[0], ["train_loss", "test_loss"], "loss"), (axes[1], ["train_acc", "test_acc"],
                                                               "accuracy"),
              (axes[2], ["lr"], "learning rate (last step of the epoch)"))
    for ax, metrics, label in panels:
        for metric in metrics:
            line = over[metric].mean()
            ax.plot(line.index, line, marker="o", label=metric.replace("_", " "))
            if seeds > 1:
                ax.fill_between(line.index, over[metric].min(), over[metric].max(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if len(metrics) > 1:
            ax.legend()
    fig.suptitle(f"mean over {seeds} seeds, shaded from the lowest to the highest" if seeds > 1
                 else "one seed")
    fig.tight_layout()
    return fig
