"""The robustness stage's picture: accuracy for every corruption and severity."""
from __future__ import annotations

import numpy as np

from ..figures.common import plt


def headline(result: dict) -> str:
    """The benchmark's mean and the extras' as one phrase, saying when the benchmark's is not all 15 x 5."""
    def percent(v):
        return "n/a" if v is None else f"{v:.1%}"
    partial = "" if result["corrupt_acc_complete"] else " (not all 15 x 5)"
    return f"benchmark {percent(result['corrupt_acc'])}{partial}, extras {percent(result['extras_acc'])}"


def heatmap_figure(result: dict, clean_acc: float):
    names, severities = list(result["accuracy"]), result["severities"]
    grid = np.array([result["accuracy"][n] for n in names])
    fig, ax = plt.subplots(figsize=(1.2 * len(severities) + 3.5, 0.42 * len(names) + 1.6))
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=max(clean_acc, grid.max()), aspect="auto")
    ax.set_xticks(range(len(severities)), [str(s) for s in severities])
    ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax.set_xlabel("severity")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, label="test accuracy")
    ax.set_title(f"accuracy under corruption: {headline(result)} (clean {clean_acc:.1%}); {result['images']} "
                 "images per cell", fontsize=9)
    fig.tight_layout()
    return fig
