"""The exported model's inference speed on the CPU, and `cifarpipe predict`'s peak memory on folders.

onnxruntime, PyTorch eager and the torch.export program take turns on the same uint8 images, so a burst of
another process's load slows all alike (docs/use.md, "Speed", says how to read the lines)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ...core import paths
from ...core.errors import ToolError
from ...core.paths import per_seed
from ...export.files import META, ONNX, PROGRAM
from ...export.classify import load_model


def median_ms(runs: dict, x: np.ndarray, seconds: float) -> dict[str, float]:
    """{name: median ms per call of `runs[name](x)`}, timed in rounds of one call each, so that a burst of
    another process's load on a shared machine slows every back end alike; after two warm-up calls each."""
    for run in runs.values():
        for _ in range(2):
            run(x)
    times, until = {name: [] for name in runs}, time.perf_counter() + seconds * len(runs)
    while time.perf_counter() < until or len(times[next(iter(runs))]) < 5:
        for name, run in runs.items():
            started = time.perf_counter()
            run(x)
            times[name].append(1000 * (time.perf_counter() - started))
    return {name: statistics.median(t) for name, t in times.items()}


def write_files(folder: Path, npz: Path, count: int, size: tuple[int, int]) -> None:
    """`count` JPEG files of the test images of `npz` (repeated as needed), each squashed to `size`."""
    from PIL import Image

    images = np.load(npz)["x_test"]
    for i in range(count):
        Image.fromarray(images[i % len(images)]).resize(size, Image.Resampling.BICUBIC).save(
            folder / f"image{i:06d}.jpg", quality=90)


# Runs `cifarpipe predict` and, as it exits, prints its peak resident memory since it started (VmHWM, of this
# process image). A child's ru_maxrss would not do: Linux counts into it the parent's memory at the fork.
PEAK_OF_PREDICT = ("import atexit, runpy, sys; atexit.register(lambda: print(next(line for line in "
                   "open('/proc/self/status') if line.startswith('VmHWM')), file=sys.stderr)); "
                   "sys.argv = ['cifarpipe', 'predict', *sys.argv[1:]]; "
                   "runpy.run_module('cifarpipe.tools.cli', run_name='__main__')")


def predict_peak(model: Path, folder: Path) -> dict:
    """Peak resident memory (MB), seconds and files/s of `cifarpipe predict FOLDER --csv`, a child
    process."""
    started = time.perf_counter()
    command = [sys.executable, "-c", PEAK_OF_PREDICT, str(folder), "--model", str(model), "--csv"]
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    said = proc.stderr.strip().splitlines()
    if proc.returncode != 0 or not said or not said[-1].startswith("VmHWM"):
        why = [line for line in said if not line.startswith("VmHWM")]
        raise ToolError(f"cifarpipe predict {folder} failed (exit {proc.returncode}): "
                        f"{why[-1] if why else 'no message'}")
    files = sum(1 for _ in folder.iterdir())
    return {"peak_rss_mb": round(int(said[-1].split()[1]) / 1024, 1), "seconds": round(seconds, 2),
            "files_per_s": round(files / seconds, 1)}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe bench infer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, default=Path(paths.EXPORT_DIR), help="the export stage's folder")
    ap.add_argument("--weights", type=Path, default=None,
                    help="the PyTorch state dict (default: the exported seed's)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--seconds", type=float, default=3.0, help="time spent per back end and batch size")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for torch and onnxruntime alike (default: each its own, one per core); "
                    "on a machine other processes load, 1 is the steadiest")
    ap.add_argument("--files", type=int, nargs="*", default=[1000, 10000],
                    help="folder sizes for predict's peak memory (none: skip it)")
    ap.add_argument("--npz", type=Path, default=Path(paths.DATASET), help="where the files' images come from")
    ap.add_argument("--file-size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    return ap


def main(argv=None):
    args = parser().parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    onnx = load_model(args.export / ONNX, threads=args.threads)
    weights = args.weights or Path(per_seed(paths.MODEL, onnx.meta["seed"]))
    backends = {"onnxruntime": onnx, "pytorch eager": load_model(weights, args.export / META),
                "torch.export program": load_model(args.export / PROGRAM)}
    rng, size, results = np.random.default_rng(0), onnx.meta["image_size"], []
    for batch in args.batch_sizes:
        x = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        timed = median_ms({name: model.run for name, model in backends.items()}, x, args.seconds)
        for name, ms in timed.items():
            results.append({"backend": name, "batch": batch, "ms_per_batch": round(ms, 3),
                            "images_per_s": round(batch / ms * 1000, 1), "model": onnx.meta["model"],
                            "tta_flip": onnx.meta["tta_flip"], "threads": args.threads or "default",
                            "torch_threads": torch.get_num_threads(),
                            "load_average": round(os.getloadavg()[0], 2)})
            print(json.dumps(results[-1]), flush=True)
    ms = {(r["backend"], r["batch"]): r["ms_per_batch"] for r in results}
    speed_ups = {name: {str(b): round(ms["pytorch eager", b] / ms[name, b], 2) for b in args.batch_sizes}
                 for name in backends if name != "pytorch eager"}
    print(json.dumps({"summary": "speed-up over pytorch eager, by batch size", **speed_ups}), flush=True)
    for count in args.files:
        with tempfile.TemporaryDirectory(prefix="cifarpipe-bench-") as folder:
            write_files(Path(folder), args.npz, count, tuple(args.file_size))
            print(json.dumps({"predict_files": count, "file_size": args.file_size,
                              **predict_peak(args.export / ONNX, Path(folder))}), flush=True)
