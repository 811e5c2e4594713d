"""The gradcam stage's picture: one grid per explained image."""
from __future__ import annotations

import numpy as np

from ..figures.common import plt


def cam_grid(image: np.ndarray, rows: dict[str, dict[str, np.ndarray]], title: str):
    """One row per explained class ({row label: {overlay label: overlay}}): the image, then the overlays."""
    cols = 1 + max(len(overlays) for overlays in rows.values())
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.1 * cols, 2.3 * len(rows)), squeeze=False)
    for ax_row, (row_label, overlays) in zip(axes, rows.items()):
        ax_row[0].imshow(image)
        ax_row[0].set_title(row_label, fontsize=8)
        for ax, (label, overlay) in zip(ax_row[1:], overlays.items()):
            ax.imshow(overlay)
            ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
