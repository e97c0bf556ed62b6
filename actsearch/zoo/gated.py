"""A gated convolutional sequence model: GLU-style blocks whose gate and signal activations
are separate sites.

Where the folklore's gating claim is made ("sharp units in gating paths, smooth ones in the
main signal path"): a sample (MNIST-1D's 40 values) is read as a one-channel sequence, a
linear conv embeds it (no activation: the blocks hold every site), and each residual block is

    x + W_o(gate_act(W_g x) * signal_act(W_s x))

with ``W_g`` and ``W_s`` convolutions over time and ``W_o`` a pointwise conv (a GLU feed-forward
over a window, as in gated convolutional networks). The sites are ``blocks.<i>.gate_act``
(sigmoid, the standard gate) and ``blocks.<i>.signal_act`` (ReLU); a space ties them into two
groups and marks their roles:

    groups:
      gate: {sites: ["*.gate_act"], role: gate}
      signal: {sites: ["*.signal_act"], role: signal}

With ``model.init: auto`` a search re-initialises ``W_g`` and ``W_s`` for the chosen
activations (``models.apply``).
"""

from __future__ import annotations

import torch
from torch import nn

from actsearch.errors import ActsearchError

__all__ = ["GatedBlock", "GatedConvNet", "gated_conv"]


class GatedBlock(nn.Module):
    """x + W_o(gate_act(W_g x) * signal_act(W_s x)), each W_g, W_s a conv over time."""

    def __init__(self, channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.gate = nn.Conv1d(channels, hidden, kernel_size, padding=padding)
        self.signal = nn.Conv1d(channels, hidden, kernel_size, padding=padding)
        self.gate_act = nn.Sigmoid()
        self.signal_act = nn.ReLU()
        self.out = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.gate_act(self.gate(x)) * self.signal_act(self.signal(x)))


class GatedConvNet(nn.Module):
    """A strided linear embedding, gated residual blocks, mean pooling over time, a head."""

    def __init__(self, num_classes: int = 10, channels: int = 24, hidden: int = 48,
                 depth: int = 3, kernel_size: int = 5, stride: int = 2,
                 in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.embed = nn.Conv1d(in_channels, channels, kernel_size, stride=stride,
                               padding=kernel_size // 2)
        self.blocks = nn.Sequential(*(GatedBlock(channels, hidden, kernel_size)
                                      for _ in range(depth)))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, length) samples are one channel; (batch, channels, length) pass as they are.
        x = x.reshape(x.shape[0], self.in_channels, -1)
        return self.head(self.blocks(self.embed(x)).mean(dim=2))


def gated_conv(num_classes: int = 10, channels: int = 24, hidden: int = 48, depth: int = 3,
               kernel_size: int = 5, stride: int = 2, in_channels: int = 1) -> GatedConvNet:
    """The gated sequence model (``model.factory: actsearch.zoo.gated:gated_conv``).

    Args:
        num_classes: The head's outputs.
        channels: The residual stream's channels.
        hidden: Channels of each block's gate and signal.
        depth: Gated blocks.
        kernel_size: The embedding's and the gate and signal convs' window (odd).
        stride: The embedding's stride (2 halves the sequence: 40 steps become 20).
        in_channels: Channels of a sample (MNIST-1D: 1).
    """
    for name, value in (("num_classes", num_classes), ("channels", channels),
                        ("hidden", hidden), ("depth", depth), ("kernel_size", kernel_size),
                        ("stride", stride), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ActsearchError(f"model.kwargs.{name}: expected an integer >= 1, got "
                                 f"{value!r}")
    if kernel_size % 2 == 0:
        raise ActsearchError(f"model.kwargs.kernel_size: expected an odd window (the sequence "
                             f"keeps its length), got {kernel_size}")
    return GatedConvNet(num_classes, channels, hidden, depth, kernel_size, stride, in_channels)
