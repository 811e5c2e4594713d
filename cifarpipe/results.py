"""Reading back what the train stage logged through dvclive: the per-epoch history, one TSV per metric."""
from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd


def read_history(folder: str | Path) -> pd.DataFrame:
    """One row per epoch (column `epoch`, from dvclive's `step`) and one column per metric."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(errno.ENOENT, "no dvclive history", str(folder))
    tables = [pd.read_csv(tsv, sep="\t", usecols=["step", tsv.stem]).set_index("step")
              for tsv in sorted(Path(folder).glob("*.tsv"))]
    return pd.concat(tables, axis=1).rename_axis("epoch").reset_index()
