"""Seeds as a dimension of the pipeline, under the real `dvc repro`: one train@N and evaluate@N per seed,
each cached on its own, and one aggregate over them whose numbers match the per-seed files."""
from __future__ import annotations

import json
import math
import statistics
import sys

import pandas as pd
import pytest

from cifarpipe.aggregate.noise import verdict_note
from conftest import copy_repo, dvc, ran, run, set_params

pytestmark = pytest.mark.slow
T_975_DF1 = 12.706205  # Student t, 97.5% quantile, one degree of freedom (printed tables)


def per_seed_stages(output: str) -> list[str]:
    return sorted(s for s in ran(output) if "@" in s)


@pytest.fixture(scope="module")
def two_seeds(baseline, tmp_path_factory):
    """(repo, what `dvc repro` printed) with train.seeds = [0, 1]: the baseline (conftest's, seed 0, built
    once per suite) given a second seed, reproduced and committed."""
    repo = copy_repo(baseline[0], tmp_path_factory.mktemp("seeds") / "repo")
    set_params(repo, {"train.seeds": [0, 1]})
    output = dvc("repro", cwd=repo).stdout
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "two seeds"], repo)
    return repo, output


def test_two_seeds_train_two_models_and_aggregate_once(two_seeds):
    """The second seed runs its own stages and the aggregate once; the shared stages and the first seed's
    stay cached, and GradCAM still explains the first seed's model."""
    repo, output = two_seeds
    assert per_seed_stages(output) == ["evaluate@1", "robustness@1", "train@1"]
    assert ran(output).count("aggregate") == 1 and "lr_find" not in ran(output)
    assert "gradcam" not in ran(output)
    assert (repo / "models/seed0/model.pt").exists() and (repo / "models/seed1/model.pt").exists()
    assert (repo / "models/seed0/model.pt").read_bytes() != (repo / "models/seed1/model.pt").read_bytes()


def test_the_aggregate_matches_the_per_seed_metrics(two_seeds):
    repo, _ = two_seeds
    accs = [json.loads((repo / f"dvclive/evaluate/seed{s}/metrics.json").read_text())["test_acc"]
            for s in (0, 1)]
    seconds = [json.loads((repo / f"dvclive/train/seed{s}/metrics.json").read_text())["train_s"]
               for s in (0, 1)]
    aggregate = json.loads((repo / "metrics/aggregate.json").read_text())
    mean, sd = statistics.mean(accs), statistics.stdev(accs)
    half = T_975_DF1 * sd / math.sqrt(2)
    acc = aggregate["test_acc"]
    assert aggregate["seeds"] == [0, 1] and aggregate["n"] == acc["n"] == 2
    assert acc["mean"] == pytest.approx(mean) and acc["std"] == pytest.approx(sd)
    assert (acc["min"], acc["max"]) == (min(accs), max(accs))
    assert acc["ci_low"] == pytest.approx(mean - half, abs=1e-5)
    assert acc["ci_high"] == pytest.approx(mean + half, abs=1e-5)
    assert aggregate["train_s"]["mean"] == pytest.approx(statistics.mean(seconds))
    assert aggregate["target_met_seeds"] == sum(a >= 0.9 for a in accs)
    expected = ("met" if mean - half >= 0.9 else "missed" if mean + half < 0.9
                else "undecided")
    assert aggregate["target_verdict"] == expected
    note = f" ({verdict_note(expected)})" if verdict_note(expected) else ""
    assert aggregate["verdict_line"] == (f"2 seed(s): test accuracy {acc['mean']:.4f}, 95% CI "
                                         f"{acc['ci_low']:.4f}..{acc['ci_high']:.4f}; "
                                         f"target 0.9: {expected}{note}")
    per_class = {s: json.loads((repo / f"dvclive/evaluate/seed{s}/metrics.json").read_text())["per_class_acc"]
                 for s in (0, 1)}
    for name, summary in aggregate["per_class_acc"].items():
        assert summary["mean"] == pytest.approx((per_class[0][name] + per_class[1][name]) / 2)
    seeds = pd.read_csv(repo / "metrics/seeds.csv")
    assert seeds["seed"].tolist() == [0, 1] and seeds["test_acc"].tolist() == accs
    band = pd.read_csv(repo / "plots/seeds/test_acc.csv")
    last = [pd.read_csv(repo / f"dvclive/train/seed{s}/plots/metrics/test_acc.tsv",
                        sep="\t")["test_acc"].iloc[-1]
            for s in (0, 1)]
    assert band.iloc[-1]["min"] == pytest.approx(min(last))
    assert band.iloc[-1]["max"] == pytest.approx(max(last))


def test_adding_a_seed_trains_only_that_seed_and_removing_it_trains_nothing(two_seeds, tmp_path):
    repo = copy_repo(two_seeds[0], tmp_path / "repo")
    set_params(repo, {"train.seeds": [0, 1, 2]})
    status = json.loads(dvc("status", "--json", cwd=repo).stdout)
    assert sorted(status) == ["aggregate", "evaluate@2", "robustness@2", "train@2"]
    output = dvc("repro", cwd=repo).stdout
    assert per_seed_stages(output) == ["evaluate@2", "robustness@2", "train@2"] and "aggregate" in ran(output)
    assert json.loads((repo / "metrics/aggregate.json").read_text())["n"] == 3

    # back: nothing to train, the aggregate reads seeds 0 and 1 again
    set_params(repo, {"train.seeds": [0, 1]})
    output = dvc("repro", cwd=repo).stdout
    assert ran(output) == ["aggregate"]
    assert json.loads((repo / "metrics/aggregate.json").read_text()) == json.loads(
        (two_seeds[0] / "metrics/aggregate.json").read_text())


def test_a_corruption_param_remakes_the_sets_and_rescores_every_seed_without_training(two_seeds, tmp_path):
    repo = copy_repo(two_seeds[0], tmp_path / "repo")
    set_params(repo, {"corrupt.severities": [1, 3, 5]})
    output = dvc("repro", cwd=repo).stdout
    assert sorted(ran(output)) == ["aggregate", "corrupt", "robustness@0", "robustness@1"]
    result = json.loads((repo / "metrics/robustness/seed1.json").read_text())
    assert result["severities"] == [1, 3, 5] and all(len(a) == 3 for a in result["accuracy"].values())


def test_exp_show_lists_the_aggregate_and_metrics_diff_shows_the_mean_move(two_seeds, tmp_path):
    repo = copy_repo(two_seeds[0], tmp_path / "repo")
    columns = dvc("exp", "show", "--csv", cwd=repo).stdout.splitlines()[0].split(",")
    for column in ["seeds", "test_acc", "test_acc_ci", "seeds_met", "verdict", "corrupt_acc", "ece",
                   "train.seeds"]:
        assert column in columns, column
    assert not [c for c in columns if "per_class" in c]  # the classes stay in metrics/aggregate.json
    dvc("exp", "run", "-S", "train.seeds=[0,1,2]", cwd=repo)
    diff = json.loads(dvc("metrics", "diff", "--all", "--json", cwd=repo).stdout)["metrics/verdict.json"]
    assert diff["seeds"] == {"old": 2, "new": 3, "diff": 1}
    new = json.loads((repo / "metrics/aggregate.json").read_text())["test_acc"]
    old = json.loads((two_seeds[0] / "metrics/aggregate.json").read_text())["test_acc"]
    assert diff["test_acc"]["new"] == new["mean"] and diff["test_acc"]["old"] == old["mean"]
    assert diff["test_acc_ci"]["new"] == pytest.approx((new["ci_high"] - new["ci_low"]) / 2)
    assert diff["test_acc_ci"]["old"] == pytest.approx((old["ci_high"] - old["ci_low"]) / 2)


def test_the_report_compares_the_seed_groups_of_two_revisions(two_seeds, tmp_path):
    repo = copy_repo(two_seeds[0], tmp_path / "repo")
    # a change (a fixed LRMAX instead of the range test's), over three seeds
    dvc("exp", "run", "-S", "train.seeds=[0,1,2]", "-S", "optim.lr=0.004", cwd=repo)
    report = run([sys.executable, "-m", "cifarpipe.tools.cli", "report", "--base", "HEAD", "--out",
                  "report.md"], repo).stdout
    table = report.split("| metric | base | change |")[1].split("\n\n")[0]
    accuracy = next(line for line in table.splitlines() if line.startswith("| test accuracy |"))
    assert "(n=2)" in accuracy and "(n=3)" in accuracy and " points [" in accuracy
    assert any(f"**{word}" in accuracy for word in ("better", "worse", "equivalent", "undecided"))
    assert "- **base (`HEAD`)**: test accuracy" in report and "over 2 seed(s)" in report
    assert "over 3 seed(s)" in report
    assert "Seeds: base [0, 1], change [0, 1, 2]" in report
    assert (repo / "report_images/test_accuracy_over_the_seeds.png").read_bytes()[:4] == b"\x89PNG"
