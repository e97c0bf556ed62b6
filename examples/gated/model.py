"""Gated residual blocks: each has a signal activation and a gate activation.

A deep stack has many sites; tie them into groups by pattern so that the search stays small
(one choice for every gate, one for every signal):

    groups = {"gates": ["*.gate_act"], "signal": ["blocks.*.act"]}

    actsearch sites examples/gated/model.py:make_model --input-shape 40
"""

from __future__ import annotations

import torch
from torch import nn


class GatedBlock(nn.Module):
    """x + act(W x) * gate_act(G x): the gate's activation scales the signal's."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.gate = nn.Linear(width, width)
        self.act = nn.ELU()
        self.gate_act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(x)) * self.gate_act(self.gate(x))


class GatedNet(nn.Module):
    def __init__(self, features: int = 40, width: int = 32, depth: int = 4,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.stem_act = nn.SELU()
        self.blocks = nn.Sequential(*(GatedBlock(width) for _ in range(depth)))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem_act(self.stem(x))))


def make_model(features: int = 40, width: int = 32, depth: int = 4,
               num_classes: int = 10) -> GatedNet:
    return GatedNet(features, width, depth, num_classes)
