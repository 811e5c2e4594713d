"""The experiments at a glance: accuracy, interval, verdict and the params they set differently.

A thin view of `dvc exp show --json` (its selection flags pass: -A, -n 3), fit to the terminal: params that do
not fit are named below the table, never cut (docs/noise.md).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

from tabulate import tabulate

from ..core import paths
from ..core.errors import ToolError


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"group.key": value} of a nested params dict."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def rows_of(shown: list[dict]) -> list[dict]:
    """One dict per revision and experiment: name, kind (workspace | baseline | experiment), params,
    verdict."""
    def row(entry: dict, name: str, kind: str) -> dict:
        data = entry.get("data") or {}
        verdict = ((data.get("metrics") or {}).get(paths.VERDICT_JSON) or {}).get("data") or {}
        params = flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
        return {"name": name, "kind": kind, "params": params, "verdict": verdict}

    rows = []
    for commit in shown:
        kind = "workspace" if commit["rev"] == "workspace" else "baseline"
        rows.append(row(commit, "workspace" if kind == "workspace" else commit.get("name")
                        or commit["rev"][:7], kind))
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                rows.append(row(rev, "└ " + (rev.get("name") or rev["rev"][:7]), "experiment"))
    return rows


def changed_params(rows: list[dict]) -> list[str]:
    """The params that the experiments (and the workspace) set differently from one another; with one
    experiment, those it sets differently from the commits."""
    runs = [r for r in rows if r["kind"] != "baseline"]
    compared = runs if len([r for r in runs if r["kind"] == "experiment"]) > 1 else rows
    keys = sorted({k for r in compared for k in r["params"]})
    return [k for k in keys if len({json.dumps(r["params"].get(k)) for r in compared}) > 1]


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def cells(row: dict) -> dict:
    v = row["verdict"]
    if not v:
        return {"test acc": "-", "95% CI": "-", "seeds": "-", "verdict": "no results", "corrupted": "-",
                "ECE": "-", "train s": "-", "LRMAX": "-"}
    acc, half = v.get("test_acc"), v.get("test_acc_ci")
    interval = "-" if half is None else f"{percent(acc - half)}–{percent(acc + half)}"
    return {"test acc": percent(acc), "95% CI": interval, "seeds": v.get("seeds"),
            "verdict": v.get("verdict"), "corrupted": percent(v.get("corrupt_acc")),
            "ECE": percent(v.get("ece")), "train s": f"{v['train_s']:.1f}", "LRMAX": f"{v['lr_max']:.3g}"}


def table(rows: list[dict], width: int) -> str:
    """The rows as a text table no wider than `width`, the params that do not fit named below it."""
    params, hidden = changed_params(rows), []
    while True:
        body = [{"Experiment": r["name"], **cells(r),
                 **{p: "-" if r["params"].get(p) is None else r["params"][p] for p in params}} for r in rows]
        text = tabulate(body, headers="keys", tablefmt="simple", disable_numparse=True)
        if max(len(line) for line in text.splitlines()) <= width or not params:
            break
        hidden.insert(0, params.pop())
    if hidden:
        text += f"\nalso changed, not shown in {width} columns: {', '.join(hidden)}"
    return text


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="cifarpipe exps", description=__doc__, allow_abbrev=False,
                                   usage="%(prog)s [-h] [DVC_EXP_SHOW_FLAG ...]",
                                   epilog="DVC_EXP_SHOW_FLAG: the flags of `dvc exp show` that choose rows: "
                                   "-A, -n N, --rev REV, ...",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser().parse_known_args(argv)  # its -h; the rest are dvc exp show's
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", *argv],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ToolError(f"dvc exp show failed: {said}")
    print(table(rows_of(json.loads(proc.stdout)), shutil.get_terminal_size((120, 24)).columns))
