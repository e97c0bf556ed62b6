"""A user's model as a search runs it: the factory, the groups of its sites, and a candidate's
model built from them.

A space with ``model.factory`` names the user's function; its sites are found once per
process on a batch of the data (``with_sites``), tied into the space's groups, and every trial
then calls the factory (seeded by the caller), replaces the sites with its layout
(``apply_layout``, one choice per group) and trains the result. Calling the factory runs the
user's code: an error it raises propagates with its own traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.apply import apply_layout
from actsearch.models.factory import load_factory
from actsearch.models.groups import GroupSpec, SiteGroup, group_layout, resolve_groups
from actsearch.models.layout import Layout
from actsearch.models.sites import Site, find_sites
from actsearch.schema.space import SearchSpace
from actsearch.zoo.layers import layer_groups

__all__ = ["CustomModel", "group_specs", "with_sites"]


@dataclass(frozen=True)
class CustomModel:
    """A factory model's searchable form.

    Attributes:
        factory: The user's function (called with ``kwargs``) that returns an ``nn.Module``.
        kwargs: Its keyword arguments.
        name: The factory's name, for messages.
        init: ``keep`` or ``auto`` (``apply_layout``'s).
        groups: The sites' groups, input side first: one choice each.
        example_input: A batch of two samples, on the CPU, as the model is built.
        sites: Every site's name in execution order (whether groups interleave: the claims'
            early and deep groups).
    """

    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    name: str
    init: str
    groups: tuple[SiteGroup, ...]
    example_input: torch.Tensor
    sites: tuple[str, ...] = ()

    def make(self) -> nn.Module:
        """The factory's model, as it builds it."""
        model = self.factory(**self.kwargs)
        if not isinstance(model, nn.Module):
            raise ActsearchError(f"model.factory: {self.name!r} returned "
                                 f"{type(model).__name__}, expected a torch nn.Module")
        return model

    def build(self, layout: Layout) -> nn.Module:
        """The factory's model with the layout's choice (one per group) at each site."""
        chosen = dict(zip((g.name for g in self.groups), layout.layers, strict=True))
        return apply_layout(self.make(), group_layout(self.groups, chosen),
                            example_input=self.example_input, init=self.init)


def with_sites(space: SearchSpace, example_input: torch.Tensor,
               factory: Callable[..., Any] | None = None) -> SearchSpace:
    """The space with its factory model's sites found and grouped (``space.custom``); the
    shipped families' spaces come back as they are.

    Args:
        space: A space whose ``model.factory`` names the factory.
        example_input: A batch of the training data (two samples are used).
        factory: The function itself, when the caller holds it (the Python API); else it is
            imported from ``model.factory``.
    """
    if space.model.factory is None or space.custom is not None:
        return space
    name = space.model.factory
    custom = CustomModel(factory or load_factory(name), dict(space.model.kwargs), name,
                         space.model.init, (), example_input[:2].detach().to("cpu"))
    with torch.random.fork_rng(devices=[]):  # finding sites leaves the search's RNG alone
        found = find_sites(custom.make(), custom.example_input)
    if not found.sites:
        raise ActsearchError(f"{space.source}: model.factory: {name!r} has no activation site "
                             f"to search{_why(found.unsearchable)}")
    try:
        groups = resolve_groups(found.sites, group_specs(space), choices=space.choices,
                                ranges=space.param_ranges)
    except ActsearchError as e:  # name the file the groups came from
        raise ActsearchError(f"{space.source}: {e}") from None
    # Latency objectives are relative to the model with ReLU at every site, a layout the
    # search must be able to choose; without one, the probes store absolute latencies only.
    latency = [n for n, _ in space.objectives if n.startswith("latency")]
    no_relu = [g.name for g in groups if "relu" not in g.choices]
    if latency and no_relu:
        raise ActsearchError(f"{space.source}: objectives: {latency[0]} is relative to ReLU at "
                             f"every site, but group {no_relu[0]} cannot choose relu")
    return dataclasses.replace(space, custom=dataclasses.replace(
        custom, groups=tuple(groups), sites=tuple(s.name for s in found.sites)))


def group_specs(space: SearchSpace, sites: Iterable[Site] = ()) -> dict[str, GroupSpec]:
    """The space's groups as ``resolve_groups`` takes them; a shipped family's, one per hidden
    layer of its model (whose ``sites`` are given), named as the layer's trial param."""
    if space.model.factory is None:
        return {group: GroupSpec(names) for group, names in layer_groups(sites).items()}
    return {group: GroupSpec(g.sites, g.choices, g.ranges) for group, g in space.groups.items()}


def _why(unsearchable: tuple[str, ...]) -> str:
    return f" ({unsearchable[0]})" if unsearchable else ""
