"""The numbers the evaluate stage reads off the test predictions: the confusion matrix and per-class
accuracy."""
from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels, preds), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    totals = confusion.sum(1)
    return np.divide(np.diag(confusion), totals, out=np.zeros(len(totals)), where=totals > 0)
