"""A Markdown report for a pull request: did the change help, or is the difference seed noise?

    cifarpipe report --base main --out report.md

Each side's seeds compared as groups (Welch's interval, Holm across a family), then both revisions' plots
overlaid, `dvc metrics diff`, `dvc params diff` and the pictures (docs/noise.md).
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from ..aggregate.noise import MORE_SEEDS, compare, holm, summarize, verdict_note
from ..core import paths
from ..core.params import load_params
from ..core.paths import per_seed

# metric: (what the report calls it, higher is better, how its numbers read)
KEY_METRICS = {"test_acc": ("test accuracy", True, "points"), "test_loss": ("test loss", False, "plain"),
               "corrupt_acc": ("corrupted-set accuracy", True, "points"),
               "ece": ("calibration error (ECE)", False, "points"),
               "train_s": ("training seconds", False, "seconds")}
# the families of comparisons, each Holm-adjusted as one: column prefix -> how a row is named
FAMILIES = {"per_class_acc.": "{} accuracy", "corruption_acc.": "accuracy under {}"}
OVERLAID = ["Test accuracy over the seeds", "Test loss over the seeds", "LR schedule per step",
            "LR range test", "Per-class accuracy, mean over the seeds"]


def dvc(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


# scale, format, unit
KINDS = {"points": (100, ".2f", "%"), "seconds": (1, ".1f", " s"), "plain": (1, ".4f", "")}


def fmt(value, kind: str, *, difference: bool = False, signed: bool = False, unit: bool = True) -> str:
    """A metric's number as a reviewer reads it: accuracy in percent (a difference of accuracies in
    points)."""
    if value is None:
        return "n/a"
    scale, spec, suffix = KINDS[kind]
    text = format(scale * value, ("+" if signed else "") + spec)
    if not unit:
        return text
    return text + (" points" if difference and kind == "points" else suffix)


def group(values: pd.Series, kind: str, confidence: float) -> str:
    """A side's seeds: mean ± half the width of the interval of the mean, and n; or the single value."""
    s = summarize(values, confidence)
    if s["n"] == 1:
        return f"{fmt(s['mean'], kind)} (1 seed)"
    half = fmt((s["ci_high"] - s["ci_low"]) / 2, kind, unit=False)
    return f"{fmt(s['mean'], kind)} ± {half} (n={s['n']})"


def comparison_table(base: pd.DataFrame, change: pd.DataFrame, confidence: float, power: float) -> list[str]:
    """Markdown rows comparing the key metrics (each its own test) and every class's accuracy (one family,
    Holm-adjusted), seed groups against seed groups."""
    rows = [f"| metric | base | change | change − base ({confidence:.0%} CI) | p | verdict | smallest "
            "detectable |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    keys = [(c, name, better, kind) for c, (name, better, kind) in KEY_METRICS.items()
            if c in base.columns and c in change.columns]
    results, rows_of = [compare(base[c], change[c], confidence, power, better) for c, _, better,
                        _ in keys], keys
    for prefix, name in FAMILIES.items():
        family = [(c, name.format(c.split(".", 1)[1].replace("_", " ")), True, "points")
                  for c in change.columns
                  if c.startswith(prefix) and c in base.columns]
        results += holm([compare(base[c], change[c], confidence, power) for c, *_ in family], confidence)
        rows_of = rows_of + family
    for (column, name, _, kind), r in zip(rows_of, results):
        diff = fmt(r["diff"], kind, difference=True, signed=True)
        if r["ci_low"] is not None:
            diff += (f" [{fmt(r['ci_low'], kind, signed=True, unit=False)}, "
                     f"{fmt(r['ci_high'], kind, signed=True, unit=False)}]")
        p = ("n/a" if r["p_value"] is None else
             f"{r['p_holm']:.3f} (Holm)" if "p_holm" in r else f"{r['p_value']:.3f}")
        rows.append(f"| {name} | {group(base[column], kind, confidence)} | "
                    f"{group(change[column], kind, confidence)} | {diff} | {p} | **{r['verdict']}** | "
                    f"{fmt(r['detectable'], kind, difference=True)} |")
    return rows


def read_at(rev: str, path: str) -> str | None:
    """A file of the pipeline's outputs at git revision `rev`, through DVC (cache or remote); None if it has
    none."""
    import dvc.api

    try:
        return dvc.api.read(path, rev=rev)
    except Exception:  # the revision predates the file, or its outputs were never pushed
        return None


def verdicts(base: str, base_aggregate: dict | None, change_aggregate: dict) -> list[str]:
    lines = []
    for side, aggregate in ((f"base (`{base}`)", base_aggregate), ("change", change_aggregate)):
        if aggregate is None:
            lines.append(f"- **{side}**: no aggregate over seeds (metrics/aggregate.json) at that revision")
            continue
        acc = aggregate["test_acc"]
        spread = (f", {aggregate['confidence']:.0%} CI {100 * acc['ci_low']:.2f}–{100 * acc['ci_high']:.2f}%"
                  if acc["ci_low"] is not None else "")
        note = verdict_note(aggregate["target_verdict"])
        lines.append(f"- **{side}**: test accuracy {100 * acc['mean']:.2f}% over {aggregate['n']} "
                     f"seed(s){spread}, {aggregate['target_met_seeds']} of {aggregate['n']} at the target: "
                     f"target {aggregate['target']:.0%} **{aggregate['target_verdict']}**"
                     + (f" ({note})" if note else ""))
    return lines


def overlaid_plots(base: str, images: Path) -> list[str]:
    """The Vega plots of both revisions, one PNG (and its Vega-Lite spec) each, from `dvc plots diff`."""
    import vl_convert

    # dvc plots diff --json also writes the images of both revisions
    with tempfile.TemporaryDirectory() as tmp:
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
    noise = load_params("params.yaml").noise
    change_seeds = pd.read_csv(paths.SEEDS_CSV)
    change_aggregate = json.loads(Path(paths.AGGREGATE_JSON).read_text())
    base_csv, base_json = read_at(base, paths.SEEDS_CSV), read_at(base, paths.AGGREGATE_JSON)
    images = out.parent / f"{out.stem}_images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)

    lines = [f"# cifarpipe report: this change vs `{base}`", "", "## Verdicts", "",
             *verdicts(base, json.loads(base_json) if base_json else None, change_aggregate), ""]
    if base_csv is None:
        lines += [f"The base has no per-seed results (`{paths.SEEDS_CSV}`) in the DVC cache or remote: run "
                  "it with seeds and push (the pull-request workflow does), then report again.", ""]
    else:
        base_seeds = pd.read_csv(io.StringIO(base_csv))
        if min(len(base_seeds), len(change_seeds)) < 2:
            lines += [f"One run on a side ({len(base_seeds)} base, {len(change_seeds)} change): any "
                      "difference below is within seed noise (about 0.15 points of accuracy per run). To "
                      f"measure it, {MORE_SEEDS} on both sides (the workflow's `seeds` input does).", ""]
        alpha = 1 - noise.confidence
        lines += comparison_table(base_seeds, change_seeds, noise.confidence, noise.power) + [
            "",
            f"Seeds: base {base_seeds['seed'].tolist()}, change {change_seeds['seed'].tolist()}. A headline "
                f"metric is better or worse only when the {noise.confidence:.0%} interval of the "
                "difference (Welch's t) excludes zero. The classes are one family, and the corruptions "
                "another: a row of either is better or worse only when its Holm-adjusted p is below "
                f"{alpha:.2g}, so the chance that any row of a family is called so by chance stays at "
                f"{alpha:.0%}. The last column is the difference these groups would detect with probability "
                f"{noise.power:.0%}.", ""]
    lines += ["## Base and change overlaid", "", *overlaid_plots(base, images), "",
              "## Metrics", "", dvc("metrics", "diff", base, "--md") or "No metric changed.", "",
              "## Params", "", dvc("params", "diff", base, "--md") or "No param changed.", "",
              "## Pictures of this change (first seed)", ""]
    first = change_aggregate["seeds"][0]
    for plot in [per_seed(paths.CONFUSION_PNG, first), per_seed(paths.MISCLASSIFIED_PNG, first),
                 paths.CURVES_PNG, paths.LR_PICK_PNG]:
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
