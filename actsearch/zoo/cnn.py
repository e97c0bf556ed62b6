"""The shipped CNNs over 1-D and 2-D samples: constant-width conv layers, one activation each.

``model.family: cnn1d`` / ``cnn2d`` build through these factories
(``actsearch.models.build``), and a space may name one as its own model
(``model.factory: actsearch.zoo.cnn:cnn1d``, with kwargs). Kernel sizes, strides and padding
take the space file's forms (one for every layer, or a list with one per layer; padding
``same``), resolved by ``ModelSpec.conv_layers``, the one definition of them. Stock torch
modules only, in one flat ``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.layout import Layout
from actsearch.schema.space import conv_output_sizes, conv_shape_problem
from actsearch.zoo.layers import add_hidden_block, layout_of, model_spec

__all__ = ["cnn1d", "cnn2d"]

PerLayer = int | Sequence[int]


def cnn1d(*, input_shape: Sequence[int], n_classes: int, width: int = 25, depth: int = 3,
          kernel_size: PerLayer = 5, stride: PerLayer = 1,
          padding: int | str | Sequence[int | str] = "same",
          layout: Layout | str | None = None, norm: str = "none",
          dropout: float = 0.0) -> nn.Sequential:
    """A 1-D CNN; samples are ``(length,)`` or ``(channels, length)``. See ``cnn2d``."""
    return _cnn(1, input_shape, n_classes, width, depth, kernel_size, stride, padding, layout,
                norm, dropout)


def cnn2d(*, input_shape: Sequence[int], n_classes: int, width: int = 16, depth: int = 2,
          kernel_size: PerLayer = 3, stride: PerLayer = 1,
          padding: int | str | Sequence[int | str] = "same",
          layout: Layout | str | None = None, norm: str = "none",
          dropout: float = 0.0) -> nn.Sequential:
    """[Unflatten ->] (Conv -> [norm ->] activation [-> dropout]) per layer -> Flatten ->
    Linear.

    Args:
        input_shape: One sample's shape: ``(h, w)`` (one channel is added) or ``(c, h, w)``.
        n_classes: Number of output logits.
        width: Channels per conv layer.
        depth: Conv layers, when no layout is given (each then uses ReLU).
        kernel_size, stride, padding: One for every layer, or one per layer (at least as
            many as the depth: a shorter layout uses the first); padding ``same`` is
            ``kernel_size // 2``.
        layout: One activation per conv layer, input side first: a ``Layout`` or its display
            form (``relu | selu``).
        norm: ``none``, ``batch`` or ``layer`` (GroupNorm with one group) after each conv.
        dropout: After each activation (AlphaDropout after SELU).
    """
    return _cnn(2, input_shape, n_classes, width, depth, kernel_size, stride, padding, layout,
                norm, dropout)


def _per_layer(value: object, depth: int) -> object:
    """One setting, or the first ``depth`` of a list (a layout shorter than the list uses the
    first entries, as a searched depth does)."""
    return list(value)[:depth] if isinstance(value, list | tuple) else value


def _cnn(dims: int, input_shape: Sequence[int], n_classes: int, width: int, depth: int,
         kernel_size: PerLayer, stride: PerLayer, padding: int | str | Sequence[int | str],
         layout: Layout | str | None, norm: str, dropout: float) -> nn.Sequential:
    family = f"cnn{dims}d"
    name = f"actsearch.zoo.cnn:{family}"
    layout = layout_of(layout, depth, name)
    arch = model_spec(name, family, layout, width=width, norm=norm, dropout=dropout,
                      kernel_size=_per_layer(kernel_size, layout.depth),
                      stride=_per_layer(stride, layout.depth),
                      padding=_per_layer(padding, layout.depth))
    shape = tuple(input_shape)
    layers: list[nn.Module] = []
    if len(shape) == dims:  # no channel axis yet: add one
        layers.append(nn.Unflatten(1, (1, shape[0])))
        shape = (1, *shape)
    if len(shape) != dims + 1:
        raise ActsearchError(f"model.family: {family} expects samples of {dims} or "
                             f"{dims + 1} axes, got shape {shape}")
    # Spaces of built-in data are checked when read; this catches the rest (npz and csv
    # data, specs made in code) before torch fails inside the first forward pass.
    problem = conv_shape_problem(arch, layout.depth, shape)
    if problem is not None:
        raise ActsearchError(f"model.kernel_size: {problem}")
    features = shape[0]
    size = ([shape[1:]] + conv_output_sizes(arch, layout.depth, shape[1:]))[-1]
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    for layer, c in zip(layout.layers, arch.conv_layers(layout.depth), strict=True):
        weight = conv(features, width, c.kernel_size, stride=c.stride, padding=c.padding)
        add_hidden_block(layers, weight, layer, arch, dims)
        features = width
    layers.append(nn.Flatten())
    for s in size:
        features *= s
    layers.append(nn.Linear(features, n_classes))
    return nn.Sequential(*layers)
