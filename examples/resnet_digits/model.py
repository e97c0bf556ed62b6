"""A small ResNet for the 8x8 digits images, written the way torchvision writes ResNet.

Each block calls its one ``self.relu`` twice (after the first convolution and after the
residual add), so ``actsearch sites`` shows one site per call: ``layers.0.relu#0`` and
``layers.0.relu#1``.

    actsearch sites examples/resnet_digits/model.py:make_model --input-shape 1,8,8
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the input, then relu: one ReLU module, called twice."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ResNetDigits(nn.Module):
    """A stem, two residual blocks and a linear head, for images of shape (1, 8, 8)."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*(BasicBlock(width) for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def make_model(num_classes: int = 10, width: int = 16) -> ResNetDigits:
    return ResNetDigits(num_classes, width)
