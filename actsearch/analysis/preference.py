"""Which activation the best trials use at each layer (or each group of a factory model's
sites): the per-layer preference's heatmap, and how much each searched parameter explains
the validation metric (Optuna's fANOVA importance)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from actsearch.engine.record import TrialRecord
from actsearch.stats import LayerPreference

__all__ = ["TOP_FRACTION", "HeatmapInfo", "layer_importance"]

TOP_FRACTION = 0.25  # the per-layer preference (table and heatmap) looks at the best quarter


@dataclass(frozen=True)
class HeatmapInfo:
    """Which activation the top trials use at each depth (the per-layer preference, with every
    activation the space offered and the mean parameter, e.g. ELU's alpha)."""

    activations: list[str]  # columns, in the space's order
    layers: list[int]  # rows: layer (or a factory model's group) index, input side first
    shares: list[list[float]]  # shares[layer][activation], each row sums to 1 (or is all 0)
    counts: list[int]  # top trials that have each layer
    mean_params: list[list[float | None]]  # mean parameter (ELU alpha) where one exists
    top_trials: int  # size of the top quarter
    complete_trials: int  # complete trials with a validation accuracy
    # Each row's name ("layer 1", or a factory model's group) and the param it counts.
    labels: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)

    @property
    def per_group(self) -> bool:
        """Rows are a factory model's groups of sites, not layers."""
        return any(k.startswith("act:") for k in self.params)


def _activation_choices(recs: Sequence[TrialRecord]) -> list[str]:
    """All activations the space offered, in the space's order (from the distributions)."""
    names: list[str] = []
    for r in recs:
        for key, dist in r.distributions.items():
            if key.startswith(("act_", "act:")) and isinstance(dist, CategoricalDistribution):
                names += [str(c) for c in dist.choices if str(c) not in names]
    for r in recs:  # enqueued params only, should a trial lack distributions
        for name in r.activations:
            if name not in names:
                names.append(name)
    return names


def _top_count(n: int) -> int:
    # As stats.layer_preference counts its top trials.
    return max(1, math.ceil(TOP_FRACTION * n)) if n else 0


def _choice_rows(recs: Sequence[TrialRecord], depth: int) -> list[str]:
    """The choice param of each preference row: ``act_<i>``, or a factory model's
    ``act:<group>`` (its groups' order, from a layout that has them all)."""
    keys = max((r.choice_params for r in recs), key=len, default=[])
    return keys if len(keys) >= depth else [f"act_{i}" for i in range(depth)]


def _row_label(key: str) -> str:
    return key[4:] if key.startswith("act:") else f"layer {int(key[4:]) + 1}"


def _heatmap(ranked: Sequence[TrialRecord], preferences: Sequence[LayerPreference],
             choices: list[str]) -> HeatmapInfo:
    top = ranked[:_top_count(len(ranked))]
    keys = _choice_rows(ranked, len(preferences))
    shares, means = [], []
    for pref in preferences:
        key = keys[pref.layer]
        # A parameter's param ends as its choice's: elu_alpha_3 (act_3), elu_alpha:g (act:g).
        suffix = key[3:]
        shares.append([pref.top.get(a, 0.0) for a in choices])
        chosen = [r.params for r in top if key in r.params]
        row: list[float | None] = []
        for a in choices:
            values = [float(v) for p in chosen if str(p[key]) == a for k, v in p.items()
                      if k.startswith(f"{a}_") and k.endswith(suffix)]
            row.append(sum(values) / len(values) if values else None)
        means.append(row)
    rows = [keys[p.layer] for p in preferences]
    return HeatmapInfo(choices, [p.layer for p in preferences], shares,
                       [p.n_top for p in preferences], means, len(top), len(ranked),
                       [_row_label(k) for k in rows], rows)


def layer_importance(study: optuna.Study) -> dict[str, float]:
    """How much each searched parameter explains validation accuracy (Optuna's fANOVA).

    Empty when there are too few complete trials or nothing varies.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 4:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(
                study, target=lambda t: TrialRecord.from_frozen(t).accuracy,
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))
    except (ValueError, RuntimeError):  # e.g. a single distinct value in every param
        return {}
