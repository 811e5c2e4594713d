"""Results travel without retraining: a DVC remote, fresh clones, experiments pushed from one clone to
another.

One baseline is published once per module (`published`): run, committed, pushed to a bare git
origin and to a DVC remote. Each test clones its own copy of the origin, so what one test pushes to git never
reaches another; they share the DVC remote, whose objects are addressed by content.
"""
import hashlib
import shutil
import sys

import pytest
import yaml

from conftest import dvc, experiments, make_repo, ran, run, set_params, tiny_archive_in

OUTPUTS_WITH_PICTURES = ["data/cifar10.npz", "data/stats.json", "plots/lr_find.csv", "plots/lr_pick.png",
                         "metrics/lr_pick.json", "models/seed0/model.pt",
                         "plots/curves.png", "metrics/aggregate.json", "metrics/verdict.json",
                         "dvclive/evaluate/seed0/metrics.json", "plots/evaluate/seed0/confusion.png",
                         "plots/evaluate/seed0/misclassified.png", "plots/train_samples.png"]
BASELINE = {"optim.lr": 0.005}  # a fixed LRMAX: no range test (tests/test_workflow_run.py runs pr_report.sh)
pytestmark = pytest.mark.slow


def git(*args, cwd):
    return run(["git", *args], cwd).stdout.strip()


def outputs(repo) -> list[str]:
    """Every output of the pipeline (files, and folders' files), relative to the repo, as DVC resolves
    dvc.yaml."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        declared = [out.def_path for out in dvc_repo.index.outs]
    found = []
    for out in declared:
        path = repo / out
        found += ([p.relative_to(repo).as_posix() for p in sorted(path.rglob("*")) if p.is_file()]
                  if path.is_dir() else [out])
    return found


def digest(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def with_remote(repo, remote):
    dvc("remote", "add", "-d", "shared", str(remote), cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "a shared DVC remote", cwd=repo)


def commit_run(repo, message):
    git("add", "-A", cwd=repo)
    git("commit", "-qm", message, cwd=repo)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(bare git origin, baseline commit): the baseline run, pushed to git and to the DVC remote beside it."""
    root = tmp_path_factory.mktemp("published")
    archive = root / "www" / "cifar-10-python.tar.gz"
    origin = root / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], root)
    first = make_repo(root / "first", archive.as_uri(), tiny_archive_in(archive.parent), BASELINE)
    with_remote(first, root / "dvc-remote")
    git("remote", "add", "origin", str(origin), cwd=first)
    dvc("repro", cwd=first)
    commit_run(first, "baseline run")
    git("push", "-q", "origin", "main", cwd=first)
    dvc("push", cwd=first)
    return origin, git("rev-parse", "HEAD", cwd=first)


@pytest.fixture
def origin(published, tmp_path):
    """This test's own copy of the published git origin."""
    return shutil.copytree(published[0], tmp_path / "origin.git")


def clone(origin, dest, pull=True):
    git("clone", "-q", str(origin), str(dest), cwd=dest.parent)
    if pull:
        dvc("pull", cwd=dest)
    return dest


def test_push_then_a_fresh_clone_pulls_every_output_and_reruns_nothing(origin, published, tmp_path):
    pr = clone(origin, tmp_path / "pr")
    set_params(pr, {"optim.lr": 0.004})  # a change, reproduced and shared like a pull request's
    assert ran(dvc("repro", cwd=pr).stdout)[-1] == "aggregate"
    commit_run(pr, "LRMAX 0.004")
    git("push", "-q", "origin", "main", cwd=pr)
    dvc("push", cwd=pr)

    fresh = clone(origin, tmp_path / "fresh")
    made = outputs(pr)
    assert set(OUTPUTS_WITH_PICTURES) <= set(made) and any(p.startswith("plots/gradcam/") for p in made)
    for path in made:
        assert digest(fresh / path) == digest(pr / path), path
    assert "up to date" in dvc("status", cwd=fresh).stdout
    assert ran(dvc("repro", cwd=fresh).stdout) == []

    base = published[1]
    report = run([sys.executable, "-m", "cifarpipe.tools.cli", "report", "--base", base, "--out",
                  "report.md"], fresh).stdout
    # the base's numbers come from the base commit's outputs, which this clone read from the DVC remote
    assert f"- **base (`{base}`)**: test accuracy" in report and "no aggregate" not in report, report
    accuracy = next(line for line in report.splitlines() if line.startswith("| test accuracy |"))
    assert "(1 seed)" in accuracy.split("|")[2] and "(1 seed)" in accuracy.split("|")[3]

    # the model registry's view: a version registered (a GTO git tag), then the weights by artifact name,
    # fetched through the DVC remote
    run(["gto", "register", "cifar10-resnet"], pr)
    dvc("artifacts", "get", str(pr), "cifar10-resnet", "-o", str(tmp_path / "got.pt"), cwd=tmp_path)
    assert digest(tmp_path / "got.pt") == digest(pr / "models/seed0/model.pt")


def test_pull_from_a_remote_that_lacks_the_outputs_says_what_to_run(repo, tmp_path):
    with_remote(repo, tmp_path / "empty-remote")
    fresh = clone(repo, tmp_path / "clone", pull=False)
    dvc("repro", "download", cwd=repo)  # built on one machine, never pushed
    commit_run(repo, "downloaded")
    git("pull", "-q", cwd=fresh)
    proc = run(["make", "pull"], fresh, check=False)
    assert proc.returncode != 0
    assert "not on the DVC remote" in proc.stdout + proc.stderr and "dvc repro" in proc.stdout + proc.stderr


def test_an_experiment_pushed_from_one_clone_is_listed_and_applied_in_another(origin, tmp_path):
    first = clone(origin, tmp_path / "first")
    dvc("exp", "run", "-n", "lr-004", "-S", "optim.lr=0.004", cwd=first)
    made = {p: digest(first / p) for p in ["models/seed0/model.pt", "dvclive/train/seed0/metrics.json",
                                           "plots/curves.png"]}
    dvc("exp", "push", "origin", "lr-004", cwd=first)

    second = clone(origin, tmp_path / "second", pull=False)
    dvc("exp", "pull", "origin", "lr-004", cwd=second)
    listed = experiments(second)["lr-004"]
    assert listed["params"]["params.yaml"]["data"]["optim"]["lr"] == 0.004
    assert "test_acc" in listed["metrics"]["metrics/verdict.json"]["data"]
    dvc("exp", "apply", "lr-004", cwd=second)
    assert yaml.safe_load((second / "params.yaml").read_text())["optim"]["lr"] == 0.004
    assert {p: digest(second / p) for p in made} == made  # the experiment's own outputs, not retrained
    assert "up to date" in dvc("status", cwd=second).stdout


def test_two_boxes_each_run_part_of_a_grid_and_a_third_clone_sees_all_of_it(origin, tmp_path):
    """Several boxes, one experiment log: each runs its part of a grid on a clone and pushes; anyone pulls it
    all. The grid is over the explanation methods, so each box, having pulled the baseline, reruns GradCAM
    alone (a grid that trains is the queued grid of tests/test_pipeline_e2e.py)."""
    grid = {"box-a": ["[gradcam]"], "box-b": ["[gradcam++]"]}
    for box, methods in grid.items():
        box_clone = clone(origin, tmp_path / box)
        for value in methods:  # a box's own grid (a queue on one box: tests/test_pipeline_e2e.py)
            out = dvc("exp", "run", "-S", f"gradcam.methods={value}", cwd=box_clone).stdout
            assert ran(out) == ["gradcam"], out
        dvc("exp", "push", "origin", "--all-commits", cwd=box_clone)

    viewer = clone(origin, tmp_path / "viewer", pull=False)
    dvc("exp", "pull", "origin", "--all-commits", cwd=viewer)
    seen = experiments(viewer)
    assert sorted(d["params"]["params.yaml"]["data"]["gradcam"]["methods"] for d in seen.values()) == [
        ["gradcam"], ["gradcam++"]]
    assert all("test_acc" in d["metrics"]["metrics/verdict.json"]["data"] for d in seen.values())
