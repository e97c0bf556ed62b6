"""The digits data (scikit-learn's 8x8 images, bundled: no download) as a data factory.

A data factory returns (train, val) or (train, val, test), each as (x, y) tensors or a
TensorDataset; the examples' space files name these functions (``data.factory``).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

Split = tuple[torch.Tensor, torch.Tensor]


def _splits(x: torch.Tensor, y: torch.Tensor) -> tuple[Split, Split, Split]:
    # A fixed shuffle (its own generator, seed 0): the same splits in every run and trial.
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)


def flat() -> tuple[Split, Split, Split]:
    """64 features per sample, scaled to [0, 1]: for MLPs."""
    return _splits(*_digits())


def images() -> tuple[Split, Split, Split]:
    """One-channel 8x8 images, scaled to [0, 1]: for CNNs."""
    x, y = _digits()
    return _splits(x.reshape(-1, 1, 8, 8), y)
