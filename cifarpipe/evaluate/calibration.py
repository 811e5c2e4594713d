"""How far the network's confidence can be trusted: ECE, NLL and Brier score, before and after temperature
scaling (docs/design.md, "Calibration", says how each is computed)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def bin_table(probs: np.ndarray, labels: np.ndarray, bins: int) -> list[dict]:
    """Per confidence bin: its range, the images in it, their mean confidence and their accuracy."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    rows = []
    for i in range(bins):
        inside = index == i
        n = int(inside.sum())
        rows.append({"bin": i, "low": i / bins, "high": (i + 1) / bins, "images": n,
                     "confidence": float(confidence[inside].mean()) if n else None,
                     "accuracy": float(correct[inside].mean()) if n else None})
    return rows


def ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    table = bin_table(probs, labels, bins)
    return float(sum(r["images"] * abs(r["accuracy"] - r["confidence"]) for r in table
                     if r["images"])) / len(labels)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(labels)), labels].mean())


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(1).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) on these images (a search over log T)."""
    found = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(-3.0, 3.0),
                            method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def cross_fitted(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of every image, each from a T fitted on the other half of the images."""
    halves = [np.arange(len(labels))[k::2] for k in (0, 1)]
    probs = np.empty_like(logits, dtype=np.float64)
    for fit, score in (halves, halves[::-1]):
        probs[score] = softmax(logits[score] / fit_temperature(logits[fit], labels[fit]), axis=1)
    return probs


@dataclass(frozen=True)
class Calibration:
    """The scores before and after temperature scaling (cross-fitted), the T kept for new images, the bins."""

    ece: float
    ece_calibrated: float
    nll: float
    nll_calibrated: float
    brier: float
    brier_calibrated: float
    temperature: float
    bins: list[dict]

    def scores(self) -> dict:
        """Every number but the bins."""
        return {k: v for k, v in asdict(self).items() if k != "bins"}


def calibration(logits: np.ndarray, labels: np.ndarray, bins: int) -> Calibration:
    logits = np.asarray(logits, dtype=np.float64)
    probs, calibrated = softmax(logits, axis=1), cross_fitted(logits, labels)
    return Calibration(
        ece=ece(probs, labels, bins), ece_calibrated=ece(calibrated, labels, bins), nll=nll(logits, labels),
        nll_calibrated=float(-np.log(calibrated[np.arange(len(labels)), labels] + 1e-12).mean()),
        brier=brier(probs, labels), brier_calibrated=brier(calibrated, labels),
        temperature=fit_temperature(logits, labels), bins=bin_table(probs, labels, bins))
