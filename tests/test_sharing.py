"""Results travel without retraining: a DVC remote, fresh clones, experiments pushed from one clone to another."""
import hashlib
import sys

import pytest
import yaml

from conftest import dvc, experiments, make_repo, ran, run, run_queue, set_params

OUTPUTS_WITH_PICTURES = ["data/cifar10.npz", "data/stats.json", "plots/lr_find.csv", "plots/lr_find.png",
                         "metrics/lr.json", "models/model.pt", "plots/curves.png", "dvclive/evaluate/metrics.json",
                         "plots/confusion.png", "plots/misclassified.png", "plots/train_samples.png"]
pytestmark = pytest.mark.slow


def git(*args, cwd):
    return run(["git", *args], cwd).stdout.strip()


def outputs(repo) -> list[str]:
    """Every output dvc.yaml declares (files and folders' files), relative to the repo."""
    found = []
    for stage in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].values():
        for out in stage.get("outs", []) + stage.get("metrics", []):
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


def test_push_then_a_fresh_clone_pulls_every_output_and_reruns_nothing(repo, tmp_path):
    with_remote(repo, tmp_path / "dvc-remote")
    dvc("repro", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "baseline run", cwd=repo)
    base = git("rev-parse", "HEAD", cwd=repo)
    dvc("push", cwd=repo)
    set_params(repo, {"optim.lr": 0.005})  # a change, reproduced and shared like a pull request's
    dvc("repro", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "LRMAX 0.005", cwd=repo)
    dvc("push", cwd=repo)

    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    dvc("pull", cwd=clone)
    made = outputs(repo)
    assert set(OUTPUTS_WITH_PICTURES) <= set(made) and any(p.startswith("plots/gradcam/") for p in made)
    for path in made:
        assert digest(clone / path) == digest(repo / path), path
    assert "up to date" in dvc("status", cwd=clone).stdout
    assert ran(dvc("repro", cwd=clone).stdout) == []

    report = run([sys.executable, "-m", "cifarpipe.cli", "report", "--base", base, "--out", "report.md"], clone).stdout
    assert f"| | before (`{base}`) | after |" in report
    accuracy = next(line for line in report.splitlines() if line.startswith("| test accuracy |"))
    before = accuracy.split("|")[2]  # read from the base commit's outputs, which this clone pulled from the remote
    assert "%" in before and "n/a" not in before, report

    # the model registry's view: a version registered (a GTO git tag), then the weights by artifact name, fetched
    # through the DVC remote
    run(["gto", "register", "cifar10-resnet"], repo)
    dvc("artifacts", "get", str(repo), "cifar10-resnet", "-o", str(tmp_path / "got.pt"), cwd=tmp_path)
    assert digest(tmp_path / "got.pt") == digest(repo / "models/model.pt")


def test_pull_from_a_remote_that_lacks_the_outputs_says_what_to_run(repo, tmp_path):
    with_remote(repo, tmp_path / "empty-remote")
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    dvc("repro", "download", cwd=repo)  # built on one machine, never pushed
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "downloaded", cwd=repo)
    git("pull", "-q", cwd=clone)
    proc = run(["make", "pull"], clone, check=False)
    assert proc.returncode != 0
    assert "not on the DVC remote" in proc.stdout + proc.stderr and "dvc repro" in proc.stdout + proc.stderr


def published_baseline(tmp_path, archive) -> tuple:
    """(bare git origin, the clone that made it): a baseline run committed, pushed to git and to a DVC remote."""
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    first = make_repo(tmp_path / "first", *archive)
    with_remote(first, tmp_path / "dvc-remote")
    git("remote", "add", "origin", str(origin), cwd=first)
    dvc("repro", cwd=first)
    git("add", "-A", cwd=first)
    git("commit", "-qm", "baseline run", cwd=first)
    git("push", "-q", "origin", "main", cwd=first)
    dvc("push", cwd=first)
    return origin, first


def test_an_experiment_pushed_from_one_clone_is_listed_and_applied_in_another(tmp_path, tiny_archive):
    origin, first = published_baseline(tmp_path, tiny_archive)

    dvc("exp", "run", "-n", "lr-005", "-S", "optim.lr=0.005", cwd=first)
    made = {p: digest(first / p) for p in ["models/model.pt", "dvclive/train/metrics.json", "plots/curves.png"]}
    dvc("exp", "push", "origin", "lr-005", cwd=first)

    second = tmp_path / "second"
    git("clone", "-q", str(origin), str(second), cwd=tmp_path)
    dvc("exp", "pull", "origin", "lr-005", cwd=second)
    listed = experiments(second)["lr-005"]
    assert listed["params"]["params.yaml"]["data"]["optim"]["lr"] == 0.005
    assert "test_acc" in listed["metrics"]["dvclive/evaluate/metrics.json"]["data"]
    dvc("exp", "apply", "lr-005", cwd=second)
    assert yaml.safe_load((second / "params.yaml").read_text())["optim"]["lr"] == 0.005
    assert {p: digest(second / p) for p in made} == made  # the experiment's own outputs, not retrained
    assert "up to date" in dvc("status", cwd=second).stdout


def test_two_boxes_each_run_part_of_a_grid_and_a_third_clone_sees_all_of_it(tmp_path, tiny_archive):
    """Several boxes, one experiment log: each runs its own queue on a clone, pushes; anyone pulls the whole grid."""
    origin, _ = published_baseline(tmp_path, tiny_archive)  # the baseline every box starts from

    grid = {"box-a": [0.003], "box-b": [0.006]}
    for box, lrs in grid.items():
        clone = tmp_path / box
        git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
        dvc("pull", cwd=clone)
        dvc("exp", "run", "--queue", "-S", "optim.lr=" + ",".join(map(str, lrs)), cwd=clone)
        status = run_queue(clone)
        assert status.count("Success") == len(lrs), status
        dvc("exp", "push", "origin", "--all-commits", cwd=clone)

    viewer = tmp_path / "viewer"
    git("clone", "-q", str(origin), str(viewer), cwd=tmp_path)
    dvc("exp", "pull", "origin", "--all-commits", cwd=viewer)
    seen = experiments(viewer)
    assert sorted(d["params"]["params.yaml"]["data"]["optim"]["lr"] for d in seen.values()) == [0.003, 0.006]
    assert all("test_acc" in d["metrics"]["dvclive/evaluate/metrics.json"]["data"] for d in seen.values())
