"""Pictures for people: training curves, sample grids, confusion matrix, galleries. Headless (Agg)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


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


def training_curves(history: list[dict]):
    """Loss, accuracy (train vs test) and LR per epoch, side by side."""
    epochs = [h["epoch"] for h in history]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, label in ((a, "loss", "loss"), (b, "acc", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], marker="o", label="train")
        ax.plot(epochs, [h[f"test_{key}"] for h in history], marker="o", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    c.plot(epochs, [h["lr"] for h in history], marker="o")
    c.set_xlabel("epoch")
    c.set_ylabel("learning rate (last step of the epoch)")
    fig.tight_layout()
    return fig


def confusion_figure(confusion: np.ndarray, classes: list[str]):
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
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


def cam_grid(image: np.ndarray, rows: list[tuple[str, list[tuple[str, np.ndarray]]]], title: str):
    """One row per explained class: the image, then each (label, overlay) of that row."""
    cols = 1 + max(len(overlays) for _, overlays in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.1 * cols, 2.3 * len(rows)), squeeze=False)
    for ax_row, (row_label, overlays) in zip(axes, rows):
        ax_row[0].imshow(image)
        ax_row[0].set_title(row_label, fontsize=8)
        for ax, (label, overlay) in zip(ax_row[1:], overlays):
            ax.imshow(overlay)
            ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


RULE_LABELS = {"minimum": "LR at the loss minimum / {min_div:g}", "valley": "fastai's valley",
               "steepest": "steepest descent (torch-lr-finder)"}


def range_test_figure(lrs, losses, picked: dict, pick_cfg: dict, stopped: str):
    """The LR range test's curve on a log axis, with the minimum, the chosen LRMAX and LRMIN, and the rule."""
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    kept = np.zeros(len(lrs), bool)
    kept[pick_cfg["skip_start"]:len(lrs) - pick_cfg["skip_end"]] = True
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(lrs, losses, color="lightgrey", label="skipped points")
    ax.plot(np.where(kept, lrs, np.nan), np.where(kept, losses, np.nan), color="tab:blue",
            label="smoothed training loss")
    ax.plot(picked["loss_min_lr"], picked["loss_min"], "o", color="black",
            label=f"loss minimum {picked['loss_min']:.3f} at {picked['loss_min_lr']:.2e}")
    rule = RULE_LABELS[picked["rule"]].format(**pick_cfg)
    ax.axvline(picked["lr_max"], color="tab:red", linestyle="--", label=f"LRMAX = {picked['lr_max']:.2e} ({rule})")
    lrmin_rule = (f"loss has made {pick_cfg['fall_frac']:.0%} of its fall" if pick_cfg["lrmin"] == "fall_start"
                  else "LRMAX / schedule.lrmin_div")
    ax.axvline(picked["lr_min"], color="tab:green", linestyle=":", label=f"LRMIN = {picked['lr_min']:.2e} ({lrmin_rule})")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test: {len(lrs)} steps, {stopped}; LRMAX rule: {picked['rule']}", fontsize=10)
    if picked["still_falling"]:
        ax.text(0.02, 0.03, "the loss was still falling at the last LR: raise lr_find.end_lr", color="tab:red",
                transform=ax.transAxes, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
