"""Sampling a candidate through an Optuna trial: the only place that calls ``trial.suggest_*``.

Param names: ``depth``, ``norm``, ``lr`` when searched; per layer i, ``act_i`` and, for an
activation with a parameter, ``{activation}_{param}_i`` (e.g. ``elu_alpha_1``).
``actsearch.models.layout.candidate_from_params`` rebuilds the candidate from them.
"""

from __future__ import annotations

import optuna

from actsearch.models.activations import get_activation
from actsearch.models.layout import Candidate, Layer, Layout
from actsearch.schema.space import FloatRange, IntRange, SearchSpace

__all__ = ["suggest_candidate"]


def _suggest_float(trial: optuna.Trial, name: str, value: float | FloatRange) -> float:
    if isinstance(value, FloatRange):
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    return value


def suggest_candidate(trial: optuna.Trial, space: SearchSpace) -> Candidate:
    """Sample a candidate from the space through the trial."""
    depth = space.model.depth
    if isinstance(depth, IntRange):
        depth = trial.suggest_int("depth", depth.low, depth.high)
    layers = []
    for i in range(depth):
        name = trial.suggest_categorical(f"act_{i}", list(space.choices))
        spec = get_activation(name)
        param = None
        if spec.param is not None:
            param = _suggest_float(trial, f"{name}_{spec.param}_{i}", space.param_ranges[name])
        layers.append(Layer(name, param))
    norms = space.model.norm
    norm = norms[0] if len(norms) == 1 else trial.suggest_categorical("norm", list(norms))
    lr = _suggest_float(trial, "lr", space.train.lr)
    return Candidate(Layout(tuple(layers)), norm, lr)
