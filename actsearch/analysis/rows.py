"""Trials as the tables and graphs show them (``LayoutRow``), and the one ranking of them.

The validation metric ranks every table and graph, in its direction (the first objective's):
``_rank_key`` is that ranking, used by every other module of the analysis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actsearch.engine.record import TrialRecord
from actsearch.schema.space import Metric

__all__ = ["LayoutRow", "choices_of", "metric_name", "metric_sign", "with_choices"]


@dataclass(frozen=True)
class LayoutRow:
    """One finished trial as the tables and graphs show it."""

    number: int
    layout: str
    val_acc: float  # NaN when none was measured
    epochs: int
    train_seconds: float
    uniform: bool
    end: str
    test_acc: float | None = None  # complete trials: the held-out test split
    choices: str = ""  # the searched choices besides the activations, e.g. "norm batch"
    # +1 where a higher validation metric is better (accuracy), -1 where lower is (a
    # train.metric minimised): what ranking a row means.
    sign: int = 1

    @property
    def label(self) -> str:
        """The layout with its searched choices, as every table and graph names a candidate."""
        return with_choices(self.layout, self.choices)


def metric_sign(objectives: Sequence[tuple[str, str]]) -> int:
    """+1 when the first objective, the validation metric, is maximised; -1 when minimised."""
    return Metric.of(objectives[0]).sign if objectives else 1


def metric_name(objectives: Sequence[tuple[str, str]]) -> str:
    """The validation metric's name in words: accuracy, or train.metric's name."""
    return objectives[0][0] if objectives else "accuracy"


# The searched choices besides the activations (``actsearch.models.layout``'s param names), in
# the order a label names them.
_CHOICE_PARAMS = ("depth", "norm", "lr")


def choices_of(params: dict[str, Any]) -> str:
    """A trial's searched choices besides its activations, in words ("" when none searched):
    a param is in a trial's params only where the space searches it."""
    parts = []
    for name in _CHOICE_PARAMS:
        if name in params:
            value = params[name]
            parts.append(f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts)


def with_choices(layout: str, choices: str) -> str:
    return f"{layout} [{choices}]" if choices else layout


def _row(record: TrialRecord, sign: int = 1) -> LayoutRow:
    return LayoutRow(record.number, record.layout or "?", record.accuracy,
                     int(record.epochs or 0), float(record.train_seconds or 0.0),
                     bool(record.uniform), record.end or record.state.name,
                     None if record.test_acc is None else float(record.test_acc),
                     choices_of(record.params), sign)


def _rank_key(row: LayoutRow) -> tuple[bool, float, int]:
    # The validation metric ranks every table and graph, whatever the objectives (it is always
    # measured); ties go to the earlier trial, unmeasured trials last.
    unmeasured = math.isnan(row.val_acc)
    return unmeasured, 0.0 if unmeasured else -row.sign * row.val_acc, row.number


def _distinct(ranked: Sequence[LayoutRow]) -> list[LayoutRow]:
    """The best row of each distinct layout, best first: a sampler may propose a layout twice,
    and the graphs show layouts, not repeats."""
    seen: set[str] = set()
    best = []
    for row in ranked:
        if row.layout not in seen:
            seen.add(row.layout)
            best.append(row)
    return best
