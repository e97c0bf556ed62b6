"""A deep residual 1-D CNN for sequences such as MNIST-1D, with or without batch norm.

Where the folklore's depth claims are made ("ReLU near the input, ELU deeper"; "ELU's
advantage fades with normalisation"): a stem and three stages of residual blocks (3 x 3 = 9
blocks by default), each block ``act2(x + conv2(act1(conv1(x))))`` with batch norm after each
conv when ``norm="batch"``. Every activation is its own module (``stem.act``,
``stages.<s>.<b>.act1``, ``stages.<s>.<b>.act2``), so a space ties them into groups by stage:

    groups: {stage1: ["stem.*", "stages.0.*"], stage2: ["stages.1.*"],
             stage3: ["stages.2.*"]}

The sites start as ReLU; a search replaces them (``models.apply.apply_layout``), and with
``model.init: auto`` re-initialises the conv feeding ``act1`` and the stem's for the chosen
activation (``act2`` follows a residual add: no single layer feeds it).
"""

from __future__ import annotations

import torch
from torch import nn

from actsearch.errors import ActsearchError

__all__ = ["ResNet1d", "resnet1d"]

NORMS = ("batch", "none")


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels) if norm == "batch" else nn.Identity()


class Stem(nn.Module):
    """The input's channels to the first stage's width: conv, norm, activation."""

    def __init__(self, in_channels: int, width: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, width, 5, padding=2, bias=norm != "batch")
        self.norm = _norm(norm, width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Block(nn.Module):
    """A basic residual block: act2(shortcut(x) + norm(conv2(act1(norm(conv1(x))))))."""

    def __init__(self, in_channels: int, channels: int, stride: int, norm: str) -> None:
        super().__init__()
        bias = norm != "batch"  # batch norm's shift does a bias's job
        self.conv1 = nn.Conv1d(in_channels, channels, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = _norm(norm, channels)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = _norm(norm, channels)
        self.act2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:  # a projection where the shape changes
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, channels, 1, stride=stride, bias=bias),
                _norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        return self.act2(self.shortcut(x) + out)


class ResNet1d(nn.Module):
    """Stem, stages of residual blocks (the first at the stem's stride, each later one halving
    the length and doubling the channels), global average pooling, a linear head."""

    def __init__(self, num_classes: int = 10, width: int = 8, blocks: int = 3,
                 stages: int = 3, norm: str = "batch", in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = Stem(in_channels, width, norm)
        layers, channels = [], width
        for s in range(stages):
            out = width * 2 ** s
            layers.append(nn.Sequential(*(
                Block(channels if b == 0 else out, out, 2 if s > 0 and b == 0 else 1, norm)
                for b in range(blocks))))
            channels = out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, length) samples are one channel; (batch, channels, length) pass as they are.
        x = x.reshape(x.shape[0], self.in_channels, -1)
        return self.head(self.stages(self.stem(x)).mean(dim=2))


def resnet1d(num_classes: int = 10, width: int = 8, blocks: int = 3, stages: int = 3,
             norm: str = "batch", in_channels: int = 1) -> ResNet1d:
    """The residual CNN (``model.factory: actsearch.zoo.resnet:resnet1d``).

    Args:
        num_classes: The head's outputs.
        width: The first stage's channels (each later stage doubles them).
        blocks: Residual blocks per stage.
        stages: Stages (the depth claims want at least two).
        norm: ``batch`` (batch norm after every conv) or ``none``.
        in_channels: Channels of a sample (MNIST-1D: 1, its 40 values read as a sequence).
    """
    if norm not in NORMS:
        raise ActsearchError(f"model.kwargs.norm: expected one of {', '.join(NORMS)}, got "
                             f"{norm!r}")
    for name, value in (("width", width), ("blocks", blocks), ("stages", stages),
                        ("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ActsearchError(f"model.kwargs.{name}: expected an integer >= 1, got "
                                 f"{value!r}")
    return ResNet1d(num_classes, width, blocks, stages, norm, in_channels)
