"""The network's layer table, written by the preview stage before any training (models/summary.txt)."""
from __future__ import annotations

import torch.nn as nn

from ..model.networks import block_output_shapes, count_parameters, probe


def model_summary(model: nn.Module) -> str:
    """A table of every leaf layer: name, type, output shape, parameters; then the totals and the blocks."""
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    rows = [(name, type(m).__name__, shape, sum(p.numel() for p in m.parameters(recurse=False)))
            for name, (m, shape) in probe(model, leaves).items()]
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{type(model).__name__}", f"{'layer':<{width}}{'type':<14}{'output shape':<18}{'params':>12}",
             "-" * (width + 44)]
    lines += [f"{n:<{width}}{t:<14}{str(list(s)):<18}{p:>12,}" for n, t, s, p in rows]
    total = count_parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines += ["-" * (width + 44), f"Total params: {total:,}", f"Trainable params: {trainable:,}"]
    lines += [f"block {n}: output {list(s)}" for n, s in block_output_shapes(model).items()]
    return "\n".join(lines) + "\n"
