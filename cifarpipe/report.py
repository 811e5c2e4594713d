"""Write a Markdown report for a pull request: what the change did, against a base revision.

    cifarpipe report --base main --out report.md

At the top, a table a reviewer reads at a glance: test accuracy before and after against the target,
training seconds, LRMAX, and the per-class accuracies that moved most. Then the curves of both revisions
overlaid (loss, accuracy, LR schedule, LR range test, per-class accuracy), rendered to PNG without a
browser from `dvc plots diff <base>` (vl-convert renders its Vega-Lite), each beside its spec as JSON;
then the full `dvc metrics diff` and `dvc params diff`, and the change's own pictures.

Everything comes from real DVC commands run in this repository; DVC reads the base revision's outputs
from the local cache, or from the DVC remote when they are not there (a fresh clone reports too).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import paths

OVERLAID = ["Loss", "Accuracy", "LR schedule per step", "LR range test", "Per-class accuracy"]
CHANGE_PICTURES = [paths.CONFUSION_PNG, paths.MISCLASSIFIED_PNG, paths.LR_FIND_PNG]
MOVED_MOST = 3


def dvc(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def percent(value) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def verdict(acc, target) -> str:
    if acc is None or target is None:
        return "n/a"
    return f"{acc:.2%} vs target {target:.0%}: **{'met' if acc >= target else 'NOT met'}**"


def summary_table(diff: dict, base: str) -> list[str]:
    """Before -> after of what a reviewer looks at first, from `dvc metrics diff --all --json`."""
    evaluate, train, lr = (diff.get(paths.EVALUATE_JSON, {}), diff.get(paths.TRAIN_JSON, {}),
                           diff.get(paths.LR_JSON, {}))

    def old_new(group, key):
        entry = group.get(key, {})
        return entry.get("old"), entry.get("new")

    acc, target = old_new(evaluate, "test_acc"), old_new(evaluate, "target")
    train_s, lr_max = old_new(train, "train_s"), old_new(lr, "lr_max")
    number = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
    lines = [f"| | before (`{base}`) | after |", "| --- | --- | --- |",
             f"| test accuracy | {verdict(acc[0], target[0])} | {verdict(acc[1], target[1])} |",
             f"| training time | {number(train_s[0], '.1f')} s | {number(train_s[1], '.1f')} s |",
             f"| LRMAX | {number(lr_max[0], '.3g')} | {number(lr_max[1], '.3g')} |"]
    moved = []
    for key, entry in evaluate.items():
        if (key.startswith("per_class_acc.") and entry.get("old") is not None and entry.get("new") is not None
                and entry["new"] != entry["old"]):
            moved.append((abs(entry["new"] - entry["old"]), key.split(".", 1)[1], entry["old"], entry["new"]))
    for _, name, old, new in sorted(moved, reverse=True)[:MOVED_MOST]:
        lines.append(f"| {name} accuracy | {percent(old)} | {percent(new)} ({(new - old) * 100:+.1f} points) |")
    return lines


def overlaid_plots(base: str, images: Path) -> list[str]:
    """The Vega plots of both revisions, one PNG (and its Vega-Lite spec) each, from `dvc plots diff`."""
    import vl_convert

    with tempfile.TemporaryDirectory() as tmp:  # dvc plots diff --json also writes the images of both revisions
        plots = json.loads(dvc("plots", "diff", base, "--json", "-o", tmp))["data"]
    lines = []
    for title in OVERLAID:
        entry = next((e for e in plots.get(title, []) if e.get("type") == "vega"), None)
        if entry is None:
            continue
        name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
        spec = entry["content"]
        (images / f"{name}.vl.json").write_text(json.dumps(spec, indent=1))
        (images / f"{name}.png").write_bytes(vl_convert.vegalite_to_png(spec, scale=1.5))
        lines.append(f"![{title}]({images.name}/{name}.png)  \n*{title}: {' vs '.join(entry['revisions'])}*")
    return lines


def build_report(base: str, out: Path) -> str:
    diff = json.loads(dvc("metrics", "diff", base, "--all", "--json") or "{}")
    images = out.parent / f"{out.stem}_images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)

    lines = [f"# cifarpipe report: this change vs `{base}`", "", *summary_table(diff, base), "",
             "## Base and change overlaid", "", *overlaid_plots(base, images), "",
             "## Metrics", "", dvc("metrics", "diff", base, "--md") or "No metric changed.", "",
             "## Params", "", dvc("params", "diff", base, "--md") or "No param changed.", "",
             "## Pictures of this change", ""]
    for plot in CHANGE_PICTURES:
        if Path(plot).exists():
            shutil.copy2(plot, images / Path(plot).name)
            lines.append(f"![{Path(plot).stem}]({images.name}/{Path(plot).name})")
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def main(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(prog="cifarpipe report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="main", help="git revision to compare against")
    ap.add_argument("--out", type=Path, default=Path("report.md"))
    args = ap.parse_args(argv)
    print(build_report(args.base, args.out))


if __name__ == "__main__":
    main()
