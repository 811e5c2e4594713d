"""The statistics of seed groups against values computed here by hand (Student t table values, Welch's
formulas), and the report's verdicts on made-up groups."""
import math
import re
import statistics
import warnings

import pandas as pd
import pytest
from scipy import stats

from cifarpipe.aggregate.noise import compare, holm, summarize, target_verdict, verdict_note
from cifarpipe.tools.report import comparison_table, relative_corruption_error, same_corrupted_sets

T_975 = {2: 4.302653, 4: 2.776445}  # Student t, 97.5% quantile, by degrees of freedom (printed tables)
BASE = [0.900, 0.905, 0.910, 0.902, 0.907]


def test_a_summary_is_the_mean_std_range_and_the_student_t_interval_of_the_mean():
    got = summarize(BASE, 0.95)
    mean, sd = statistics.mean(BASE), statistics.stdev(BASE)
    half = T_975[4] * sd / math.sqrt(5)
    assert got["n"] == 5 and got["mean"] == pytest.approx(mean) and got["std"] == pytest.approx(sd)
    assert (got["min"], got["max"]) == (0.900, 0.910)
    assert got["ci_low"] == pytest.approx(mean - half, abs=1e-6)
    assert got["ci_high"] == pytest.approx(mean + half, abs=1e-6)
    assert summarize([0.9], 0.95) == {"n": 1, "mean": 0.9, "std": None, "min": 0.9, "max": 0.9,
                                      "ci_low": None, "ci_high": None}


@pytest.mark.parametrize("values, verdict", [
    ([0.95, 0.951, 0.949], "met"),                      # the whole interval above 0.90
    ([0.80, 0.81, 0.79], "missed"),                     # the whole interval below
    ([0.89, 0.91, 0.90], "undecided"),                 # the interval straddles the target
    ([0.91], "met (1 seed)"),
    ([0.89], "not met (1 seed)"),
])
def test_the_target_verdict_says_what_the_interval_supports(values, verdict):
    assert target_verdict(summarize(values, 0.95), 0.90) == verdict
    note = verdict_note(verdict)
    assert (note == "") == (verdict in ("met", "missed"))
    assert ("seed noise not measured" in note) == verdict.endswith("(1 seed)")
    assert ("train.seeds=" in note) == bool(note)


def welch_by_hand(a, b, confidence, power):
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = stats.t.ppf(1 - (1 - confidence) / 2, df)
    diff = statistics.mean(b) - statistics.mean(a)
    return diff, diff - t * se, diff + t * se, (t + stats.t.ppf(power, df)) * se


@pytest.mark.parametrize("change, higher_is_better, verdict", [
    ([0.920, 0.925, 0.918, 0.921, 0.924], True, "better"),        # clearly higher accuracy
    ([0.880, 0.884, 0.879, 0.886, 0.881], True, "worse"),         # clearly lower accuracy
    ([0.903, 0.909, 0.901, 0.906, 0.904], True, "undecided"),  # overlapping
    ([0.880, 0.884, 0.879, 0.886, 0.881], False, "better"),       # lower is better (a loss)
    ([0.921, 0.903], True, "undecided"),           # two seeds: a wide interval
])
def test_two_groups_get_welchs_interval_and_a_verdict(change, higher_is_better, verdict):
    got = compare(BASE, change, 0.95, 0.8, higher_is_better)
    diff, low, high, detectable = welch_by_hand(BASE, change, 0.95, 0.8)
    assert got["diff"] == pytest.approx(diff) and got["ci_low"] == pytest.approx(low, rel=1e-6)
    assert got["ci_high"] == pytest.approx(high, rel=1e-6)
    assert got["detectable"] == pytest.approx(detectable, rel=1e-6)
    assert got["verdict"] == verdict and (got["n_base"], got["n_change"]) == (5, len(change))


def test_one_run_on_a_side_is_within_noise_whatever_the_difference():
    got = compare([0.80], [0.92, 0.93, 0.925], 0.95, 0.8)
    assert got["verdict"] == "undecided (one run on a side: seed noise not measured)"
    assert got["diff"] == pytest.approx(0.125) and got["ci_low"] is None and got["detectable"] is None


def test_a_side_whose_seeds_all_agree_is_compared_without_a_warning():
    with warnings.catch_warnings():  # the report once printed scipy's "precision loss" on such a class
        warnings.simplefilter("error")
        got = compare([0.566, 0.566, 0.566], [0.6, 0.61, 0.62], 0.95, 0.8)
    diff, low, high, _ = welch_by_hand([0.566, 0.566, 0.566], [0.6, 0.61, 0.62], 0.95, 0.8)
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low, rel=1e-6), pytest.approx(high, rel=1e-6))
    assert got["verdict"] == "better"


def seeds_table(accuracies, cat=None):
    n = len(accuracies)
    return pd.DataFrame({"seed": range(n), "test_acc": accuracies, "test_loss": [1 - a for a in accuracies],
                         "train_s": [10.0 + i for i in range(n)], "per_class_acc.cat": cat or accuracies})


def table_rows(lines: list[str]) -> dict[str, str]:
    """{metric: its Markdown row} of every table in a report's lines."""
    return {line.split(" | ")[0].lstrip("| "): line for line in lines
            if line.startswith("| ") and not line.startswith(("| metric", "| ---"))}


def test_the_report_table_gives_each_metric_its_groups_difference_and_verdict():
    rows = table_rows(comparison_table(seeds_table(BASE), seeds_table([0.920, 0.925, 0.918, 0.921, 0.924]),
                                       0.95, 0.8))
    assert set(rows) == {"test accuracy", "test loss", "training seconds", "cat accuracy"}
    assert "| 90.48% ± " in rows["test accuracy"] and "(n=5)" in rows["test accuracy"]
    # one of three headline metrics: its interval is drawn at Holm's level (0.05 / 3 or / 2), wider than the
    # unadjusted 95% one, [+1.17, +2.19]
    drawn = re.search(r"\+1\.68 points \[([-+.\d]+), ([-+.\d]+)\]", rows["test accuracy"])
    low, high = map(float, drawn.groups())
    assert 0 < low < 1.17 and high > 2.19
    assert "**better**" in rows["test accuracy"] and "**better**" in rows["test loss"]  # lower loss
    assert "**undecided**" in rows["training seconds"]  # the same seconds on both sides
    one = table_rows(comparison_table(seeds_table([0.90]), seeds_table(BASE), 0.95, 0.8))
    assert "90.00% (1 seed)" in one["test accuracy"]
    assert "**undecided (one run on a side" in one["test accuracy"]
    assert one["test accuracy"].endswith("n/a |")


GROUP = [0.50, 0.51, 0.49, 0.50, 0.52]
SLIGHTLY_BETTER = [0.52, 0.53, 0.51, 0.525, 0.53]  # Welch p = 0.019: "better" when tested alone
UNCHANGED = ([0.50, 0.51, 0.49, 0.50, 0.50], [0.50, 0.49, 0.51, 0.50, 0.50])


def test_holm_keeps_one_of_ten_classes_from_being_called_better_by_chance():
    alone = compare(GROUP, SLIGHTLY_BETTER, 0.95, 0.8)
    assert alone["verdict"] == "better" and 0.01 < alone["p_value"] < 0.05
    family = holm([compare(GROUP, SLIGHTLY_BETTER, 0.95, 0.8)] + [compare(*UNCHANGED, 0.95, 0.8)
                                                                  for _ in range(9)], 0.95)
    # Holm by hand: the smallest of ten p-values is multiplied by 10; the others are at least as large
    assert family[0]["p_holm"] == pytest.approx(10 * alone["p_value"])
    assert [r["verdict"] for r in family] == ["undecided"] * 10
    clear = holm([compare(GROUP, [0.70, 0.71, 0.69, 0.70, 0.72], 0.95, 0.8)]
                 + [compare(*UNCHANGED, 0.95, 0.8) for _ in range(9)], 0.95)
    # a real change survives the adjustment
    assert clear[0]["verdict"] == "better" and clear[0]["p_holm"] < 0.05


def test_each_rows_interval_agrees_with_its_adjusted_verdict():
    """A row of a Holm family excludes zero from its interval exactly when it is called better or worse: the
    rows Holm rejects are drawn at the level it tested them at, the rest at the level where it stopped (the
    unadjusted 95% interval of SLIGHTLY_BETTER excludes zero, yet the row is undecided)."""
    changes = [[0.70, 0.71, 0.69, 0.70, 0.72], [0.55, 0.56, 0.54, 0.555, 0.56], SLIGHTLY_BETTER,
               [0.40, 0.41, 0.39, 0.40, 0.42]] + [UNCHANGED[1]] * 6
    family = holm([compare(GROUP, c, 0.95, 0.8) for c in changes], 0.95)
    assert [r["verdict"] for r in family[:4]] == ["better", "better", "undecided", "worse"]
    for r in family:
        assert (r["ci_low"] > 0 or r["ci_high"] < 0) == (r["verdict"] in ("better", "worse")), r
    assert compare(GROUP, SLIGHTLY_BETTER, 0.95, 0.8)["ci_low"] > 0  # what an unadjusted row would show
    assert all(r["ci_level"] > 0.95 for r in family)


def test_the_headline_metrics_are_one_family_and_the_classes_another():
    """Expectations derived here: scipy's Welch p for groups of other seeds, its paired p for the same seeds,
    Holm's adjustment by hand (the smallest of m p-values times m)."""
    def seeds(accuracy, classes, first_seed=0):
        return pd.DataFrame({"seed": range(first_seed, first_seed + 5), "test_acc": accuracy,
                             "test_loss": [1.0] * 5, "train_s": [10.0] * 5,
                             **{f"per_class_acc.c{i}": values for i, values in enumerate(classes)}})

    for first_seed, test in ((5, lambda a, b: stats.ttest_ind(b, a, equal_var=False)),  # other seeds: Welch
                             (0, lambda a, b: stats.ttest_rel(b, a))):  # the same seeds: paired
        base = seeds(GROUP, [GROUP] + [UNCHANGED[0]] * 9)
        change = seeds(SLIGHTLY_BETTER, [SLIGHTLY_BETTER] + [UNCHANGED[1]] * 9, first_seed)
        rows = table_rows(lines := comparison_table(base, change, 0.95, 0.8))
        p = test(GROUP, SLIGHTLY_BETTER).pvalue
        headline, classes = min(1.0, 3 * p), min(1.0, 10 * p)  # loss and seconds do not differ: p = 1
        word = "better" if headline < 0.05 else "undecided"
        assert f"**{word}**" in rows["test accuracy"] and f"| {headline:.3f} |" in rows["test accuracy"]
        assert f"**{'better' if classes < 0.05 else 'undecided'}**" in rows["c0 accuracy"]
        said = {"better": "test accuracy better (+1.90 points, adjusted p {:.3g})",
                "undecided": "the largest change, test accuracy, +1.90 points, adjusted p {:.3g}"}
        assert said[word].format(headline) in lines[0]
        said_c0 = (f"c0 accuracy better (+1.90 points, adjusted p {classes:.3g})" if classes < 0.05 else
                   f"the largest change, c0 accuracy, +1.90 points, adjusted p {classes:.3g}")
        assert any(said_c0 in line for line in lines)
        assert "<details><summary>classes, row by row (10)</summary>" in lines and "</details>" in lines
    assert 0.05 / 3 < stats.ttest_ind(SLIGHTLY_BETTER, GROUP, equal_var=False).pvalue < 0.05  # Holm holds it


def test_accuracies_and_their_intervals_stay_within_what_an_accuracy_can_take():
    """Three seeds a side that scatter widely (a smoke network): Student's interval of the mean would run past
    0% and 100%, so it is cut there and marked, and no detectable difference exceeds 100 points."""
    base = seeds_table([0.10, 0.95, 0.36], cat=[0.0, 1.0, 0.41])
    change = seeds_table([0.90, 0.15, 0.60], cat=[1.0, 0.0, 0.70])
    rows = table_rows(comparison_table(base, change, 0.95, 0.8))
    numbers = [float(x) for line in (rows["test accuracy"], rows["cat accuracy"])
               for x in re.findall(r"[-+]?\d+\.\d+(?=%|\]| points|,)", line)]
    assert all(-100 <= x <= 100 for x in numbers), numbers
    assert "]†" in rows["cat accuracy"] and "[0.00, " in rows["cat accuracy"]
    assert "more than the range" in rows["cat accuracy"]


def test_the_relative_corruption_error_divides_each_corruptions_error_by_the_bases():
    base = pd.DataFrame({"corruption_acc.fog": [0.60, 0.60], "corruption_acc.snow": [0.80, 0.80]})
    change = pd.DataFrame({"corruption_acc.fog": [0.70, 0.70], "corruption_acc.snow": [0.80, 0.80]})
    assert relative_corruption_error(base, change, ["fog", "snow"]) == pytest.approx((0.3 / 0.4 + 1.0) / 2)
    assert relative_corruption_error(base, change, ["fog", "frost"]) is None  # not scored on both sides


def test_robustness_is_compared_only_on_the_same_corrupted_sets():
    assert same_corrupted_sets({"corrupted_sets": "ab12"}, {"corrupted_sets": "ab12"}) == (True, "")
    same, why = same_corrupted_sets({"corrupted_sets": "ab12"}, {"corrupted_sets": "cd34"})
    assert not same and "different corrupted sets" in why
    assert "does not record" in same_corrupted_sets({}, {"corrupted_sets": "cd34"})[1]
    table = seeds_table(BASE).assign(corrupt_acc=BASE, **{"corruption_acc.fog": BASE})
    assert "corrupted-set accuracy" in table_rows(comparison_table(table, table, 0.95, 0.8))
    kept_apart = comparison_table(table, table, 0.95, 0.8, same_corrupted_sets=False)
    assert "corrupted-set accuracy" not in table_rows(kept_apart) and "accuracy under fog" not in table_rows(
        kept_apart)


def test_the_same_seeds_are_compared_seed_by_seed_as_a_paired_t_test():
    base, change = [0.50, 0.53, 0.47, 0.52, 0.49], [0.51, 0.545, 0.48, 0.525, 0.505]  # shifted, correlated
    paired, welch = compare(base, change, 0.95, 0.8, paired=True), compare(base, change, 0.95, 0.8)
    d = [b - a for a, b in zip(base, change, strict=True)]
    half = T_975[4] * statistics.stdev(d) / math.sqrt(5)
    assert paired["method"] == "paired"
    assert paired["p_value"] == pytest.approx(stats.ttest_rel(change, base).pvalue)
    assert (paired["ci_low"], paired["ci_high"]) == (pytest.approx(statistics.mean(d) - half),
                                                     pytest.approx(statistics.mean(d) + half))
    assert paired["correlation"] == pytest.approx(stats.pearsonr(base, change).statistic)
    assert paired["verdict"] == "better" and welch["verdict"] == "undecided"  # what pairing buys here
    assert welch["method"] == "Welch" and welch["correlation"] is None


def test_a_difference_inside_the_margin_is_equivalent_by_two_one_sided_tests():
    base = [0.900, 0.905, 0.910, 0.902, 0.907]
    change = [b + e for b, e in zip(base, [0.0004, -0.0003, 0.0002, -0.0001, 0.0003], strict=True)]
    got = compare(base, change, 0.95, 0.8, paired=True, margin=0.005)
    d = [b - a for a, b in zip(base, change, strict=True)]
    se = statistics.stdev(d) / math.sqrt(5)
    by_hand = max(stats.t.sf((statistics.mean(d) + 0.005) / se, 4),
                  stats.t.cdf((statistics.mean(d) - 0.005) / se, 4))
    assert got["p_equivalence"] == pytest.approx(by_hand) and got["verdict"] == "equivalent"
    # the (1 - 2 alpha) interval inside the margin is the same decision
    assert abs(statistics.mean(d)) + stats.t.ppf(0.95, 4) * se < 0.005
    wide = compare(base, [0.90, 0.91, 0.89, 0.92, 0.90], 0.95, 0.8, paired=True,
                   margin=0.005)
    assert wide["verdict"] == "undecided" and wide["p_equivalence"] > 0.05
    assert compare(base, change, 0.95, 0.8, paired=True)["verdict"] == "undecided"  # no margin: none
