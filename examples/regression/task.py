"""A regression task: a small MLP predicts a smooth function of 8 features, trained with the
mean squared error and ranked by it (minimised), with a data factory that returns tensors
(``make_data``) or DataLoaders (``make_loaders``).

    actsearch search examples/regression/space.yaml     # tensors on the device
    actsearch search examples/regression/loaders.yaml   # the same data through DataLoaders
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

FEATURES = 8


def make_model(width: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, width),
                         nn.ReLU(), nn.Linear(width, 1))


def _split(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, FEATURES, generator=g)
    y = torch.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3].abs()
    return x, y + 0.05 * torch.randn(samples, generator=g)


def make_data() -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """Train, validation and test splits as (x, y) tensors; y holds real numbers."""
    return _split(600, 1), _split(200, 2), _split(200, 3)


def make_loaders() -> tuple[DataLoader, DataLoader, DataLoader]:
    """The same splits as DataLoaders: the training one shuffles in batches of 50."""
    train, val, test = (TensorDataset(*split) for split in make_data())
    return (DataLoader(train, batch_size=50, shuffle=True),
            DataLoader(val, batch_size=100), DataLoader(test, batch_size=100))


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean squared error: the loss of a batch, and the metric of a whole split."""
    return F.mse_loss(outputs.squeeze(-1), targets)
