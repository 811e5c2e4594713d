"""What a seed's model does on the corrupted test sets: accuracy per corruption and severity, per class, the
ECE with the clean temperature. corrupt_acc follows CIFAR-10-C's convention (the mean over its 15 benchmark
corruptions at severities 1 to 5, as RobustBench reports it); the 4 extras' mean stands beside it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ..evaluate.calibration import ece


@dataclass(frozen=True)
class Layout:
    """What the corrupted sets hold, in order, and CIFAR-10-C's convention (the corrupt stage wrote both)."""

    corruptions: list[str]
    severities: list[int]
    benchmark: list[str]  # the 15 the benchmark's mean takes
    extras: list[str]  # the 4 reported beside it
    scale: list[int]  # the benchmark's severities, 1 to 5


def _family_mean(accuracy: np.ndarray, corruptions: list[str], severities: list[int], family, scale) -> tuple:
    """(the mean accuracy over the family's corruptions and severities that were scored, or None if none was;
    {corruption: [severities of `scale` not scored]} for those of the family not scored at all of them)."""
    rows = [i for i, name in enumerate(corruptions) if name in family]
    missing = {name: [s for s in scale if s not in severities or name not in corruptions] for name in family}
    missing = {name: left for name, left in missing.items() if left}
    cols = [k for k, s in enumerate(severities) if s in scale]
    mean = float(accuracy[np.ix_(rows, cols)].mean()) if rows and cols else None
    return mean, missing


def robustness(logits: np.ndarray, labels: np.ndarray, layout: Layout, classes: list[str], temperature: float,
               bins: int) -> dict:
    """`logits` (corruptions, severities, images, classes) of the images whose classes are `labels`, the sets
    laid out as `layout` says.

    corrupt_acc is the benchmark's mean only when all 15 were scored at all 5 severities
    (corrupt_acc_complete); otherwise it is the mean over those scored, and `missing` says what it lacks."""
    corruptions, severities = layout.corruptions, layout.severities
    benchmark, extras, scale = layout.benchmark, layout.extras, layout.scale
    correct = logits.argmax(-1) == labels
    accuracy = correct.mean(-1)  # (corruptions, severities)
    pooled_labels = np.broadcast_to(labels, correct.shape).reshape(-1)
    pooled = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    corrupt_acc, benchmark_missing = _family_mean(accuracy, corruptions, severities, benchmark, scale)
    extras_acc, extras_missing = _family_mean(accuracy, corruptions, severities, extras, scale)
    return {"images": int(len(labels)), "severities": list(severities),
            "corrupt_acc": corrupt_acc, "corrupt_acc_complete": not benchmark_missing,
            "extras_acc": extras_acc, "extras_acc_complete": not extras_missing,
            "missing": {**benchmark_missing, **extras_missing}, "benchmark": list(benchmark),
            "extras": list(extras),
            "accuracy": {name: [round(float(a), 6) for a in accuracy[i]] for i,
                         name in enumerate(corruptions)},
            "corruption_acc": {name: float(accuracy[i].mean()) for i, name in enumerate(corruptions)},
            "per_class_acc": {c: round(float(correct.reshape(-1)[pooled_labels == k].mean()), 4)
                              for k, c in enumerate(classes) if (pooled_labels == k).any()},
            "ece": ece(softmax(pooled / temperature, axis=1), pooled_labels, bins),
            "ece_uncalibrated": ece(softmax(pooled, axis=1), pooled_labels, bins), "temperature": temperature}


def by_severity(result: dict, layout: Layout) -> list[dict]:
    """Per severity: the mean, min and max accuracy over the corruptions (for `dvc plots`' band)."""
    accuracy = np.array([result["accuracy"][c] for c in layout.corruptions])
    return [{"severity": s, "mean": float(accuracy[:, k].mean()), "min": float(accuracy[:, k].min()),
             "max": float(accuracy[:, k].max())} for k, s in enumerate(layout.severities)]
