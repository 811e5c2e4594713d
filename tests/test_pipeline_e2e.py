"""The whole pipeline under the real `dvc repro`, on a tiny archive served over loopback HTTP.

One repo is reproduced once per module (`built`); each promise about its outputs is its own test, so the first
failure hides nothing else. Tests that change the repo work on a copy of it.
"""
from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cifarpipe.evaluate.figures import CONFUSION_X, CONFUSION_Y, confusion_figure
from cifarpipe.model.networks import build_model, count_parameters
from cifarpipe.tools.overrides import read_overrides, set_args
from cifarpipe.tools.reruns import reruns_table
from conftest import (
    NARROW,
    PARAMS_YAML,
    ROOT,
    TINY_PARAMS,
    copy_repo,
    dvc,
    experiments,
    live_history,
    odd_images,
    ran,
    readme_exp_show,
    run,
    run_queue,
    set_params,
)

STAGES = ["download", "stats", "preview", "lr_find", "lr_pick", "train@0", "evaluate@0", "gradcam", "corrupt",
          "robustness@0", "export", "aggregate"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(baseline, tmp_path_factory):
    """(repo, what `dvc repro` printed): the project reproduced once from scratch, its archive fetched over
    HTTP (conftest's `baseline`, built once per suite run), copied for this module."""
    repo, output = baseline
    return copy_repo(repo, tmp_path_factory.mktemp("e2e") / "repo"), output


@pytest.fixture
def changed(built, tmp_path):
    """A copy of the built repo for a test that changes params, code or outputs."""
    return copy_repo(built[0], tmp_path / "repo")


def read_json(repo, path):
    return json.loads((repo / path).read_text())


def test_repro_runs_every_stage_once_and_then_nothing(built):
    repo, output = built
    assert sorted(ran(output)) == sorted(STAGES) and len(ran(output)) == len(STAGES)
    assert ran(output).index("download") == 0
    assert ran(output).index("train@0") < ran(output).index("evaluate@0")
    assert "up to date" in dvc("status", cwd=repo).stdout
    assert ran(dvc("repro", cwd=repo).stdout) == []


def test_the_archive_becomes_arrays_and_channel_stats(built):
    repo, _ = built
    data = np.load(repo / "data/cifar10.npz")
    assert data["x_train"].shape == (256, 32, 32, 3) and data["x_train"].dtype == np.uint8
    assert data["x_test"].shape == (100, 32, 32, 3)
    assert list(data["classes"])[:2] == ["airplane", "automobile"]
    stats = read_json(repo, "data/stats.json")
    pixels = data["x_train"].reshape(-1, 3) / 255
    assert stats["images"] == 256 and stats["mean"] == pytest.approx(pixels.mean(0), abs=1e-6)
    assert stats["std"] == pytest.approx(pixels.std(0), abs=1e-6)


def test_the_preview_shows_the_network_and_its_augmented_inputs(built):
    repo, _ = built
    summary = (repo / "models/summary.txt").read_text()
    assert summary.startswith("CustomResNet")
    assert f"Total params: {count_parameters(build_model(NARROW)):,}" in summary
    assert (repo / "plots/train_samples.png").read_bytes()[:8] == PNG_MAGIC


def test_lrmax_and_lrmin_lie_in_the_descending_part_of_the_range_test(built):
    repo, _ = built
    picked, test = read_json(repo, "metrics/lr_pick.json"), read_json(repo, "metrics/lr_find.json")
    curve = pd.read_csv(repo / "plots/lr_find.csv")
    assert len(curve) == test["steps"] > 3 and test["last_lr"] == curve["lr"].iloc[-1]
    lrs, losses = curve["lr"].to_numpy(), curve["loss"].to_numpy()
    first = TINY_PARAMS["lr_pick.skip_start"]
    assert picked["source"] == "LR range test" and picked["rule"] == "minimum"
    assert picked["loss_min_lr"] == lrs[first + np.argmin(losses[first:])]
    assert lrs[first] < picked["lr_min"] < picked["lr_max"] < picked["loss_min_lr"]
    at_lr_max = losses[np.searchsorted(lrs, picked["lr_max"])]
    assert at_lr_max < losses[first] - 0.5 * (losses[first] - losses.min())  # well into the fall
    assert (repo / "plots/lr_pick.png").read_bytes()[:8] == PNG_MAGIC


def test_training_logs_every_epoch_and_follows_the_one_cycle_schedule(built):
    repo, _ = built
    history = live_history(repo)
    epochs = TINY_PARAMS["schedule.epochs"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_s"}
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    summary, picked = read_json(repo,
                                "dvclive/train/seed0/metrics.json"), read_json(repo, "metrics/lr_pick.json")
    assert summary["step"] == epochs and summary["train_loss"] == float(history[-1]["train_loss"])
    assert summary["test_acc"] == float(history[-1]["test_acc"])  # the last epoch's, without TTA
    assert summary["steps_per_epoch"] == 256 // TINY_PARAMS["train.batch_size"]
    schedule = pd.read_csv(repo / "plots/lr_schedule.csv")["lr"]  # drawn by aggregate from what train used
    assert len(schedule) == epochs * summary["steps_per_epoch"]
    assert schedule.max() == pytest.approx(picked["lr_max"])
    assert schedule.iloc[0] == pytest.approx(picked["lr_min"])
    assert schedule.iloc[-1] == pytest.approx(picked["lr_min"])
    assert float(history[-1]["lr"]) == pytest.approx(schedule.iloc[-1])  # the LR the last step ran at
    state = torch.load(repo / "models/seed0/model.pt", weights_only=True)
    assert state["fc.weight"].shape == (10, 8 * NARROW.width)
    assert (repo / "plots/curves.png").read_bytes()[:8] == PNG_MAGIC
    assert not (repo / ".checkpoints/train_seed0.pt").exists()  # removed once training completed


def test_evaluate_scores_the_test_set_against_the_target(built):
    repo, _ = built
    metrics = read_json(repo, "dvclive/evaluate/seed0/metrics.json")
    assert metrics["test_acc"] > 0.25, metrics  # chance is 0.1
    assert metrics["target"] == 0.9 and metrics["target_met"] == (metrics["test_acc"] >= 0.9)
    predictions = np.load(repo / "models/seed0/test_predictions.npz")
    labels, preds = predictions["labels"], predictions["preds"]
    assert metrics["test_acc"] == pytest.approx((preds == labels).mean(), abs=1e-6)
    per_class = {c: round(float((preds[labels == i] == i).mean()), 4) for i,
                 c in enumerate(metrics["per_class_acc"])}
    assert per_class == metrics["per_class_acc"]
    pairs = read_json(repo, "dvclive/evaluate/seed0/plots/sklearn/confusion.json")
    assert len(pairs) == 100 and set(pairs[0]) == {"actual", "predicted"}
    for png in ["confusion", "per_class", "misclassified"]:
        assert (repo / f"plots/evaluate/seed0/{png}.png").read_bytes()[:8] == PNG_MAGIC, png


def test_one_seed_aggregates_to_its_own_numbers_and_a_plain_verdict(built):
    repo, _ = built
    metrics = read_json(repo, "dvclive/evaluate/seed0/metrics.json")
    aggregate = read_json(repo, "metrics/aggregate.json")
    assert aggregate["seeds"] == [0] and aggregate["n"] == 1
    assert aggregate["test_acc"] == {"n": 1, "mean": metrics["test_acc"], "std": None,
                                     "min": metrics["test_acc"], "max": metrics["test_acc"], "ci_low": None,
                                     "ci_high": None}
    # the tiny run is far below
    assert aggregate["target_verdict"] == "not met (1 seed)"


def test_both_confusion_matrices_put_the_true_class_down_the_side(built):
    """DVC's chart (its Vega-Lite spec) and the PNG (cifarpipe/evaluate/figures.py) use one orientation: the
    field on DVC's y axis holds each image's true class, and the PNG's rows are the true classes."""
    repo, _ = built
    plots = json.loads(dvc("plots", "show", "--json", cwd=repo).stdout)["data"]
    spec = next(e for e in plots["Confusion matrix, first seed"] if e["type"] == "vega")["content"]
    encoding = spec["spec"]["encoding"]  # inside the facet by revision
    assert encoding["x"]["field"] == CONFUSION_X and encoding["y"]["field"] == CONFUSION_Y
    rows = json.loads((repo / "dvclive/evaluate/seed0/plots/sklearn/confusion.json").read_text())
    predictions = np.load(repo / "models/seed0/test_predictions.npz")
    classes = json.loads((repo / "dvclive/evaluate/seed0/metrics.json").read_text())["per_class_acc"]
    names = list(classes)
    assert [r[CONFUSION_Y] for r in rows] == [names[k] for k in predictions["labels"]]  # y: the truth
    assert [r[CONFUSION_X] for r in rows] == [names[k] for k in predictions["preds"]]

    counts = np.zeros((3, 3), dtype=int)
    counts[0, 2] = 7  # seven images of class 0 taken for class 2, none the other way
    axes = confusion_figure(counts, ["a", "b", "c"]).axes[0]
    assert axes.get_ylabel() == CONFUSION_Y and axes.get_xlabel() == CONFUSION_X
    assert np.array_equal(axes.images[0].get_array(), counts)  # row = true class, column = predicted
    assert [t.get_position() for t in axes.texts if t.get_text() == "7"] == [(2, 0)]  # x=predicted, y=true


def test_gradcam_explains_misclassified_and_correct_images(built):
    repo, _ = built
    grids = [p.name for p in (repo / "plots/gradcam").iterdir()]
    predictions = np.load(repo / "models/seed0/test_predictions.npz")
    wrong = int((predictions["preds"] != predictions["labels"]).sum())
    assert sum(g.startswith("wrong_") for g in grids) == min(TINY_PARAMS["gradcam.images"], wrong)
    assert sum(g.startswith("right_") for g in grids) == TINY_PARAMS["gradcam.correct_images"]
    assert all((repo / "plots/gradcam" / g).read_bytes()[:8] == PNG_MAGIC for g in grids)


def test_metrics_and_plots_reach_dvcs_own_commands(built, tmp_path):
    repo, _ = built
    assert "test_acc" in dvc("metrics", "show", cwd=repo).stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)[0]["data"]
    verdict = read_json(repo, "metrics/verdict.json")
    # the one metrics file: the verdict, a dozen numbers
    assert list(shown["metrics"]) == ["metrics/verdict.json"]
    assert set(verdict) == {"test_acc", "test_acc_ci", "test_acc_std", "seeds", "verdict", "seeds_met",
                            "test_loss", "train_s", "lr_max", "lr_rule", "lr_min", "corrupt_acc", "corrupt_acc_ci",
                            "corrupt_gap", "ece", "ece_ci"}
    assert verdict["corrupt_gap"] == pytest.approx(verdict["test_acc"] - verdict["corrupt_acc"])
    aggregate, picked = read_json(repo, "metrics/aggregate.json"), read_json(repo, "metrics/lr_pick.json")
    assert verdict["test_acc"] == aggregate["test_acc"]["mean"]
    assert verdict["verdict"] == aggregate["target_verdict"]
    assert (verdict["lr_max"], verdict["lr_min"]) == (picked["lr_max"], picked["lr_min"])
    columns = dvc("exp", "show", "--csv", cwd=repo).stdout.splitlines()[0].split(",")
    assert len(columns) == len(set(columns)) and not [c for c in columns if ":" in c]  # plain, unique names
    dvc("plots", "show", "-o", str(tmp_path / "page"), cwd=repo)
    page = (tmp_path / "page/index.html").read_text()
    assert "Test accuracy over the seeds" in page and "Confusion matrix" in page and "LR range test" in page
    rendered = {p.name for p in (tmp_path / "page/static").iterdir()}
    grids = [p.stem for p in (repo / "plots/gradcam").iterdir()]
    for picture in ["curves", "misclassified", "confusion", "lr_pick", "train_samples"] + grids:
        assert any(picture in name for name in rendered), picture


def changed_stages(repo) -> list[str]:
    """The stages `dvc status` says are out of date (it lists those whose own deps or params changed)."""
    status = json.loads(dvc("status", "--json", cwd=repo).stdout or "{}")
    return sorted(name.split(":")[-1] for name in status)


# {a change: the stages dvc status then says are out of date}; docs/reruns.md's table says the same
PARAM_RERUNS = {
    "runtime.*": ({"runtime.eval_batch_size": 7, "runtime.progress_updates": 1, "runtime.checkpoint": False,
                   "runtime.download_timeout_s": 5, "runtime.download_retries": 1}, []),
    "evaluate.tta_flip": ({"evaluate.tta_flip": False}, ["evaluate@0", "export", "robustness@0"]),
    "lr_pick.min_div": ({"lr_pick.min_div": 3}, ["lr_pick"]),  # another reading; the range test stays cached
    "optim.lr": ({"optim.lr": 0.01}, ["lr_find", "lr_pick"]),  # train reads lr_pick's LRs, not optim.lr itself
    "data.test_subset": ({"data.test_subset": 50}, ["corrupt", "evaluate@0", "export", "gradcam", "train@0"]),
    "export.min_agreement": ({"export.min_agreement": 0.99}, ["export"]),
    "corrupt.images": ({"corrupt.images": 50}, ["corrupt"]),  # then every robustness@N (test_seeds.py)
    "evaluate.ece_bins": ({"evaluate.ece_bins": 10}, ["evaluate@0", "robustness@0"]),
    "compute.compile": ({"compute.compile": True}, ["train@0"]),
    "preview.samples": ({"preview.samples": 8}, ["preview"]),
    "gradcam.deepest": ({"gradcam.deepest": 1}, ["gradcam"]),
    "noise.confidence": ({"noise.confidence": 0.9}, ["aggregate"]),
}


def test_the_docs_table_of_param_reruns_is_what_dvc_status_says():
    """Each row of docs/reruns.md's table names, in order, the stages the real `dvc status` reports (the test
    below), the per-seed stages as `@N`."""
    text = (ROOT / "docs/reruns.md").read_text()
    table = text[text.index("<!-- param reruns -->"):text.index("<!-- end -->", text.index("<!-- param reruns"))]
    rows = re.findall(r"^\| `([^`]+)` \| (.*) \|$", table, re.M)
    assert [param for param, _ in rows] == list(PARAM_RERUNS)
    for param, said in rows:
        named = [s.replace("@N", "@0") for s in re.findall(r"`([\w@]+)`", said.split(" (")[0].split(", then")[0])]
        assert named == PARAM_RERUNS[param][1] or (named, said.startswith("nothing")) == ([], True), (param, said)


@pytest.mark.parametrize("change", list(PARAM_RERUNS))
def test_a_param_invalidates_exactly_the_stages_that_declare_it(changed, change):
    overrides, expected = PARAM_RERUNS[change]
    set_params(changed, overrides)
    assert changed_stages(changed) == expected


@pytest.mark.parametrize("module, expected", [
    ("cifarpipe/train/loop.py", ["train@0"]),  # a training edit: the model alone retrains, nothing is redrawn
    ("cifarpipe/evaluate/figures.py", ["evaluate@0"]),  # a figure edit: never a training
    ("cifarpipe/figures/common.py", ["aggregate", "evaluate@0", "gradcam", "lr_pick", "preview",
                                     "robustness@0"]),
    ("cifarpipe/download/fetch.py", ["corrupt", "download"]),  # neither the range test nor training
    ("cifarpipe/train/one_cycle.py", ["aggregate", "train@0"]),
    ("cifarpipe/evaluate/scoring.py", ["evaluate@0", "robustness@0", "train@0"]),
    ("cifarpipe/aggregate/noise.py", ["aggregate"]),
    ("cifarpipe/lr/rules.py", ["lr_pick"]),
    ("cifarpipe/compute/device.py", ["evaluate@0", "gradcam", "lr_find", "robustness@0", "train@0"]),
    ("cifarpipe/export/files.py", ["export"]),
    ("cifarpipe/evaluate/calibration.py", ["evaluate@0", "robustness@0"]),
    ("cifarpipe/corrupt/corruptions.py", ["corrupt"]),
    ("cifarpipe/__init__.py", []),  # the package root's docstring: every stage loads it, none can change
    ("cifarpipe/messages.py", []),  # the words of the errors: a failing stage writes nothing
])
def test_an_edit_invalidates_exactly_the_stages_that_run_the_file(changed, module, expected):
    (changed / module).write_text((changed / module).read_text() + "\n# an edit\n")
    assert changed_stages(changed) == expected


def test_bytecode_python_writes_beside_the_code_changes_no_folders_hash(changed):
    """Every stage run writes __pycache__/ into the folders it imports; .dvcignore keeps it out of their
    hashes."""
    cache = changed / "cifarpipe/train/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "loop.cpython-311.pyc").write_bytes(b"new bytecode")
    (changed / "cifarpipe/core/stray.pyc").write_bytes(b"more")
    assert changed_stages(changed) == []


def test_an_edit_reruns_what_the_table_says(changed):
    """`cifarpipe reruns` (docs/reruns.md) and the real dvc status agree, folder by folder."""
    table = reruns_table(changed)
    every = ["aggregate", "corrupt", "download", "evaluate@0", "export", "gradcam", "lr_find", "lr_pick",
             "preview", "robustness@0", "stats", "train@0"]
    for code, reruns in zip(table["code"], table["an edit reruns"]):
        folder = changed / code.strip("`/")
        if folder.is_file() or reruns.startswith("no stage"):
            continue
        (folder / "__init__.py").write_text((folder / "__init__.py").read_text() + "# an edit\n")
        said = every if reruns == "every stage" else sorted(s + "@0"
                                                            if s in ("train", "evaluate", "robustness") else s
                                                            for s in reruns.split(", "))
        assert changed_stages(changed) == said, code
        run(["git", "checkout", "--", folder.relative_to(changed).as_posix()], changed)


def test_a_gradcam_param_reruns_gradcam_alone(changed):
    set_params(changed, {"gradcam.correct_images": 2})
    assert ran(dvc("repro", cwd=changed).stdout) == ["gradcam"]
    assert len(list((changed / "plots/gradcam").glob("right_*.png"))) == 2


def test_with_optim_lr_set_no_range_test_runs_and_metrics_diff_shows_the_new_lrmax(changed):
    exp = dvc("exp", "run", "-S", "optim.lr=0.005", cwd=changed)
    assert ran(exp.stdout) == ["lr_find", "lr_pick", "train@0", "evaluate@0", "gradcam", "robustness@0",
                               "export", "aggregate"]
    assert "optim.lr is 0.005: no LR range test" in exp.stdout
    test = read_json(changed, "metrics/lr_find.json")
    assert test["steps"] == 0 and test["stopped"] == "skipped: optim.lr is set"
    assert list(pd.read_csv(changed / "plots/lr_find.csv").columns) == ["lr", "loss"]
    picked = read_json(changed, "metrics/lr_pick.json")
    assert picked == {"source": "optim.lr", "lr_max": 0.005, "lr_min": 0.005 / 100}
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=changed).stdout)
    assert diff["metrics/verdict.json"]["lr_max"]["new"] == 0.005
    assert diff["metrics/verdict.json"]["lr_max"]["old"] != 0.005
    table = dvc("metrics", "diff", "--all", cwd=changed).stdout.strip().splitlines()
    assert table[0].split()[:2] == ["Path", "Metric"] and 1 < len(table) - 1 <= 15  # one screen, every metric
    # back to the range test: restored from DVC's run-cache
    dvc("exp", "run", "-S", "optim.lr=null", cwd=changed)
    assert read_json(changed, "metrics/lr_find.json")["steps"] > 3


def test_the_quick_look_file_is_what_dvc_exp_run_takes(changed):
    """`dvc exp run $(cifarpipe overrides quick-look.yaml)`: DVC accepts every argument and sets every
    value."""
    overrides = {**read_overrides(ROOT / "quick-look.yaml"), "schedule.epochs": 3}
    printed = run(["cifarpipe", "overrides", str(ROOT / "quick-look.yaml")], changed).stdout.split()
    assert printed == set_args(read_overrides(ROOT / "quick-look.yaml"))
    both = run(["cifarpipe", "overrides", str(ROOT / "quick-look.yaml"), str(ROOT / "smoke.yaml")], changed)
    assert both.stdout.split() == printed + ["-S", "model.width=8"]  # the smoke run: the quick look, narrow
    dvc("exp", "run", "--queue", "-n", "quick", *set_args(overrides), cwd=changed)
    queued = experiments(changed)["quick"]["params"]["params.yaml"]["data"]
    for dotted, value in overrides.items():
        group, key = dotted.split(".")
        assert queued[group][key] == value, dotted
    dvc("queue", "remove", "--all", cwd=changed)


def test_a_queued_grid_runs_side_by_side_and_the_readme_table_shows_its_verdicts(changed):
    dvc("exp", "run", "--queue", "-S", "optim.lr=0.003,0.006", cwd=changed)
    status = run_queue(changed, jobs=2)  # side by side, as on a box with two GPUs
    assert status.count("Success") == 2, status
    grid = experiments(changed)
    assert sorted(d["params"]["params.yaml"]["data"]["optim"]["lr"] for d in grid.values()) == [0.003, 0.006]
    assert all("test_acc" in d["metrics"]["metrics/verdict.json"]["data"] for d in grid.values())

    # the README's command shows the verdicts readably in a terminal of 120 columns: DVC's own table at that
    # width cuts every cell to "…"
    table = run(readme_exp_show(), changed, env_extra={"COLUMNS": "120"}).stdout
    header = next(line for line in table.splitlines() if line.startswith("Experiment"))
    assert "…" not in table and max(map(len, table.splitlines())) <= 120, table
    assert ["Experiment", "test acc", "± 95%", "seeds",
            "verdict"] == [c for c in header.split("  ") if c][:5]
    assert header.split()[-1] == "optim.lr", table  # the one param the grid varies, and no other
    for data in grid.values():
        verdict = data["metrics"]["metrics/verdict.json"]["data"]
        lr = data["params"]["params.yaml"]["data"]["optim"]["lr"]
        row = next(line for line in table.splitlines() if line.startswith("└")
                   and line.split()[-1] == str(lr))
        assert f" {100 * verdict['test_acc']:.2f}% " in row, (row, verdict)
        assert f" {verdict['verdict']} " in row, (row, verdict)
    assert "…" in run(["dvc", "exp", "show", "--no-pager"], changed, env_extra={"COLUMNS": "120"}).stdout


def test_a_named_reference_recipe_runs_as_an_experiment_of_that_name(changed):
    """The Makefile's ResNet18 recipe (shortened to one epoch for the test) after a quick look left its params
    in the workspace, as `dvc exp run` does: the recipe runs on the committed batch, data and range test."""
    committed = yaml.safe_load(run(["git", "show", "HEAD:params.yaml"], changed).stdout)
    set_params(changed, {"train.batch_size": 8, "data.train_subset": 128, "lr_find.iterations": 13})
    run(["make", "reference-resnet18", "ARGS=-S schedule.epochs=1 -S schedule.peak_epoch=0.5"], changed)
    recipe = experiments(changed)["reference-resnet18"]
    params = recipe["params"]["params.yaml"]["data"]
    assert params["model"]["name"] == "resnet18" and params["augment"]["cutout"] == 16
    for group, key in [("train", "batch_size"), ("data", "train_subset"), ("lr_find", "iterations")]:
        assert params[group][key] == committed[group][key] != {"train": 8, "data": 128, "lr_find": 13}[group]
    assert "test_acc" in recipe["metrics"]["metrics/verdict.json"]["data"]
    resnet18 = count_parameters(build_model(NARROW.model_copy(update={"name": "resnet18"})))
    assert (changed / "models/summary.txt").read_text().startswith("ResNet18")
    assert f"Total params: {resnet18:,}" in (changed / "models/summary.txt").read_text()


def test_export_writes_one_self_describing_classifier_checked_against_pytorch(built):
    """uint8 images in, probabilities and logits out; the normalisation, the mirror average and the
    temperature inside the graph; what a service needs to know in its metadata_props."""
    import onnxruntime

    from cifarpipe.export.files import load_program, onnx_meta, open_onnx

    repo, _ = built
    checks = read_json(repo, "metrics/export.json")
    assert checks["images"] == 100
    for name in ("onnx", "pt2"):
        assert checks[name]["max_abs_prob_diff"] <= 1e-4 and checks[name]["max_rel_logit_diff"] <= 1e-4
        assert checks[name]["argmax_agreement"] == 1.0, checks
    session = open_onnx(repo / "models/export/model.onnx")
    [given], taken = session.get_inputs(), session.get_outputs()
    assert (given.name, given.type, given.shape[1:]) == ("images", "tensor(uint8)", [32, 32, 3])
    assert [o.name for o in taken] == ["probabilities", "logits"]
    about, meta = onnx_meta(session), read_json(repo, "models/export/model.json")
    assert about == meta == load_program(repo / "models/export/model.pt2")[1]  # one description, three places
    stats, kept = read_json(repo, "data/stats.json"), read_json(repo, "models/seed0/calibration.json")
    assert (about["mean"], about["std"]) == (stats["mean"], stats["std"])
    assert about["classes"][:2] == ["airplane", "automobile"] and about["model"] == NARROW.model_dump()
    assert about["resize"] == "bicubic, squash to 32x32" and about["tta_flip"] is True
    assert about["temperature"] == kept["temperature"] != 1
    assert (about["torch"], about["onnxruntime"]) == (torch.__version__, onnxruntime.__version__)
    assert about["opset"] >= 18
    x = np.load(repo / "data/cifar10.npz")["x_test"][:16]
    probabilities, logits = session.run(None, {"images": x})
    mirrored, _ = session.run(None, {"images": np.ascontiguousarray(x[:, :, ::-1])})
    assert np.abs(probabilities - mirrored).max() < 1e-6  # the mirror average: an image scores as its mirror
    scaled = np.exp(logits / about["temperature"])
    assert np.allclose(probabilities, scaled / scaled.sum(1, keepdims=True), atol=1e-6)
    assert (repo / "models/export/model.onnx").stat().st_size > 100_000  # the weights are inside the one file
    assert sorted(p.name
                  for p in (repo / "models/export").iterdir()) == ["model.json", "model.onnx", "model.pt2"]


def test_predict_on_image_files_gives_the_evaluate_stages_classes_through_every_back_end(built, tmp_path):
    """Test images written as PNG files get the classes the evaluate stage predicted for them, and the same
    probabilities, through onnxruntime, the torch.export program and the PyTorch weights; as text, JSON Lines
    and CSV."""
    from PIL import Image

    repo, _ = built
    data = np.load(repo / "data/cifar10.npz")
    predictions = np.load(repo / "models/seed0/test_predictions.npz")
    for i in range(8):
        Image.fromarray(data["x_test"][i]).save(tmp_path / f"test{i}.png")
    expected = [str(data["classes"][p]) for p in predictions["preds"][:8]]
    scores = {}
    for model, form in [("models/export/model.onnx", "--json"), ("models/export/model.pt2", "--csv"),
                        ("models/seed0/model.pt", "--json")]:
        out = run(["cifarpipe", "predict", str(tmp_path), "--model", model, form, "--top", "3"], repo).stdout
        if form == "--csv":
            rows = list(csv.DictReader(io.StringIO(out)))
            assert list(rows[0]) == ["path", "label", "score", "label_2", "score_2", "label_3", "score_3"]
            lines = [{"label": r["label"], "scores": [float(r[k]) for k in ("score", "score_2", "score_3")]}
                     for r in rows]
        else:
            lines = [json.loads(line) for line in out.splitlines()]
            assert all(r["score"] == r["top"][0]["score"] and len(r["top"]) == 3 for r in lines)
            lines = [{"label": r["label"], "scores": [t["score"] for t in r["top"]]} for r in lines]
        assert [r["label"] for r in lines] == expected, model
        scores[model] = np.array([r["scores"] for r in lines])
        assert (scores[model].sum(1) <= 1.000001).all() and (np.diff(scores[model]) <= 0).all()
    assert np.abs(scores["models/export/model.onnx"] - scores["models/seed0/model.pt"]).max() <= 1e-4
    assert np.abs(scores["models/export/model.pt2"] - scores["models/seed0/model.pt"]).max() <= 1e-6
    text = run(["cifarpipe", "predict", str(tmp_path / "test0.png")], repo).stdout
    assert text.startswith(f"{tmp_path / 'test0.png'}: {expected[0]} ") and "%" in text


def test_predict_survives_a_folder_of_odd_files(built, tmp_path):
    """Every readable file of the folder is classified and printed, each as its plain twin is; every bad
    input gets one line on stderr with its path and why; the exit code says that some failed."""
    repo, _ = built
    folder = odd_images(tmp_path / "photos", np.load(repo / "data/cifar10.npz")["x_test"])
    (tmp_path / "empty").mkdir()
    proc = run(["cifarpipe", "predict", str(folder), str(tmp_path / "empty"), str(tmp_path / "missing.png"),
                "--json", "--batch-size", "4"], repo, check=False)
    assert proc.returncode == 1, proc.stderr
    got = {Path(r["path"]).name: r["top"] for r in map(json.loads, proc.stdout.splitlines())}
    assert list(got) == ["cmyk.jpg", "cutout.png", "cutout_on_white.png", "gray16.png", "gray32.tif",
                         "gray8.png", "palette.gif", "phone.jpg", "phone_upright.png", "photo.heic",
                         "photo_upright.png"]
    for name, twin in [("phone.jpg", "phone_upright.png"), ("gray16.png", "gray8.png"),
                       ("gray32.tif", "gray8.png"), ("cutout.png", "cutout_on_white.png")]:
        assert got[name] == got[twin], name  # the same classes, the same probabilities
    said = proc.stderr.splitlines()
    bad = {folder / "big.png": "decompression bomb", folder / "bomb.png": "decompression bomb",
           folder / "notes.jpg": "not an image file", folder / "truncated.jpg": "truncated",
           tmp_path / "empty": "no image files", tmp_path / "missing.png": "no such file"}
    assert len(said) == len(bad) + 1, proc.stderr
    for line, (path, why) in zip(said, bad.items()):
        assert line.startswith(f"error: {path}: ") and why in line, line
    assert said[-1] == "error: 6 inputs could not be read (above); 11 images classified"
    print(proc.stdout + proc.stderr)  # for the notes: pytest -s shows what a user sees


def test_the_docs_snippet_in_plain_onnxruntime_gives_predicts_classes(built, tmp_path):
    """docs/use.md's snippet, with only onnxruntime, numpy and PIL (importing torch or cifarpipe fails), on
    200 files of the test images (each as a PNG and as a larger non-square JPEG) gets exactly the classes and
    probabilities of `cifarpipe predict`."""
    from PIL import Image

    repo, _ = built
    snippet = (ROOT / "docs/use.md").read_text().split("```python\n")[1].split("```")[0]
    assert "model.json" not in snippet and "import cifarpipe" not in snippet
    (repo / "classify.py").write_text(snippet)
    files = []
    for i, image in enumerate(np.load(repo / "data/cifar10.npz")["x_test"]):
        files += [tmp_path / f"test{i:03d}.png", tmp_path / f"test{i:03d}.jpg"]
        Image.fromarray(image).save(files[-2])
        Image.fromarray(image).resize((72, 48), Image.Resampling.BICUBIC).save(files[-1], quality=90)
    bare = ("import runpy, sys; sys.modules['torch'] = sys.modules['cifarpipe'] = None; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    printed = run([sys.executable, "-c", bare, "classify.py", *map(str, files)], repo).stdout.splitlines()
    predicted = run(["cifarpipe", "predict", *map(str, files), "--json", "--top", "1"], repo).stdout
    expected = [(r["path"], r["label"], f"{r['score']:.6f}") for r in map(json.loads, predicted.splitlines())]
    assert len(expected) == 200 and [tuple(line.split()) for line in printed] == expected


def test_an_export_beyond_the_tolerance_fails_in_one_line_and_writes_nothing(changed):
    before = {p.name: p.read_bytes() for p in (changed / "models/export").iterdir()}
    set_params(changed, {"export.max_logit_diff": 1e-12})
    proc = dvc("repro", "export", cwd=changed, check=False)
    assert proc.returncode != 0 and "the exported onnx model differs from PyTorch" in proc.stderr, proc.stderr
    assert "export.max_logit_diff" in proc.stderr
    export = changed / "models/export"  # DVC clears a stage's outputs before it runs: the old folder, or none
    assert not export.exists() or {p.name: p.read_bytes() for p in export.iterdir()} == before
    # no half-written one
    assert not [p for p in (changed / "models").iterdir() if p.name.startswith(".export")]


def test_evaluate_measures_calibration_and_keeps_the_temperature_beside_the_model(built):
    repo, _ = built
    metrics = read_json(repo, "dvclive/evaluate/seed0/metrics.json")
    for key in ("ece", "ece_calibrated", "nll", "nll_calibrated", "brier", "brier_calibrated"):
        assert 0 <= metrics[key] < 10, key
    predictions = np.load(repo / "models/seed0/test_predictions.npz")
    confidence, right = predictions["probs"].max(1), predictions["preds"] == predictions["labels"]
    # ECE >= the gap of the overall means
    assert metrics["ece"] >= abs(right.mean() - confidence.mean()) - 1e-6
    kept = read_json(repo, "models/seed0/calibration.json")
    assert kept["temperature"] == pytest.approx(metrics["temperature"], rel=1e-5)
    assert read_json(repo, "models/export/model.json")["temperature"] == kept["temperature"]
    bins = read_json(repo, "dvclive/evaluate/seed0/plots/custom/reliability.json")
    assert 1 <= len(bins) <= TINY_PARAMS.get("evaluate.ece_bins", 15)
    assert {"confidence", "accuracy"} <= set(bins[0])
    assert (repo / "plots/evaluate/seed0/reliability.png").read_bytes()[:8] == PNG_MAGIC


def test_the_corrupted_sets_are_made_once_from_the_data_and_scored_per_seed(built, tmp_path):
    repo, _ = built
    with np.load(repo / "data/corrupted.npz") as z:
        sets, names, severities = z["x"], list(z["corruptions"]), list(z["severities"])
        assert list(z["y"]) == list(np.load(repo / "data/cifar10.npz")["y_test"][:len(z["y"])])
    assert severities == TINY_PARAMS["corrupt.severities"] and sets.dtype == np.uint8
    assert sets.shape == (19, len(severities), 100, 32, 32, 3)
    again = copy_repo(repo, tmp_path / "again")
    (again / "data/stats.json").unlink()  # not among corrupt's deps, so it must not read it
    run([sys.executable, "-m", "stages.corrupt"], again)  # regenerated: the same bytes
    assert (again / "data/corrupted.npz").read_bytes() == (repo / "data/corrupted.npz").read_bytes()
    result = read_json(repo, "metrics/robustness/seed0.json")
    assert list(result["accuracy"]) == names
    assert all(len(v) == len(severities) for v in result["accuracy"].values())
    benchmark = [result["accuracy"][n] for n in names[:15]]  # the extras stand apart
    assert result["corrupt_acc"] == pytest.approx(np.mean(benchmark)) and not result["corrupt_acc_complete"]
    assert 0 <= result["ece"] <= 1
    assert result["temperature"] == read_json(repo, "models/seed0/calibration.json")[
        "temperature"]
    band = pd.read_csv(repo / "plots/robustness/seed0.csv")
    assert band["severity"].tolist() == severities and (band["min"] <= band["mean"]).all()
    assert (repo / "plots/robustness/seed0.png").read_bytes()[:8] == PNG_MAGIC
    assert read_json(repo,
                     "metrics/verdict.json")["corrupt_acc"] == pytest.approx(result["corrupt_acc"])



# names the docs write in backticks that are neither an output's key nor the project's own: torch's, DVC's
# remote options, the device tool's
OTHERS_NAMES = {"fp32_precision", "record_function", "connection_string", "account_key", "access_key_id",
                "timeout_s", "avx512_bf16", "amx_bf16", "avx512_vnni", "amx_tile", "avx512f"}


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_every_key_the_docs_name_is_in_an_output_that_holds_it(built):
    """A snake_case name in backticks in README.md or docs/ is a key of one of the pipeline's JSON outputs, a
    params key or value, a stage, a corruption, or a name the package defines; `test_acc_low` once named a key
    the verdict no longer had."""
    import ast

    from cifarpipe.corrupt.corruptions import CORRUPTIONS

    repo, _ = built
    outputs = [p for pattern in ("metrics/**/*.json", "dvclive/**/metrics.json", "models/**/*.json")
               for p in repo.glob(pattern)]
    keys = {k for p in outputs for k in keys_of(json.loads(p.read_text()))}
    params = yaml.safe_load(PARAMS_YAML.read_text())
    names = keys | set(params) | {k for group in params.values() for k in group}
    names |= {str(v) for group in params.values() for v in group.values() if isinstance(v, str)}
    names |= set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]) | set(CORRUPTIONS) | OTHERS_NAMES
    for path in (ROOT / "cifarpipe").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        names |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                  if isinstance(t, ast.Name)}
    said = {(doc.name, m) for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
            for m in re.findall(r"`([a-z][a-z0-9]*_[a-z0-9_]*)`", doc.read_text())}
    assert sorted(m for m in said if m[1] not in names) == []
    assert {"test_acc_ci", "test_acc_std", "lr_rule", "corrupt_acc"} <= keys and "test_acc_low" not in names
