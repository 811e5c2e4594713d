"""Seeds in rounds: group-sequential boundaries that keep a verdict's false-call rate at alpha over its looks.

Lan-DeMets alpha spending (Pocock-like or O'Brien-Fleming-like) turned into a p-value level per look by the
recursive integration of Armitage, McPherson and Rowe, calibrated for t-tests (docs/noise.md: why, how).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from .noise import Difference, difference

SPENDING = ("obrien_fleming", "pocock")  # noise.spending
GRID = 4001  # points of the score statistic's density per look


def spent(t: float, alpha: float, kind: str) -> float:
    """The two-sided alpha spent by information fraction `t` (0 < t <= 1)."""
    if kind == "obrien_fleming":
        return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    if kind == "pocock":
        return float(alpha * math.log(1 + (math.e - 1) * t))
    raise ValueError(f"unknown spending function {kind!r}: one of {', '.join(SPENDING)}")


def _tail(density: np.ndarray, grid: np.ndarray, bound: float) -> float:
    """The mass of `density` (on `grid`) outside [-bound, bound]: its running integral, read between the grid's
    points by linear interpolation, so the bound need not be one of them."""
    running = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return float(running[-1] - (np.interp(bound, grid, running) - np.interp(-bound, grid, running)))


@lru_cache(maxsize=64)
def nominal_levels(looks: tuple[int, ...], alpha: float, kind: str = "obrien_fleming") -> tuple[float, ...]:
    """The two-sided nominal p-value level of each look, for looks at `looks` seeds (information grows with
    the seeds): a look rejects when its p-value is below its level, and over every look the chance of a
    rejection under no difference is `alpha`."""
    info = np.asarray(looks, dtype=float)
    t = info / info[-1]
    spend = np.diff([0.0, *(spent(f, alpha, kind) for f in t)])
    grid = np.linspace(-12 * math.sqrt(info[-1]), 12 * math.sqrt(info[-1]), GRID)  # the score statistic
    step = grid[1] - grid[0]
    density = stats.norm.pdf(grid, scale=math.sqrt(info[0]))
    levels = []
    for k, rate in enumerate(spend):
        sd = math.sqrt(info[k])
        if rate <= 0:
            bound = math.inf
        else:  # the bound on the score scale whose outside mass is what this look may spend
            low, high = 0.0, grid[-1]
            for _ in range(60):
                middle = (low + high) / 2
                low, high = (middle, high) if _tail(density, grid, middle) > rate else (low, middle)
            bound = high
        levels.append(float(2 * stats.norm.sf(bound / sd)) if math.isfinite(bound) else 0.0)
        if k + 1 < len(spend):  # the density of the next look's score, from the paths that continue
            kept = np.where(np.abs(grid) < bound, density, 0.0)
            kernel = stats.norm.pdf(np.arange(1 - GRID, GRID) * step, scale=math.sqrt(info[k + 1] - info[k]))
            density = np.convolve(kept, kernel)[GRID - 1:2 * GRID - 1] * step
    return tuple(levels)


@dataclass(frozen=True)
class Design:
    """How many seeds a side each look compares, how alpha is spent over the looks, and whether the sides
    are compared seed by seed. One look is a fixed design."""

    looks: tuple[int, ...]
    alpha: float
    spending: str = "pocock"
    paired: bool = True

    @classmethod
    def from_noise(cls, noise) -> Design:
        """The rounds of scripts/pr_report.sh, as the noise params set them."""
        looks = list(range(noise.first_seeds, noise.max_seeds + 1, noise.round_seeds))
        if looks[-1] != noise.max_seeds:
            looks.append(noise.max_seeds)
        return cls(tuple(looks), round(1 - noise.confidence, 12), noise.spending)

    def levels(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(each look's two-sided level for better or worse, its one-sided level for each of the two tests of
        equivalence): alpha spent over the looks, for each kind of call, calibrated for t-tests."""
        if len(self.looks) == 1:
            return (self.alpha,), (self.alpha,)
        return calibrated_levels(self.looks, self.alpha, self.spending, self.paired)

    def look(self, seeds: int) -> int | None:
        """The index of the look that `seeds` a side make, or None when it is not one of them."""
        return self.looks.index(seeds) if seeds in self.looks else None

    def describe(self) -> str:
        if len(self.looks) == 1:
            return f"fixed, {self.looks[0]} seeds a side"
        spending = self.spending.replace("_", "-")
        return f"in rounds of {', '.join(map(str, self.looks))} seeds a side, {spending} spending"


CALIBRATION_RUNS = 200_000  # simulated comparisons under no difference, one fixed stream


@lru_cache(maxsize=32)
def calibrated_levels(looks: tuple[int, ...], alpha: float, spending: str,
                      paired: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The spending function's levels, scaled so that t-tests at them keep the false-call rate at alpha.

    The levels above are exact for z statistics; a t statistic's variance estimate changes from look to look,
    and with a handful of seeds that alone lifted the rate to 5.5-5.9% (docs/noise.md). Under no difference
    the t statistics' joint law depends on nothing unknown (paired; Welch at equal variances), so a fixed
    simulation of it finds the scale that spends exactly alpha, for each kind of call."""
    rng = np.random.default_rng(20261207)
    n = looks[-1]
    a = rng.normal(size=(CALIBRATION_RUNS, n))
    b = rng.normal(size=(CALIBRATION_RUNS, n))
    t = np.stack([(lambda d: d.diff / d.se)(difference(a[:, :k], b[:, :k], paired=paired)) for k in looks], 1)
    dfs = np.stack([difference(a[:, :k], b[:, :k], paired=paired).df for k in looks], 1)
    two_sided, one_sided = 2 * stats.t.sf(np.abs(t), dfs), stats.t.sf(t, dfs)

    def scaled(p: np.ndarray, target: float, sides: int) -> tuple[float, ...]:
        low, high = 0.2, 1.0
        for _ in range(30):  # the false-call rate grows with the scale: bisect for the target
            scale = (low + high) / 2
            levels = [x / sides for x in nominal_levels(looks, round(sides * scale * target, 9), spending)]
            rate = float((p < np.asarray(levels)).any(1).mean())
            low, high = (scale, high) if rate < target else (low, scale)
        return tuple(x / sides for x in nominal_levels(looks, round(sides * low * target, 9), spending))

    return scaled(two_sided, alpha, 1), scaled(one_sided, alpha, 2)


BETTER, WORSE, EQUIVALENT, UNDECIDED = 1, -1, 2, 0  # the calls, as the simulation counts them


def call(d: Difference, k: int, design: Design, margin: float | None) -> np.ndarray:
    """The call at look `k` (0-based) of `design`, for each comparison in `d`: BETTER or WORSE (the change's
    mean higher or lower), EQUIVALENT, or UNDECIDED (on to the next look, or stop undecided at the last)."""
    two_sided, equivalence = design.levels()
    p = d.p_value()
    calls = np.where(p < two_sided[k], np.where(d.diff > 0, BETTER, WORSE), UNDECIDED)
    if margin is not None:
        equivalent = (calls == UNDECIDED) & (d.equivalence_p(margin) < equivalence[k])
        calls = np.where(equivalent, EQUIVALENT, calls)
    return calls


def simulate(design: Design, *, effect: float, rho: float, margin: float | None, prs: int = 4000,
             seed: int = 0) -> dict:
    """`prs` pull requests whose per-seed results are normal (sd 1), the change's shifted by `effect` and
    correlated `rho` with the base's seed by seed: how often each call was made, and the seeds a side used."""
    rng = np.random.default_rng(seed)
    n = design.looks[-1]
    base = rng.normal(size=(prs, n))
    change = rho * base + math.sqrt(1 - rho ** 2) * rng.normal(size=(prs, n)) + effect
    calls, used = np.full(prs, UNDECIDED), np.full(prs, n)
    open_ = np.ones(prs, dtype=bool)
    for k, seeds in enumerate(design.looks):
        d = difference(base[:, :seeds], change[:, :seeds], paired=design.paired)
        now = call(d, k, design, margin) * open_
        decided = now != UNDECIDED
        calls[decided], used[decided] = now[decided], seeds
        open_ &= ~decided
    return {"better": float((calls == BETTER).mean()), "worse": float((calls == WORSE).mean()),
            "equivalent": float((calls == EQUIVALENT).mean()), "seeds": float(used.mean()), "prs": prs}


@dataclass(frozen=True)
class Look:
    """Where a pull request's rounds stand: its call on test accuracy at this look, and why."""

    index: int  # 0-based, of design.looks
    seeds: int
    call: str  # better, worse, equivalent, undecided
    decided: bool  # no further round: a call was made, or this is the last look
    p_value: float
    level: float  # the p this look had to beat
    p_equivalence: float | None
    equivalence_level: float
    interval: tuple[float, float]  # the difference's, at this look's level

    def line(self, design: Design) -> str:
        what = f"look {self.index + 1} of {len(design.looks)} ({self.seeds} seeds a side)"
        if self.call != "undecided":
            return f"test accuracy **{self.call}** at {what}: stopped"
        if self.decided:
            return f"test accuracy **undecided** at {what}, the last: no more rounds (noise.max_seeds)"
        return f"test accuracy undecided at {what}: the next round adds seeds"


WORDS = {BETTER: "better", WORSE: "worse", EQUIVALENT: "equivalent", UNDECIDED: "undecided"}


def look_at(base, change, design: Design, margin: float | None) -> Look | None:
    """The call at the look that `len(base)` seeds a side make (the sides' seeds in the same order when the
    design pairs them), or None when that many seeds is not one of the design's looks."""
    k = design.look(len(base))
    if k is None or len(change) != len(base):
        return None
    d = difference(base, change, paired=design.paired)
    made = int(call(d, k, design, margin))
    two_sided, equivalence = design.levels()
    half = float(d.half_width(two_sided[k])) if d.se > 0 else 0.0
    return Look(k, len(base), WORDS[made], made != UNDECIDED or k == len(design.looks) - 1,
                float(d.p_value()), two_sided[k],
                None if margin is None else float(d.equivalence_p(margin)), equivalence[k],
                (float(d.diff) - half, float(d.diff) + half))
