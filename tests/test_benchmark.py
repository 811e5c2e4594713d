"""benchmarks/train_speed.py runs the real loop (and the seed peer, when present) and prints JSON lines."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from synthetic_cifar import make_images

PEER = ROOT.parent / "shared" / "peers" / "seed_baseline.py"


def test_train_speed_prints_one_json_line_per_seed_and_a_summary(tmp_path):
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = make_images(32, rng), make_images(32, rng)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    cmd = [sys.executable, "benchmarks/train_speed.py", "--npz", str(tmp_path / "d.npz"), "--seeds", "0", "1",
           "--set", "schedule.epochs=6", "--set", "schedule.peak_epoch=5", "--set", "train.batch_size=16"]
    # the peer's schedule peaks at epoch 5, so it needs 6 epochs at least
    if PEER.exists():
        cmd += ["--peer", str(PEER), "--peer-workers", "0"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    ours = [r for r in lines if r.get("run") == "cifarpipe"]
    assert [r["seed"] for r in ours] == [0, 1]
    assert all(r["images_per_s"] > 0 and 0 <= r["test_acc"] <= 1 and r["epochs"] == 6 for r in ours)
    summary = lines[-1]
    assert summary["summary"] == "cifarpipe" and summary["median_train_s"] > 0
    if PEER.exists():
        assert summary["speedup"] > 0 and 0 <= summary["peer_test_acc"] <= 1
