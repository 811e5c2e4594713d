"""What every picture shares: the headless backend, atomic PNG writing, image grids, undoing normalisation."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..core.artifacts import atomic_path  # noqa: E402


def save_figure(fig, target, dpi: int = 100) -> None:
    """A matplotlib figure to a PNG file, atomically; the figure is closed."""
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def denormalize(x: np.ndarray, mean, std) -> np.ndarray:
    """Normalised (N, 3, H, W) floats -> (N, H, W, 3) floats in 0..1, for display."""
    x = x * np.asarray(std).reshape(1, 3, 1, 1) + np.asarray(mean).reshape(1, 3, 1, 1)
    return np.clip(x.transpose(0, 2, 3, 1), 0, 1)


def image_grid(images: np.ndarray, titles: list[str], cols: int = 8, suptitle: str = ""):
    """(N, H, W, 3) images in 0..1 or uint8, each with a title, in a grid."""
    rows = max(1, math.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if len(images) == 0:
        axes[0, 0].text(0, 0.5, "none", fontsize=12)
    for ax, img, title in zip(axes.flat, images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
