"""The preview stage's reports, made before any training: the network's layers and what its inputs look like."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..augment import augment_batch
from ..models import block_output_shapes, count_parameters, probe
from .common import image_grid


def model_summary(model: nn.Module, image_size: int = 32) -> str:
    """A table of every leaf layer: name, type, output shape, parameters; then the totals and the blocks."""
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    rows = [(name, type(m).__name__, shape, sum(p.numel() for p in m.parameters(recurse=False)))
            for name, (m, shape) in probe(model, leaves, image_size).items()]
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{type(model).__name__}", f"{'layer':<{width}}{'type':<14}{'output shape':<18}{'params':>12}",
             "-" * (width + 44)]
    lines += [f"{n:<{width}}{t:<14}{str(list(s)):<18}{p:>12,}" for n, t, s, p in rows]
    total = count_parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines += ["-" * (width + 44), f"Total params: {total:,}", f"Trainable params: {trainable:,}"]
    lines += [f"block {n}: output {list(s)}" for n, s in block_output_shapes(model, image_size).items()]
    return "\n".join(lines) + "\n"


def samples_figure(x_train, y_train, classes: list[str], augment: dict, n: int, seed: int):
    """`n` training images (uint8 NHWC) after the training augmentation (`augment`: cifarpipe.augment.settings),
    drawn from their own random stream: what the model gets, before normalisation."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(y_train), generator=g)[:n].numpy()
    x = augment_batch(torch.from_numpy(x_train[idx]).permute(0, 3, 1, 2), generator=g, **augment)
    return image_grid(x.permute(0, 2, 3, 1).numpy(), [classes[i] for i in y_train[idx]],
                      suptitle="augmented training samples")
