"""GPU claims for a queued grid, on the CPU with a faked GPU count: distinct GPUs, freed by a kill, waiting
when full."""
import os
import signal
import subprocess
import sys
import time

import pytest

from cifarpipe.compute.gpus import claim_gpus, visible_devices
from conftest import ROOT

HOLDER = """
import sys, time
from cifarpipe.compute.gpus import claim_gpus
index, handle = claim_gpus(1, int(sys.argv[1]), poll_s=0.1)[0]
print(index, flush=True)
time.sleep(600)  # holds its GPU until killed, like a training stage
"""


def holder(count, env):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(count)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "CIFARPIPE_GPU_LOCKS": str(tmp_path / "locks"), "PYTHONPATH": str(ROOT)}


def test_n_concurrent_claims_get_n_distinct_gpus_a_kill_frees_one_and_the_next_waits(env, monkeypatch):
    holders = [holder(4, env) for _ in range(4)]
    try:
        claimed = [int(p.stdout.readline()) for p in holders]
        assert sorted(claimed) == [0, 1, 2, 3]

        waiting = holder(4, env)  # the fifth: every GPU is taken
        holders.append(waiting)
        time.sleep(1.0)
        assert waiting.poll() is None
        assert "all 4 GPU(s) are taken" in os.read(waiting.stderr.fileno(), 1000).decode()

        os.kill(holders[2].pid, signal.SIGKILL)  # a crashed stage: the kernel drops its lock
        holders[2].wait()
        assert int(waiting.stdout.readline()) == claimed[2]  # the waiting stage gets the dead one's GPU...
        monkeypatch.setenv("CIFARPIPE_GPU_LOCKS", env["CIFARPIPE_GPU_LOCKS"])
        with pytest.raises(TimeoutError, match="all 4 GPUs stayed taken"):
            claim_gpus(1, 4, poll_s=0.05, timeout_s=0.3)  # ...and the box is full again
    finally:
        for p in holders:
            p.kill()
            p.wait()


def test_a_claim_in_this_process_is_freed_when_its_handle_closes(env, monkeypatch):
    monkeypatch.setenv("CIFARPIPE_GPU_LOCKS", env["CIFARPIPE_GPU_LOCKS"])
    index, handle = claim_gpus(1, 1)[0]
    assert index == 0
    with pytest.raises(TimeoutError):
        claim_gpus(1, 1, poll_s=0.05, timeout_s=0.2)
    handle.close()
    assert claim_gpus(1, 1)[0][0] == 0


def test_a_process_claims_once_and_a_second_model_in_it_gets_the_same_gpu_without_waiting(env):
    """The benchmark trains one seed after another in one process, the tests build many models: the second
    claim must not wait for the lock the process itself holds (which stays taken for anyone else)."""
    script = ("import sys; from cifarpipe.compute.gpus import claim_for_this_process, claim_gpus\n"
              "print(claim_for_this_process(2), claim_for_this_process(2), flush=True)\n"
              "print(claim_gpus(1, 2, poll_s=0.05, timeout_s=5)[0][0], flush=True)\n")
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["0", "0", "1"]  # held GPU 0 twice, a plain claim then found GPU 1 free


def test_a_run_over_several_gpus_claims_them_all_at_once_and_shows_its_ranks_only_those(env, monkeypatch):
    """The launcher of a compute.gpus > 1 run takes free GPUs only, all or none, and its ranks see just
    those."""
    monkeypatch.setenv("CIFARPIPE_GPU_LOCKS", env["CIFARPIPE_GPU_LOCKS"])
    other = holder(4, env)  # a queued single-GPU stage holds GPU 0
    try:
        assert int(other.stdout.readline()) == 0
        run = claim_gpus(2, 4)
        assert [i for i, _ in run] == [1, 2]
        assert visible_devices([1, 2], None) == "1,2" and visible_devices([1, 2], "4,5,6,7") == "5,6"
        with pytest.raises(TimeoutError):  # two more are not free: none is kept while it waits
            claim_gpus(2, 4, poll_s=0.05, timeout_s=0.2)
        assert claim_gpus(1, 4, timeout_s=1)[0][0] == 3  # so GPU 3 stayed free for anyone
    finally:
        other.kill()
        other.wait()
