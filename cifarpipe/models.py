"""The two networks of the seeds: the custom ResNet (6,573,130 parameters) and ResNet18 for CIFAR (11,173,962).

Both return logits; the softmax of the seeds' diagram lives in the loss (CrossEntropyLoss) and in
`evaluate.predict`, which is numerically the same and stabler than a softmax layer.
Each model lists its `blocks`: the named stages whose outputs GradCAM can explain.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    """The seeds' custom ResNet: 32x32 -> prep 64@32 -> layer1 128@16 -> layer2 256@8 -> layer3 512@4 -> FC."""

    blocks = ("prep_layer", "layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.prep_layer = conv_bn_relu(3, 64)
        self.layer1 = LayerWithRes(64, 128)
        self.layer2 = conv_bn_relu(128, 256, pool=True)
        self.layer3 = LayerWithRes(256, 512)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep_layer(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 conv shortcut where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet18 for 32x32 inputs: 3x3 stem, no stem max-pool, 4 stages of 2 blocks, global average pool."""

    blocks = ("stem", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        stages, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {"custom_resnet": CustomResNet, "resnet18": ResNet18}


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    return MODELS[name](num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def _probe(model: nn.Module, modules: dict[str, nn.Module], image_size: int) -> dict[str, tuple[nn.Module, tuple]]:
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


def block_output_shapes(model: nn.Module, image_size: int = 32) -> dict[str, tuple[int, ...]]:
    """{block name: (C, H, W)} of the model's named blocks."""
    probed = _probe(model, {name: getattr(model, name) for name in model.blocks}, image_size)
    return {name: shape for name, (_, shape) in probed.items()}


def summary(model: nn.Module, image_size: int = 32) -> str:
    """A table of every leaf layer: name, type, output shape, parameters; then the totals."""
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    rows = [(name, type(m).__name__, shape, sum(p.numel() for p in m.parameters(recurse=False)))
            for name, (m, shape) in _probe(model, leaves, image_size).items()]
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{type(model).__name__}", f"{'layer':<{width}}{'type':<14}{'output shape':<18}{'params':>12}", "-" * (width + 44)]
    lines += [f"{n:<{width}}{t:<14}{str(list(s)):<18}{p:>12,}" for n, t, s, p in rows]
    total = count_parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines += ["-" * (width + 44), f"Total params: {total:,}", f"Trainable params: {trainable:,}"]
    lines += [f"block {n}: output {list(s)}" for n, s in block_output_shapes(model, image_size).items()]
    return "\n".join(lines) + "\n"
