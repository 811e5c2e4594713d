"""torch.compile before training: one static graph per batch shape, compiled ahead so no epoch pays for it."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..compute.device import Compute
from ..core.params import choose

# torch.compile's modes
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile_for_training(model: torch.nn.Module, loader, compute: Compute, mode: str = "default",
                         backend: str = "inductor"):
    """torch.compile `model` and compile it now for every batch shape the loader yields; return (compiled,
    seconds). No epoch pays a recompile, and the warm-up changes no weight or BatchNorm statistic
    (docs/design.md, "The training loop"); `mode` is compute.compile_mode."""
    choose(COMPILE_MODES, "compute.compile_mode", mode)
    options = {"mode": None if mode == "default" else mode} if backend == "inductor" else {}
    compiled = torch.compile(model, dynamic=False, backend=backend, **options)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    started = time.perf_counter()
    scaler = compute.grad_scaler()
    for size in loader.batch_sizes():
        x = torch.zeros(size, *loader.x.shape[1:],
                        device=compute.device).contiguous(memory_format=compute.memory_format)
        y = torch.zeros(size, dtype=torch.long, device=compute.device)
        with compute.autocast():
            loss = F.cross_entropy(compiled(x), y)
        scaler.scale(loss).backward()
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    compute.synchronize()
    return compiled, time.perf_counter() - started
