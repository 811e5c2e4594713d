"""Metrics through dvclive, DVC's own logger: a folder per stage and seed, declared as outputs in dvc.yaml."""
from __future__ import annotations

from dvclive import Live


def open_live(folder: str) -> Live:
    """A fresh dvclive log in `folder` (what an earlier or killed run left there is removed); dvclive never
    edits dvc.yaml (`dvcyaml=None`): the pipeline declares its outputs itself."""
    return Live(dir=folder, resume=False, report=None, save_dvc_exp=False, dvcyaml=None)


def log_epoch(live: Live, entry: dict) -> None:
    """One epoch's metrics at step = its epoch number; dvclive updates the summary on disk at once."""
    live.step = entry["epoch"]
    for name, value in entry.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()
