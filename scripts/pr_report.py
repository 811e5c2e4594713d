"""Write a Markdown report for a pull request: metric and param diffs against a base revision, the
target verdict before and after, and the key plots.

    python scripts/pr_report.py --base main --out report.md

Everything comes from real DVC commands run in this repository (`dvc metrics diff`, `dvc params diff`),
so the base revision's metrics must be in the local DVC cache (or pulled from a remote).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cifarpipe import paths  # noqa: E402

KEY_PLOTS = [paths.CURVES_PNG, paths.CONFUSION_PNG, paths.PER_CLASS_PNG, paths.MISCLASSIFIED_PNG, paths.LR_FIND_PNG]


def dvc(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def verdict(acc, target) -> str:
    if acc is None or target is None:
        return "n/a"
    return f"{acc:.2%} vs target {target:.0%}: **{'met' if acc >= target else 'NOT met'}**"


def build_report(base: str, out: Path) -> str:
    diff = json.loads(dvc("metrics", "diff", base, "--all", "--json") or "{}")
    evaluate = diff.get(paths.EVALUATE_JSON, {})
    acc, target = evaluate.get("test_acc", {}), evaluate.get("target", {})
    current = json.loads(Path(paths.EVALUATE_JSON).read_text()) if Path(paths.EVALUATE_JSON).exists() else {}
    before = verdict(acc.get("old"), target.get("old"))
    after = verdict(acc.get("new", current.get("test_acc")), target.get("new", current.get("target")))

    lines = [f"# cifarpipe report: this change vs `{base}`", "",
             "| | test accuracy |", "| --- | --- |", f"| before (`{base}`) | {before} |", f"| after | {after} |", "",
             "## Metrics", "", dvc("metrics", "diff", base, "--md") or "No metric changed.", "",
             "## Params", "", dvc("params", "diff", base, "--md") or "No param changed.", "", "## Plots", ""]
    images = out.parent / f"{out.stem}_images"
    images.mkdir(parents=True, exist_ok=True)
    for plot in KEY_PLOTS:
        if Path(plot).exists():
            shutil.copy2(plot, images / Path(plot).name)
            lines.append(f"![{Path(plot).stem}]({images.name}/{Path(plot).name})")
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="main", help="git revision to compare against")
    ap.add_argument("--out", type=Path, default=Path("report.md"))
    args = ap.parse_args()
    print(build_report(args.base, args.out))


if __name__ == "__main__":
    main()
