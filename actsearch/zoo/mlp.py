"""The shipped MLP: constant-width hidden layers, one activation each.

``model.family: mlp`` builds through this factory (``actsearch.models.build``), and a space
may name it as its own model (``model.factory: actsearch.zoo.mlp:mlp``, with kwargs). Stock
torch modules only, in one flat ``nn.Sequential``: a model rebuilt from an exported config
needs nothing of actsearch to run.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.layout import Layout
from actsearch.zoo.layers import add_hidden_block, layout_of, model_spec

__all__ = ["mlp"]


def mlp(*, input_shape: Sequence[int], n_classes: int, width: int = 100, depth: int = 3,
        layout: Layout | str | None = None, norm: str = "none",
        dropout: float = 0.0) -> nn.Sequential:
    """[Flatten ->] (Linear -> [norm ->] activation [-> dropout]) per layer -> Linear.

    Args:
        input_shape: One sample's shape; more than one axis is flattened first.
        n_classes: Number of output logits.
        width: Units per hidden layer.
        depth: Hidden layers, when no layout is given (each then uses ReLU).
        layout: One activation per hidden layer, input side first (its length is the
            depth): a ``Layout`` or its display form (``relu | elu(0.5) | selu``).
        norm: ``none``, ``batch`` or ``layer`` after each hidden Linear.
        dropout: After each activation (AlphaDropout after SELU).
    """
    name = "actsearch.zoo.mlp:mlp"
    layout = layout_of(layout, depth, name)
    arch = model_spec(name, "mlp", layout, width=width, norm=norm, dropout=dropout)
    shape = tuple(input_shape)
    if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ActsearchError(f"{name}: input_shape: expected one sample's "
                             f"shape, e.g. [40], got {input_shape!r}")
    layers: list[nn.Module] = []
    if len(shape) > 1:
        layers.append(nn.Flatten())
    features = 1
    for n in shape:
        features *= n
    for layer in layout.layers:
        add_hidden_block(layers, nn.Linear(features, width), layer, arch, 0)
        features = width
    layers.append(nn.Linear(features, n_classes))
    return nn.Sequential(*layers)
