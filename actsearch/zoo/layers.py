"""What the shipped MLP and CNN share: the hidden block, the layout a factory is given, and
the groups that tie each hidden layer's site to its trial param.

A hidden block is weight layer -> optional norm -> activation (-> dropout), the weight layer
initialised for the activation that follows it, all appended to one flat ``nn.Sequential``:
its module paths (``0``, ``1``...) are the state_dict keys of every exported config, so they
must not change, and the activation modules are what ``find_sites`` finds (one per block,
input side first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import create_activation, get_activation, init_layer_for
from actsearch.models.layout import Layer, Layout, parse_layout, relu_layout
from actsearch.models.sites import Site
from actsearch.schema.documents import validate
from actsearch.schema.space import ModelSpec

__all__ = ["add_hidden_block", "layer_groups", "layout_of", "model_spec"]

_MODEL_SPEC = TypeAdapter(ModelSpec)


def layout_of(layout: Layout | str | None, depth: int, factory: str) -> Layout:
    """The layout a zoo factory builds: the one given (a ``Layout`` or its display form,
    ``relu | elu(0.5)``), else ReLU on each of ``depth`` layers (the model a search's sites
    are found on when a space names the factory as its own)."""
    if layout is None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ActsearchError(f"{factory}: depth: expected an integer >= 1, got {depth!r}")
        return relu_layout(depth)
    if isinstance(layout, str):
        layout = parse_layout(layout)
    if not isinstance(layout, Layout) or not layout.layers:
        raise ActsearchError(f"{factory}: layout: expected a Layout or a form like 'relu | "
                             f"elu(0.5)', got {layout!r}")
    return layout


def _norm(kind: str, features: int, dims: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "batch":
        return {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](features)
    # Layer norm over features; for feature maps, GroupNorm with one group normalises each
    # sample over channels and positions, which is layer norm for convolutions.
    return nn.LayerNorm(features) if dims == 0 else nn.GroupNorm(1, features)


def model_spec(factory: str, family: str, layout: Layout, **settings: Any) -> ModelSpec:
    """A zoo factory's settings (width, norm, dropout, a CNN's per-layer kernels...) checked
    by the space file's own declaration, a refusal worded as for a space file's field."""
    arch = validate(_MODEL_SPEC.validate_python,
                    {"family": family, "depth": layout.depth, **settings}, factory)
    if len(arch.norm) != 1:  # a space file's list searches the norm; a model has one
        raise ActsearchError(f"{factory}: norm: expected one norm, got {settings['norm']!r}")
    return arch


def add_hidden_block(layers: list[nn.Module], weight: nn.Module, layer: Layer, arch: ModelSpec,
                     dims: int) -> None:
    """Append one hidden block to ``layers`` (norm and dropout as ``arch`` says; ``dims``: 0
    for an MLP, else the conv's). The weight layer is made by the caller (its default init
    draws random numbers first), then re-initialised here for the activation: the order a
    seed's weights have always been drawn in."""
    init_layer_for(weight, layer.activation)
    layers.append(weight)
    norm_layer = _norm(arch.norm[0], arch.width, dims)
    if norm_layer is not None:
        layers.append(norm_layer)
    layers.append(create_activation(layer.activation, layer.param))
    if arch.dropout > 0:
        # SELU's self-normalisation needs AlphaDropout, which keeps mean and variance.
        selu = get_activation(layer.activation).name == "selu"
        layers.append(nn.AlphaDropout(arch.dropout) if selu else nn.Dropout(arch.dropout))


def layer_groups(sites: Iterable[Site | str]) -> dict[str, tuple[str, ...]]:
    """A zoo model's sites as one group per hidden layer, named as the layer's trial param
    (``act_0``, ``act_1``...): each hidden block has one activation, input side first."""
    return {f"act_{i}": (site.name if isinstance(site, Site) else str(site),)
            for i, site in enumerate(sites)}
