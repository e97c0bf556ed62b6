"""Layouts: which activation (and parameter) each hidden layer uses.

Sampling (``actsearch.engine.suggest``, the only caller of ``trial.suggest_*``) and building
are separate: a Candidate is rebuilt from a trial's params alone (``candidate_from_params``),
so any trial, finished or exported, can be rebuilt without replaying the sampler.

Param names: ``depth``, ``norm``, ``lr`` when searched; per layer i, ``act_i`` and, for an
activation with a parameter, ``{activation}_{param}_i`` (e.g. ``elu_alpha_1``).
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
    "parse_layout",
    "uniform_candidates",
]


@dataclass(frozen=True)
class Layer:
    """One hidden layer's activation; ``param`` is set only for parametrised activations."""

    activation: str
    param: float | None = None

    def __str__(self) -> str:
        return self.activation if self.param is None else f"{self.activation}({self.param:.2f})"


@dataclass(frozen=True)
class Layout:
    """The per-layer activations of a network, input side first."""

    layers: tuple[Layer, ...]

    def __str__(self) -> str:
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
        for i, layer in enumerate(self.layers):
            params[f"act_{i}"] = layer.activation
            spec = get_activation(layer.activation)
            if spec.param is not None:
                params[f"{layer.activation}_{spec.param}_{i}"] = layer.param
        return params


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
    """Rebuild the candidate a trial sampled, from its params alone."""
    try:
        depth = params["depth"] if isinstance(space.model.depth, IntRange) else space.model.depth
        layers = []
        for i in range(depth):
            name = params[f"act_{i}"]
            spec = get_activation(name)
            param = None if spec.param is None else float(params[f"{name}_{spec.param}_{i}"])
            layers.append(Layer(name, param))
        norm = params["norm"] if len(space.model.norm) > 1 else space.model.norm[0]
        lr = float(params["lr"]) if isinstance(space.train.lr, FloatRange) else space.train.lr
    except KeyError as e:
        raise ActsearchError(f"trial params lack {e.args[0]!r} for space {space.name!r}") from None
    return Candidate(Layout(tuple(layers)), norm, lr)



def layout_params(space: SearchSpace, activations: list[str], norm: str | None = None
                  ) -> dict[str, Any]:
    """Params of a designed candidate: these activations (input side first), each with its
    default parameter (moved into the space's range if need be), and the searched depth, norm
    and lr at the uniform baselines' values (the depth of the layout, the first norm unless
    ``norm`` is given, the geometric middle of the lr range), so that designed candidates
    differ only in what they are designed to differ in."""
    layers = []
    for name in activations:
        spec = get_activation(name)
        param = None
        if spec.param is not None:
            r = space.param_ranges[name]
            param = min(max(spec.default, r.low), r.high)
        layers.append(Layer(name, param))
    params = Layout(tuple(layers)).to_params()
    if isinstance(space.model.depth, IntRange):
        params["depth"] = len(layers)
    if len(space.model.norm) > 1:
        params["norm"] = space.model.norm[0] if norm is None else norm
    if isinstance(space.train.lr, FloatRange):
        params["lr"] = (space.train.lr.low * space.train.lr.high) ** 0.5
    return params


def uniform_candidates(space: SearchSpace) -> list[dict[str, Any]]:
    """Params of the uniform baselines (each choice on every layer, default parameter) at the
    space's smallest depth (see ``layout_params``)."""
    return [layout_params(space, [name] * space.depths[0]) for name in space.choices]
