"""Reading back what the train and evaluate stages wrote for each seed, as pandas tables."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.paths import per_seed


def read_history(folder: str | Path) -> pd.DataFrame:
    """One row per epoch (column `epoch`, from dvclive's `step`) and one column per metric."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(errno.ENOENT, "no dvclive history", str(folder))
    tables = [pd.read_csv(tsv, sep="\t", usecols=["step", tsv.stem]).set_index("step")
              for tsv in sorted(Path(folder).glob("*.tsv"))]
    return pd.concat(tables, axis=1).rename_axis("epoch").reset_index()


def histories(seeds: list[int]) -> pd.DataFrame:
    """Every seed's per-epoch history, stacked, with a `seed` column."""
    return pd.concat([read_history(per_seed(paths.TRAIN_HISTORY, s)).assign(seed=s) for s in seeds],
                     ignore_index=True)


CALIBRATION = ("ece", "ece_calibrated", "nll", "nll_calibrated", "brier", "brier_calibrated", "temperature")


def seed_table(seeds: list[int]) -> pd.DataFrame:
    """One row per seed: seed, test_acc, test_loss (evaluate, with TTA), the calibration numbers (evaluate),
    corrupt_acc, corrupt_gap (clean minus corrupted), ece_corrupted and the corrupted sets' fingerprint
    (robustness), train_s, epochs, steps_per_epoch (train), then
    per_class_acc.<class> for each class and corruption_acc.<corruption> (the mean over the severities) for
    each corruption."""
    rows = []
    for seed in seeds:
        evaluated = json.loads(Path(per_seed(paths.EVALUATE_JSON, seed)).read_text())
        trained = json.loads(Path(per_seed(paths.TRAIN_JSON, seed)).read_text())
        robust = json.loads(Path(per_seed(paths.ROBUSTNESS_JSON, seed)).read_text())
        rows.append({"seed": seed, "test_acc": evaluated["test_acc"], "test_loss": evaluated["test_loss"],
                     **{k: evaluated[k] for k in CALIBRATION}, "corrupt_acc": robust["corrupt_acc"],
                     "corrupt_gap": (None if robust["corrupt_acc"] is None else
                                     evaluated["test_acc"] - robust["corrupt_acc"]),
                     "extras_acc": robust["extras_acc"],
                     "ece_corrupted": robust["ece"], "corrupted_sets": robust.get("sets"),
                     "train_s": trained["train_s"],
                     "epochs": trained["epochs"], "steps_per_epoch": trained["steps_per_epoch"],
                     **{f"per_class_acc.{c}": a for c, a in evaluated["per_class_acc"].items()},
                     **{f"corruption_acc.{c}": a for c, a in robust["corruption_acc"].items()}})
    return pd.DataFrame(rows)


def epoch_band(history: pd.DataFrame, metric: str) -> list[dict]:
    """Per epoch: the mean, min and max of `metric` over the seeds."""
    return history.groupby("epoch")[metric].agg(["mean", "min", "max"]).reset_index().to_dict("records")


def class_band(table: pd.DataFrame) -> list[dict]:
    """Per class: the mean, min and max of its accuracy over the seeds."""
    band = table.filter(like="per_class_acc.").agg(["mean", "min", "max"]).T
    band.index = band.index.str.removeprefix("per_class_acc.")
    return band.rename_axis("class").reset_index().to_dict("records")
