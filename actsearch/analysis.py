"""Pure functions over finished trials -> plain dataclasses. No printing, no torch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

__all__ = ["LayoutRow", "StudySummary", "failure_reasons", "summarize"]


@dataclass(frozen=True)
class LayoutRow:
    """One finished trial as the tables show it."""

    number: int
    layout: str
    val_acc: float
    epochs: int
    train_seconds: float
    uniform: bool
    end: str


@dataclass(frozen=True)
class StudySummary:
    """Counts, the best layouts and the uniform baselines of a study."""

    complete: int
    pruned: int
    failed: int
    diverged: int
    running: int
    top: list[LayoutRow]  # best complete trials, best first
    baselines: list[LayoutRow]  # the best complete trial of each uniform layout
    epochs_trained: int  # summed over finished trials
    epochs_if_unpruned: int  # had every finished trial run all its epochs

    @property
    def best_uniform(self) -> LayoutRow | None:
        return max(self.baselines, key=lambda r: r.val_acc, default=None)


def _row(trial: FrozenTrial) -> LayoutRow:
    attrs = trial.user_attrs
    # Validation accuracy ranks the tables, whatever the objectives (it is always measured).
    value = attrs.get("val_acc", float("nan"))
    return LayoutRow(trial.number, attrs.get("layout", "?"), float(value),
                     int(attrs.get("epochs", 0)), float(attrs.get("train_seconds", 0.0)),
                     bool(attrs.get("uniform", False)), attrs.get("end", trial.state.name))


def summarize(trials: Sequence[FrozenTrial], top_k: int = 10, max_epochs: int = 0) -> StudySummary:
    """Summarise a study's trials; ``max_epochs`` is the recipe's epoch count."""
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    complete = sorted((_row(t) for t in by_state[TrialState.COMPLETE]),
                      key=lambda r: (-r.val_acc, r.number))
    baselines: dict[str, LayoutRow] = {}
    for row in complete:
        if row.uniform and row.layout not in baselines:
            baselines[row.layout] = row
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]
    return StudySummary(
        complete=len(by_state[TrialState.COMPLETE]),
        pruned=len(by_state[TrialState.PRUNED]),
        failed=len(by_state[TrialState.FAIL]),
        diverged=sum(str(t.user_attrs.get("end", "")).startswith("diverged") for t in trials),
        running=len(by_state[TrialState.RUNNING]),
        top=complete[:top_k],
        baselines=list(baselines.values()),
        epochs_trained=sum(int(t.user_attrs.get("epochs", 0)) for t in finished),
        epochs_if_unpruned=max_epochs * len(finished),
    )


def failure_reasons(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Failed trials counted by reason (the text before the first colon of ``error``).

    Reasons: ``out of memory``, an exception's type name, ``interrupted``, ``worker lost``
    (found by pid) and ``no heartbeat`` (a FAIL without an ``error`` attr that was retried:
    the heartbeat check failed it). Most frequent first.
    """
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counts: Counter[str] = Counter()
    for t in trials:
        if t.state != TrialState.FAIL:
            continue
        error = t.user_attrs.get("error")
        if error:
            counts[str(error).split(":", 1)[0]] += 1
        else:
            counts["no heartbeat" if t.number in retried else "unknown"] += 1
    return dict(counts.most_common())
