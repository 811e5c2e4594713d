"""What the seeds say together: each metric's summary over the seeds and the target verdict they support."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .noise import summarize, target_verdict, verdict_note
from .results import CALIBRATION

HEADLINE = ("test_acc", "test_loss", "train_s", *CALIBRATION, "corrupt_acc", "corrupt_gap", "extras_acc",
            "ece_corrupted")
FAMILIES = ("per_class_acc", "corruption_acc")  # a column per member in the seed table: family.member


@dataclass(frozen=True)
class SeedVerdict:
    seeds: list[int]
    confidence: float
    target: float
    summary: dict[str, dict]  # headline metric -> its summary over the seeds (`summarize`)
    families: dict[str, dict[str, dict]]  # family -> member (a class, a corruption) -> its summary
    verdict: str  # met, missed, undecided; met or not met (1 seed)
    seeds_met: int  # how many seeds reached the target on their own
    corrupted_sets: str | None  # which corrupted sets the seeds were scored on (robustness/sets.py)

    @property
    def line(self) -> str:
        """One line for a terminal, a notebook or a pull request."""
        acc = self.summary["test_acc"]
        spread = (f", {self.confidence:.0%} CI {acc['ci_low']:.4f}..{acc['ci_high']:.4f}" if acc["n"] > 1
                  else "")
        note = f" ({verdict_note(self.verdict)})" if verdict_note(self.verdict) else ""
        return (f"{len(self.seeds)} seed(s): test accuracy {acc['mean']:.4f}{spread}; target {self.target}: "
                f"{self.verdict}{note}")

    def half_width(self, name: str) -> float | None:
        """Of the interval of the mean; None with one seed."""
        s = self.summary[name]
        return None if s["ci_low"] is None else (s["ci_high"] - s["ci_low"]) / 2

    def metrics(self, lr: dict) -> dict:
        """metrics/verdict.json, what `dvc exp show` and `dvc metrics diff` show: what a reader decides on."""
        mean = {name: s["mean"] for name, s in self.summary.items()}
        return {"test_acc": mean["test_acc"], "test_acc_ci": self.half_width("test_acc"),
                "test_acc_std": self.summary["test_acc"]["std"],
                "seeds": len(self.seeds), "verdict": self.verdict, "seeds_met": self.seeds_met,
                "test_loss": mean["test_loss"], "train_s": mean["train_s"], "lr_max": lr["lr_max"],
                "lr_rule": lr_rule(lr), "lr_min": lr["lr_min"], "corrupt_acc": mean["corrupt_acc"],
                "corrupt_acc_ci": self.half_width("corrupt_acc"), "corrupt_gap": mean["corrupt_gap"],
                "ece": mean["ece"],
                "ece_ci": self.half_width("ece")}

    def record(self) -> dict:
        """metrics/aggregate.json: every summary, the families' members included (`cifarpipe report`)."""
        return {"seeds": self.seeds, "n": len(self.seeds), "confidence": self.confidence, **self.summary,
                "target": self.target, "target_met_seeds": self.seeds_met, "target_verdict": self.verdict,
                "verdict_line": self.line, "corrupted_sets": self.corrupted_sets, **self.families}


def judge(table: pd.DataFrame, target: float, confidence: float) -> SeedVerdict:
    """The verdict of a seed table (`results.seed_table`) on the target accuracy."""
    summary = {name: summarize(table[name], confidence) for name in HEADLINE}
    families = {family: {column.split(".", 1)[1]: summarize(table[column], confidence)
                         for column in table.columns if column.startswith(family + ".")}
                for family in FAMILIES}
    return SeedVerdict(seeds=[int(s) for s in table["seed"]], confidence=confidence, target=target,
                       summary=summary, families=families,
                       verdict=target_verdict(summary["test_acc"], target),
                       seeds_met=int((table["test_acc"] >= target).sum()),
                       corrupted_sets=shared(table["corrupted_sets"]))


def shared(values: pd.Series) -> str | None:
    """The one value every seed has, or None when they differ or lack it."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 and None not in distinct else None


def lr_rule(lr: dict) -> str:
    """Where LRMAX came from, in a word or two: optim.lr, the rule that read it, or "valley (fallback)"."""
    if lr.get("source") != "LR range test":
        return "optim.lr"
    return f"{lr['rule']} (fallback)" if lr.get("fallback") else lr["rule"]
