"""The whole pipeline under the real `dvc repro`, on a tiny archive served over loopback HTTP."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import dvc, experiments, live_history, ran, run, run_queue, set_params

STAGES = ["download", "stats", "lr_find", "lr_pick", "train", "evaluate", "gradcam"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    curve = read_csv(repo / "plots/lr_find.csv")
    assert len(curve) == json.loads((repo / "metrics/lr_range_test.json").read_text())["steps"]
    lrs, losses = np.array([float(r["lr"]) for r in curve]), np.array([float(r["loss"]) for r in curve])
    # the suggestion lies inside the curve's descending region: past its first point, below the loss minimum,
    # where the loss is already well below where it started
    first = 2  # lr_pick.skip_start of the tiny params
    assert lr_find["rule"] == "minimum" and lr_find["loss_min_lr"] == lrs[first + np.argmin(losses[first:])]
    assert lrs[first] < lr_find["suggested_lr_min"] < lr_find["suggested_lr_max"] < lr_find["loss_min_lr"]
    at_lr_max = losses[np.searchsorted(lrs, lr_find["suggested_lr_max"])]
    assert at_lr_max < losses[first] - 0.5 * (losses[first] - losses.min())

    history = live_history(repo)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_s"}
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    schedule = [float(r["lr"]) for r in read_csv(repo / "plots/lr_schedule.csv")]
    train_metrics = json.loads((repo / "dvclive/train/metrics.json").read_text())
    assert train_metrics["step"] == 3 and train_metrics["train_loss"] == float(history[-1]["train_loss"])
    assert train_metrics["last_epoch_test_acc"] == float(history[-1]["test_acc"]) and "test_acc" not in train_metrics
    columns = dvc("exp", "show", "--csv", cwd=repo).stdout.splitlines()[0].split(",")
    assert len(columns) == len(set(columns)) and not [c for c in columns if ":" in c]  # plain, unique names
    assert train_metrics["lr_max"] == lr_find["suggested_lr_max"]  # optim.lr is null: the range test's LRs are used
    assert train_metrics["lr_min"] == lr_find["suggested_lr_min"]
    assert max(schedule) == pytest.approx(train_metrics["lr_max"])
    assert schedule[0] == pytest.approx(train_metrics["lr_min"]) and schedule[-1] == pytest.approx(schedule[0])
    assert "Total params: 6,573,130" in (repo / "models/summary.txt").read_text()
    state = torch.load(repo / "models/model.pt", weights_only=True)
    assert state["fc.weight"].shape == (10, 512)

    metrics = json.loads((repo / "dvclive/evaluate/metrics.json").read_text())
    assert metrics["test_acc"] > 0.25, metrics  # chance is 0.1
    assert metrics["target"] == 0.9 and metrics["target_met"] == (metrics["test_acc"] >= 0.9)
    assert len(metrics["per_class_acc"]) == 10
    pairs = json.loads((repo / "dvclive/evaluate/plots/sklearn/confusion.json").read_text())
    assert len(pairs) == 100 and set(pairs[0]) == {"actual", "predicted"} and pairs[0]["actual"] in metrics["per_class_acc"]
    assert not (repo / "dvclive/lr_find").exists() and sorted(p.name for p in (repo / "dvclive").iterdir()) == [
        "evaluate", "train"]  # the range test's trial steps log nothing
    assert "lr_max" in dvc("exp", "show", "--md", cwd=repo).stdout
    for png in ["lr_find", "curves", "train_samples", "confusion", "per_class", "misclassified"]:
        assert (repo / f"plots/{png}.png").read_bytes()[:8] == PNG_MAGIC, png
    grids = [p.name for p in (repo / "plots/gradcam").iterdir()]
    wrong = int(100 - round(metrics["test_acc"] * 100))
    assert sum(g.startswith("wrong_") for g in grids) == min(2, wrong)
    assert sum(g.startswith("right_") for g in grids) == 1
    assert not (repo / ".checkpoints/train.pt").exists()  # removed once training completed

    assert "up to date" in dvc("status", cwd=repo).stdout
    assert_status_tells_the_truth(repo)
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
    lr_change = diff["dvclive/train/metrics.json"]["lr_max"]
    assert lr_change["old"] == lr_find["suggested_lr_max"] and lr_change["new"] == 0.005



def changed_stages(repo) -> list[str]:
    """The stages `dvc status` says are out of date (it lists those whose own deps or params changed)."""
    status = json.loads(dvc("status", "--json", cwd=repo).stdout or "{}")
    return sorted(name.split(":")[-1] for name in status)


def assert_status_tells_the_truth(repo):
    """What invalidates which stage, under the real `dvc status`: code by import, params by declaration."""
    cases = [
        ({"runtime.eval_batch_size": 7, "runtime.progress_updates": 1, "runtime.checkpoint": False,
          "runtime.download_timeout_s": 5, "runtime.download_retries": 1}, []),
        ({"evaluate.tta_flip": False}, ["evaluate"]),
        ({"lr_pick.min_div": 3}, ["lr_pick"]),  # another reading of the curve; the range test stays cached
        ({"data.test_subset": 50}, ["evaluate", "gradcam", "train"]),
        ({"train.compile": True}, ["train"]),
    ]
    params = (repo / "params.yaml").read_text()
    for overrides, expected in cases:
        set_params(repo, overrides)
        assert changed_stages(repo) == expected, overrides
        (repo / "params.yaml").write_text(params)
    for module, expected in [("cifarpipe/schedule.py", ["train"]), ("cifarpipe/evaluation.py", ["evaluate", "train"]),
                             ("cifarpipe/lr_rules.py", ["lr_pick"]), ("cifarpipe/device.py",
                                                                      ["evaluate", "gradcam", "lr_find", "train"])]:
        code = (repo / module).read_text()
        (repo / module).write_text(code + "\n# an edit\n")
        assert changed_stages(repo) == expected, module
        (repo / module).write_text(code)
    assert changed_stages(repo) == []


def test_queued_grid_and_named_seed_recipes_are_listed_by_exp_show(repo):
    dvc("repro", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)
    dvc("exp", "run", "--queue", "-S", "optim.lr=0.003,0.006", cwd=repo)
    status = run_queue(repo)
    assert status.count("Success") == 2, status
    grid = experiments(repo)
    assert sorted(d["params"]["params.yaml"]["data"]["optim"]["lr"] for d in grid.values()) == [0.003, 0.006]
    assert all("test_acc" in d["metrics"]["dvclive/evaluate/metrics.json"]["data"] for d in grid.values())

    # a named seed recipe, shortened to one epoch for the test
    run(["make", "seed-resnet18", "ARGS=-S schedule.epochs=1 -S schedule.peak_epoch=0.5"], repo)
    recipe = experiments(repo)["seed-resnet18"]
    params = recipe["params"]["params.yaml"]["data"]
    assert params["model"]["name"] == "resnet18" and params["augment"]["cutout"] == 16
    assert "test_acc" in recipe["metrics"]["dvclive/evaluate/metrics.json"]["data"]
    assert "Total params: 11,173,962" in (repo / "models/summary.txt").read_text()
