"""An MLP whose activations are function calls in ``forward``, not modules.

``actsearch sites`` finds them with torch.fx: ``relu()#0``, ``relu()#1`` and ``tanh()``.

    actsearch sites examples/functional_mlp/model.py:make_model --input-shape 40
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FunctionalMLP(nn.Module):
    def __init__(self, features: int = 40, width: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = torch.tanh(self.fc3(x))
        return self.head(x)


def make_model(features: int = 40, width: int = 64, num_classes: int = 10) -> FunctionalMLP:
    return FunctionalMLP(features, width, num_classes)
