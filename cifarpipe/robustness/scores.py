"""What a seed's model does on the corrupted test sets: accuracy per corruption and severity, their mean (the
mean corruption accuracy), per-class accuracy over all of them, and the ECE under corruption with the
temperature fitted on the clean test set (evaluate stage), so it shows whether the clean calibration holds
under shift."""
from __future__ import annotations

import numpy as np
from scipy.special import softmax

from ..calibration.scores import ece


def robustness(logits: np.ndarray, labels: np.ndarray, corruptions: list[str], severities: list[int],
               classes: list[str], temperature: float, bins: int) -> dict:
    """`logits` (corruptions, severities, images, classes) of the images whose classes are `labels`."""
    correct = logits.argmax(-1) == labels
    accuracy = correct.mean(-1)  # (corruptions, severities)
    pooled_labels = np.broadcast_to(labels, correct.shape).reshape(-1)
    pooled = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    return {"images": int(len(labels)), "severities": list(severities),
            "mean_corruption_acc": float(accuracy.mean()),
            "accuracy": {name: [round(float(a), 6) for a in accuracy[i]] for i,
                         name in enumerate(corruptions)},
            "corruption_acc": {name: float(accuracy[i].mean()) for i, name in enumerate(corruptions)},
            "per_class_acc": {c: round(float(correct.reshape(-1)[pooled_labels == k].mean()), 4)
                              for k, c in enumerate(classes) if (pooled_labels == k).any()},
            "ece": ece(softmax(pooled / temperature, axis=1), pooled_labels, bins),
            "ece_uncalibrated": ece(softmax(pooled, axis=1), pooled_labels, bins), "temperature": temperature}


def by_severity(result: dict, corruptions: list[str], severities: list[int]) -> list[dict]:
    """Per severity: the mean, min and max accuracy over the corruptions (for `dvc plots`' band)."""
    accuracy = np.array([result["accuracy"][c] for c in corruptions])
    return [{"severity": s, "mean": float(accuracy[:, k].mean()), "min": float(accuracy[:, k].min()),
             "max": float(accuracy[:, k].max())} for k, s in enumerate(severities)]
