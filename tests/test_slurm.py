"""`cifarpipe slurm` on a real SLURM started by the tests (tests/slurm_cluster.py: munged, slurmctld and three
slurmd nodes with a fake GPU each): a grid lands as experiments, one per node, without touching the checkout;
a task that fails is named with its log and resubmitted alone; seeds spread over tasks and a last job that
trains nothing; the dry run's script passes `sbatch --test-only`. Skipped, saying why, where SLURM is not
installed (`.ci/run` installs it)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dvc, make_repo, run, serving, tiny_archive_in, tool_env
from slurm_cluster import run_slurm, wait_for_jobs

pytestmark = pytest.mark.skipif(not shutil.which("sbatch"), reason="SLURM is not installed: "
                                "apt-get install --no-install-recommends slurmctld slurmd slurm-client munge")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's checkout pushed to a bare git remote, with a DVC remote every node reaches, and the tiny
    archive served over loopback HTTP."""
    root = tmp_path_factory.mktemp("cluster")
    with serving(root / "www") as (folder, base):
        md5 = tiny_archive_in(folder)
        repo = make_repo(root / "checkout", f"{base}/cifar-10-python.tar.gz", md5)
        run(["git", "init", "-q", "--bare", str(root / "origin.git")], root)
        dvc("remote", "add", "-d", "store", str(root / "store"), cwd=repo)
        run(["git", "commit", "-qam", "a DVC remote the nodes share"], repo)
        run(["git", "remote", "add", "origin", str(root / "origin.git")], repo)
        run(["git", "push", "-q", "origin", "HEAD:main"], repo)
        run(["git", "fetch", "-q", "origin"], repo)
        yield root, repo


def cifarpipe(cluster, repo, *args, check=True):
    env = cluster.environ({**tool_env(), "CIFARPIPE_SLURM_DIR": str(repo.parent / "submissions"),
                           "CIFARPIPE_SCRATCH": str(repo.parent / "scratch")})
    (repo.parent / "scratch").mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "slurm", *args], cwd=repo, env=env,
                          capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"cifarpipe slurm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def submitted(output: str) -> tuple[Path, dict]:
    folder = Path(next(line.split()[-1] for line in output.splitlines() if "slurm gather" in line))
    return folder, json.loads((folder / "submission.json").read_text())


def wait_for(cluster, record, timeout=420):
    return wait_for_jobs(cluster, list(record["jobs"].values()), timeout=timeout)


def snapshot(repo: Path) -> dict:
    """Every file of the checkout (git's and DVC's folders included), with its size and modification time."""
    return {str(p.relative_to(repo)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in repo.rglob("*") if p.is_file()}


def status(folder: Path, job: str) -> list[str]:
    return (folder / "status" / job).read_text().rstrip("\n").split("\t")  # code, node, GPUs, job id


def test_a_commit_the_remote_lacks_or_uncommitted_changes_are_refused_with_the_fix(slurm_cluster, project):
    root, repo = project
    scratch = root / "refused"
    shutil.copytree(repo, scratch, symlinks=True)
    (scratch / "params.yaml").write_text((scratch / "params.yaml").read_text() + "\n")
    proc = cifarpipe(slurm_cluster, scratch, "submit", "-S", "optim.lr=0.01", check=False)
    assert proc.returncode == 1 and "uncommitted changes" in proc.stderr and "git push origin" in proc.stderr
    run(["git", "commit", "-qam", "not pushed"], scratch)
    proc = cifarpipe(slurm_cluster, scratch, "submit", "-S", "optim.lr=0.01", check=False)
    assert proc.returncode == 1 and "is not on origin" in proc.stderr
    assert "`git push origin HEAD`" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_dry_run_prints_a_script_that_sbatch_test_only_accepts_and_submits_nothing(slurm_cluster,
                                                                                         project):
    root, repo = project
    proc = cifarpipe(slurm_cluster, repo, "submit", "-n", "dry", "-S", "optim.lr=0.01,0.02",
                     "-S", "train.seeds=[0,1]", "--time", "00:20:00", "--sbatch=--comment=cifarpipe",
                     "--dry-run")
    script = root / "job.sh"
    script.write_text(proc.stdout)
    assert "#SBATCH --gres=gpu:1" in proc.stdout and "#SBATCH --time=00:20:00" in proc.stdout
    assert "SETS_1=(-S optim.lr=0.02)" in proc.stdout and "'dry-2 0,1 stats corrupt'" in proc.stdout
    assert "TASKS=(\n  '0 0'\n  '0 1'\n  '1 0'\n  '1 1'\n)" in proc.stdout  # 2 experiments x 2 seeds
    for flags, role in (([], ["prep"]), (["--array=0-3"], ["task"]), ([], ["aggregate", "0"])):
        accepted = run_slurm(slurm_cluster, "sbatch", "--test-only", *flags, script, *role, cwd=root)
        assert accepted.returncode == 0 and "to start at" in accepted.stderr, accepted.stderr
    assert run_slurm(slurm_cluster, "bash", "-n", script).returncode == 0
    assert not (root / "submissions").exists()
    assert run_slurm(slurm_cluster, "squeue", "-h").stdout == ""


@pytest.mark.slow
def test_a_grid_lands_one_experiment_per_node_names_the_failed_task_and_resubmits_it_alone(
        slurm_cluster, project):
    """Two experiments and one that fails (an LRMAX below zero), one task per node."""
    root, repo = project
    proc = cifarpipe(slurm_cluster, repo, "submit", "-n", "grid", "-S", "optim.lr=0.01,0.02,-1")
    folder, record = submitted(proc.stdout)
    before = snapshot(repo)  # from here on, only the jobs run
    assert [e["sets"] for e in record["experiments"]] == [[f"optim.lr={v}"] for v in ("0.01", "0.02", "-1")]
    wait_for(slurm_cluster, record)
    assert snapshot(repo) == before  # nothing wrote to the checkout while the jobs ran

    nodes = [status(folder, f"task-{i}") for i in range(3)]
    assert [n[0] for n in nodes[:2]] == ["0", "0"] and nodes[2][0] != "0"
    assert sorted(n[1] for n in nodes) == ["node1", "node2", "node3"]  # one task per node
    assert [n[2] for n in nodes] == ["0", "0", "0"]  # each saw the GPU SLURM gave it (CUDA_VISIBLE_DEVICES)
    assert status(folder, "prep")[0] == "0"

    gathered = cifarpipe(slurm_cluster, repo, "gather", str(folder), check=False)
    assert gathered.returncode == 1
    assert "2 of 3 experiment(s) landed: grid-1, grid-2" in gathered.stdout
    failed = [line for line in gathered.stdout.splitlines() if line.startswith("FAILED")]
    log = folder / "logs" / f"task-2.{record['jobs']['array']}.out"
    code, node = nodes[2][:2]
    assert failed == [f"FAILED task 2 (grid-3): exit code {code} on {node}: see {log}"]
    assert "optim.lr" in log.read_text()  # the log says what was wrong
    assert f"cifarpipe slurm resubmit {folder}" in gathered.stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    names = {e["name"]: e["revs"][0]["data"] for e in shown[1]["experiments"]}
    assert set(names) == {"grid-1", "grid-2"}
    assert {names[n]["params"]["params.yaml"]["data"]["optim"]["lr"] for n in names} == {0.01, 0.02}
    assert all(names[n]["metrics"]["metrics/verdict.json"]["data"]["seeds"] == 1 for n in names)
    task_log = (folder / "logs" / f"task-0.{record['jobs']['array']}.out").read_text()
    phases = {line.split()[1]: int(line.split()[2]) for line in task_log.splitlines()
              if line.startswith("phase ")}
    assert set(phases) == {"clone", "run", "push"}
    print(f"task 0's phases, seconds: {phases}")  # the overhead docs/scaling.md reports

    again = cifarpipe(slurm_cluster, repo, "resubmit", str(folder))
    record = json.loads((folder / "submission.json").read_text())
    assert "resubmitted 1 task(s) (2)" in again.stdout and "prep" not in record["jobs"]
    wait_for(slurm_cluster, record)
    assert status(folder, "task-2")[3] == record["jobs"]["array"] != status(folder, "task-0")[3]
    assert status(folder, "task-2")[0] == code


@pytest.mark.slow
def test_seeds_spread_over_tasks_and_the_last_job_trains_nothing(slurm_cluster, project):
    root, repo = project
    proc = cifarpipe(slurm_cluster, repo, "submit", "-n", "seeds", "-S", "optim.lr=0.01",
                     "-S", "train.seeds=[0,1,2]")
    folder, record = submitted(proc.stdout)
    assert record["tasks"] == [[0, 0], [0, 1], [0, 2]] and "aggregate-0" in record["jobs"]
    wait_for(slurm_cluster, record)
    assert [status(folder, f"task-{i}")[0] for i in range(3)] == ["0", "0", "0"]
    last = (folder / "logs" / f"aggregate-0.{record['jobs']['aggregate-0']}.out").read_text()
    assert status(folder, "aggregate-0")[0] == "0", last
    ran = [line.split("'")[1] for line in last.splitlines() if line.startswith("Running stage")]
    assert "aggregate" in ran and not [s for s in ran if s.startswith(("train@", "evaluate@", "robustness@"))]
    for seed in (0, 1, 2):
        assert f"Stage 'train@{seed}' is cached - skipping run" in last

    gathered = cifarpipe(slurm_cluster, repo, "gather", str(folder))
    assert "1 of 1 experiment(s) landed: seeds;" in gathered.stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    verdict = next(e["revs"][0]["data"]["metrics"]["metrics/verdict.json"]["data"]
                   for e in shown[1]["experiments"] if e["name"] == "seeds")
    assert verdict["seeds"] == 3 and verdict["test_acc_ci"] is not None
    assert os.listdir(root / "scratch") == []  # every job removed its clone
