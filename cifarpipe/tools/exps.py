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
from pathlib import Path

import tabulate

from ..core import paths
from ..core.errors import ToolError
from ..core.params import load_params


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


FALLBACK = "†"  # LRMAX read by the valley rule: the loss was still falling at the end of the range test


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def against(base: dict, v: dict, noise) -> str:
    """An experiment's test accuracy against its commit's, in a word: better, worse, equivalent (within
    noise.margin) or undecided; Welch's test on the two groups' summaries, since a row holds no seed's own."""
    from ..aggregate.noise import verdict, welch_from_summaries

    if min(base.get("seeds") or 0, v.get("seeds") or 0) < 2 or None in (base.get("test_acc_std"),
                                                                          v.get("test_acc_std")):
        return "-"
    d = welch_from_summaries((base["test_acc"], base["test_acc_std"], base["seeds"]),
                             (v["test_acc"], v["test_acc_std"], v["seeds"]))
    alpha, margin = 1 - noise.confidence, noise.margin.test_acc / 100
    return verdict({"p_value": float(d.p_value()), "p_equivalence": float(d.equivalence_p(margin)),
                    "diff": float(d.diff)}, alpha, alpha)


def cells(row: dict, base: dict | None = None, noise=None) -> dict:
    v = row["verdict"]
    if not v:
        return {"test acc": "-", "± 95%": "-", "seeds": "-", "verdict": "no results", "vs base": "-",
                "corrupted": "-", "ECE": "-", "train s": "-", "LRMAX": "-"}
    acc, half = v.get("test_acc"), v.get("test_acc_ci")
    interval = "-" if half is None else f"±{100 * half:.2f}"
    fallback = FALLBACK if "fallback" in (v.get("lr_rule") or "") else ""
    return {"test acc": percent(acc), "± 95%": interval, "seeds": v.get("seeds"),
            "verdict": v.get("verdict"),
            "vs base": against(base or {}, v, noise) if row["kind"] == "experiment" and noise else "-",
            "corrupted": percent(v.get("corrupt_acc")), "ECE": percent(v.get("ece")),
            "train s": f"{v['train_s']:.1f}", "LRMAX": f"{v['lr_max']:.3g}{fallback}"}


def packed(body: list[dict]) -> str:
    """tabulate's simple table without its two spaces of padding around each header (10 columns' worth)."""
    padding, tabulate.MIN_PADDING = tabulate.MIN_PADDING, 0
    try:
        return tabulate.tabulate(body, headers="keys", tablefmt="simple", disable_numparse=True)
    finally:
        tabulate.MIN_PADDING = padding


def table(rows: list[dict], width: int, noise=None) -> str:
    """The rows as a text table no wider than `width`, the params that do not fit named below it."""
    params, hidden = changed_params(rows), []
    commit = {}  # each experiment's commit: the baseline row above it
    for r in rows:
        if r["kind"] != "experiment":
            current = r["verdict"]
        commit[id(r)] = current
    while True:
        body = [{"Experiment": r["name"], **cells(r, commit[id(r)], noise),
                 **{p: "-" if r["params"].get(p) is None else r["params"][p] for p in params}} for r in rows]
        text = packed(body)
        if max(len(line) for line in text.splitlines()) <= width or not params:
            break
        hidden.insert(0, params.pop())
    if hidden:
        text += f"\nalso changed, not shown in {width} columns: {', '.join(hidden)}"
    if any(FALLBACK in str(row["LRMAX"]) for row in body):
        text += (f"\n{FALLBACK} LRMAX read by the valley rule: the loss was still falling at the range test's "
                 "last LR (raise lr_find.end_lr)")
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
    noise = load_params("params.yaml").noise if Path("params.yaml").exists() else None  # margin, confidence
    print(table(rows_of(json.loads(proc.stdout)), shutil.get_terminal_size((120, 24)).columns, noise))
