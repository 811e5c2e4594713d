"""Telling a real change from seed noise: a metric over seeds, the target verdict it supports, two groups
compared (docs/design.md says how; scipy and statsmodels do the statistics)."""
from __future__ import annotations

import math
import warnings

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


def compare(base, change, confidence: float, power: float, higher_is_better: bool = True) -> dict:
    """The change's group against the base's: difference of means, its interval (Welch), verdict, detectable
    size.

    Returns {"n_base", "n_change", "base_mean", "change_mean", "diff", "ci_low", "ci_high", "p_value",
    "detectable", "verdict"}; with one value on either side there is no interval and the verdict says so.
    """
    a, b = np.asarray(base, dtype=float), np.asarray(change, dtype=float)
    out = {"n_base": len(a), "n_change": len(b), "base_mean": float(a.mean()), "change_mean": float(b.mean()),
           "diff": float(b.mean() - a.mean()), "ci_low": None, "ci_high": None, "p_value": None,
           "detectable": None, "se": None, "df": None, "ci_level": None}
    if len(a) < 2 or len(b) < 2:
        out["verdict"] = "within noise (one run on a side: seed noise not measured)"
        return out
    var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(var_a + var_b)
    if se == 0:  # identical runs on both sides (a deterministic CPU): the difference is exact
        out.update(ci_low=out["diff"], ci_high=out["diff"], p_value=1.0 if out["diff"] == 0 else 0.0,
                   detectable=0.0, se=0.0, ci_level=confidence)
    else:
        with warnings.catch_warnings():  # a side whose seeds all agree (a class, on a deterministic CPU) is
            # constant: scipy warns of "precision loss", but Welch's test is defined with one variance zero
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            test = stats.ttest_ind(b, a, equal_var=False)  # its df: Welch-Satterthwaite's
        low, high = test.confidence_interval(confidence)
        detectable = (stats.t.ppf(1 - (1 - confidence) / 2, test.df) + stats.t.ppf(power, test.df)) * se
        out.update(ci_low=float(low), ci_high=float(high), p_value=float(test.pvalue),
                   detectable=float(detectable), se=float(se), df=float(test.df), ci_level=confidence)
    if out["ci_low"] > 0 or out["ci_high"] < 0:
        out["verdict"] = "better" if (out["ci_low"] > 0) == higher_is_better else "worse"
    else:
        out["verdict"] = "no detectable difference"
    return out


def holm(results: list[dict], confidence: float, higher_is_better: bool | list[bool] = True) -> list[dict]:
    """`compare` results of one family, each with its Holm-adjusted p-value (`p_holm`), the verdict made from
    it, and its interval drawn at the level Holm's step-down tested it at (so it excludes zero exactly when
    the row is called better or worse). Rows without a p-value (one seed on a side) are left as they are."""
    from statsmodels.stats.multitest import multipletests  # the aggregate stage never needs it: loaded here

    better = higher_is_better if isinstance(higher_is_better, list) else [higher_is_better] * len(results)
    tested = [(r, up) for r, up in zip(results, better) if r["p_value"] is not None]
    if not tested:
        return results
    alpha = 1 - confidence
    reject, adjusted, _, _ = multipletests([r["p_value"] for r, _ in tested], alpha=alpha, method="holm")
    # the k-th smallest p is tested at alpha / (m - k + 1) until the first one that fails; every row after it
    # is drawn at the level where the procedure stopped
    order = sorted(range(len(tested)), key=lambda i: tested[i][0]["p_value"])
    stop = next((k for k, i in enumerate(order) if not reject[i]), len(order))
    for k, i in enumerate(order):
        r, up = tested[i]
        level = alpha / (len(order) - min(k, stop))
        r.update(p_holm=float(adjusted[i]), ci_level=1 - level,
                 verdict=("better" if (r["diff"] > 0) == up else "worse") if reject[i] else
                 "no detectable difference")
        if r["se"]:
            half = stats.t.ppf(1 - level / 2, r["df"]) * r["se"]
            r.update(ci_low=r["diff"] - half, ci_high=r["diff"] + half)
    return results
