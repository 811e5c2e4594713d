"""Inference throughput of the exported model on the CPU: PyTorch eager against onnxruntime, at batch 1 and
256.

    cifarpipe bench infer [--export models/export] [--batch-sizes 1 256]

PyTorch runs the network rebuilt from model.json and the first seed's weights (models/seedN/model.pt), in eval
mode under torch.inference_mode; onnxruntime runs model.onnx with its CPU provider. Both use their default
threads. Each batch size is timed over `--seconds` after two warm-up batches, on random normalised images; the
median time per batch gives images/s. One JSON line per back end and batch size, then a summary.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ...core import paths
from ...core.paths import per_seed
from ...export.files import META, ONNX
from ...export.predictor import network, read_meta


def median_ms(run, x: np.ndarray, seconds: float) -> float:
    for _ in range(2):
        run(x)
    times, until = [], time.perf_counter() + seconds
    while time.perf_counter() < until or len(times) < 5:
        started = time.perf_counter()
        run(x)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cifarpipe bench infer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, default=Path(paths.EXPORT_DIR), help="the export stage's folder")
    ap.add_argument("--weights", type=Path, default=None,
                    help="the PyTorch state dict (default: the exported seed's)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--seconds", type=float, default=3.0, help="time spent per back end and batch size")
    args = ap.parse_args(argv)

    meta = read_meta(args.export / ONNX, args.export / META)
    weights = args.weights or Path(per_seed(paths.MODEL, meta["seed"]))
    backends = {"pytorch eager": network(weights, meta), "onnxruntime": network(args.export / ONNX, meta)}
    rng, results = np.random.default_rng(0), []
    with torch.inference_mode():
        for batch in args.batch_sizes:
            x = rng.standard_normal((batch, 3, meta["image_size"], meta["image_size"]), dtype=np.float32)
            for name, run in backends.items():
                ms = median_ms(run, x, args.seconds)
                results.append({"backend": name, "batch": batch, "ms_per_batch": round(ms, 3),
                                "images_per_s": round(batch / ms * 1000, 1), "model": meta["model"],
                                "threads": torch.get_num_threads()})
                print(json.dumps(results[-1]), flush=True)
    ms = {(r["backend"], r["batch"]): r["ms_per_batch"] for r in results}
    print(json.dumps({"summary": "onnxruntime speed-up over pytorch eager, by batch size",
                      **{str(b): round(ms["pytorch eager", b] / ms["onnxruntime", b], 2)
                         for b in args.batch_sizes}}))
