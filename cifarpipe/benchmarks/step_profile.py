"""Where a training step's time goes, measured on this machine with the pipeline's own step.

    cifarpipe bench profile --npz ~/c10/cifar10_uint8.npz [--set train.compile=true]

Builds the model, loaders and optimizer exactly as the train stage does (params.yaml, `--set` overrides),
warms up, then times `--steps` steps part by part: the batch (index, augment, normalise on the device),
forward+backward, the optimizer step (with the LR schedule), and the per-epoch test pass. Each part gets
two numbers: device ms (CUDA events around it: the GPU's time) and host ms (Python's time issuing it). A
part whose host ms reach its device ms is bound by kernel launches, which CUDA graphs remove
(train.compile_mode: reduce-overhead). It then times the same steps run back to back, as the training
loop runs them, and counts the FLOPs of a step (torch.utils.flop_counter: convolutions and matmuls) to
give the achieved TFLOP/s against the rate of one large matrix product in the training precision (the
ceiling). The last line is one JSON object with every number; the table before it is for reading.
On the CPU, device ms are host ms.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..optim import make_optimizer
from ..predict import predict_logits
from ..schedule import build_scheduler
from ..training import compile_for_training, forward_backward, optimizer_step
from .train_speed import load_arrays, params_with, setup


class PartTimer:
    """Device and host milliseconds of named code regions, per occurrence; CUDA events on a GPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.spans: dict[str, list] = {}

    @contextlib.contextmanager
    def part(self, name: str):
        events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if self.cuda else None
        if events:
            events[0].record()
        started = time.perf_counter()
        yield
        if events:
            events[1].record()
        self.spans.setdefault(name, []).append((events, 1000 * (time.perf_counter() - started)))

    def medians(self) -> dict[str, dict[str, float]]:
        """{part: {"device_ms", "host_ms"}}, medians over the occurrences (synchronizes)."""
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for name, spans in self.spans.items():
            host = [ms for _, ms in spans]
            device = [start.elapsed_time(end) for (start, end), _ in spans] if self.cuda else host
            out[name] = {"device_ms": round(statistics.median(device), 3), "host_ms": round(statistics.median(host), 3)}
        return out


def endless(loader):
    while True:
        yield from loader


def matmul_tflops(compute, n: int) -> float:
    """The rate of an n x n x n matrix product in the training precision, on random data: the ceiling."""
    a, b = (torch.randn(n, n, device=compute.device) for _ in range(2))
    with compute.autocast():
        a @ b
        compute.synchronize()
        started, reps = time.perf_counter(), 10
        for _ in range(reps):
            a @ b
        compute.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - started) / 1e12


def flops_of(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cifarpipe bench profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", "--archive", dest="data", required=True, type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    ap.add_argument("--steps", type=int, default=40, help="steps timed (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=15, help="steps run before timing (cuDNN autotuning, CUDA graphs)")
    ap.add_argument("--matmul-size", type=int, default=None, help="size of the ceiling's matrix product "
                    "(default 8192 on a GPU, 1024 on the CPU)")
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--test-subset", type=int, default=None)
    args = ap.parse_args(argv)

    params = params_with(args.set)
    data = load_arrays(args.data, args.train_subset, args.test_subset)
    compute, model, batches, tests = setup(params, data, seed=0)
    steps_per_epoch, batch = len(batches), params["train"]["batch_size"]
    step_model, compile_s = model, 0.0
    if params["train"]["compile"]:
        step_model, compile_s = compile_for_training(model, batches, compute, mode=params["train"]["compile_mode"])
    lr = params["optim"]["lr"] or 0.01  # any LR: it does not change how long a step takes
    optimizer = make_optimizer(model, params["optim"], lr, compute.device)
    scheduler = build_scheduler(optimizer, lr_max=lr, lr_min=lr / params["schedule"]["lrmin_div"],
                                epochs=params["schedule"]["epochs"], peak_epoch=params["schedule"]["peak_epoch"],
                                steps_per_epoch=steps_per_epoch)
    scaler = compute.grad_scaler()
    stream = endless(batches)

    def step():
        x, y = next(stream)
        forward_backward(step_model, x, y, compute, scaler)
        optimizer_step(optimizer, scheduler, scaler)

    for _ in range(args.warmup):
        step()
    compute.synchronize()

    timer = PartTimer(compute.device)
    for _ in range(args.steps):
        with timer.part("batch (index, augment, normalise)"):
            x, y = next(stream)
        with timer.part("forward+backward"):
            forward_backward(step_model, x, y, compute, scaler)
        with timer.part("optimizer step + schedule"):
            optimizer_step(optimizer, scheduler, scaler)
    for _ in range(3):
        with timer.part("test pass (per epoch)"):
            predict_logits(model, tests, compute, tta_flip=False)
    parts = timer.medians()

    compute.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    compute.synchronize()
    step_ms = 1000 * (time.perf_counter() - started) / args.steps

    x, y = next(stream)
    train_flops = flops_of(lambda: forward_backward(model, x, y, compute, scaler)) / len(y)
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        test_flops = flops_of(lambda: model.eval()(x)) / len(y)
    model.train()
    ceiling = matmul_tflops(compute, args.matmul_size or (8192 if compute.device.type == "cuda" else 1024))

    test_ms = parts["test pass (per epoch)"]["device_ms"]
    epoch_s = (steps_per_epoch * step_ms + test_ms) / 1000
    achieved = train_flops * batch / (parts["forward+backward"]["device_ms"] / 1000) / 1e12
    result = {"device": compute.describe(), "torch": torch.__version__, "model": params["model"]["name"],
              "batch_size": batch, "compile": params["train"]["compile"] and params["train"]["compile_mode"],
              "compile_s": round(compile_s, 2), "parts": parts, "step_ms": round(step_ms, 3),
              "images_per_s": round(batch / step_ms * 1000, 1), "steps_per_epoch": steps_per_epoch,
              "epoch_s_estimate": round(epoch_s, 3),
              "run_s_estimate": round(epoch_s * params["schedule"]["epochs"], 2),
              "train_gflop_per_image": round(train_flops / 1e9, 4), "test_gflop_per_image": round(test_flops / 1e9, 4),
              "fwd_bwd_tflops": round(achieved, 2), "matmul_ceiling_tflops": round(ceiling, 2),
              "run_floor_s": round((train_flops * len(data["y_train"]) + test_flops * len(data["y_test"]))
                                   * params["schedule"]["epochs"] / (ceiling * 1e12), 2)}

    print(f"{result['device']}, torch {result['torch']}, {result['model']}, batch {batch}, "
          f"compile {result['compile']}")
    print(f"{'part':38s} {'device ms':>10s} {'host ms':>10s} {'share':>7s}")
    step_parts = sum(v["device_ms"] for k, v in parts.items() if not k.startswith("test"))
    for name, v in parts.items():
        share = f"{100 * v['device_ms'] / step_parts:.0f}%" if not name.startswith("test") else ""
        print(f"{name:38s} {v['device_ms']:10.3f} {v['host_ms']:10.3f} {share:>7s}")
    print(f"{'step, back to back':38s} {step_ms:10.3f} {'':10s} {'':7s}  {result['images_per_s']:,.0f} images/s")
    print(f"epoch ~{epoch_s:.2f} s, {params['schedule']['epochs']} epochs ~{result['run_s_estimate']:.1f} s; "
          f"fwd+bwd {achieved:.1f} TFLOP/s of a {ceiling:.1f} TFLOP/s matmul ceiling "
          f"(floor for the run {result['run_floor_s']:.1f} s)")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
