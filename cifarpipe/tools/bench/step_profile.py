"""Where a training step's time goes, with the train stage's own run on an npz or archive.

Times the parts the loop names under torch.profiler (device and host ms), a step back to back, and the FLOP/s
against a matrix product's ceiling; docs/benchmarks.md explains how to read each number.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ...core.errors import ToolError
from ...data.dataset import channel_stats
from ...data.loader import BATCH_PART, train_batches
from ...train.loop import FORWARD_BACKWARD, OPTIMIZER_STEP, TEST_PASS, train
from .train_speed import load_arrays, params_with, set_up

PARTS = (BATCH_PART, FORWARD_BACKWARD, OPTIMIZER_STEP, TEST_PASS)


def part_times(prof, cuda: bool) -> dict[str, dict[str, float]]:
    """{part: {"device_ms", "host_ms"}}: medians over the host-side ranges the loop named."""
    events = [e for e in prof.events() if e.device_type == DeviceType.CPU]
    device_time = time_within(events, lambda e: sum(kernel.duration for kernel in e.kernels))
    spans: dict[str, list] = {}
    for event in events:
        if event.name in PARTS:
            host = event.cpu_time_total / 1000
            spans.setdefault(event.name, []).append((device_time(event.time_range) / 1000 if cuda else host,
                                                     host))
    return {name: {"device_ms": round(statistics.median(d for d, _ in spans[name]), 3),
                   "host_ms": round(statistics.median(h for _, h in spans[name]), 3)} for name in PARTS}


def time_within(events, time_of):
    """A function of a host time range: the sum of `time_of(event)` (its kernels' device time, say) over the
    events that started in it, on any thread.

    Not the range's own device_time_total: the profiler counts a range's children on its own thread only,
    and on CUDA autograd runs the backward on a thread of its own, so forward+backward would hold the
    forward's kernels alone. On one thread both sums are the same.
    """
    events = sorted(events, key=lambda e: e.time_range.start)
    starts = [e.time_range.start for e in events]
    totals = list(itertools.accumulate(map(time_of, events), initial=0))

    def within(window) -> float:
        first, end = bisect.bisect_left(starts, window.start), bisect.bisect_left(starts, window.end)
        return totals[end] - totals[first]
    return within


def matmul_tflops(compute, n: int) -> float:
    """The rate of an n x n x n matrix product in the training precision, on random data: the ceiling. The
    inputs are made in that precision, so no cast is timed."""
    a, b = (torch.randn(n, n, device=compute.device, dtype=compute.amp_dtype or torch.float32)
            for _ in range(2))
    a @ b
    compute.synchronize()
    started, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    compute.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - started) / 1e12


def step_flops(model, x, y, compute) -> tuple[float, float]:
    """(training, test) FLOPs per image of one batch: forward+backward in the training precision, and eval."""
    with FlopCounterMode(display=False) as counter:
        with compute.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    train_flops = counter.get_total_flops() / len(y)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    model.train()
    return train_flops, counter.get_total_flops() / len(y)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe bench profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", "--archive", dest="data", required=True, type=Path,
                    help="CIFAR-10 as an npz (x_train, y_train, x_test, y_test), or an archive in the "
                    "official layout")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    ap.add_argument("--steps", type=int, default=40, help="steps timed (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=15,
                    help="steps run before timing (cuDNN autotuning, CUDA graphs)")
    ap.add_argument("--matmul-size", type=int, default=None, help="size of the ceiling's matrix product "
                    "(default 8192 on a GPU, 1024 on the CPU)")
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--test-subset", type=int, default=None)
    return ap


def profiled_steps(params, data: dict, steps: int, warmup: int) -> tuple:
    """(compute, the run, {part: ms}, ms of a step back to back): `warmup` steps, then an epoch of `steps`
    under the profiler, then the same epoch timed alone."""
    batch = params.train.batch_size

    def first(count: int) -> dict:  # the data of an epoch of exactly `count` full batches
        cut = count * batch
        return {**data, "x_train": data["x_train"][:cut], "y_train": data["y_train"][:cut]}

    compute, run = set_up(params, first(steps), params.optim.lr or 0.01, seed=0)  # any LR takes as long
    cuda = compute.device.type == "cuda"
    config = replace(run.config, epochs=1)

    def epoch(loader) -> dict:
        return train(run.model, loader, run.test_loader, compute, config, step_model=run.step_model)[0]

    epoch(train_batches(first(warmup), channel_stats(data["x_train"][:steps * batch]), compute,
                        batch_size=batch, augment=params.augment, seed=0))
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        epoch(run.train_loader)
    parts = part_times(prof, cuda)
    step_ms = (1000 * epoch(run.train_loader)["epoch_s"] - parts[TEST_PASS]["host_ms"]) / steps
    return compute, run, parts, step_ms


def summary(params, data: dict, compute, run, parts: dict, step_ms: float, matmul_size: int | None) -> dict:
    """The profile's numbers: the parts, a step, the FLOPs and the estimates for an epoch and the run."""
    batch, images, cuda = params.train.batch_size, len(data["y_train"]), compute.device.type == "cuda"
    train_flops, test_flops = step_flops(run.model, *next(iter(run.train_loader)), compute)
    ceiling = matmul_tflops(compute, matmul_size or (8192 if cuda else 1024))
    steps_per_epoch = math.ceil(images / batch)
    epoch_s = (steps_per_epoch * step_ms + parts[TEST_PASS]["device_ms"]) / 1000
    achieved = train_flops * batch / (parts[FORWARD_BACKWARD]["device_ms"] / 1000) / 1e12
    return {"device": compute.describe(), "torch": torch.__version__, "model": params.model.model_dump(),
            "batch_size": batch, "compile": params.compute.compile and params.compute.compile_mode,
            "compile_s": round(run.compile_s, 2), "parts": parts, "step_ms": round(step_ms, 3),
            "images_per_s": round(batch / step_ms * 1000, 1), "steps_per_epoch": steps_per_epoch,
            "epoch_s_estimate": round(epoch_s, 3),
            "run_s_estimate": round(epoch_s * params.schedule.epochs, 2),
            "train_gflop_per_image": round(train_flops / 1e9, 4),
            "test_gflop_per_image": round(test_flops / 1e9, 4), "fwd_bwd_tflops": round(achieved, 2),
            "matmul_ceiling_tflops": round(ceiling, 2),
            "run_floor_s": round((train_flops * images + test_flops * len(data["y_test"]))
                                 * params.schedule.epochs / (ceiling * 1e12), 2)}


def show(params, result: dict) -> None:
    """The profile as a table, then as one JSON line."""
    parts = result["parts"]
    print(f"{result['device']}, torch {result['torch']}, {params.model.name} (width {params.model.width}), "
          f"batch {result['batch_size']}, compile {result['compile']}")
    print(f"{'part':38s} {'device ms':>10s} {'host ms':>10s} {'share':>7s}")
    step_parts = sum(v["device_ms"] for k, v in parts.items() if k != TEST_PASS)
    for name, v in parts.items():
        share = f"{100 * v['device_ms'] / step_parts:.0f}%" if name != TEST_PASS else ""
        print(f"{name:38s} {v['device_ms']:10.3f} {v['host_ms']:10.3f} {share:>7s}")
    print(f"{'step, back to back':38s} {result['step_ms']:10.3f} {'':10s} {'':7s}  "
          f"{result['images_per_s']:,.0f} images/s")
    print(f"epoch ~{result['epoch_s_estimate']:.2f} s, {params.schedule.epochs} epochs "
          f"~{result['run_s_estimate']:.1f} s; fwd+bwd {result['fwd_bwd_tflops']:.1f} TFLOP/s of a "
          f"{result['matmul_ceiling_tflops']:.1f} TFLOP/s matmul ceiling "
          f"(floor for the run {result['run_floor_s']:.1f} s)")
    print(json.dumps(result), flush=True)


def main(argv=None):
    args = parser().parse_args(argv)
    params = params_with(args.set)
    data = load_arrays(args.data, args.train_subset, args.test_subset)
    batch, images = params.train.batch_size, len(data["y_train"])
    if max(args.steps, args.warmup) * batch > images:
        raise ToolError(f"{max(args.steps, args.warmup)} steps of {batch} images need more than the {images} "
                        "training images here: lower --steps or --warmup, or give more data")
    compute, run, parts, step_ms = profiled_steps(params, data, args.steps, args.warmup)
    show(params, summary(params, data, compute, run, parts, step_ms, args.matmul_size))


if __name__ == "__main__":
    main()
