"""`cifarpipe slurm` under the faults a cluster has every day, on a real SLURM started by the tests
(tests/slurm_cluster.py: munged, slurmctld and three slurmd nodes, node1 with two fake GPUs) that keeps
SLURM's default settings (no kill_invalid_depend).

Two submissions run side by side, so that their waits overlap:
- faults, on node1: a grid of three tasks. The long one, cancelled while it waits and resubmitted with a
  two-minute --time, trains for longer than that: it stops and saves before the limit, records TIMEOUT and,
  resubmitted with more time, trains only the epochs it had left. One lands (two tasks at once on node1's GPUs
  0 and 1), one is cancelled while it runs.
- seeds, off node1: two seeds and their aggregate job, pushing to a git remote that refuses pushes. A seed
  cancelled with scancel does not leave the aggregate job pending; resubmit reruns that seed and the aggregate
  job only; the refused push keeps its clone, gather names it and the one command that pushes it.
Input the jobs would run as code, or that SLURM would refuse halfway, is refused before anything is submitted;
a failing setup line and a failing stage are named with their logs.
Skipped, saying why, where SLURM is not installed (`.ci/run` installs it); the first test needs no cluster,
and tests/test_slurm_units.py tests the parts without one.
"""
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cifarpipe.compute import gpus
from cifarpipe.core.errors import ToolError
from cifarpipe.slurm.state import ACTIVE, read_status
from cifarpipe.slurm.submit import SCRIPT
from cifarpipe.slurm.validate import checked_text
from conftest import dvc, make_repo, run, serving, tiny_archive_in, tool_env
from slurm_cluster import run_slurm

needs_slurm = pytest.mark.skipif(not shutil.which("sbatch"), reason="SLURM is not installed: apt-get install "
                                 "--no-install-recommends slurmctld slurmd slurm-client munge")
LIMIT, STOP_BEFORE = 2, 60  # the long task's short --time, in minutes, and when it stops to save (s before)


# -- without a cluster --------------------------------------------------------------------------------------
def test_a_slurm_jobs_gpu_locks_are_its_own(tmp_path, monkeypatch):
    """Two jobs on one node each see their GPU as 0 (CUDA_VISIBLE_DEVICES): each claims it without waiting
    for the other; a second claim within one job still waits."""
    monkeypatch.setenv("CIFARPIPE_GPU_LOCKS", str(tmp_path / "locks"))
    monkeypatch.setenv("SLURM_JOB_GPUS", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    first = gpus.claim_gpus(1, 1, timeout_s=0.5)
    monkeypatch.setenv("SLURM_JOB_ID", "102")
    second = gpus.claim_gpus(1, 1, timeout_s=0.5)  # another job: its own lock
    assert [index for index, _ in first + second] == [0, 0]
    assert gpus.lock_dir() == tmp_path / "locks-slurm-job-102"
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    with pytest.raises(TimeoutError):
        gpus.claim_gpus(1, 1, poll_s=0.1, timeout_s=0.5)  # the same job: GPU 0 is taken
    monkeypatch.delenv("SLURM_JOB_GPUS")  # a job SLURM gave no GPUs shares the node's locks
    assert gpus.lock_dir() == tmp_path / "locks"


# -- on the cluster -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's checkout pushed to a bare git remote, with a DVC remote every node reaches and the tiny
    archive served over loopback HTTP; and `refused`, a git remote served by `git daemon` whose pre-receive
    hook refuses every push (a push to a local folder skips hooks)."""
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
        run(["git", "clone", "-q", "--bare", str(root / "origin.git"), str(root / "refused.git")], root)
        hook = root / "refused.git" / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'this remote takes no pushes today' >&2\nexit 1\n")
        hook.chmod(0o755)
        port = free_port()
        daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
                                   f"--base-path={root}", "--export-all", "--enable=receive-pack", str(root)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"git://127.0.0.1:{port}/refused.git"
            for _ in range(50):
                if run(["git", "ls-remote", url], root, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            run(["git", "remote", "add", "refused", url], repo)
            run(["git", "fetch", "-q", "refused"], repo)
            yield root, repo
        finally:
            daemon.terminate()
            daemon.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cifarpipe(cluster, repo, *args, check=True):
    env = cluster.environ({**tool_env(), "CIFARPIPE_SLURM_DIR": str(repo.parent / "submissions"),
                           "CIFARPIPE_SCRATCH": str(repo.parent / "scratch")})
    (repo.parent / "scratch").mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "slurm", *map(str, args)], cwd=repo,
                          env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"cifarpipe slurm {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def submitted(output: str) -> Path:
    return Path(next(line.split()[-1] for line in output.splitlines() if "slurm gather" in line))


def states(cluster, repo, folder: Path) -> dict[str, list[str]]:
    """{job: its row of `cifarpipe slurm status`}: job, experiment, seeds, state, node, GPU, elapsed, exit,
    log, and its notes from below the table."""
    table, _, notes = cifarpipe(cluster, repo, "status", folder).stdout.partition("\nnotes:\n")
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip())
                                          for line in table.strip().splitlines()[4:])}
    noted = dict(line.split(None, 1) for line in notes.splitlines())
    return {job: [*cells, noted.get(job, "")] for job, cells in rows.items()}


def wait_until(what: str, ready, timeout: float = 300, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}")
        time.sleep(poll)
    return found


def finished(cluster, repo, folder: Path) -> dict[str, list[str]]:
    """The status rows once no job of the submission is queued or running."""
    def settled():
        rows = states(cluster, repo, folder)
        return rows if not any(r[3] in ACTIVE for r in rows.values()) else None
    return wait_until(f"the jobs of {folder.name} to end", settled)


def others_queued(cluster) -> list[str]:
    """The names of queued or running jobs, but the faults grid's (which runs meanwhile)."""
    names = run_slurm(cluster, "squeue", "-h", "-o", "%j").stdout.split()
    return [name for name in names if "-faults-" not in name]


def started(folder: Path, job: str) -> None:
    """Wait until the job has written that it runs (its traps are set by then)."""
    wait_until(f"{job} to start", lambda: any(p.suffix[1:].isdigit() for p in (folder / "status").glob(
        f"{job}.*")), poll=0.5)


def status_file(folder: Path, job: str, run: int = -1) -> dict:
    """The status file a job's run wrote (run -1: its latest)."""
    files = sorted((p for p in (folder / "status").glob(f"{job}.*") if p.suffix[1:].isdigit()),
                   key=lambda p: int(p.suffix[1:]))
    return read_status(files[run])


def trained_epochs(log: Path) -> list[int]:
    return [int(n) for n in re.findall(r"epoch=(\d+) train_loss", log.read_text(errors="replace"))]


def snapshot(repo: Path) -> dict:
    """Every file of the checkout (git's and DVC's folders included), with its size and modification time."""
    return {str(p.relative_to(repo)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in repo.rglob("*") if p.is_file()}


@needs_slurm
def test_input_the_jobs_would_run_as_code_or_that_cannot_work_is_refused_before_anything_is_submitted(
        slurm_cluster, project, faults_meanwhile):
    root, repo = project
    refused = {
        ("--partition", "gpu\nrm -rf ~"): "--partition 'gpu\\nrm -rf ~' holds the control character '\\n'",
        ("-n", "a b"): "-n 'a b' is not a valid experiment name",
        ("-n", "lr..sweep"): "-n 'lr..sweep' is not a valid experiment name",
        ("-S", "optim.lr=[0.1"): "-S 'optim.lr=[0.1': no viable alternative at input '[0.1'",
        ("-S", "optim.lrr=0.1"): "-S optim.lrr=0.1: Could not override 'optim.lrr'. To append to your config "
                                 "use +optim.lrr=0.1",
        ("--time", "an hour"): "--time 'an hour': sbatch takes minutes, MM:SS",
        ("--sbatch=--comment=a\rb",): "--sbatch '--comment=a\\rb' holds the control character '\\r'",
    }
    with pytest.raises(ToolError, match="holds the control character '\\\\x00'"):
        checked_text("--account", "lab\x00")  # no command line carries a NUL; elsewhere, one may
    for args, message in refused.items():
        proc = cifarpipe(slurm_cluster, repo, "submit", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = cifarpipe(slurm_cluster, repo, "submit", "--partition", "nosuch", "-S", "optim.lr=0.01",
                     check=False)
    assert proc.returncode == 1 and "SLURM refuses the prep job, so nothing was submitted" in proc.stderr
    assert "invalid partition" in proc.stderr.lower()

    scratch = root / "refused"  # uncommitted changes, a commit the git remote lacks
    shutil.copytree(repo, scratch, symlinks=True)
    (scratch / "params.yaml").write_text((scratch / "params.yaml").read_text() + "\n")
    proc = cifarpipe(slurm_cluster, scratch, "submit", "-S", "optim.lr=0.01", check=False)
    assert proc.returncode == 1 and "uncommitted changes" in proc.stderr and "git push origin" in proc.stderr
    run(["git", "commit", "-qam", "not pushed"], scratch)
    proc = cifarpipe(slurm_cluster, scratch, "submit", "-S", "optim.lr=0.01", check=False)
    assert proc.returncode == 1 and "`git push origin HEAD`" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not [p.name for p in (root / "submissions").glob("*") if "-faults" not in p.name]
    assert not others_queued(slurm_cluster)


@needs_slurm
def test_the_dry_run_prints_the_values_and_the_sbatch_lines_which_sbatch_accepts(slurm_cluster, project):
    """The dry run prints job.env: the sbatch lines that would submit the static job.sh, then the values it
    runs with, which bash reads back exactly and runs none of."""
    root, repo = project
    name, url = "dry$(touch${IFS}pwned)", "http://x/$(touch pwned)\"`touch pwned`"
    proc = cifarpipe(slurm_cluster, repo, "submit", "-n", name, "-S", "optim.lr=0.01,0.02",
                     "-S", "train.seeds=[0,1]", "-S", f"data.url='{url}'", "--time", "00:20:00",
                     "--max-parallel", "2", "--sbatch=--comment=cifarpipe", "--dry-run")
    values = proc.stdout
    lines = re.findall(r"^#   (?:(\w+)=\$\()?(sbatch --parsable .*?)\)?$", values, re.M)
    assert [job for job, _ in lines] == ["PREP", "ARRAY", "", ""]  # prep, the array, two aggregate jobs
    prep, array, aggregate0, aggregate1 = (line for _, line in lines)
    assert "--gres" not in prep and "--time=00:30:00" in prep  # optim.lr is set: no range test, no GPU
    assert "--gres=gpu:1" in array and "--time=00:20:00" in array and "--array=0,1,2,3%2" in array
    assert "--dependency=afterok:${PREP} --kill-on-invalid-dep=yes" in array
    assert "--dependency=afterok:${ARRAY}_0:${ARRAY}_1 --kill-on-invalid-dep=yes" in aggregate0
    assert "--dependency=afterok:${ARRAY}_2:${ARRAY}_3 " in aggregate1 and "--gres" not in aggregate1
    assert all("--signal=B:USR1@120" in line and "--comment=cifarpipe" in line for _, line in lines)
    assert re.search(r"'--job-name=cifarpipe-\d{8}-\d{6}-dry.*-task' ", array)  # the submission's name
    assert not re.findall(r"^#SBATCH.*", values, re.M)  # resources are arguments, never script lines
    assert "\nPREP_RUNS=(0)\n" in values  # the two points' prep stages see the same params: run once
    # every value is data: bash reads back exactly what was given, and runs none of it
    job, env = root / "job.sh", root / "job.env"
    shutil.copyfile(SCRIPT, job)
    env.write_text(values)
    printed = run(["bash", "-c", 'source "$0"; printf "%s\\n" "${NAMES[1]}" "${SETS_1[@]}" "${TASK_SEED[@]}"',
                   str(env)], root).stdout
    assert printed.splitlines() == [f"{name}-2", "-S", "optim.lr=0.02", "-S", f"data.url='{url}'",
                                    "0", "1", "0", "1"]
    assert not list(root.glob("pwned")) and not list(repo.glob("pwned"))
    assert run_slurm(slurm_cluster, "bash", "-n", env).returncode == 0
    roles = (["prep"], ["task"], ["aggregate", "0"], ["aggregate", "1"])
    for (_, line), role in zip(lines, roles, strict=True):
        args = [a for a in shlex.split(line)[2:-3 - (role[0] == "aggregate")]
                if not a.startswith(("--dependency", "--kill-on"))]
        accepted = run_slurm(slurm_cluster, "sbatch", "--test-only", *args, job, env, *role, cwd=root)
        assert accepted.returncode == 0 and "to start at" in accepted.stderr, (line, accepted.stderr)
    assert not [p.name for p in (root / "submissions").glob("*") if "-faults" not in p.name]
    assert not others_queued(slurm_cluster)


@needs_slurm
def test_an_aggregate_job_whose_seeds_did_not_complete_refuses_to_run(slurm_cluster, project):
    """SLURM drops a dependency on a pending array task that was cancelled: the aggregate job checks itself.
    Run by hand, as plain bash; the range test (optim.lr unset) makes prep ask for the tasks' GPU."""
    root, repo = project
    values = cifarpipe(slurm_cluster, repo, "submit", "-n", "guard", "-S", "train.seeds=[0,1]",
                       "--dir", root / "by-hand", "--dry-run").stdout
    assert re.search(r"^#   PREP=\$\(sbatch .*--gres=gpu:1 .*job.sh \S+/job.env prep\)$", values, re.M)
    folder = Path(re.search(r"^SUBMISSION=(\S+)$", values, re.M).group(1))
    (folder / "status").mkdir(parents=True)
    shutil.copyfile(SCRIPT, folder / "job.sh")
    (folder / "job.env").write_text(values)
    env = {k: v for k, v in slurm_cluster.environ(tool_env()).items() if not k.startswith("SLURM_ARRAY")}
    proc = subprocess.run(["bash", folder / "job.sh", folder / "job.env", "aggregate", "0"],
                          env={**env, "SLURM_JOB_ID": "999"}, capture_output=True, text=True, cwd=root)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "the tasks of task-0 (seed 0) task-1 (seed 1) did not complete: nothing to" in proc.stdout
    assert read_status(folder / "status" / "aggregate-0.999")["state"] == "FAILED"


@needs_slurm
def test_a_failing_setup_line_or_stage_fails_its_job_names_its_log_and_leaves_nothing_waiting(
        slurm_cluster, project):
    root, repo = project
    setup = root / "bad-setup.sh"
    setup.write_text('echo "module load cuda/99"\nfalse\necho "not reached"\n')
    broken = submitted(cifarpipe(slurm_cluster, repo, "submit", "-n", "broken", "-S", "optim.lr=0.01",
                                 "--setup", setup, "--sbatch=--exclude=node1").stdout)
    failing = submitted(cifarpipe(slurm_cluster, repo, "submit", "-n", "failing", "-S", "optim.lr=0.01",
                                  "-S", "schedule.epochs=-1", "--sbatch=--exclude=node1").stdout)
    rows = finished(slurm_cluster, repo, broken)
    assert (rows["prep"][3], rows["task-0"][3]) == ("FAILED", "CANCELLED"), rows
    assert "failed in its setup phase" in rows["prep"][-1]
    assert "DependencyNeverSatisfied" in rows["task-0"][-1]  # not pending for ever
    log = next((broken / "logs").glob("prep.*.out")).read_text()
    assert "module load cuda/99" in log and "not reached" not in log
    gathered = cifarpipe(slurm_cluster, repo, "gather", broken, check=False)
    assert gathered.returncode == 1 and "FAILED prep: exit code 1 on node" in gathered.stdout

    rows = finished(slurm_cluster, repo, failing)  # a stage that fails: the task, in its run phase
    assert rows["task-0"][3] == "FAILED" and "failed in its run phase" in rows["task-0"][-1], rows
    log = next((failing / "logs").glob("task-0.*.out"))
    assert "schedule.epochs = -1 is not allowed" in log.read_text()
    assert "saving what finished to the DVC remote" in log.read_text()  # the stages before it are not lost
    gathered = cifarpipe(slurm_cluster, repo, "gather", failing, check=False)
    assert f"FAILED task-0 (failing): exit code {rows['task-0'][7]} on node" in gathered.stdout
    assert f"see {log}" in gathered.stdout


class Faults(threading.Thread):
    """The faults grid, driven in the background while the seeds test runs: one task to time out, one to
    land, one to cancel. What it saw, for test_faults."""

    def __init__(self, cluster, root: Path):
        super().__init__(daemon=True)
        self.cluster, self.root = cluster, root
        self.seen: dict = {}
        self.error: BaseException | None = None

    def run(self):
        try:
            self.drive()
        except BaseException as error:  # for test_faults to raise
            self.error = error

    def drive(self):
        cluster, root, seen = self.cluster, self.root, self.seen
        # how long an epoch takes here, from a colleague's first seed (its data, pushed, spares prep the
        # work); at another LRMAX than the seeds test's, whose aggregate job must find its own seeds' runs
        colleague = root / "colleague"
        run(["git", "clone", "-q", "-b", "main", str(root / "origin.git"), str(colleague)], root)
        dvc("exp", "run", "-S", "optim.lr=0.02", "train@0", cwd=colleague)
        dvc("push", "-q", "--run-cache", cwd=colleague)
        epoch_s = json.loads((colleague / "dvclive/train/seed0/metrics.json").read_text())["epoch_s"]
        # more epochs than fit before the stop (after some 10 s of restores), with a margin for the speed
        seen["epochs"] = epochs = max(40, math.ceil(1.5 * (60 * LIMIT - STOP_BEFORE - 10) / epoch_s))
        # submitted from a checkout of its own: the seeds test gathers into the other one meanwhile
        repo = root / "faults-checkout"
        run(["git", "clone", "-q", "-b", "main", str(root / "origin.git"), str(repo)], root)
        proc = cifarpipe(cluster, repo, "submit", "-n", "faults", "-S", "optim.lr=0.02",
                         "-S", f"schedule.epochs={epochs},2,3", "--time", "10", "--stop-before", STOP_BEFORE,
                         "--sbatch=--nodelist=node1")
        seen["folder"] = folder = submitted(proc.stdout)
        seen["before"] = snapshot(repo)  # from here on, only the jobs run
        # the long one, cancelled while it waits for prep, then resubmitted with a short limit
        seen["cancel pending"] = cifarpipe(cluster, repo, "cancel", folder, "--job", "task-0").stdout
        seen["short"] = cifarpipe(cluster, repo, "resubmit", folder, "--job", "task-0",
                                  "--time", LIMIT).stdout
        started(folder, "task-2")
        seen["cancel"] = cifarpipe(cluster, repo, "cancel", folder, "--job", "task-2").stdout
        seen["first"] = wait_until("task-0 to time out", lambda: (rows := states(cluster, repo, folder))[
            "task-0"][3] not in ACTIVE and rows)
        seen["after"] = snapshot(repo)
        seen["checkpoints"] = sorted(p.name for p in (folder / "checkpoints" / "task-0").iterdir())
        seen["gather"] = cifarpipe(cluster, repo, "gather", folder, check=False)
        seen["resubmit"] = cifarpipe(cluster, repo, "resubmit", folder, "--job", "task-0",
                                     "--time", "10").stdout
        seen["last"] = finished(cluster, repo, folder)
        seen["status"] = cifarpipe(cluster, repo, "status", folder).stdout
        seen["gather again"] = cifarpipe(cluster, repo, "gather", folder, check=False)


@pytest.fixture(scope="module")
def faults(slurm_cluster, project):
    driver = Faults(slurm_cluster, project[0])
    driver.start()
    yield driver
    driver.join(timeout=600)


@pytest.fixture
def faults_meanwhile(request):
    """The faults grid started early, its minutes of waiting spent beside the fast tests', where a test that
    reads it was selected; the fast tier (-m 'not slow') never starts it."""
    if any("faults" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("faults")


@needs_slurm
@pytest.mark.slow
def test_a_cancelled_seed_leaves_no_aggregate_pending_and_a_refused_push_keeps_its_clone(
        slurm_cluster, project, faults):
    root, repo = project
    setup = root / "setup.sh"
    setup.write_text('echo "setup: first, on $(hostname -s)"\nexport CIFARPIPE_SETUP_RAN=yes\n')
    proc = cifarpipe(slurm_cluster, repo, "submit", "-n", "seeds", "-S", "optim.lr=0.01",
                     "-S", "train.seeds=[0,1]", "--git-remote", "refused", "--push-tries", "2",
                     "--push-backoff", "1", "--setup", setup, "--sbatch=--exclude=node1")
    folder = submitted(proc.stdout)
    record = json.loads((folder / "submission.json").read_text())
    assert record["tasks"] == [[0, 0], [0, 1]] and list(record["launches"][0]["jobs"]) == [
        "prep", "array", "aggregate-0"]
    array = record["launches"][0]["jobs"]["array"]
    started(folder, "task-1")
    time.sleep(2)
    assert run_slurm(slurm_cluster, "scancel", f"{array}_1").returncode == 0  # as a user would

    # SLURM's defaults, and the aggregate job is not left pending for ever
    rows = wait_until("the aggregate job to end", lambda: (rows := states(slurm_cluster, repo, folder))[
        "aggregate-0"][3] not in ACTIVE and rows)
    assert [rows[job][3] for job in ("prep", "task-1", "aggregate-0")] == [
        "COMPLETED", "CANCELLED", "CANCELLED"], rows
    assert "DependencyNeverSatisfied" in rows["aggregate-0"][-1] and rows["aggregate-0"][4] == "-"
    assert status_file(folder, "task-1")["signal"] == "TERM"
    gathered = cifarpipe(slurm_cluster, repo, "gather", folder, check=False)
    assert gathered.returncode == 1 and "0 of 1 experiment(s) landed" in gathered.stdout
    assert "CANCELLED task-1 (seeds, seed 1): cancelled on node" in gathered.stdout
    assert "CANCELLED aggregate-0 (seeds)" in gathered.stdout

    # resubmitted while seed 0 still trains: seed 1 and the aggregate job only, which waits for both
    again = cifarpipe(slurm_cluster, repo, "resubmit", folder)
    assert again.stdout.startswith("resubmitted task-1, aggregate-0: array ")  # not task-0, not prep
    rows = finished(slurm_cluster, repo, folder)
    assert [rows[job][3] for job in ("task-0", "task-1", "aggregate-0")] == [
        "COMPLETED", "COMPLETED", "FAILED (push)"], rows
    aggregate = status_file(folder, "aggregate-0")
    assert int(aggregate["start"]) >= max(int(status_file(folder, f"task-{i}")["end"]) for i in (0, 1))
    last = json.loads((folder / "submission.json").read_text())["launches"][-1]
    log = (folder / "logs" / f"aggregate-0.{last['jobs']['aggregate-0']}.out").read_text()
    assert log.index("setup: first, on") < log.index("phase clone")  # the setup lines ran first
    ran = re.findall(r"Running stage '([\w@.-]+)'", log)
    assert "aggregate" in ran and not [s for s in ran if s.startswith(("train@", "evaluate@", "robustness@"))]
    for seed in (0, 1):
        assert f"Stage 'train@{seed}' is cached - skipping run" in log
    assert "pre-receive hook declined" in log and "failed (try 1 of 2)" in log

    clone = Path(status_file(folder, "aggregate-0")["clone"])
    assert clone.is_dir() and (clone / "metrics" / "verdict.json").exists()  # nothing lost
    gathered = cifarpipe(slurm_cluster, repo, "gather", folder, check=False)
    assert gathered.returncode == 1
    command = f"cifarpipe slurm push {folder} --job aggregate-0"
    assert "FAILED (push) aggregate-0 (seeds): its push failed" in gathered.stdout
    assert f"its clone is kept at {clone} on node" in gathered.stdout and f"`{command}`" in gathered.stdout
    (root / "refused.git" / "hooks" / "pre-receive").unlink()  # the remote takes pushes again
    cifarpipe(slurm_cluster, repo, *command.split()[2:])
    assert not clone.exists()
    gathered = cifarpipe(slurm_cluster, repo, "gather", folder)
    assert "1 of 1 experiment(s) landed: seeds;" in gathered.stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    verdict = next(e["revs"][0]["data"]["metrics"]["metrics/verdict.json"]["data"]
                   for e in shown[1]["experiments"] if e["name"] == "seeds")
    assert verdict["seeds"] == 2 and verdict["test_acc_ci"] is not None


@needs_slurm
@pytest.mark.slow
def test_a_timed_out_task_resumes_a_cancelled_one_is_cancelled_and_two_run_at_once_on_two_gpus(faults):
    faults.join(timeout=600)
    if faults.error:
        raise faults.error
    seen, folder = faults.seen, faults.seen["folder"]
    epochs = seen["epochs"]
    assert "cancelled task-0 (" in seen["cancel pending"] and "pending)" in seen["cancel pending"]
    assert seen["short"].startswith("resubmitted task-0: array ")  # after the prep that still runs
    first = seen["first"]  # when task-0 timed out; task-1 may still run
    assert [first[job][3] for job in ("prep", "task-0", "task-2")] == [
        "COMPLETED", "TIMEOUT", "CANCELLED"], first
    assert first["task-1"][3] in ("RUNNING", "COMPLETED"), first
    assert "earlier: did not start (job " in first["task-0"][-1]
    assert seen["after"] == seen["before"]  # nothing wrote to the checkout while the jobs ran
    assert "cancelled task-2" in seen["cancel"]
    assert first["task-2"][-1] == f"stopped by TERM in its {status_file(folder, 'task-2')['phase']} phase"

    # tasks that ran at the same time on node1 had a GPU each: 0 and 1
    runs = [read_status(p) for p in (folder / "status").iterdir() if p.suffix[1:].isdigit()]
    runs = [r for r in runs if r.get("gpus") and r.get("end")]
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]
             if int(a["start"]) < int(b["end"]) and int(b["start"]) < int(a["end"])]
    assert pairs and all(a["node"] == b["node"] == "node1" and {a["gpus"], b["gpus"]} == {"0", "1"}
                         for a, b in pairs), runs

    # the time limit: stopped STOP_BEFORE s before it, saved, recorded TIMEOUT; its checkpoint kept
    timed_out = status_file(folder, "task-0", 0)  # its first run that started, under the short limit
    assert (timed_out["state"], timed_out["signal"], timed_out["code"]) == ("TIMEOUT", "USR1", "124")
    assert int(timed_out["end"]) - int(timed_out["start"]) >= 60 * LIMIT - STOP_BEFORE - 2
    logs = sorted((folder / "logs").glob("task-0.*.out"), key=lambda p: int(p.suffixes[0][1:]))
    trained = trained_epochs(logs[0])
    assert trained == list(range(1, len(trained) + 1)) and 0 < len(trained) < epochs
    assert f"stopping {STOP_BEFORE} s before it to save" in logs[0].read_text()
    assert "saving what finished to the DVC remote" in logs[0].read_text()
    assert seen["checkpoints"] == ["train_seed0.pt"]  # in the submission's folder, for the rerun
    gathered = seen["gather"]  # names what ended without completing, and only that
    assert gathered.returncode == 1 and "FAILED" not in gathered.stdout
    assert "TIMEOUT task-0 (faults-1): it reached its time limit on node1 and saved" in gathered.stdout
    assert "CANCELLED task-2 (faults-3): cancelled on node1" in gathered.stdout
    running = first["task-1"][3] == "RUNNING"  # not named as a failure
    assert ("still queued or running: task-1 (running)" in gathered.stdout) == running

    # resubmitted with more time, it trains only the epochs it had left, from its checkpoint
    assert seen["resubmit"].startswith("resubmitted task-0: array ")
    last = seen["last"]
    assert [last[job][3] for job in ("task-0", "task-1", "task-2")] == ["COMPLETED", "COMPLETED", "CANCELLED"]
    resumed = int(re.search(r"resuming from \S+ after epoch (\d+)", logs[1].read_text()).group(1))
    assert resumed in (len(trained) - 1, len(trained))  # the checkpoint of its last finished epoch
    assert trained_epochs(logs[1]) == list(range(resumed + 1, epochs + 1))
    assert f"resumed after epoch {resumed}; earlier: did not start (job " in last["task-0"][-1]
    assert ", TIMEOUT (job " in last["task-0"][-1]
    assert not (folder / "checkpoints" / "task-0").exists()  # done with
    assert "2 of 3 experiment(s) landed: faults-1, faults-2;" in seen["gather again"].stdout
    print(f"\n$ cifarpipe slurm status {folder}\n{seen['status']}")
    phases = {line.split()[1]: int(line.split()[2]) for line in logs[1].read_text().splitlines()
              if line.startswith("phase ")}
    assert set(phases) == {"clone", "run", "push"}
    print(f"task-0's phases when resubmitted, seconds: {phases}; {epochs} epochs, {len(trained)} before the "
          f"limit")
