"""The whole pipeline under the real `dvc repro`, on a tiny archive served over loopback HTTP."""
from __future__ import annotations

import csv
import json
import re
import sys
import time

import numpy as np
import pytest
import torch

from conftest import dvc, run, set_params

STAGES = ["download", "stats", "lr_find", "train", "evaluate", "gradcam"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_repro_builds_every_output_then_reruns_only_what_changed(repo):
    first = dvc("repro", cwd=repo)
    assert ran(first.stdout) == STAGES

    data = np.load(repo / "data/cifar10.npz")
    assert data["x_train"].shape == (256, 32, 32, 3) and data["x_train"].dtype == np.uint8
    assert data["x_test"].shape == (100, 32, 32, 3) and list(data["classes"])[:2] == ["airplane", "automobile"]
    stats = json.loads((repo / "data/stats.json").read_text())
    assert stats["images"] == 256 and all(0 < s < 1 for s in stats["mean"] + stats["std"])

    lr_find = json.loads((repo / "metrics/lr_find.json").read_text())
    assert 0.001 <= lr_find["suggested_lr"] <= 0.1
    assert len(read_csv(repo / "plots/lr_find.csv")) == lr_find["steps"]

    history = read_csv(repo / "plots/history.csv")
    assert [int(h["epoch"]) for h in history] == [1, 2, 3]
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    schedule = [float(r["lr"]) for r in read_csv(repo / "plots/lr_schedule.csv")]
    train_metrics = json.loads((repo / "metrics/train.json").read_text())
    assert train_metrics["lr_max"] == lr_find["suggested_lr"]  # optim.lr is null: the finder's LR is used
    assert max(schedule) == pytest.approx(train_metrics["lr_max"])
    assert schedule[0] == pytest.approx(train_metrics["lr_min"]) and schedule[-1] == pytest.approx(schedule[0])
    assert "Total params: 6,573,130" in (repo / "models/summary.txt").read_text()
    state = torch.load(repo / "models/model.pt", weights_only=True)
    assert state["fc.weight"].shape == (10, 512)

    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    assert metrics["test_acc"] > 0.25, metrics  # chance is 0.1
    assert metrics["target"] == 0.9 and metrics["target_met"] == (metrics["test_acc"] >= 0.9)
    assert len(metrics["per_class_acc"]) == 10
    assert len(read_csv(repo / "plots/confusion.csv")) == 100
    for png in ["lr_find", "curves", "train_samples", "confusion", "per_class", "misclassified"]:
        assert (repo / f"plots/{png}.png").read_bytes()[:8] == PNG_MAGIC, png
    grids = [p.name for p in (repo / "plots/gradcam").iterdir()]
    wrong = int(100 - round(metrics["test_acc"] * 100))
    assert sum(g.startswith("wrong_") for g in grids) == min(2, wrong)
    assert sum(g.startswith("right_") for g in grids) == 1
    assert not (repo / ".checkpoints/train.pt").exists()  # removed once training completed

    assert "up to date" in dvc("status", cwd=repo).stdout
    assert "test_acc" in dvc("metrics", "show", cwd=repo).stdout
    dvc("plots", "show", "-o", "dvc_plots", cwd=repo)
    page = (repo / "dvc_plots/index.html").read_text()
    assert "Loss" in page and "Confusion matrix" in page and "LR range test" in page
    rendered = {p.name for p in (repo / "dvc_plots/static").iterdir()}
    for picture in ["curves", "misclassified", "confusion", "lr_find"] + [f"gradcam_{g}" for g in grids]:
        assert any(picture.removesuffix(".png") in name for name in rendered), picture

    # a gradcam param reruns gradcam alone
    set_params(repo, {"gradcam.correct_images": 2})
    assert ran(dvc("repro", cwd=repo).stdout) == ["gradcam"]
    assert len(list((repo / "plots/gradcam").glob("right_*.png"))) == 2

    # an experiment with a fixed LR reruns train, evaluate and gradcam; metrics diff shows the change
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)
    exp = dvc("exp", "run", "-S", "optim.lr=0.005", cwd=repo)
    assert ran(exp.stdout) == ["train", "evaluate", "gradcam"]
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=repo).stdout)
    lr_change = diff["metrics/train.json"]["lr_max"]
    assert lr_change["old"] == lr_find["suggested_lr"] and lr_change["new"] == 0.005

    # the pull-request report: real metrics/params diffs against the committed baseline, verdicts, plots
    report = run([sys.executable, "scripts/pr_report.py", "--base", "HEAD", "--out", "report.md"], repo).stdout
    assert "| before (`HEAD`) |" in report and "| after |" in report and "target 90%" in report
    assert "lr_max" in report and "optim.lr" in report
    assert (repo / "report_images/curves.png").exists() and "![curves](report_images/curves.png)" in report


def experiments(repo) -> dict:
    """{experiment name: its data in `dvc exp show --json`} for the experiments of every commit."""
    found = {}
    for commit in json.loads(dvc("exp", "show", "--json", cwd=repo).stdout):
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                found[rev.get("name") or rev["rev"]] = rev.get("data") or {}
    return found


def test_queued_grid_and_named_seed_recipes_are_listed_by_exp_show(repo):
    dvc("repro", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)
    dvc("exp", "run", "--queue", "-S", "optim.lr=0.003,0.006", cwd=repo)
    dvc("queue", "start", "--jobs", "1", cwd=repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = dvc("queue", "status", cwd=repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    grid = experiments(repo)
    assert sorted(d["params"]["params.yaml"]["data"]["optim"]["lr"] for d in grid.values()) == [0.003, 0.006]
    assert all("test_acc" in d["metrics"]["metrics/evaluate.json"]["data"] for d in grid.values())

    # a named seed recipe, shortened to one epoch for the test
    run(["make", "seed-resnet18", "ARGS=-S schedule.epochs=1 -S schedule.peak_epoch=0.5"], repo)
    recipe = experiments(repo)["seed-resnet18"]
    params = recipe["params"]["params.yaml"]["data"]
    assert params["model"]["name"] == "resnet18" and params["augment"]["cutout"] == 16
    assert "test_acc" in recipe["metrics"]["metrics/evaluate.json"]["data"]
    assert "Total params: 11,173,962" in (repo / "models/summary.txt").read_text()
