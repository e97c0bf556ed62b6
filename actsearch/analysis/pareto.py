"""The complete trials in objective space and their Pareto front: with one objective,
validation metric against training time; with several, the study's own objectives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from actsearch.analysis.rows import LayoutRow, _rank_key, _row, metric_name, metric_sign
from actsearch.engine.record import TrialRecord, records
from actsearch.schema.space import Metric
from actsearch.stats import pareto_front

__all__ = ["ParetoInfo", "ParetoPoint", "pareto_rows"]


@dataclass(frozen=True)
class ParetoPoint:
    """A complete trial in objective space."""

    row: LayoutRow
    values: tuple[float, ...]  # one per axis of ``ParetoInfo.names``
    on_front: bool


@dataclass(frozen=True)
class ParetoInfo:
    """The complete trials in objective space and which of them are non-dominated.

    With one objective the axes are validation accuracy (max) and training time (min): which
    layouts buy accuracy with speed. With several, the study's own objectives (accuracy first).
    """

    names: tuple[str, ...]  # the axes
    signs: tuple[int, ...]  # +1 for a maximised axis, -1 for a minimised one
    points: list[ParetoPoint]  # trials with finite values on every axis, in trial order

    @property
    def front(self) -> list[ParetoPoint]:
        """The non-dominated points, best validation accuracy first."""
        return sorted((p for p in self.points if p.on_front), key=lambda p: _rank_key(p.row))


def _pareto_info(recs: Sequence[TrialRecord], objectives: Sequence[tuple[str, str]]
                 ) -> ParetoInfo:
    complete = [r for r in recs if r.is_complete]
    sign = metric_sign(objectives)
    if len(objectives) > 1:
        names = tuple(n for n, _ in objectives)
        signs = tuple(Metric.of(o).sign for o in objectives)
        pairs = [(r, tuple(float(v) for v in r.values)) for r in complete
                 if r.values is not None]
    else:
        name = metric_name(objectives)
        names = ("val acc" if name == "accuracy" else f"val {name}", "train s")
        signs = (sign, -1)  # the metric in its direction; training time: lower is better
        pairs = [(r, (r.accuracy, math.nan if r.train_seconds is None
                      else float(r.train_seconds))) for r in complete]
    # A failed measurement is not a trade-off: such trials are not drawn at all.
    pairs = [(r, v) for r, v in pairs if all(math.isfinite(x) for x in v)]
    front = set(pareto_front([v for _, v in pairs], signs))
    return ParetoInfo(names, signs, [ParetoPoint(_row(r, sign), v, i in front)
                                          for i, (r, v) in enumerate(pairs)])


def pareto_rows(trials: Sequence[FrozenTrial], objectives: Sequence[tuple[str, str]]
                ) -> list[tuple[LayoutRow, tuple[float, ...]]]:
    """The non-dominated complete trials under the study's objectives, best accuracy first.

    With one objective, the front of validation accuracy (max) against training time (min):
    which layouts buy accuracy with speed.
    """
    return [(p.row, p.values) for p in _pareto_info(records(trials), objectives).front]
