"""Training augmentation on whole batches of uint8 images, on whatever device holds them.

It draws what the reference recipe's albumentations pipeline draws (pad, random crop, flip, one cutout
square), with torch ops: tests/test_augment.py compares the two statistically (docs/precision.md, "Data").
"""
from __future__ import annotations

import torch


def fill_rgb(fill, mean: list[float]) -> tuple[int, int, int]:
    """The padding/cutout colour in 0..255: the dataset mean colour for "mean", else a grey level."""
    if fill == "mean":
        return tuple(int(round(255 * m)) for m in mean)
    return (int(fill),) * 3


def settings(augment, mean: list[float]) -> dict:
    """The augment params as `augment_batch` takes them, with `fill` resolved to an RGB colour."""
    return {**augment.model_dump(), "fill": fill_rgb(augment.fill, mean)}


def augment_batch(x: torch.Tensor, *, pad: int, crop: int, flip: float, cutout: int,
                  fill: tuple[int, int, int], streams: dict[str, torch.Generator]) -> torch.Tensor:
    """Augment a batch of uint8 images (B, C, H, W) -> (B, C, crop, crop), all random draws per image, each
    augmentation from its own stream (`streams["crop"]`, `["flip"]`, `["cutout"]`)."""
    b, c, h, w = x.shape
    dev = x.device
    fill_t = torch.tensor(fill, dtype=x.dtype, device=dev).view(1, c, 1, 1)

    padded = fill_t.expand(b, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad:pad + h, pad:pad + w] = x
    oy = torch.randint(0, h + 2 * pad - crop + 1, (b,), device=dev, generator=streams["crop"])
    ox = torch.randint(0, w + 2 * pad - crop + 1, (b,), device=dev, generator=streams["crop"])
    span = torch.arange(crop, device=dev)
    rows, cols = (oy[:, None] + span)[:, None, :, None], (ox[:, None] + span)[:, None, None, :]
    out = padded[torch.arange(b, device=dev)[:, None, None, None],
                 torch.arange(c, device=dev)[None, :, None, None], rows, cols]

    flipped = torch.rand(b, device=dev, generator=streams["flip"]) < flip
    out = torch.where(flipped[:, None, None, None], out.flip(3), out)

    if cutout > 0:
        cy = torch.randint(0, crop - cutout + 1, (b,), device=dev, generator=streams["cutout"])
        cx = torch.randint(0, crop - cutout + 1, (b,), device=dev, generator=streams["cutout"])
        in_y = (span[None, :] >= cy[:, None]) & (span[None, :] < (cy + cutout)[:, None])
        in_x = (span[None, :] >= cx[:, None]) & (span[None, :] < (cx + cutout)[:, None])
        hole = (in_y[:, :, None] & in_x[:, None, :])[:, None]
        out = torch.where(hole, fill_t, out)
    return out

