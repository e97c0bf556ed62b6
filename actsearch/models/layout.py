"""Layouts: which activation (and parameter) each hidden layer uses.

Sampling (``actsearch.engine.suggest``, the only caller of ``trial.suggest_*``) and building
are separate: a Candidate is rebuilt from a trial's params alone (``candidate_from_params``),
so any trial, finished or exported, can be rebuilt without replaying the sampler.

Param names: ``depth``, ``norm``, ``lr`` when searched; per layer i, ``act_i`` and, for an
activation with a parameter, ``{activation}_{param}_i`` (e.g. ``elu_alpha_1``). A factory
model's layout has one entry per group of sites instead (``space.custom.groups``, input side
first): ``act:<group>`` and ``{activation}_{param}:<group>`` (e.g. ``elu_alpha:gates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actsearch.errors import ActsearchError
from actsearch.models.activations import get_activation
from actsearch.schema.space import FloatRange, IntRange, SearchSpace

__all__ = [
    "Candidate",
    "Layer",
    "Layout",
    "candidate_from_params",
    "layout_params",
    "param_names",
    "parse_layout",
    "uniform_candidates",
    "uniform_choices",
]


@dataclass(frozen=True)
class Layer:
    """One hidden layer's activation; ``param`` is set only for parametrised activations."""

    activation: str
    param: float | None = None

    def __str__(self) -> str:
        if self.param is None:
            return self.activation
        # Two decimals read well for alphas around 1; a leaky_relu slope of 0.003 needs its
        # significant digits (two decimals printed it as 0.00).
        small = self.param != 0 and abs(self.param) < 0.1
        return f"{self.activation}({self.param:.2g})" if small else \
            f"{self.activation}({self.param:.2f})"


@dataclass(frozen=True)
class Layout:
    """The per-layer activations of a network, input side first; a factory model's, one per
    group of sites, with the groups' ``names``."""

    layers: tuple[Layer, ...]
    names: tuple[str, ...] | None = None

    def __str__(self) -> str:
        if self.names is not None:
            return " | ".join(f"{name}={layer}"
                              for name, layer in zip(self.names, self.layers, strict=True))
        return " | ".join(str(layer) for layer in self.layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def is_uniform(self) -> bool:
        return len({layer.activation for layer in self.layers}) == 1 and len(
            {layer.param for layer in self.layers}
        ) == 1

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        keys = self.names or range(len(self.layers))
        for key, layer in zip(keys, self.layers, strict=True):
            act, param = param_names(key, layer.activation)
            params[act] = layer.activation
            if param is not None:
                params[param] = layer.param
        return params


def relu_layout(depth: int) -> Layout:
    """ReLU on each of ``depth`` layers (a factory model's: groups): the model latencies are
    relative to, and the one a zoo factory builds when given no layout."""
    return Layout(tuple(Layer("relu") for _ in range(depth)))


def param_names(key: int | str, activation: str) -> tuple[str, str | None]:
    """The params of layer ``key`` (an index), or of a factory model's group ``key`` (a name):
    its activation's, and its parameter's when the activation has one."""
    param = get_activation(activation).param
    if isinstance(key, str):
        return f"act:{key}", None if param is None else f"{activation}_{param}:{key}"
    return f"act_{key}", None if param is None else f"{activation}_{param}_{key}"


@dataclass(frozen=True)
class Candidate:
    """Everything a trial decides: the layout and the searched parts of model and recipe."""

    layout: Layout
    norm: str
    lr: float


def parse_layout(text: str) -> Layout:
    """Parse the display form, e.g. ``relu | elu(0.73) | selu``."""
    layers = []
    for part in text.split("|"):
        part = part.strip()
        name, _, rest = part.partition("(")
        spec = get_activation(name.strip())
        param = None
        if rest:
            try:
                param = float(rest.rstrip(")"))
            except ValueError:
                raise ActsearchError(f"layout {text!r}: bad parameter in {part!r}") from None
        elif spec.param is not None:
            param = spec.default
        layers.append(Layer(spec.name, param))
    return Layout(tuple(layers))


def candidate_from_params(params: dict[str, Any], space: SearchSpace) -> Candidate:
    """Rebuild the candidate a trial sampled, from its params alone (a factory model's needs
    its groups: ``space.custom``)."""
    names = _group_names(space)
    try:
        if names is None:
            depth = params["depth"] if isinstance(space.model.depth, IntRange) \
                else space.model.depth
        keys = names or range(depth)
        layers = []
        for key in keys:
            name = params[param_names(key, "relu")[0]]
            param_key = param_names(key, name)[1]
            layers.append(Layer(name, None if param_key is None else float(params[param_key])))
        norm = params["norm"] if len(space.model.norm) > 1 else space.model.norm[0]
        lr = float(params["lr"]) if isinstance(space.train.lr, FloatRange) else space.train.lr
    except KeyError as e:
        raise ActsearchError(f"trial params lack {e.args[0]!r} for space {space.name!r}") from None
    return Candidate(Layout(tuple(layers), names), norm, lr)


def _group_names(space: SearchSpace) -> tuple[str, ...] | None:
    """A factory model's group names, input side first; None for the shipped families."""
    if space.model.factory is None:
        return None
    if space.custom is None:  # a caller's slip, not a user's: the sites are found first
        raise ActsearchError(f"space {space.name!r}: a factory model's groups are known once "
                             f"its sites are found (actsearch.models.custom.with_sites)")
    return tuple(g.name for g in space.custom.groups)



def layout_params(space: SearchSpace, activations: list[str], norm: str | None = None
                  ) -> dict[str, Any]:
    """Params of a designed candidate: these activations (input side first; a factory
    model's, one per group), each with its default parameter (moved into the range if need
    be), and the searched depth, norm and lr at the uniform baselines' values (the depth of
    the layout, the first norm unless ``norm`` is given, the geometric middle of the lr
    range), so that designed candidates differ only in what they are designed to differ in."""
    names = _group_names(space)
    groups = space.custom.groups if names is not None else None
    layers = []
    for i, name in enumerate(activations):
        spec = get_activation(name)
        param = None
        if spec.param is not None:
            r = space.param_ranges[name] if groups is None else groups[i].ranges[name]
            param = min(max(spec.default, r.low), r.high)
        layers.append(Layer(name, param))
    params = Layout(tuple(layers), names).to_params()
    if isinstance(space.model.depth, IntRange):
        params["depth"] = len(layers)
    if len(space.model.norm) > 1:
        params["norm"] = space.model.norm[0] if norm is None else norm
    if isinstance(space.train.lr, FloatRange):
        params["lr"] = (space.train.lr.low * space.train.lr.high) ** 0.5
    return params


def uniform_candidates(space: SearchSpace) -> list[dict[str, Any]]:
    """Params of the uniform baselines (each choice on every layer, default parameter) at the
    space's smallest depth (see ``layout_params``); a factory model's: each activation that
    every group may choose, on every site (``uniform_choices``)."""
    n = space.depths[0] if space.model.factory is None else len(space.custom.groups)
    return [layout_params(space, [name] * n) for name in uniform_choices(space)[0]]


def uniform_choices(space: SearchSpace) -> tuple[list[str], list[str]]:
    """The activations a uniform baseline can use (every group may choose them), and those
    left out because some group may not (a factory model's groups with their own choices)."""
    if space.model.factory is None:
        return list(space.choices), []
    groups = space.custom.groups if space.custom is not None else ()
    every = list(dict.fromkeys(c for g in groups for c in g.choices))
    common = [c for c in every if all(c in g.choices for g in groups)]
    return common, [c for c in every if c not in common]
