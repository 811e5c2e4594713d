"""Metrics through dvclive, DVC's own logger: per-epoch history with `step`, summaries, the confusion matrix.

Each stage logs into its own folder (dvclive/train/seedN, dvclive/evaluate/seedN), declared as outputs in
dvc.yaml, so `dvc exp show`, `dvc metrics diff` and `dvc plots show` read them, and a run under `dvc exp run`
reaches DVC's VS Code extension and Studio live. dvclive never edits dvc.yaml here (`dvcyaml=None`): the
pipeline declares its outputs itself.
"""
from __future__ import annotations

from dvclive import Live


def open_live(folder: str) -> Live:
    """A fresh dvclive log in `folder` (anything an earlier or killed run left there is removed)."""
    return Live(dir=folder, resume=False, report=None, save_dvc_exp=False, dvcyaml=None)
