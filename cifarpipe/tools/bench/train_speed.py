"""Training time and accuracy of the train stage's run, and of a peer script beside it on the same machine.

One JSON line per seed (images/s, seconds, test accuracy with the configured TTA), then a summary line with
the speed-up over the peer; params.yaml with --set overrides, on an npz or an official-layout archive.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ...compute.device import Machine, configure_torch, resolve_compute
from ...core.errors import ToolError
from ...core.params import Params, load_params
from ...data.dataset import channel_stats
from ...download.archive import parse_archive
from ...evaluate.scoring import loss_and_accuracy, predict_logits
from ...train.loop import train
from ...train.prepare import set_up_training
from .peak import cpu_peak, flops_per_image, measured_clock

# what the peer (the reference recipe as a plain script) trains, whatever params.yaml says
PEER_NETWORK = {"name": "custom_resnet", "width": 64}


def params_with(sets: list[str]) -> Params:
    """params.yaml with each `--set key=value` applied (the value read as YAML: 0.05, true, [0,1])."""
    return load_params("params.yaml", {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in sets)})


def load_arrays(path: Path, train_subset: int | None = None, test_subset: int | None = None) -> dict:
    """x_train, y_train, x_test, y_test from an npz or an official-layout archive, cut to the first N if
    asked."""
    if not path.is_file():
        raise ToolError(f"{path}: no such file: --npz names CIFAR-10 as an npz or an official-layout archive")
    if path.suffix == ".npz":
        with np.load(path) as z:
            data = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    else:
        data = parse_archive(path)
    for split, n in (("train", train_subset), ("test", test_subset)):
        if n:
            data[f"x_{split}"], data[f"y_{split}"] = data[f"x_{split}"][:n], data[f"y_{split}"][:n]
    return data


def set_up(params: Params, data: dict, lr: float, seed: int) -> tuple:
    """(compute, the run) as the train stage builds them, at LRMAX `lr`, LRMIN lr / schedule.lrmin_div."""
    compute = configure_torch(resolve_compute(params.compute), seed=seed)
    run = set_up_training(params, data, channel_stats(data["x_train"]), compute, seed=seed, lr_max=lr,
                          lr_min=lr / params.schedule.lrmin_div)
    return compute, run


def run_ours(params: Params, data: dict, lr: float, seed: int) -> dict:
    compute, run = set_up(params, data, lr, seed)
    clocks = [measured_clock() if compute.device.type == "cpu" else None]
    started = time.perf_counter()
    history = train(run.model, run.train_loader, run.test_loader, compute, run.config,
                    step_model=run.step_model)
    compute.synchronize()
    train_s = time.perf_counter() - started
    clocks.append(measured_clock() if compute.device.type == "cpu" else None)
    _, acc = loss_and_accuracy(*predict_logits(run.model, run.test_loader, compute,
                                               tta_flip=params.evaluate.tta_flip))
    epochs = len(history)
    run_ghz = max((c for c in clocks if c), default=None)  # the clock around the run: the higher counts
    return {**speed_against_peak(params, data, compute, epochs, train_s, run_ghz),
            "run": "cifarpipe", "seed": seed, "model": params.model.name, "optim": params.optim.name,
            "lr_max": lr, "epochs": epochs, "train_s": round(train_s, 2),
            "compile_s": round(run.compile_s, 2),
            "epoch_s": round(train_s / epochs, 3),
            "images_per_s": round(len(data["y_train"]) * epochs / train_s, 1),
            "test_acc": round(acc, 4), "last_epoch_acc_no_tta": history[-1]["test_acc"],
            "device": compute.describe(), "torch": torch.__version__,
            "compile": params.compute.compile and params.compute.compile_mode,
            "deterministic": params.compute.deterministic}


def speed_against_peak(params: Params, data: dict, compute, epochs: int, train_s: float,
                       run_ghz: float | None = None) -> dict:
    """The FLOP/s a run achieved (its training and per-epoch test passes) and, on the CPU, the fraction of
    the cores' peak in its precision (cores x clock x the multiply-add instruction's FLOPs per cycle, each
    measured where it can be, `run_ghz` the clock measured around the run)."""
    train_flops, test_flops = flops_per_image(params.model)
    achieved = (train_flops * len(data["y_train"]) + test_flops * len(data["y_test"])) * epochs / train_s
    result = {"train_gflop_per_image": round(train_flops / 1e9, 4),
              "achieved_gflops": round(achieved / 1e9, 2)}
    if compute.device.type != "cpu":
        return result
    cores = min(torch.get_num_threads(), torch.cpu.get_capabilities().get("num_physical_cores") or 1 << 10)
    peak = cpu_peak(compute.precision, Machine.probe().cpu_flags, cores, run_ghz)
    if peak is not None:
        result.update(peak_gflops=round(peak.gflops, 1), peak_fraction=round(achieved / 1e9 / peak.gflops, 4),
                      peak=peak.formula, peak_clock=peak.clock, peak_instruction=peak.instruction,
                      peak_assumed=peak.assumed, peak_measured=peak.measured)
    return result


def peak_line(seed: int, r: dict) -> str:
    """The run's share of the peak in words, saying whether the peak was measured or assumed."""
    return (f"seed {seed}: {r['images_per_s']} images/s, {r['achieved_gflops']} GFLOP/s, "
            f"{r['peak_fraction']:.1%} of the {'measured' if r['peak_measured'] else 'assumed'} peak of "
            f"{r['device']}: {r['peak_gflops']} GFLOP/s = {r['peak']}; the clock: {r['peak_clock']}; the "
            f"instruction: {r['peak_instruction']}; assumed: {r['peak_assumed']}")


def run_peer(script: Path, data: dict, epochs: int, lr: float, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, **{k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")})
        proc = subprocess.run([sys.executable, str(script), "--npz", str(npz), "--epochs", str(epochs),
                               "--max-lr", str(lr), "--workers", str(workers)], capture_output=True,
                               text=True)
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
        raise ToolError(f"the peer script {script} failed (exit {proc.returncode}): {said}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe bench speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", "--archive", dest="data", required=True, type=Path,
                    help="CIFAR-10 as an npz (x_train, y_train, x_test, y_test), or an archive in the "
                    "official layout")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=None, help="LRMAX (default: optim.lr, else 0.01 as the peer)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--peer", type=Path, default=None,
                    help="a peer script to run alongside (../shared/peers/seed_baseline.py)")
    ap.add_argument("--peer-workers", type=int, default=8)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)

    params = params_with(args.set)
    if args.peer and params.model.model_dump() != PEER_NETWORK:
        raise ToolError("--peer trains the reference recipe's custom ResNet at width 64, these params train "
                        f"{params.model.model_dump()}: a speed-up between two networks says nothing. Drop "
                        "--peer, or --set model.name=custom_resnet --set model.width=64")
    data = load_arrays(args.data, args.train_subset, args.test_subset)

    results = []
    lr = args.lr or params.optim.lr or 0.01
    for seed in args.seeds:
        results.append(run_ours(params, data, lr, seed))
        print(json.dumps(results[-1]), flush=True)
        if "peak_fraction" in results[-1]:
            print(peak_line(seed, results[-1]), flush=True)
    accs = [r["test_acc"] for r in results]
    summary = {"summary": "cifarpipe", "seeds": args.seeds, "median_test_acc": statistics.median(accs),
               "test_acc_range": [min(accs), max(accs)],
               "test_acc_std": round(statistics.stdev(accs), 5) if len(accs) > 1 else 0.0,
               "median_train_s": statistics.median(r["train_s"] for r in results)}
    if args.peer:
        peer = run_peer(args.peer, data, params.schedule.epochs, lr, args.peer_workers)
        print(json.dumps({"run": "peer", **peer}), flush=True)
        summary.update(peer_train_s=peer["train_s"], peer_test_acc=peer["test_acc"],
                       speedup=round(peer["train_s"] / summary["median_train_s"], 2))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
