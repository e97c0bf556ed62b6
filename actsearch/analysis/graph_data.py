"""The graphs' data that the rest of the analysis does not already hold: the uniform-vs-mixed
bars and the learning curves of the best layouts (``actsearch.faces.graphs`` draws them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from actsearch.analysis.rows import LayoutRow, _row
from actsearch.analysis.verdict import BestUniform, FinalistComparison
from actsearch.engine.record import TrialRecord

__all__ = ["GRAPH_TOP_K", "Bar", "Curve", "UniformVsMixed"]

GRAPH_TOP_K = 5  # layouts in the graphs: mixed bars beside the uniform ones, learning curves


@dataclass(frozen=True)
class Bar:
    """One bar of the uniform-vs-mixed figure."""

    number: int  # the search trial
    label: str  # layout and searched choices
    uniform: bool
    value: float
    ci_low: float | None  # 95% interval over seeds (None: one run)
    ci_high: float | None
    runs: int


@dataclass(frozen=True)
class UniformVsMixed:
    """The bars of the uniform-vs-mixed figure: the finalists' mean test accuracy over fresh
    seeds with 95% intervals, the numbers the verdict rests on. A study without finalists (one
    still running) has only its search: validation accuracy, one run per layout, and says so
    (``measure``)."""

    measure: str  # "test" (finalists) or "search"
    uniform: list[Bar]  # best first
    mixed: list[Bar]
    reference: float | None  # the best uniform layout's value on the same measure
    metric: str = "accuracy"  # the validation metric's name

    @property
    def axis(self) -> str:
        if self.measure == "test":
            return f"test {self.metric} of the finalists over fresh seeds (mean, 95% CI)"
        return f"validation {self.metric} in the search (one run each; no finalists yet)"


def _bars(finalists: Sequence[FinalistComparison], distinct: Sequence[LayoutRow],
          reference: BestUniform | None, k: int, metric: str = "accuracy") -> UniformVsMixed:
    measured = [f for f in finalists if f.mean is not None]
    if measured:
        bars = [Bar(f.number, f.label, f.uniform, float(f.mean), f.ci_low, f.ci_high,
                    len(f.test_acc))
                for f in sorted(measured, key=lambda f: -f.sign * float(f.mean))]
        return UniformVsMixed("test", [b for b in bars if b.uniform],
                              [b for b in bars if not b.uniform][:k],
                              None if reference is None else reference.test_mean, metric)
    bars = [Bar(r.number, r.label, r.uniform, r.val_acc, None, None, 1) for r in distinct]
    return UniformVsMixed("search", [b for b in bars if b.uniform],
                          [b for b in bars if not b.uniform][:k],
                          None if reference is None or math.isnan(reference.val_acc)
                          else reference.val_acc, metric)


@dataclass(frozen=True)
class Curve:
    """One trial's validation accuracy and loss per epoch."""

    number: int
    layout: str
    uniform: bool
    val_acc: list[float]  # per epoch, epoch 1 first
    val_loss: list[float]
    label: str = ""  # the layout with its searched choices


def _curves(distinct: Sequence[LayoutRow], by_number: dict[int, TrialRecord],
            reference: BestUniform | None, k: int) -> list[Curve]:
    """The best ``k`` layouts with a curve, then the best uniform when not among them (the
    reference the others must beat)."""
    with_curve = [row for row in distinct if by_number[row.number].val_acc_curve]
    chosen = with_curve[:k]
    if reference is not None and reference.layout not in {row.layout for row in chosen}:
        record = by_number.get(reference.number)
        if record is not None and record.val_acc_curve:
            chosen.append(_row(record, chosen[0].sign if chosen else 1))
    return [Curve(row.number, row.layout, row.uniform,
                  [float(v) for v in by_number[row.number].val_acc_curve],
                  [float(v) for v in by_number[row.number].val_loss_curve], row.label)
            for row in chosen]
