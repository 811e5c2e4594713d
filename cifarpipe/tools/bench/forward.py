"""The forward pass's best throughput on this machine, per precision, and what each inference stage reaches of
it.

The limit: the network alone (random weights: speed does not depend on them), eval mode, no autograd, at each
batch size, in the train stage's precision and memory format (compute.*, as this machine resolves them) and in
fp32, which the export stage checks in. Then the stages' own code on random images: evaluate's loader and
predict_logits, robustness's stream and predict_images (the mirror average as evaluate.tta_flip says), the
export stage's reference outputs (PyTorch), onnxruntime and the .pt2 program on one capture of the classifier,
and GradCAM's one forward and backward pass. Each is counted in network passes of one image a second (the
mirror average makes two an image) and given as a fraction of the best batch size's rate in its precision.
Rounds alternate every measurement, so a burst of another process's load slows all alike, and each keeps its
best round; a line gives both the wall rate and the rate per CPU second of this process (all its threads),
which other processes on the machine disturb far less.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...compute.device import configure_torch, resolve_compute
from ...data.loader import DeviceLoader
from ...evaluate.scoring import predict_images, predict_logits
from ...model.networks import build_model
from .train_speed import params_with

STATS = {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}


@dataclass
class Measured:
    """One thing timed: `run()` makes `passes` network passes of one image each, in `precision`."""
    name: str
    precision: str
    passes: int
    run: Callable[[], object]
    batch: int | None = None  # the network's batch, for the limit's rows
    per_s: float = 0.0  # the best round's passes a second (wall)
    per_cpu_s: float = 0.0  # and per CPU second of this process
    rounds: list = field(default_factory=list)


def time_once(item: Measured, seconds: float) -> None:
    """Run `item` for at least `seconds` (and twice) after one warm-up call; keep its best rates."""
    item.run()
    calls, wall, cpu = 0, time.perf_counter(), time.process_time()
    while calls < 2 or time.perf_counter() - wall < seconds:
        item.run()
        calls += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    item.rounds.append(round(item.passes * calls / wall, 1))
    item.per_s = max(item.per_s, item.passes * calls / wall)
    item.per_cpu_s = max(item.per_cpu_s, item.passes * calls / max(cpu, 1e-9))


def network_limit(model_params, compute, batch_sizes: list[int]) -> list[Measured]:
    """The network alone at each batch size in `compute`'s precision and memory format."""
    model = build_model(model_params, compute).eval()
    items = []
    for batch in batch_sizes:
        x = torch.randn(batch, 3, 32, 32, device=compute.device)
        x = x.contiguous(memory_format=compute.memory_format)

        def run(x=x):
            with torch.inference_mode(), compute.autocast():
                return model(x)
        items.append(Measured(f"network, batch {batch}", compute.precision, batch, run, batch=batch))
    return items


def scoring_stages(params, compute, images: np.ndarray) -> list[Measured]:
    """The evaluate and robustness stages' scoring of `images`, as they run it."""
    model = build_model(params.model, compute).eval()
    tta, batch = params.evaluate.tta_flip, params.runtime.eval_batch_size
    passes = len(images) * (2 if tta else 1)
    loader = DeviceLoader(images, np.zeros(len(images)), STATS, compute, batch)

    def stream():
        return (images[i:i + batch] for i in range(0, len(images), batch))
    return [Measured("evaluate (predict_logits)", compute.precision, passes,
                     lambda: predict_logits(model, loader, compute, tta_flip=tta)),
            Measured("robustness (predict_images, streamed)", compute.precision, passes,
                     lambda: predict_images(model, stream(), STATS, compute, tta_flip=tta))]


def export_checks(params, images: np.ndarray, folder: Path) -> list[Measured]:
    """The export stage's check: PyTorch's reference, onnxruntime and the .pt2 program, all fp32, on one
    capture of the whole classifier (mirror average and temperature inside) saved into `folder`."""
    from ...export.classifier import classifier, fastest, torch_outputs
    from ...export.files import capture, export_onnx, export_program, load_program, onnx_outputs, open_onnx

    network = build_model(params.model).eval()
    tta, batch = params.evaluate.tta_flip, params.runtime.eval_batch_size
    model = classifier(network, {**STATS, "tta_flip": tta, "temperature": 1.5})
    program = capture(model, torch.from_numpy(images[:2]))
    export_onnx(program, folder / "model.onnx", {})
    export_program(program, folder / "model.pt2", {})
    session, loaded = open_onnx(folder / "model.onnx"), fastest(load_program(folder / "model.pt2")[0])
    reference, passes = fastest(model), len(images) * (2 if tta else 1)
    return [Measured("export check: PyTorch reference", "fp32", passes,
                     lambda: torch_outputs(reference, images, batch)),
            Measured("export check: onnxruntime", "fp32", passes,
                     lambda: onnx_outputs(session, images, batch)),
            Measured("export check: .pt2 program", "fp32", passes,
                     lambda: torch_outputs(loaded, images, batch))]


def gradcam_pass(params, compute) -> Measured:
    """GradCAM as the stage runs it (the grad-cam library): each layer and method on the stage's images, for
    the predicted and the true class, fp32; each call a forward and a backward pass of the batch."""
    from ...gradcam.cams import choose_layers, explain

    model = build_model(params.model, compute).eval()
    layers = choose_layers(model, params.gradcam.layers, params.gradcam.min_size, params.gradcam.deepest)
    n = params.gradcam.images + params.gradcam.correct_images
    x = torch.randn(n, 3, 32, 32, device=compute.device).contiguous(memory_format=compute.memory_format)
    calls = [(layer, method, target) for layer in layers for method in params.gradcam.methods
             for target in (np.arange(n) % 10, (np.arange(n) + 1) % 10)]

    def every_call():
        for layer, method, target in calls:
            explain(model, x, list(target), layer, method)

    return Measured(f"gradcam ({len(calls)} forward and backward passes of {n} images)", "fp32",
                    n * len(calls), every_call)


def measured_items(params, args, folder: Path) -> list[Measured]:
    """Everything to time: the limit in each precision, then the stages' scoring (unless --limit-only)."""
    trained = configure_torch(resolve_compute(params.compute))
    fp32 = resolve_compute(params.compute, precision="fp32")
    items = network_limit(params.model, trained, args.batch_sizes)
    if trained.precision != "fp32":
        items += network_limit(params.model, fp32, args.batch_sizes)
    if args.limit_only:
        return items
    images = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    items += scoring_stages(params, trained, images)
    if not args.no_export:
        items += export_checks(params, images, folder)
    return items + [gradcam_pass(params, fp32)]


def summary(items: list[Measured]) -> list[dict]:
    """One row per item: its best rates and their fractions of the best network batch in its precision."""
    limit = {}
    for item in items:
        if item.batch is not None and item.per_s > limit.get(item.precision, (0, 0))[0]:
            limit[item.precision] = (item.per_s, item.per_cpu_s, item.batch)
    limit_cpu = {p: max(i.per_cpu_s for i in items if i.batch is not None and i.precision == p)
                 for p in limit}
    rows = []
    for item in items:
        best, _, batch = limit[item.precision]
        rows.append({"what": item.name, "precision": item.precision, "passes_per_s": round(item.per_s, 1),
                     "passes_per_cpu_s": round(item.per_cpu_s, 1), "of_limit": round(item.per_s / best, 3),
                     "of_limit_cpu": round(item.per_cpu_s / limit_cpu[item.precision], 3),
                     "limit_batch": batch, "rounds": item.rounds})
    return rows


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe bench forward", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    ap.add_argument("--images", type=int, default=1024, help="random images each stage's scoring is timed on")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over every measurement; the best counts")
    ap.add_argument("--threads", type=int, default=None, help="torch's threads (default: one per core)")
    ap.add_argument("--limit-only", action="store_true", help="the network alone, no stage")
    ap.add_argument("--no-export", action="store_true", help="leave out the export stage's check")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    params = params_with(args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cifarpipe-forward-") as folder:
        items = measured_items(params, args, Path(folder))
        for _ in range(args.rounds):
            for item in items:
                time_once(item, args.seconds)
    rows = summary(items)
    for row in rows:
        print(json.dumps({**row, "model": params.model.model_dump(), "threads": torch.get_num_threads()}),
              flush=True)
    print("\n| what | precision | passes/s | per CPU s | of the limit (wall, CPU) |\n"
          "| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['what']} | {row['precision']} | {row['passes_per_s']} | {row['passes_per_cpu_s']} | "
              f"{row['of_limit']:.0%}, {row['of_limit_cpu']:.0%} |")
