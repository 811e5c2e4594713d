"""The preview stage's picture: what the network's inputs look like after the training augmentation."""
from __future__ import annotations

import torch

from ..data.augment import augment_batch
from ..data.loader import random_streams
from ..figures.common import image_grid


def samples_figure(x_train, y_train, classes: list[str], augment: dict, n: int, seed: int):
    """`n` training images (uint8 NHWC) after the training augmentation (`augment`: data.augment.settings),
    drawn from their own random stream: what the model gets, before normalisation."""
    streams = random_streams(seed)
    idx = torch.randperm(len(y_train), generator=streams["order"])[:n].numpy()
    x = augment_batch(torch.from_numpy(x_train[idx]).permute(0, 3, 1, 2), streams=streams, **augment)
    return image_grid(x.permute(0, 2, 3, 1).numpy(), [classes[i] for i in y_train[idx]],
                      suptitle="augmented training samples")
