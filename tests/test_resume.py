"""A train stage killed with SIGKILL resumes under `dvc repro` and ends exactly where an unbroken run ends
(CPU)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import dvc, live_history, set_params, tool_env

pytestmark = pytest.mark.slow

COMPARED = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr"]


def history(repo):
    return [{k: h[k] for k in COMPARED} for h in live_history(repo)]


def test_killed_run_resumes_and_matches_an_uninterrupted_run(repo):
    # bit-identical histories need the CPU's determinism: pinned, so the test means the same on a GPU box
    # four epochs: the kill lands in the first three, whatever this machine's speed
    set_params(repo, {"optim.lr": 0.01, "compute.device": "cpu", "schedule.epochs": 4})
    dvc("repro", "lr_pick", cwd=repo)  # what train reads: LRMAX and LRMIN (here optim.lr: no range test)
    checkpoint = repo / ".checkpoints/train_seed0.pt"

    proc = subprocess.Popen([sys.executable, "-m", "stages.train", "--seed", "0"], cwd=repo, env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert checkpoint.exists(), "no checkpoint was written after the first epoch"
    # in epoch 2 (or between epochs: the checkpoint is renamed into place)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (repo / "models/seed0/model.pt").exists()  # the killed run left no weights behind
    assert not list((repo / ".checkpoints").glob(".*.tmp"))  # nor a half-written checkpoint

    resumed = dvc("repro", "train@0", cwd=repo)  # the stage the kill stopped, and nothing after it
    assert "resuming from .checkpoints/train_seed0.pt after epoch" in resumed.stdout
    assert not checkpoint.exists()
    after_resume = history(repo)

    dvc("repro", "-f", "train@0", cwd=repo)  # the same params from scratch
    uninterrupted = history(repo)
    assert len(uninterrupted) == 4
    assert after_resume == uninterrupted

    dvc("repro", "-f", "train@0", cwd=repo)  # and again: the CPU is deterministic
    assert history(repo) == uninterrupted
