"""Results travel without retraining: a DVC remote, fresh clones, experiments pushed from one clone to another."""
import hashlib
import sys

import pytest
import yaml

from conftest import dvc, experiments, make_repo, ran, run, run_queue, set_params

OUTPUTS_WITH_PICTURES = ["data/cifar10.npz", "data/stats.json", "plots/lr_find.csv", "plots/lr_find.png",
                         "metrics/lr.json", "models/seed0/model.pt", "plots/curves.png", "metrics/aggregate.json",
                         "dvclive/evaluate/seed0/metrics.json", "plots/evaluate/seed0/confusion.png",
                         "plots/evaluate/seed0/misclassified.png", "plots/train_samples.png"]
pytestmark = pytest.mark.slow


def git(*args, cwd):
    return run(["git", *args], cwd).stdout.strip()


def outputs(repo) -> list[str]:
    """Every output of the pipeline (files, and folders' files), relative to the repo, as DVC resolves dvc.yaml."""
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
    # the base's numbers come from the base commit's outputs, which this clone read from the DVC remote
    assert f"- **base (`{base}`)**: test accuracy" in report and "no aggregate" not in report, report
    accuracy = next(line for line in report.splitlines() if line.startswith("| test accuracy |"))
    assert "(1 seed)" in accuracy.split("|")[2] and "within noise" in accuracy  # one seed a side: says so

    # the model registry's view: a version registered (a GTO git tag), then the weights by artifact name, fetched
    # through the DVC remote
    run(["gto", "register", "cifar10-resnet"], repo)
    dvc("artifacts", "get", str(repo), "cifar10-resnet", "-o", str(tmp_path / "got.pt"), cwd=tmp_path)
    assert digest(tmp_path / "got.pt") == digest(repo / "models/seed0/model.pt")


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


def published_baseline(tmp_path, archive, overrides: dict | None = None) -> tuple:
    """(bare git origin, the clone that made it): a baseline run committed, pushed to git and to a DVC remote."""
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    first = make_repo(tmp_path / "first", *archive, overrides)
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
    made = {p: digest(first / p) for p in ["models/seed0/model.pt", "dvclive/train/seed0/metrics.json",
                                           "plots/curves.png"]}
    dvc("exp", "push", "origin", "lr-005", cwd=first)

    second = tmp_path / "second"
    git("clone", "-q", str(origin), str(second), cwd=tmp_path)
    dvc("exp", "pull", "origin", "lr-005", cwd=second)
    listed = experiments(second)["lr-005"]
    assert listed["params"]["params.yaml"]["data"]["optim"]["lr"] == 0.005
    assert "test_acc" in listed["metrics"]["metrics/aggregate.json"]["data"]
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
    assert all("test_acc" in d["metrics"]["metrics/aggregate.json"]["data"] for d in seen.values())


def test_the_pull_request_script_reads_the_bases_seeds_from_the_remote_or_runs_them_saying_so(tmp_path, tiny_archive):
    """scripts/pr_report.sh, as the workflow runs it: the change over N seeds, the base over as many."""
    origin, _ = published_baseline(tmp_path, tiny_archive, {"train.seeds": [0, 1], "optim.lr": 0.005})
    pr = tmp_path / "pr"
    git("clone", "-q", str(origin), str(pr), cwd=tmp_path)
    set_params(pr, {"augment.cutout": 0})  # the pull request's change
    git("commit", "-qam", "no cutout", cwd=pr)
    out = run(["bash", "scripts/pr_report.sh", "2"], pr).stdout
    assert "base (origin/main): seeds [0,1] read from the DVC remote" in out
    report = (pr / "report.md").read_text()
    assert "over 2 seed(s)" in report and "Seeds: base [0, 1], change [0, 1]" in report
    assert (pr / "report_images/test_accuracy_over_the_seeds.png").exists()

    out = run(["bash", "scripts/pr_report.sh", "3"], pr).stdout  # more seeds than the remote holds for the base
    assert "base (origin/main): seeds [0,1,2] are not all on the DVC remote (it has [0,1]): running them here" in out
    assert "Seeds: base [0, 1, 2], change [0, 1, 2]" in (pr / "report.md").read_text()
    assert git("worktree", "list", cwd=pr).count("\n") == 0  # the base's worktree is gone
