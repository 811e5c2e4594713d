"""The benchmarks run the real loop (and the peer script, when present) through `cifarpipe bench` and print
JSON."""
import json
import statistics
import subprocess
import sys

import numpy as np
import pytest

from conftest import NARROW, ROOT
from synthetic_cifar import make_images

PEER = ROOT.parent / "shared" / "peers" / "seed_baseline.py"
pytestmark = pytest.mark.slow


def bench(*args, cwd=ROOT):
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "bench", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def tiny_npz(path, n_train, n_test=100):
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = make_images(n_train, rng), make_images(n_test, rng)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return str(path)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_train_speed_prints_one_json_line_per_seed_and_a_summary_of_them(tmp_path):
    args = ["speed", "--npz", tiny_npz(tmp_path / "d.npz", 64), "--seeds", "0", "1", "--lr", "0.003",
            "--set", "schedule.epochs=6", "--set", "schedule.peak_epoch=5", "--set", "train.batch_size=16",
            "--set", f"model.width={NARROW.width}"]
    lines = json_lines(bench(*args))
    ours = [r for r in lines if r.get("run") == "cifarpipe"]
    assert [r["seed"] for r in ours] == [0, 1]
    assert all(r["epochs"] == 6 and r["lr_max"] == 0.003 for r in ours)
    for r in ours:  # the numbers hang together: 64 images x 6 epochs in train_s seconds
        assert r["images_per_s"] == pytest.approx(64 * 6 / r["train_s"], rel=0.02)
        assert r["test_acc"] > 0.15  # 100 test images, chance is 0.10: the loop trained the network
        # the FLOPs: 64 training images and the 100 test images' pass, 6 epochs, against the cores' peak
        work = (r["train_gflop_per_image"] * 64 + r["train_gflop_per_image"] / 3 * 100) * 6
        assert r["achieved_gflops"] == pytest.approx(work / r["train_s"], rel=0.05)
        if "peak_gflops" in r:  # a CPU whose instructions the table knows
            assert r["peak_fraction"] == pytest.approx(r["achieved_gflops"] / r["peak_gflops"], rel=0.02)
        if r.get("peak_measured"):  # the rate and the clock measured here: no run beats them
            assert 0 < r["peak_fraction"] <= 1 and r["peak_assumed"] == "nothing"
    summary = lines[-1]
    accs = [r["test_acc"] for r in ours]
    assert summary["summary"] == "cifarpipe" and "speedup" not in summary
    assert summary["median_train_s"] == statistics.median(r["train_s"] for r in ours)
    assert summary["test_acc_range"] == sorted(accs)
    assert summary["test_acc_std"] == round(statistics.stdev(accs), 5)


@pytest.mark.skipif(not PEER.exists(), reason=f"no peer script at {PEER}")
def test_train_speed_beside_the_peer_script_reports_the_speedup_on_the_same_network(tmp_path):
    npz = tiny_npz(tmp_path / "d.npz", 32)  # one batch of 32 an epoch, for both
    common = ["speed", "--npz", npz, "--lr", "0.003", "--set", "schedule.epochs=6", "--set",
              "schedule.peak_epoch=5", "--set", "train.batch_size=32", "--peer", str(PEER), "--peer-workers",
              "0"]
    # the peer's schedule peaks at epoch 5, so it needs 6 epochs at least; it trains the reference width-64
    # network (the same as the peer)
    lines = json_lines(bench(*common, "--set", "model.width=64"))
    ours, peer, summary = lines[0], next(r for r in lines if r.get("run") == "peer"), lines[-1]
    assert ours["run"] == "cifarpipe" and summary["median_train_s"] == ours["train_s"]
    assert summary["speedup"] == round(peer["train_s"] / summary["median_train_s"], 2)
    assert summary["peer_test_acc"] == peer["test_acc"]

    narrow = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "bench", *common, "--set",
                             "model.width=8"],
                            cwd=ROOT, capture_output=True, text=True)
    assert narrow.returncode != 0 and "a speed-up between two networks says nothing" in narrow.stderr


AMD, INTEL = "AuthenticAMD", "GenuineIntel"


@pytest.mark.parametrize("precision, flags, cpu, flop", [
    ("bf16", {"avx512_f", "avx512_bf16"}, (AMD, 0x19, 0x11), 64),  # Zen 4: 512-bit ops in two halves
    ("bf16", {"avx512_f", "avx512_bf16"}, (AMD, 0x1A, 0x02), 128),  # Zen 5: two full-width pipes
    ("fp32", {"avx512_f", "avx512_bf16"}, (AMD, 0x1A, 0x02), 64),
    ("bf16", {"avx512_f", "avx512_bf16", "amx_bf16"}, (INTEL, 6, 0x8F), 1024),  # Sapphire Rapids' AMX
    ("fp32", {"avx2", "fma3"}, (AMD, 0x17, 0x01), 16),  # Zen 1: 256-bit ops in two halves
    ("fp32", {"avx2", "fma3"}, (AMD, 0x17, 0x31), 32),  # Zen 2
    ("fp32", {"sse2"}, (INTEL, 6, 0x1C), None),  # not in the table: no peak claimed
])
def test_the_peak_counts_each_instructions_flops_at_its_rate(precision, flags, cpu, flop):
    from cifarpipe.tools.bench.peak import per_cycle

    rate = per_cycle(precision, frozenset(flags), *cpu)
    assert (rate and rate[0]) == flop


def test_the_peak_reads_the_clock_lscpu_or_cpuinfo_gives():
    from cifarpipe.tools.bench.peak import clock_ghz, cpu_identity

    cpuinfo = "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\ncpu MHz\t\t: 2596.122\n"
    assert cpu_identity(cpuinfo) == (AMD, 26, 2)
    assert clock_ghz(cpuinfo, "")[0] == pytest.approx(2.596122)
    assert clock_ghz(cpuinfo, "CPU max MHz:                         3700.0000\n")[0] == pytest.approx(3.7)


def test_the_peak_is_measured_where_a_compiler_is_at_hand_and_else_says_what_it_assumes(monkeypatch):
    """dot_rate.c's instruction rate and clock make the peak where it compiles and the CPU has the
    instruction; without a compiler the stated clock and the vendors' rate stand in, and the peak says so."""
    from cifarpipe.compute.device import Machine
    from cifarpipe.tools.bench import peak

    flags = Machine.probe().cpu_flags
    mode = peak.instruction_mode("fp32", flags)
    if peak.dot_rate_binary() is not None and mode is not None:
        clock = peak.measured_clock()
        assert 0.5 < clock < 7  # GHz
        measured = peak.cpu_peak("fp32", flags, 2, run_ghz=clock)
        assert measured.measured and measured.assumed == "nothing" and "measured" in measured.instruction
        per_cycle = measured.gflops / 2 / max(clock, float(measured.formula.split(" GHz")[0].split()[-1]))
        # at most two FMA pipes' worth, and 10% for a clock measured around the rate rather than during it
        assert 0 < per_cycle <= 2.2 * {"fma512": 32, "fma256": 16}[mode[0]]
        higher = peak.cpu_peak("fp32", flags, 2, run_ghz=2 * clock)  # a faster clock over the run counts
        assert higher.gflops > measured.gflops
    monkeypatch.setattr(peak, "dot_rate_binary", lambda: None)
    stated = peak.cpu_peak("fp32", frozenset({"avx2", "fma3"}), 2)
    if stated is not None:  # a clock lscpu or /proc/cpuinfo states
        assert not stated.measured and "stated clock" in stated.assumed


def test_step_profile_times_each_part_of_the_real_step_and_counts_the_networks_flops(tmp_path):
    out = bench("profile", "--npz", tiny_npz(tmp_path / "d.npz", 48, 16), "--set", "train.batch_size=16",
                "--steps", "3", "--warmup", "1", "--matmul-size", "256")
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result["parts"]) == {"batch (index, augment, normalise)", "forward+backward",
                                    "optimizer step + schedule", "test pass (per epoch)"}
    assert all(v["device_ms"] > 0 and v["host_ms"] > 0 for v in result["parts"].values())
    assert result["steps_per_epoch"] == 3
    assert result["images_per_s"] == pytest.approx(16 / result["step_ms"] * 1000,
                                                                                      rel=0.01)
    # the custom ResNet's multiply-adds per image, by hand: prep 32*32*3*64*9; then five 3x3 convolutions of
    # 75,497,472 each (layer1, its two-conv res block at 16x16, layer2, layer3, its res block at 4x4); fc
    # 512*10
    macs = 32 * 32 * 3 * 64 * 9 + 5 * 32 * 32 * 64 * 128 * 9 + 512 * 10
    assert result["test_gflop_per_image"] == round(2 * macs / 1e9, 4)
    # backward costs about twice the forward (the first conv needs no input gradient)
    assert 2.9 < result["train_gflop_per_image"] / result["test_gflop_per_image"] < 3.0
    assert "images/s" in out and "TFLOP/s" in out


def test_a_parts_time_counts_what_started_inside_it_and_nothing_outside():
    """The profile's device ms add up what started inside each part's host range (on CUDA, autograd's own
    thread included). Here, on one thread, that sum of self times must equal the range's own total."""
    import torch
    import torch.nn.functional as F
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, record_function

    from cifarpipe.model.networks import build_model
    from cifarpipe.tools.bench.step_profile import time_within

    model, x, y = build_model(NARROW), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        F.cross_entropy(model(x), y).backward()  # outside any part
        for _ in range(2):
            with record_function("part"):
                F.cross_entropy(model(x), y).backward()
    events = [e for e in prof.events() if e.device_type == DeviceType.CPU]
    self_cpu = time_within(events, lambda e: e.self_cpu_time_total)
    parts = [e for e in events if e.name == "part"]
    assert len(parts) == 2
    for part in parts:
        assert self_cpu(part.time_range) == pytest.approx(part.cpu_time_total, rel=1e-6)
    whole = type(parts[0].time_range)(min(e.time_range.start for e in events),
                                      max(e.time_range.end for e in events) + 1)
    assert self_cpu(whole) > sum(p.cpu_time_total for p in parts)  # the first step counts there alone


def test_infer_times_every_back_end_and_predicts_peak_memory_on_a_folder(tmp_path):
    """The exported classifier (a fresh narrow network) agrees with PyTorch at a batch that is not the
    example's; `bench infer` times onnxruntime, PyTorch eager and the program, and runs predict on folders."""
    import torch

    from cifarpipe.export.classifier import Classifier, torch_outputs
    from cifarpipe.export.files import (
        agreement,
        capture,
        describe,
        export_onnx,
        export_program,
        load_program,
        onnx_outputs,
        open_onnx,
    )
    from cifarpipe.model.networks import build_model

    torch.manual_seed(0)
    network = build_model(NARROW).eval()
    model = Classifier(network, [0.5] * 3, [0.25] * 3, tta_flip=True, temperature=1.5).eval()
    meta = describe(NARROW, 0, list("abcdefghij"), {"mean": [0.5] * 3, "std": [0.25] * 3}, tta_flip=True,
                    temperature=1.5)
    example = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    program = capture(model, example)  # one capture, both files
    meta = export_onnx(program, tmp_path / "model.onnx", meta)
    export_program(program, tmp_path / "model.pt2", meta)
    torch.save(network.state_dict(), tmp_path / "model.pt")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    reference = torch_outputs(model, images, 5)
    for outputs in (onnx_outputs(open_onnx(tmp_path / "model.onnx"), images, 3),
                    torch_outputs(load_program(tmp_path / "model.pt2")[0], images, 5)):
        check = agreement(reference, outputs)
        assert outputs[0].shape == (5, 10) and check["max_abs_prob_diff"] < 1e-5
        assert check["max_abs_logit_diff"] < 1e-4 and check["argmax_agreement"] == 1.0

    out = bench("infer", "--export", str(tmp_path), "--weights", str(tmp_path / "model.pt"), "--seconds",
                "0.2", "--files", "20", "60", "--npz", tiny_npz(tmp_path / "d.npz", 1, 30),
                "--file-size", "48", "40")
    lines = [json.loads(line) for line in out.splitlines()]
    backends = ("onnxruntime", "pytorch eager", "torch.export program")
    timed = {(r["backend"], r["batch"]): r for r in lines if "backend" in r}
    assert set(timed) == {(b, n) for b in backends for n in (1, 256)}
    for (_, batch), r in timed.items():
        assert r["images_per_s"] == pytest.approx(batch / r["ms_per_batch"] * 1000, rel=0.01)
    [summary] = [r for r in lines if "summary" in r]
    for name in ("onnxruntime", "torch.export program"):
        for batch in (1, 256):
            assert summary[name][str(batch)] == pytest.approx(timed["pytorch eager", batch]["ms_per_batch"]
                                                              / timed[name, batch]["ms_per_batch"], abs=0.01)
    folders = [r for r in lines if "predict_files" in r]
    assert [r["predict_files"] for r in folders] == [20, 60]
    for r in folders:  # a process that imports onnxruntime and numpy, never torch's 650 MB
        assert 20 < r["peak_rss_mb"] < 400 and r["files_per_s"] == pytest.approx(
            r["predict_files"] / r["seconds"], rel=0.05)
