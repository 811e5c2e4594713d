"""The reference recipe's two networks: the custom ResNet (6,573,130 parameters) and ResNet18 for CIFAR.

`model.width` is the first layer's channels (64 in the recipe; the tests and the smoke run use 8). Both return
logits: the recipe's softmax lives in the loss and in the probabilities, which is the same and stabler.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..core.artifacts import torch_load
from ..core.params import IMAGE_SIZE, choose
from ..core.seeds import stream_seed


def conv_bn_relu(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    """conv3x3 (no bias: BN follows) [-> MaxPool2d(2)] -> BN -> ReLU."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN-ReLU, kept at the input's channels and size."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x):
        return self.body(x)


class LayerWithRes(nn.Module):
    """X = conv-MaxPool-BN-ReLU(x); out = X + ResBlock(X)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_bn_relu(c_in, c_out, pool=True)
        self.res = ResBlock(c_out)

    def forward(self, x):
        x = self.conv(x)
        return x + self.res(x)


class CustomResNet(nn.Module):
    """The custom-ResNet recipe's network: 32x32 -> prep 64@32 -> layer1 128@16 -> layer2 256@8 -> layer3
    512@4 -> FC
    (at width 64; every channel count scales with the width)."""

    blocks = ("prep_layer", "layer1", "layer2", "layer3")  # what GradCAM can explain

    def __init__(self, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.prep_layer = conv_bn_relu(3, width)
        self.layer1 = LayerWithRes(width, 2 * width)
        self.layer2 = conv_bn_relu(2 * width, 4 * width, pool=True)
        self.layer3 = LayerWithRes(4 * width, 8 * width)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(8 * width, num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep_layer(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18(num_classes: int = 10, width: int = 64) -> nn.Module:
    """torchvision's ResNet18 in its CIFAR variant (model/resnet18.py). torchvision is imported here, when
    this network is built, not at the top: importing it costs every stage that starts one and a half
    seconds."""
    from .resnet18 import ResNet18

    return ResNet18(num_classes, width)


MODELS = {"custom_resnet": CustomResNet, "resnet18": resnet18}  # model.name


def build_model(model, compute=None, num_classes: int = 10, *, seed: int | None = None) -> nn.Module:
    """A fresh network as the `model` params group describes it (name, width), on `compute`'s device and
    memory format when given; its initial weights drawn from the `weights` stream of `seed` when given."""
    if seed is not None:
        torch.manual_seed(stream_seed(seed, "weights"))
    network = choose(MODELS, "model.name", model.name)(num_classes, width=model.width)
    if compute is not None:
        network = network.to(compute.device, memory_format=compute.memory_format)
    return network


def load_trained(model, weights, compute=None) -> nn.Module:
    """The weights at `weights` (loaded with weights_only=True) in a fresh `model` network, in eval mode, on
    `compute`'s device (default the CPU)."""
    network = build_model(model, compute)
    device = compute.device if compute is not None else "cpu"
    network.load_state_dict(torch_load(weights, map_location=device))
    return network.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def probe(model: nn.Module, modules: dict[str, nn.Module],
          image_size: int = IMAGE_SIZE) -> dict[str, tuple[nn.Module, tuple]]:
    """{name: (module, output shape without the batch)} from one eval-mode pass of a blank image."""
    seen, hooks = {}, []
    for name, module in modules.items():
        hooks.append(module.register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, (m, tuple(o.shape[1:])))))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return seen


def block_output_shapes(model: nn.Module, image_size: int = IMAGE_SIZE) -> dict[str, tuple[int, ...]]:
    """{block name: (C, H, W)} of the model's named blocks."""
    probed = probe(model, {name: getattr(model, name) for name in model.blocks}, image_size)
    return {name: shape for name, (_, shape) in probed.items()}
