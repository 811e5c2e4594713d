"""The evaluate stage's pictures: confusion matrix, per-class accuracy, the gallery of misclassified
images."""
from __future__ import annotations

import numpy as np

from ..figures.common import image_grid, plt

# One orientation for both confusion matrices, DVC's chart (dvc.yaml: x predicted, y actual) and this PNG:
# the true class down the side, the predicted class along the top, as scikit-learn draws it.
CONFUSION_X, CONFUSION_Y = "predicted", "actual"


def confusion_figure(confusion: np.ndarray, classes: list[str]):
    """counts[true, predicted] with the true class on the y axis and the predicted class on the x axis."""
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel(CONFUSION_X)
    ax.set_ylabel(CONFUSION_Y)
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > confusion.max() / 2 else "black")
    fig.colorbar(im)
    fig.tight_layout()
    return fig


def per_class_figure(accuracy: np.ndarray, classes: list[str], target: float):
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(classes, accuracy)
    ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.0%}")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    fig.tight_layout()
    return fig


def misclassified_figure(images: np.ndarray, labels, preds, probs, classes: list[str], wrong_in_all: int):
    """The first misclassified test images, each with its true class, the predicted one and its
    probability."""
    titles = [f"true {classes[t]}\npred {classes[p]} ({q:.0%})" for t, p, q in zip(labels, preds, probs)]
    return image_grid(images, titles, cols=5,
                      suptitle=f"misclassified test images ({len(images)} of {wrong_in_all})")


def reliability_figure(calibrated):
    """Accuracy against confidence per bin, with the diagonal of a calibrated network and the share of
    images."""
    used = [b for b in calibrated.bins if b["images"]]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    width = used[0]["high"] - used[0]["low"] if used else 0.1
    ax.bar([b["low"] for b in used], [b["accuracy"] for b in used], width=width, align="edge",
           edgecolor="black", label="accuracy in the bin")
    ax.bar([b["low"] for b in used], [b["confidence"] - b["accuracy"] for b in used], width=width,
           align="edge", bottom=[b["accuracy"] for b in used], color="tab:red", alpha=0.3,
           label="gap to the confidence")
    ax.plot([0, 1], [0, 1], "k--", label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {calibrated.ece:.2%}, {calibrated.ece_calibrated:.2%} after temperature scaling "
                 f"(T {calibrated.temperature:.2f})", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig

