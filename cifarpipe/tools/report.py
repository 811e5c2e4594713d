"""report.md for a pull request: this change against a base revision, over each side's seeds.

Did the change help, or is the difference seed noise? Each side's seeds compared as groups (Welch's interval,
Holm across a family), then both revisions' plots overlaid, the metrics and params diffs (docs/noise.md).
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

from ..aggregate.noise import MORE_SEEDS, compare, correlation, holm, summarize, verdict_note
from ..aggregate.sequential import Design, Look, look_at
from ..core import paths
from ..core.errors import ToolError
from ..core.params import load_params
from ..core.paths import per_seed
from ..corrupt.names import BENCHMARK

# metric: (what the report calls it, higher is better, how its numbers read); one family of tests
KEY_METRICS = {"test_acc": ("test accuracy", True, "points"), "test_loss": ("test loss", False, "plain"),
               "corrupt_acc": ("corrupted-set accuracy", True, "points"),
               "corrupt_gap": ("clean − corrupted gap", False, "gap"),
               "ece": ("calibration error (ECE)", False, "points"),
               "train_s": ("training seconds", False, "seconds")}
CORRUPTED = ("corrupt_acc", "corrupt_gap")  # compared only when both sides scored the same corrupted sets
# the families of per-member comparisons: column prefix -> (section, how a row is named)
FAMILIES = {"per_class_acc.": ("classes", "{} accuracy"),
            "corruption_acc.": ("corruptions", "accuracy under {}")}
OVERLAID = ["Test accuracy over the seeds", "Test loss over the seeds", "LR schedule per step",
            "LR range test", "Per-class accuracy, mean over the seeds"]
TABLE_HEAD = ["| metric | base | change | change − base (CI, Holm) | adjusted p | verdict "
              "| smallest detectable |",
              "| --- | --- | --- | --- | --- | --- | --- |"]


def dvc(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ToolError(f"dvc {' '.join(args)} failed: {said}")
    return proc.stdout


# scale, format, unit, the ranges a value and a difference of two can take (or None: unbounded)
KINDS = {"points": (100, ".2f", "%", ((0.0, 1.0), (-1.0, 1.0))),  # an accuracy
         "gap": (100, ".2f", "%", ((-1.0, 1.0), (-2.0, 2.0))),  # a difference of two accuracies
         "seconds": (1, ".1f", " s", None), "plain": (1, ".4f", "", None)}
CLIPPED = "†"  # an interval cut to the values an accuracy can take


def fmt(value, kind: str, *, difference: bool = False, signed: bool = False, unit: bool = True) -> str:
    """A metric's number as a reviewer reads it: accuracy in percent (a difference of accuracies in
    points)."""
    if value is None:
        return "n/a"
    scale, spec, suffix, _ = KINDS[kind]
    text = format(scale * value, ("+" if signed else "") + spec)
    if not unit:
        return text
    return text + (" points" if kind == "gap" or (difference and kind == "points") else suffix)


def bounded(low: float, high: float, kind: str, *, difference: bool = False) -> tuple[float, float, bool]:
    """(low, high, clipped): an interval cut to the range the metric can take."""
    limits = KINDS[kind][3]
    if limits is None:
        return low, high, False
    floor, ceiling = limits[difference]
    return max(low, floor), min(high, ceiling), low < floor or high > ceiling


def group(values: pd.Series, kind: str, confidence: float) -> str:
    """A side's seeds: the mean with its interval, and n; or the single value."""
    s = summarize(values, confidence)
    if s["n"] == 1:
        return f"{fmt(s['mean'], kind)} (1 seed)"
    low, high, clipped = bounded(s["ci_low"], s["ci_high"], kind)
    if clipped:
        spread = f" [{fmt(low, kind, unit=False)}, {fmt(high, kind, unit=False)}]{CLIPPED}"
    else:
        spread = f" ± {fmt((s['ci_high'] - s['ci_low']) / 2, kind, unit=False)}"
    return f"{fmt(s['mean'], kind)}{spread} (n={s['n']})"


def row(name: str, kind: str, base: pd.Series, change: pd.Series, r: dict, confidence: float) -> str:
    diff = fmt(r["diff"], kind, difference=True, signed=True)
    if r["ci_low"] is not None:
        low, high, clipped = bounded(r["ci_low"], r["ci_high"], kind, difference=True)
        diff += (f" [{fmt(low, kind, signed=True, unit=False)}, {fmt(high, kind, signed=True, unit=False)}]"
                 + (CLIPPED if clipped else ""))
    p = "n/a" if r.get("p_holm") is None else f"{r['p_holm']:.3f}"
    detectable = r["detectable"]
    limits = KINDS[kind][3]
    shown = ("more than the range" if limits and detectable is not None and detectable > limits[1][1] else
             fmt(detectable, kind, difference=True))
    return (f"| {name} | {group(base, kind, confidence)} | {group(change, kind, confidence)} | {diff} "
            f"| {p} | **{r['verdict']}** | {shown} |")


def family_line(label: str, rows: list[tuple[str, str, dict]]) -> str:
    """One line for a family: what differs after Holm, or that nothing does and the largest change."""
    called = [(name, kind, r) for name, kind, r in rows if r["verdict"] in ("better", "worse")]
    if called:
        verb = "differs" if len(called) == 1 else "differ"
        return f"{label}: {len(called)} of {len(rows)} {verb} after Holm: " + "; ".join(
            f"{name} {r['verdict']} ({fmt(r['diff'], kind, difference=True, signed=True)}, adjusted p "
            f"{r['p_holm']:.3g})" for name, kind, r in called)
    tested = [(name, kind, r) for name, kind, r in rows if r.get("p_holm") is not None]
    if not tested:
        return f"{label}: not tested (one run on a side)"
    name, kind, r = max(tested, key=lambda t: abs(t[2]["diff"]) * KINDS[t[1]][0])
    return (f"{label}: none differs after Holm; the largest change, {name}, "
            f"{fmt(r['diff'], kind, difference=True, signed=True)}, adjusted p {r['p_holm']:.3g}")


UNPAIRED = {"train_s"}  # seconds share no randomness with the seed: two groups (Welch) even on the same seeds


def aligned(base: pd.DataFrame, change: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(base, change, paired): both sorted by seed and paired when they ran the same seeds."""
    if sorted(base["seed"]) != sorted(change["seed"]):
        return base, change, False
    def by_seed(side: pd.DataFrame) -> pd.DataFrame:
        return side.sort_values("seed").reset_index(drop=True)

    return by_seed(base), by_seed(change), True


def compare_family(base: pd.DataFrame, change: pd.DataFrame, members: list[tuple[str, str, bool, str]],
                   confidence: float, power: float,
                   margins: dict | None = None) -> list[tuple[str, str, dict, str]]:
    """[(row name, kind, result, column)] of one family, Holm-adjusted together; seed by seed where the sides
    ran the same seeds, with an equivalence test where `margins` gives the column one."""
    base, change, paired = aligned(base, change)
    results = [compare(base[c], change[c], confidence, power, better, paired=paired and c not in UNPAIRED,
                       margin=(margins or {}).get(c)) for c, _, better, _ in members]
    holm(results, confidence, [better for _, _, better, _ in members])
    return [(name, kind, r, c) for (c, name, _, kind), r in zip(members, results, strict=True)]


def comparison_table(base: pd.DataFrame, change: pd.DataFrame, confidence: float, power: float, *,
                     same_corrupted_sets: bool = True, margins: dict | None = None,
                     primary: str | None = None) -> list[str]:
    """Markdown: the headline metrics as one Holm family with its line and table, then the classes and the
    corruptions, each a family with its line and its rows folded. `primary`: a metric decided apart (the
    sequential design's test accuracy), left out of the headline family."""
    shared = [c for c in KEY_METRICS if c in base.columns and c in change.columns and c != primary
              and (same_corrupted_sets or c not in CORRUPTED)]
    headline = compare_family(base, change, [(c, *KEY_METRICS[c][:2], KEY_METRICS[c][2]) for c in shared],
                              confidence, power, margins)
    lines = [family_line("headline metrics", [(n, k, r) for n, k, r, _ in headline]), "", *TABLE_HEAD,
             *(row(n, k, base[c], change[c], r, confidence) for n, k, r, c in headline)]
    for prefix, (section, naming) in FAMILIES.items():
        if prefix == "corruption_acc." and not same_corrupted_sets:
            continue
        columns = [c for c in change.columns if c.startswith(prefix) and c in base.columns]
        if not columns:
            continue
        members = [(c, naming.format(c.split(".", 1)[1].replace("_", " ")), True, "points") for c in columns]
        compared = compare_family(base, change, members, confidence, power)
        lines += ["", family_line(section, [(n, k, r) for n, k, r, _ in compared]), "",
                  f"<details><summary>{section}, row by row ({len(compared)})</summary>", "", *TABLE_HEAD,
                  *(row(n, k, base[c], change[c], r, confidence) for n, k, r, c in compared), "",
                  "</details>"]
    return lines


def margins_of(noise) -> dict:
    """{column: margin} in the column's own units: noise.margin is in points (hundredths) of each metric."""
    return {name: points / 100 for name, points in noise.margin.model_dump().items()}


def rounds_lines(base: pd.DataFrame, change: pd.DataFrame, design: Design,
                 margin: float) -> tuple[list[str], Look]:
    """The sequential design's call on test accuracy at this look, said in a few lines, and the look."""
    base, change, _ = aligned(base, change)
    look = look_at(base["test_acc"], change["test_acc"], design, margin)
    if look is None:
        raise ToolError(f"--sequential: the sides ran {len(base)} and {len(change)} seeds, not one of the "
                        f"design's looks ({', '.join(map(str, design.looks))} a side, noise.first_seeds, "
                        "noise.round_seeds, noise.max_seeds): run scripts/pr_report.sh, or report without "
                        "--sequential")
    diff = change["test_acc"].mean() - base["test_acc"].mean()
    low, high = look.interval
    r = correlation(base["test_acc"], change["test_acc"]) if design.paired else None
    cost = base["train_s"].sum() + change["train_s"].sum()
    eq = ("" if look.p_equivalence is None else
          f"; equivalent within ±{100 * margin:.2f} points: p {look.p_equivalence:.3g} (this look needs "
          f"{look.equivalence_level:.3g})")
    lines = [f"**Seeds in rounds** ({design.describe()}): {look.line(design)}.", "",
             f"- test accuracy, change − base: {100 * diff:+.2f} points "
             f"[{100 * low:+.2f}, {100 * high:+.2f}] "
             f"({'paired, seed by seed' if design.paired else 'Welch'}), p {look.p_value:.3g} (this look "
             f"needs {look.level:.3g}){eq}",
             f"- the sides' correlation seed by seed: {'n/a' if r is None else f'r = {r:.2f}'}",
             f"- the verdict cost {len(base)} + {len(change)} trainings, {cost:.0f} training seconds in all",
             ""]
    return lines, look


def relative_corruption_error(base: pd.DataFrame, change: pd.DataFrame, corruptions) -> float | None:
    """Each corruption's error (1 - accuracy, the mean over the seeds) divided by the base's, averaged: the
    CIFAR form of mCE. Below 1, the change makes fewer errors under corruption than the base."""
    columns = [f"corruption_acc.{c}" for c in corruptions]
    if not all(c in base.columns and c in change.columns for c in columns):
        return None
    ratios = [(1 - change[c].mean()) / (1 - base[c].mean()) for c in columns if base[c].mean() < 1]
    return float(sum(ratios) / len(ratios)) if ratios else None


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
        low, high = (None, None) if acc["ci_low"] is None else (100 * acc["ci_low"], 100 * acc["ci_high"])
        spread = (f", {aggregate['confidence']:.0%} CI {low:.2f}–{high:.2f}%"
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


def same_corrupted_sets(base_aggregate: dict | None, change_aggregate: dict) -> tuple[bool, str]:
    """(whether both sides scored the same corrupted sets, why not)."""
    base_sets = (base_aggregate or {}).get("corrupted_sets")
    change_sets = change_aggregate.get("corrupted_sets")
    if base_sets is None or change_sets is None:
        return False, "the base does not record which corrupted sets it scored"
    if base_sets != change_sets:
        return False, (f"the two sides scored different corrupted sets (base {base_sets}, change "
                       f"{change_sets}: other corrupt params, code or source)")
    return True, ""


def robustness_lines(base: pd.DataFrame, change: pd.DataFrame, same_sets: bool, why: str) -> list[str]:
    if not same_sets:
        return [f"Robustness is not compared: {why}."]
    rce = relative_corruption_error(base, change, BENCHMARK)
    if rce is None:
        return ["Relative corruption error: not all 15 benchmark corruptions were scored on both sides."]
    clean = (1 - change["test_acc"].mean()) / (1 - base["test_acc"].mean())
    return [f"Relative corruption error {rce:.3f}: under the 15 benchmark corruptions the change makes "
            f"{rce:.1%} of the base's errors (each corruption's error divided by the base's, then averaged: "
            f"the CIFAR form of mCE; below 1 is more robust). On the clean test set it makes {clean:.1%} of "
            "them: robustness gained beyond clean accuracy shows only as a relative error below that."]


def reading(confidence: float, power: float) -> str:
    alpha = 1 - confidence
    return (f"Each family (the headline metrics, the classes, the corruptions) is Holm-adjusted: a row is "
            f"better or worse only when its adjusted p is below {alpha:.2g}, so the chance that any row of a "
            f"family is called so by chance stays at {alpha:.0%}; equivalent when its two one-sided tests "
            "show the difference inside ±noise.margin (Holm-adjusted the same way). Each interval is "
            "paired (seed by seed) when both sides ran the same seeds, else Welch's (training seconds "
            "always), drawn at the level Holm tested its row at, so it excludes zero exactly when the row is "
            "called better or worse; "
            f"{CLIPPED} marks one cut to what an accuracy can take. The last column is the difference these "
            f"groups would detect with probability {power:.0%}.")


def seed_groups(base_seeds: pd.DataFrame, change_seeds: pd.DataFrame, noise, same_sets: bool, why: str,
                sequential: bool) -> tuple[list[str], Look | None]:
    """The report's comparison of the two seed groups: the rounds' call (with --sequential), the tables, the
    robustness lines and how to read them; and the look, when there is one."""
    lines, look, margins = [], None, margins_of(noise)
    if min(len(base_seeds), len(change_seeds)) < 2:
        lines += [f"One run on a side ({len(base_seeds)} base, {len(change_seeds)} change): any "
                  "difference below is within seed noise (about 0.15 points of accuracy per run). To "
                  f"measure it, {MORE_SEEDS} on both sides (the workflow's `seeds` input does).", ""]
    elif sequential:
        said, look = rounds_lines(base_seeds, change_seeds, Design.from_noise(noise), margins["test_acc"])
        lines += said
    lines += comparison_table(base_seeds, change_seeds, noise.confidence, noise.power,
                              same_corrupted_sets=same_sets, margins=margins,
                              primary="test_acc" if look else None)
    cost = base_seeds["train_s"].sum() + change_seeds["train_s"].sum()
    lines += ["", *robustness_lines(base_seeds, change_seeds, same_sets, why), "",
              f"Seeds: base {base_seeds['seed'].tolist()}, change {change_seeds['seed'].tolist()} "
              f"({cost:.0f} training seconds in all). " + reading(noise.confidence, noise.power), ""]
    return lines, look


def build_report(base: str, out: Path, *, sequential: bool = False) -> str:
    missing = [p for p in ("params.yaml", paths.SEEDS_CSV, paths.AGGREGATE_JSON) if not Path(p).exists()]
    if missing:
        raise ToolError(f"{', '.join(missing)} not found here: run `cifarpipe report` in the project, after "
                        "`dvc repro` (or `dvc pull`) has made this change's results")
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
    look = None
    if base_csv is None:
        lines += [f"The base has no per-seed results (`{paths.SEEDS_CSV}`) in the DVC cache or remote: run "
                  "it with seeds and push (the pull-request workflow does), then report again.", ""]
    else:
        same_sets, why = same_corrupted_sets(base_json and json.loads(base_json), change_aggregate)
        said, look = seed_groups(pd.read_csv(io.StringIO(base_csv)), change_seeds, noise, same_sets, why,
                                 sequential)
        lines += said
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
    if sequential:  # what scripts/pr_report.sh reads to stop or run another round
        state = {"decided": look is None or look.decided, "call": look.call if look else None,
                 "seeds": look.seeds if look else None}
        out.with_suffix(".json").write_text(json.dumps(state) + "\n")
    return text


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="main", help="git revision to compare against (default main)")
    ap.add_argument("--out", type=Path, default=Path("report.md"),
                    help="the report (default report.md), its pictures in a folder beside it")
    ap.add_argument("--sequential", action="store_true",
                    help="decide test accuracy at this round of the noise params' design "
                         "(scripts/pr_report.sh); writes the round's state beside the report, as JSON")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    print(build_report(args.base, args.out, sequential=args.sequential))


if __name__ == "__main__":
    main()
