"""Build a plain ``nn.Sequential`` from an architecture and a Layout.

The result uses only stock torch modules, so a model rebuilt from an exported config needs
nothing of actsearch to run. Each hidden block is weight layer -> optional norm -> activation
(-> dropout), and the weight layer is initialised for the activation that follows it.
"""

from __future__ import annotations

from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import (
    activation_names,
    create_activation,
    get_activation,
    init_layer_for,
)
from actsearch.models.layout import Layout
from actsearch.schema.space import ModelSpec, conv_output_sizes, conv_shape_problem

__all__ = ["build_model", "hidden_activations"]


def _norm(kind: str, features: int, dims: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "batch":
        return {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](features)
    # Layer norm over features; for feature maps, GroupNorm with one group normalises each
    # sample over channels and positions, which is layer norm for convolutions.
    return nn.LayerNorm(features) if dims == 0 else nn.GroupNorm(1, features)


def build_model(arch: ModelSpec, layout: Layout, input_shape: tuple[int, ...], n_classes: int,
                norm: str | None = None) -> nn.Sequential:
    """Build the network; ``norm`` overrides the architecture's first norm choice.

    Args:
        arch: The family (mlp, cnn1d, cnn2d), width and options; a CNN's kernel sizes,
            strides and paddings are per layer (``ModelSpec.conv_layers``).
        layout: One activation per hidden layer; its length is the depth.
        input_shape: One sample's shape, e.g. ``(40,)`` or ``(8, 8)``.
        n_classes: Number of output logits.
        norm: ``none``, ``batch`` or ``layer``.
    """
    norm = arch.norm[0] if norm is None else norm
    layers: list[nn.Module] = []
    if arch.family == "mlp":
        dims = 0
        if len(input_shape) > 1:
            layers.append(nn.Flatten())
        features = 1
        for n in input_shape:
            features *= n
    else:
        dims = 1 if arch.family == "cnn1d" else 2
        if len(input_shape) == dims:  # no channel axis yet: add one
            layers.append(nn.Unflatten(1, (1, input_shape[0])))
            input_shape = (1, *input_shape)
        if len(input_shape) != dims + 1:
            raise ActsearchError(f"model.family: {arch.family} expects samples of {dims} or "
                                 f"{dims + 1} axes, got shape {input_shape}")
        # Spaces of built-in data are checked when read; this catches the rest (npz and csv
        # data, specs made in code) before torch fails inside the first forward pass.
        problem = conv_shape_problem(arch, layout.depth, input_shape)
        if problem is not None:
            raise ActsearchError(f"model.kernel_size: {problem}")
        features = input_shape[0]
        size = ([input_shape[1:]] + conv_output_sizes(arch, layout.depth, input_shape[1:]))[-1]
        convs = arch.conv_layers(layout.depth)
    for i, layer in enumerate(layout.layers):
        if dims == 0:
            weight: nn.Module = nn.Linear(features, arch.width)
        else:
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            weight = conv(features, arch.width, convs[i].kernel_size, stride=convs[i].stride,
                          padding=convs[i].padding)
        init_layer_for(weight, layer.activation)
        layers.append(weight)
        norm_layer = _norm(norm, arch.width, dims)
        if norm_layer is not None:
            layers.append(norm_layer)
        layers.append(create_activation(layer.activation, layer.param))
        if arch.dropout > 0:
            # SELU's self-normalisation needs AlphaDropout, which keeps mean and variance.
            selu = get_activation(layer.activation).name == "selu"
            layers.append(nn.AlphaDropout(arch.dropout) if selu else nn.Dropout(arch.dropout))
        features = arch.width
    if dims > 0:
        layers.append(nn.Flatten())
        for s in size:
            features *= s
    layers.append(nn.Linear(features, n_classes))
    return nn.Sequential(*layers)


def hidden_activations(model: nn.Sequential) -> list[nn.Module]:
    """The activation modules of the hidden layers, input side first (for probes and hooks)."""
    classes = tuple(getattr(nn, get_activation(n).torch_class) for n in activation_names())
    return [m for m in model if isinstance(m, classes)]
