"""Sampling a candidate through an Optuna trial: the only place that calls ``trial.suggest_*``.

Param names: ``depth``, ``norm``, ``lr`` when searched; per layer i, ``act_i`` and, for an
activation with a parameter, ``{activation}_{param}_i`` (e.g. ``elu_alpha_1``).
A factory model's: ``act:<group>`` and ``{activation}_{param}:<group>`` per group of sites
(``space.custom.groups``), each among its group's own choices and ranges.
``actsearch.models.layout.candidate_from_params`` rebuilds the candidate from them.
"""

from __future__ import annotations

import optuna

from actsearch.models.layout import Candidate, Layer, Layout, param_names
from actsearch.schema.space import FloatRange, IntRange, SearchSpace

__all__ = ["suggest_candidate"]


def _suggest_float(trial: optuna.Trial, name: str, value: float | FloatRange) -> float:
    if isinstance(value, FloatRange):
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    return value


def suggest_candidate(trial: optuna.Trial, space: SearchSpace) -> Candidate:
    """Sample a candidate from the space through the trial."""
    if space.model.factory is not None:  # one choice per group of sites
        groups = space.custom.groups
        names: tuple[str, ...] | None = tuple(g.name for g in groups)
        slots = [(g.name, g.choices, g.ranges) for g in groups]
    else:
        depth = space.model.depth
        if isinstance(depth, IntRange):
            depth = trial.suggest_int("depth", depth.low, depth.high)
        names = None
        slots = [(i, space.choices, space.param_ranges) for i in range(depth)]
    layers = []
    for key, choices, ranges in slots:
        name = trial.suggest_categorical(param_names(key, "relu")[0], list(choices))
        param_key = param_names(key, name)[1]
        param = None
        if param_key is not None:
            param = _suggest_float(trial, param_key, ranges[name])
        layers.append(Layer(name, param))
    norms = space.model.norm
    norm = norms[0] if len(norms) == 1 else trial.suggest_categorical("norm", list(norms))
    lr = _suggest_float(trial, "lr", space.train.lr)
    return Candidate(Layout(tuple(layers), names), norm, lr)
