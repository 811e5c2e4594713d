"""Reading LRMAX and LRMIN off the curve of an LR range test, by the rules docs/lr.md explains."""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ..core.errors import PipelineError
from ..core.params import choose


def trim(lrs, losses, skip_start: int, skip_end: int) -> tuple[np.ndarray, np.ndarray]:
    """The curve without its first `skip_start` points (noisy warm-up) and last `skip_end` points."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    end = len(lrs) - skip_end
    return lrs[skip_start:end], losses[skip_start:end]


def minimum_index(losses: np.ndarray) -> int:
    return int(np.argmin(losses))


def steepest_index(losses: np.ndarray) -> int:
    """torch-lr-finder's rule: the most negative gradient of the loss over the (log-spaced) points."""
    return int(np.gradient(losses).argmin())


def valley_index(losses: np.ndarray) -> int:
    """fastai's `valley`: the longest decreasing subsequence, then a point in the middle of it."""
    n = len(losses)
    length = [1] * n
    best_start, best_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
            if length[best_end] < length[i]:
                best_end = i
                best_start = best_end - length[best_end]
    third = (best_end - best_start) / 3
    return max(0, best_start + int(third) + int(third / 2))


def fall_start_index(losses: np.ndarray, fall_frac: float) -> int:
    """The first point by which the loss has made `fall_frac` of its drop from the first point to the
    minimum."""
    drop = losses[0] - losses.min()
    return int(np.flatnonzero(losses <= losses[0] - fall_frac * drop)[0])


class Rule(NamedTuple):
    index: object  # losses -> the index of the curve's point that gives LRMAX (before min_div for `minimum`)
    label: str     # how the LR range test's figure names it


RULES = {  # lr_pick.rule
    "minimum": Rule(minimum_index, "LR at the loss minimum / {min_div:g}"),
    "valley": Rule(valley_index, "fastai's valley"),
    "steepest": Rule(steepest_index, "steepest descent (torch-lr-finder)"),
}
LRMIN_RULES = {  # lr_pick.lrmin
    "fall_start": "the loss has made {fall_frac:.0%} of its fall",
    "divide": "LRMAX / schedule.lrmin_div",
}


@dataclass(frozen=True)
class Picked:
    """LRMAX and LRMIN as a rule read them off the curve, and what the user should know about it."""

    rule: str  # the rule that gave LRMAX: lr_pick.rule, or valley where `fallback` says why
    lr_max: float
    lr_min: float
    loss_min_lr: float  # where the smoothed loss was lowest
    loss_min: float
    suggestions: dict[str, float]  # every rule's LRMAX
    still_falling: bool  # the loss was lowest at the last point: the test may have stopped too early
    fallback: str | None = None  # why LRMAX is not lr_pick.rule's, in one line (kept, and shown by exps)
    notes: tuple[str, ...] = ()  # printed by the stage, not kept

    def record(self) -> dict:
        """What metrics/lr_pick.json keeps."""
        return {k: v for k, v in asdict(self).items() if k != "notes"}


def read_curve(path) -> tuple[np.ndarray, np.ndarray]:
    """(LRs, smoothed losses) from the range test's CSV (its lr and loss columns), without pandas' import."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["lr"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def pick(lrs, losses, cfg, lrmin_div: float) -> Picked:
    """LRMAX and LRMIN read off the curve by the rules of `cfg` (the lr_pick params group); `lrmin_div` is
    schedule.lrmin_div. Raises PipelineError when the curve is too short or the loss never fell."""
    choose(RULES, "lr_pick.rule", cfg.rule)
    choose(LRMIN_RULES, "lr_pick.lrmin", cfg.lrmin)
    rule, lrmin, skip_start, skip_end = cfg.rule, cfg.lrmin, cfg.skip_start, cfg.skip_end
    lrs, losses = trim(lrs, losses, skip_start, skip_end)
    if len(lrs) < 3 or not np.all(np.isfinite(losses)):
        raise PipelineError(f"the LR range test left {len(lrs)} usable points after skipping {skip_start} at "
                            f"the start and {skip_end} at the end: too few to read an LR off. Raise "
                            "lr_find.iterations, lower lr_pick.skip_start or lr_pick.skip_end, or set "
                            "optim.lr to a number")
    low = minimum_index(losses)
    if low == 0:
        raise PipelineError("the loss never fell during the LR range test: it was lowest at its first kept "
                            f"LR, {lrs[0]:.2e}, and only rose after. The test started above any LR this "
                            "network trains at: lower lr_find.start_lr (e.g. by 100x), or set optim.lr to a "
                            "number")
    suggestions = {name: float(lrs[r.index(losses)]) for name, r in RULES.items()}
    suggestions["minimum"] /= cfg.min_div

    notes, fallback = [], None
    still_falling = low == len(lrs) - 1
    if still_falling and rule == "minimum":  # its pick would be the end of the curve over min_div: a guess
        rule = "valley"
        fallback = (f"the loss was still falling at the last LR tested ({lrs[-1]:.2e}), so the minimum rule "
                    f"would read off the end of the curve: LRMAX {suggestions['valley']:.3e} is fastai's "
                    "valley, read inside it. Raise lr_find.end_lr to see where the loss turns up")
    elif still_falling:
        notes.append(f"the loss was still falling at the last LR tested ({lrs[-1]:.2e}): this network may "
                     "train at higher LRs. Raise lr_find.end_lr to see where the loss turns up.")
    lr_max = suggestions[rule]
    if lrmin == "fall_start":
        lr_min = float(lrs[fall_start_index(losses, cfg.fall_frac)])
        if lr_min >= lr_max:
            lr_min = lr_max / lrmin_div
            notes.append("the loss starts to fall at or above LRMAX; LRMIN = LRMAX / schedule.lrmin_div "
                         "instead")
    else:
        lr_min = lr_max / lrmin_div
    return Picked(rule, lr_max, lr_min, float(lrs[low]), float(losses[low]), suggestions, bool(still_falling),
                  fallback, tuple(notes))
