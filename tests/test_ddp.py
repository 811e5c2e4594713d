"""One run over several processes, through the real `dvc repro`: torch's launcher, DDP over gloo on the
CPU."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import dvc, live_history, set_params, tool_env

pytestmark = pytest.mark.slow
COMPARED = ["train_loss", "train_acc", "test_loss", "test_acc", "lr"]


def training_processes_in(repo) -> list[int]:
    """The pids of `python -m stages.train` processes running in `repo` (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"stages.train" in args and Path(os.readlink(proc / "cwd")) == repo.resolve():
                found.append(int(proc.name))
        except (OSError, ValueError):  # not a process, or one that just ended
            continue
    return found


def summary(repo):
    return json.loads((repo / "dvclive/train/seed0/metrics.json").read_text())


def history(repo):
    return [{k: float(h[k]) for k in COMPARED} for h in live_history(repo)]


def test_two_ranks_resume_after_a_kill_write_one_set_of_outputs_close_to_one_process(repo):
    # batches of 32, 16 per rank (BatchNorm normalises each rank's slice on the CPU); four epochs, so the kill
    # lands in the first three
    set_params(repo, {"compute.device": "cpu", "optim.lr": 0.003, "train.batch_size": 32, "schedule.epochs": 4})
    dvc("repro", "train", cwd=repo)  # one process: the reference (optim.lr is set: no range test runs)
    single = summary(repo)
    assert single["ranks"] == 1

    # two ranks, SIGKILLed as a whole (launcher and ranks) right after epoch 1, then resumed by dvc repro
    set_params(repo, {"compute.gpus": 2})
    proc = subprocess.Popen([sys.executable, "-m", "stages.train", "--seed", "0"], cwd=repo, env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint, deadline = repo / ".checkpoints/train_seed0.pt", time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert checkpoint.exists(), "no checkpoint after the first epoch"
    os.killpg(proc.pid, signal.SIGKILL)  # the ranks run in sessions of their own: they die with the launcher
    proc.wait()
    time.sleep(2)
    assert training_processes_in(repo) == []  # no orphan rank (another test's training, elsewhere, may run)
    resumed = dvc("repro", "train", cwd=repo)
    assert "resuming from .checkpoints/train_seed0.pt after epoch" in resumed.stdout
    assert resumed.stdout.count("x 2 ranks") == 1  # rank 0 alone reports (and writes)
    two = summary(repo)
    assert two["ranks"] == 2 and two["epochs"] == 4 and len(history(repo)) == 4
    assert list((repo / "models").rglob("*.pt")) == [repo / "models/seed0/model.pt"]
    assert not checkpoint.exists()
    # the same global batches, split in two: the recipe is unchanged. The ranks normalize their own half of a
    # batch on the CPU (SyncBatchNorm is CUDA-only), so the numbers are close, not equal. The losses are compared
    # (25% of the single process's): accuracy on 100 test images after 4 short epochs still jumps by 0.2 between
    # neighbouring epochs, so it is only asked to be well above chance (0.1) on both
    for key in ("train_loss", "test_loss"):
        assert abs(two[key] - single[key]) <= 0.25 * single[key], (key, two, single)
    assert two["test_acc"] > 0.25 and single["test_acc"] > 0.25, (two, single)
    after_resume = history(repo)

    dvc("repro", "-f", "train@0", cwd=repo)  # the same two ranks, never interrupted
    for after, unbroken in zip(after_resume, history(repo), strict=True):
        for key in COMPARED:
            assert after[key] == pytest.approx(unbroken[key], rel=1e-4, abs=1e-6), key
