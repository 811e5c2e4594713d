"""Telling a real change from seed noise: a metric over seeds, the target verdict it supports, two groups
compared, seed by seed where they ran the same seeds (docs/noise.md; scipy's distributions do the
statistics)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ONE_RUN = "one run: seed noise not measured"
MORE_SEEDS = "run more seeds, e.g. dvc exp run -S 'train.seeds=[0,1,2,3,4]'"


def summarize(values, confidence: float) -> dict:
    """n, mean, std, min, max, ci_low, ci_high of `values` (std and the interval are None for one value)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]  # a metric a seed could not score (corrupt_acc with no benchmark corruption listed)
    if not len(x):
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "ci_low": None, "ci_high": None}
    n, mean = len(x), float(x.mean())
    summary = {"n": n, "mean": mean, "std": None, "min": float(x.min()), "max": float(x.max()),
               "ci_low": None, "ci_high": None}
    if n > 1:
        std = float(x.std(ddof=1))
        low, high = stats.t.interval(confidence, n - 1, loc=mean,
                                     scale=std / math.sqrt(n)) if std > 0 else (mean, mean)
        summary.update(std=std, ci_low=float(low), ci_high=float(high))
    return summary


def target_verdict(summary: dict, target: float) -> str:
    """What the seeds say about the target, in a word a table cell holds: met, missed or undecided; one seed
    gives met or not met, marked "(1 seed)". `verdict_note` says what to make of it."""
    if summary["n"] == 1:
        return f"{'met' if summary['mean'] >= target else 'not met'} (1 seed)"
    if summary["ci_low"] >= target:
        return "met"
    if summary["ci_high"] < target:
        return "missed"
    return "undecided"


def verdict_note(verdict: str) -> str:
    """What a reader should know about a verdict, or "" when it needs nothing."""
    if verdict.endswith("(1 seed)"):
        return f"{ONE_RUN}; {MORE_SEEDS}"
    return MORE_SEEDS if verdict == "undecided" else ""


UNDECIDED = "undecided"
ONE_SIDE = "undecided (one run on a side: seed noise not measured)"


@dataclass(frozen=True)
class Difference:
    """change - base over the last axis (the seeds), with its standard error and degrees of freedom; leading
    axes are independent comparisons (the simulation's thousands of pull requests)."""

    diff: np.ndarray
    se: np.ndarray
    df: np.ndarray
    method: str  # "paired" (the same seeds on both sides, compared seed by seed) or "Welch"

    def p_value(self) -> np.ndarray:
        """Two-sided, of no difference."""
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.abs(self.diff) / self.se
        p = 2 * stats.t.sf(t, self.df)
        return np.where(self.se > 0, p, np.where(self.diff == 0, 1.0, 0.0))

    def equivalence_p(self, margin: float) -> np.ndarray:
        """Two one-sided tests (TOST) that the difference lies inside (-margin, +margin): the larger p."""
        with np.errstate(divide="ignore", invalid="ignore"):
            low = stats.t.sf((self.diff + margin) / self.se, self.df)
            high = stats.t.cdf((self.diff - margin) / self.se, self.df)
        p = np.maximum(low, high)
        return np.where(self.se > 0, p, np.where(np.abs(self.diff) < margin, 0.0, 1.0))

    def half_width(self, level: float) -> np.ndarray:
        """Of the interval at two-sided significance `level` (0.05: the 95% interval)."""
        return stats.t.ppf(1 - level / 2, self.df) * self.se


def difference(base, change, *, paired: bool) -> Difference:
    """The change's seeds against the base's: seed by seed when `paired` (the same seeds, in the same order),
    else Welch's two groups."""
    a, b = np.asarray(base, dtype=float), np.asarray(change, dtype=float)
    if paired:
        d = b - a
        n = d.shape[-1]
        return Difference(d.mean(-1), d.std(-1, ddof=1) / math.sqrt(n), np.full(d.shape[:-1], n - 1.0),
                          "paired")
    var_a, var_b = a.var(-1, ddof=1) / a.shape[-1], b.var(-1, ddof=1) / b.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):  # both sides constant: df is moot, se is 0
        df = (var_a + var_b) ** 2 / (var_a ** 2 / (a.shape[-1] - 1) + var_b ** 2 / (b.shape[-1] - 1))
    df = np.where(np.isfinite(df), df, a.shape[-1] + b.shape[-1] - 2.0)
    return Difference(b.mean(-1) - a.mean(-1), np.sqrt(var_a + var_b), df, "Welch")


def welch_from_summaries(base: tuple, change: tuple) -> Difference:
    """Welch's difference from each side's (mean, sd, n) alone: what `cifarpipe exps` has of an experiment."""
    (mean_a, sd_a, n_a), (mean_b, sd_b, n_b) = base, change
    var_a, var_b = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    df = ((var_a + var_b) ** 2 / (var_a ** 2 / (n_a - 1) + var_b ** 2 / (n_b - 1)) if var_a + var_b > 0
          else n_a + n_b - 2.0)
    return Difference(np.asarray(mean_b - mean_a), np.asarray(math.sqrt(var_a + var_b)), np.asarray(df),
                      "Welch")


def correlation(base, change) -> float | None:
    """Pearson's r between the two sides' values seed by seed (None when a side is constant)."""
    a, b = np.asarray(base, dtype=float), np.asarray(change, dtype=float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def compare(base, change, confidence: float, power: float, higher_is_better: bool = True, *,
            paired: bool = False, margin: float | None = None) -> dict:
    """The change's seeds against the base's: the difference of means, its interval, p-values, a verdict and
    the smallest difference these groups detect. `paired`: both sides ran the same seeds, in the same order
    (docs/noise.md); `margin`: a difference inside +-margin can be called equivalent (two one-sided tests).

    Returns {"n_base", "n_change", "base_mean", "change_mean", "diff", "ci_low", "ci_high", "p_value",
    "p_equivalence", "margin", "method", "correlation", "detectable", "verdict", ...}; with one value on a
    side there is no interval and the verdict says so.
    """
    a, b = np.asarray(base, dtype=float), np.asarray(change, dtype=float)
    paired = paired and len(a) == len(b)
    out = {"n_base": len(a), "n_change": len(b), "base_mean": float(a.mean()), "change_mean": float(b.mean()),
           "diff": float(b.mean() - a.mean()), "ci_low": None, "ci_high": None, "p_value": None,
           "p_equivalence": None, "margin": margin, "method": None,
           "correlation": correlation(a, b) if paired else None,
           "detectable": None, "se": None, "df": None, "ci_level": None, "verdict": ONE_SIDE}
    if len(a) < 2 or len(b) < 2:
        return out
    d = difference(a, b, paired=paired)
    alpha = 1 - confidence
    half = float(d.half_width(alpha)) if d.se > 0 else 0.0
    detectable = (stats.t.ppf(1 - alpha / 2, d.df) + stats.t.ppf(power, d.df)) * d.se
    out.update(ci_low=out["diff"] - half, ci_high=out["diff"] + half, p_value=float(d.p_value()),
               p_equivalence=None if margin is None else float(d.equivalence_p(margin)),
               method=d.method, detectable=float(detectable), se=float(d.se), df=float(d.df),
               ci_level=confidence)
    out["verdict"] = verdict(out, alpha, alpha, higher_is_better)
    return out


def verdict(r: dict, level: float, equivalence_level: float, higher_is_better: bool = True) -> str:
    """better or worse when the difference's p is below `level`; equivalent when the TOST p is below
    `equivalence_level`; else undecided."""
    if r["p_value"] is None:
        return ONE_SIDE
    if r["p_value"] < level:
        return "better" if (r["diff"] > 0) == higher_is_better else "worse"
    if r["p_equivalence"] is not None and r["p_equivalence"] < equivalence_level:
        return "equivalent"
    return UNDECIDED


def holm(results: list[dict], confidence: float, higher_is_better: bool | list[bool] = True) -> list[dict]:
    """`compare` results of one family, each with its Holm-adjusted p-value (`p_holm`), the verdict made from
    it, and its interval drawn at the level Holm's step-down tested it at (so it excludes zero exactly when
    the row is called better or worse). The rows with a margin get Holm-adjusted TOST p-values
    (`p_equivalence_holm`) the same way. Rows without a p-value (one seed on a side) are left as they are."""
    better = higher_is_better if isinstance(higher_is_better, list) else [higher_is_better] * len(results)
    alpha = 1 - confidence
    tested = [(r, up) for r, up in zip(results, better, strict=True) if r["p_value"] is not None]
    adjusted, levels = holm_adjust([r["p_value"] for r, _ in tested], alpha)
    with_margin = [r for r, _ in tested if r["p_equivalence"] is not None]
    equivalence, _ = holm_adjust([r["p_equivalence"] for r in with_margin], alpha)
    for r, p in zip(with_margin, equivalence, strict=True):
        r["p_equivalence_holm"] = p
    for (r, up), p, level in zip(tested, adjusted, levels, strict=True):
        r.update(p_holm=p, ci_level=1 - level)
        adjusted_row = {**r, "p_value": p, "p_equivalence": r.get("p_equivalence_holm")}
        r["verdict"] = verdict(adjusted_row, alpha, alpha, up)
        if r["se"]:
            half = stats.t.ppf(1 - level / 2, r["df"]) * r["se"]
            r.update(ci_low=r["diff"] - half, ci_high=r["diff"] + half)
    return results


def holm_adjust(p_values: list[float], alpha: float) -> tuple[list[float], list[float]]:
    """(Holm's adjusted p-values, the level each was tested at): the k-th smallest p is tested at
    alpha / (m - k + 1) until the first that fails; every one after it at the level where the procedure
    stopped. Adjusted: the running maximum of (m - k + 1) p_(k), capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, levels, running = [0.0] * m, [0.0] * m, 0.0
    stop = next((k for k, i in enumerate(order) if p_values[i] >= alpha / (m - k)), m)
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i], levels[i] = running, alpha / (m - min(k, stop))
    return adjusted, levels
