"""The whole classifier a user deploys, as one torch module: uint8 images in; the pipeline's one
normalisation, the network, the mirror average and the temperature inside; probabilities and logits out. The
export stage exports it; `cifarpipe predict` runs it on PyTorch weights."""
from __future__ import annotations

import numpy as np
import torch

from ..data.normalize import Normalize


class Classifier(torch.nn.Module):
    """uint8 RGB images (N, 32, 32, 3) -> (probabilities, logits): the pipeline's normalisation, the network,
    the mean with the mirror image's logits when `tta_flip` (as the evaluate stage scores), and the softmax of
    the logits over the fitted `temperature`."""

    def __init__(self, network: torch.nn.Module, mean: list[float], std: list[float], *, tta_flip: bool,
                 temperature: float):
        super().__init__()
        self.normalize, self.network, self.tta_flip = Normalize(mean, std), network.eval(), tta_flip
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # NCHW-contiguous, as the evaluate stage scores: a permuted view would run the network channels-last,
        # where torch's CPU convolutions took 3x longer at batch 1
        x = self.normalize(images.permute(0, 3, 1, 2).contiguous())
        logits = self.network(x)
        if self.tta_flip:
            logits = (logits + self.network(x.flip(3))) / 2
        return torch.softmax(logits / self.temperature, dim=1), logits


def classifier(network: torch.nn.Module, meta: dict) -> Classifier:
    """The Classifier of `network` with what `meta` (model.json) says."""
    return Classifier(network, meta["mean"], meta["std"], tta_flip=meta["tta_flip"],
                      temperature=meta["temperature"]).eval()


def fastest(module: torch.nn.Module) -> torch.nn.Module:
    """`module` (a Classifier, or a loaded program's module) with its 4-d weights channels-last where oneDNN
    runs the convolutions: the same outputs but for float rounding, at the forward pass's speed for batches
    (1.4 times NCHW's in fp32 at batch 256 on a 2-core Xeon). For the export stage's check, after the
    capture."""
    if torch.backends.mkldnn.is_available():
        module.to(memory_format=torch.channels_last)
    return module


@torch.inference_mode()
def torch_outputs(model, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits) of uint8 NHWC `images` by a Classifier or a loaded program's, `batch_size` at a
    time."""
    runs = [[t.numpy() for t in model(torch.from_numpy(images[i:i + batch_size]))]
            for i in range(0, len(images), batch_size)]
    return tuple(np.concatenate(parts) for parts in zip(*runs))
