"""ResNet18 for CIFAR-10: torchvision's, with a 3x3 stride-1 stem and no stem max-pool for 32x32 inputs
(11,173,962 parameters at the reference width 64)."""
from __future__ import annotations

import torch.nn as nn
import torchvision


class ResNet18(torchvision.models.ResNet):
    """torchvision builds its basic-block ResNets at width 64 only; another width rebuilds the stem, the four
    layers and the classifier with torchvision's own `_make_layer` and initialisation."""

    blocks = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, num_classes: int = 10, width: int = 64):
        block = torchvision.models.resnet.BasicBlock
        super().__init__(block, [2, 2, 2, 2], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        # as torchvision's own stem
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()
        if width != 64:
            self.bn1, self.inplanes = nn.BatchNorm2d(width), width
            for i, name in enumerate(self.blocks):
                setattr(self, name, self._make_layer(block, width * 2**i, 2, stride=1 if i == 0 else 2))
            self.fc = nn.Linear(8 * width, num_classes)
            for m in self.modules():  # torchvision's ResNet.__init__ initialisation, for the rebuilt modules
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
