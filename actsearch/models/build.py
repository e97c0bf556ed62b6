"""Build any space's candidate model: the one place a network comes from.

``build_candidate`` is the one builder, and the only place that tells a shipped family from a
factory model; ``trainers.start_model`` (seeded: trainers, populations, the driver's
reference model, latency, export's retraining and ``train_config``) and an exported config's
model (``engine.export``: weights replace its init) call it. ``base_model`` is a space's
model before any layout, for listing its sites.

A shipped family (``model.family``) is built by its factory in ``actsearch.zoo`` with the
layout passed in at build time (weights drawn in the order they always were: the same seed
gives the same network); a factory model (``model.factory``) by the user's function, its
sites then replaced (``space.custom.build``). The family stays the space file's word (a
stored space's document does not change); ``FAMILY_FACTORIES`` maps it to its zoo factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import activation_names, get_activation
from actsearch.models.factory import load_factory
from actsearch.models.layout import Layout, parse_layout
from actsearch.schema.space import ModelSpec, SearchSpace
from actsearch.zoo.cnn import cnn1d, cnn2d
from actsearch.zoo.mlp import mlp

__all__ = ["FAMILY_FACTORIES", "base_model", "build_candidate", "build_model", "family_kwargs",
           "hidden_activations"]

# Each family's zoo factory (a space file may name it as ``model.factory`` too).
FAMILY_FACTORIES: dict[str, Callable[..., nn.Sequential]] = {
    "mlp": mlp,
    "cnn1d": cnn1d,
    "cnn2d": cnn2d,
}


def family_kwargs(arch: ModelSpec, input_shape: tuple[int, ...], n_classes: int,
                  norm: str | None = None) -> dict[str, Any]:
    """The zoo factory's keyword arguments for a family's model spec (all but the layout)."""
    kwargs: dict[str, Any] = {
        "input_shape": tuple(input_shape), "n_classes": n_classes, "width": arch.width,
        "norm": arch.norm[0] if norm is None else norm, "dropout": arch.dropout}
    if arch.family != "mlp":
        kwargs.update(kernel_size=arch.kernel_size, stride=arch.stride, padding=arch.padding)
    return kwargs


def build_model(arch: ModelSpec, layout: Layout, input_shape: tuple[int, ...], n_classes: int,
                norm: str | None = None) -> nn.Sequential:
    """A shipped family's network, by its zoo factory; ``norm`` overrides the spec's first
    norm choice.

    Args:
        arch: The family (mlp, cnn1d, cnn2d), width and options; a CNN's kernel sizes,
            strides and paddings are per layer (``ModelSpec.conv_layers``).
        layout: One activation per hidden layer; its length is the depth.
        input_shape: One sample's shape, e.g. ``(40,)`` or ``(8, 8)``.
        n_classes: Number of output logits.
        norm: ``none``, ``batch`` or ``layer``.
    """
    if arch.factory is not None:  # a caller's slip: a factory model has no family
        raise ActsearchError(f"model.factory: {arch.factory!r} is built by build_candidate, "
                             f"not as a family")
    factory = FAMILY_FACTORIES[arch.family]
    return factory(layout=layout, **family_kwargs(arch, input_shape, n_classes, norm))


def build_candidate(space: SearchSpace, layout: Layout, input_shape: tuple[int, ...],
                    n_classes: int, norm: str | None = None) -> nn.Module:
    """The network of one candidate of any space, untrained; the caller seeds torch first.

    Args:
        space: The space; a factory model's needs its sites found (``space.custom``).
        layout: The candidate's layout (per hidden layer, or per group of sites).
        input_shape, n_classes: The data's (a factory model's own factory knows them).
        norm: The candidate's norm (a family's; default: the spec's first choice).
    """
    if space.model.factory is None:
        return build_model(space.model, layout, input_shape, n_classes, norm)
    if space.custom is None:  # a caller's slip, not a user's: the sites are found first
        raise ActsearchError(f"space {space.name!r}: a factory model is built once its sites "
                             f"are found (actsearch.models.custom.with_sites)")
    return space.custom.build(layout)


def base_model(space: SearchSpace, input_shape: tuple[int, ...],
               n_classes: int = 2) -> nn.Module:
    """The model a space's trials start from before any candidate's layout, for listing its
    sites: a family's at its first depth with every layer the first choice, a factory
    model's as its factory builds it (its sites are not found yet, so no layout applies).

    Args:
        space: The space (a factory is imported from its stored, absolute path).
        input_shape: One sample's shape.
        n_classes: Output logits; the head follows the last site, so its size changes no
            site (two will do).
    """
    if space.model.factory is not None:
        model = load_factory(space.model.factory)(**space.model.kwargs)
        if not isinstance(model, nn.Module):
            raise ActsearchError(f"{space.source}: model.factory: {space.model.factory!r} "
                                 f"returned {type(model).__name__}, expected a torch nn.Module")
        return model
    layout = parse_layout(" | ".join([space.choices[0]] * space.depths[0]))
    return build_model(space.model, layout, input_shape, n_classes)


def hidden_activations(model: nn.Sequential) -> list[nn.Module]:
    """The activation modules of the hidden layers, input side first (for probes and hooks)."""
    classes = tuple(getattr(nn, get_activation(n).torch_class) for n in activation_names())
    return [m for m in model if isinstance(m, classes)]
