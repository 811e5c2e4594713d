"""Reading LRMAX and LRMIN off the curve of an LR range test.

The range test (`cifarpipe.lr_finder`) records the smoothed training loss while the LR grows
exponentially, step by step. These rules turn that curve into the two ends of the one-cycle schedule.
They read only the curve, so the `lr_pick` stage that applies them reruns in a second when a rule or
a divisor changes, without repeating the range test.

LRMAX (`lr_pick.rule`):

- `minimum` (the default): the LR at the lowest point of the smoothed loss, divided by
  `lr_pick.min_div`. This is Smith's reading of the range test (the LR where the loss stops falling is
  the upper bound of a cycle) with a margin: the one-cycle peak is held for many steps, not one, and
  the smoothed curve lags the raw loss, so its lowest point sits a little past the raw one.
- `valley`: fastai's default: the longest stretch over which the loss keeps falling, a point in its
  middle third.
- `steepest`: torch-lr-finder's suggestion: where the loss falls fastest per log-LR step. On a curve
  that falls from its first point (Adam on this network) that is near the start, about 100 times below
  where the network trains well; kept for comparison.

LRMIN (`lr_pick.lrmin`):

- `divide`: LRMAX / `schedule.lrmin_div`.
- `fall_start`: Smith's lower bound, where the loss starts to fall: the first point by which the curve
  has made `lr_pick.fall_frac` of its drop from its first (kept) point to its minimum.
"""
from __future__ import annotations

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


def pick(lrs, losses, cfg: dict, lrmin_div: float) -> dict:
    """LRMAX and LRMIN read off the curve by the rules of `cfg` (the lr_pick params group), with what the user
    should know about it; `lrmin_div` is schedule.lrmin_div.

    Returns {"rule", "lr_max", "lr_min", "loss_min_lr", "loss_min", "suggestions" (every rule's LRMAX),
    "still_falling" (the loss was lowest at the last point: the test may have stopped too early), "notes"}.
    Raises PipelineError when the curve is too short, or when the loss never fell (no LR in the tested range
    trains the network, so no rule can read an LRMAX off it).
    """
    choose(RULES, "lr_pick.rule", cfg["rule"])
    choose(LRMIN_RULES, "lr_pick.lrmin", cfg["lrmin"])
    rule, lrmin, skip_start, skip_end = cfg["rule"], cfg["lrmin"], cfg["skip_start"], cfg["skip_end"]
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
    suggestions["minimum"] /= cfg["min_div"]
    lr_max = suggestions[rule]

    notes = []
    still_falling = low == len(lrs) - 1
    if still_falling:
        notes.append(f"the loss was still falling at the last LR tested ({lrs[-1]:.2e}): this network may "
                     "train at higher LRs. Raise lr_find.end_lr to see where the loss turns up.")
    if lrmin == "fall_start":
        lr_min = float(lrs[fall_start_index(losses, cfg["fall_frac"])])
        if lr_min >= lr_max:
            lr_min = lr_max / lrmin_div
            notes.append("the loss starts to fall at or above LRMAX; LRMIN = LRMAX / schedule.lrmin_div "
                         "instead")
    else:
        lr_min = lr_max / lrmin_div
    return {"rule": rule, "lr_max": lr_max, "lr_min": lr_min, "loss_min_lr": float(lrs[low]),
            "loss_min": float(losses[low]), "suggestions": suggestions, "still_falling": still_falling,
            "notes": notes}
