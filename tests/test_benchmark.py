"""benchmarks/train_speed.py runs the real loop (and the seed peer, when present) and prints JSON lines."""
import json
import subprocess
import sys

import numpy as np

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
    accs = sorted(r["test_acc"] for r in ours)
    assert summary["test_acc_range"] == accs and summary["test_acc_std"] >= 0
    if PEER.exists():
        assert summary["speedup"] > 0 and 0 <= summary["peer_test_acc"] <= 1


def test_step_profile_times_each_part_of_the_real_step_and_counts_the_networks_flops(tmp_path):
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = make_images(48, rng), make_images(16, rng)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    proc = subprocess.run([sys.executable, "benchmarks/step_profile.py", "--npz", str(tmp_path / "d.npz"),
                           "--set", "train.batch_size=16", "--steps", "3", "--warmup", "1", "--matmul-size", "256"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["parts"]) == {"batch (index, augment, normalise)", "forward+backward",
                                    "optimizer step + schedule", "test pass (per epoch)"}
    assert all(v["device_ms"] > 0 and v["host_ms"] > 0 for v in result["parts"].values())
    assert result["steps_per_epoch"] == 3 and result["step_ms"] > 0 and result["matmul_ceiling_tflops"] > 0
    # the custom ResNet's multiply-adds per image, by hand: prep 32*32*3*64*9; then five 3x3 convolutions of
    # 75,497,472 each (layer1, its two-conv res block at 16x16, layer2, layer3, its res block at 4x4); fc 512*10
    macs = 32 * 32 * 3 * 64 * 9 + 5 * 32 * 32 * 64 * 128 * 9 + 512 * 10
    assert result["test_gflop_per_image"] == round(2 * macs / 1e9, 4)
    # backward costs about twice the forward (the first conv needs no input gradient)
    assert 2.9 < result["train_gflop_per_image"] / result["test_gflop_per_image"] < 3.0
    assert "images/s" in proc.stdout and "TFLOP/s" in proc.stdout
