"""The study in counts: trials per state, the best layouts, the uniform baselines, why trials
failed, and how often each value of a searched choice (depth, norm) was tried and completed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from actsearch.analysis.rows import LayoutRow, _distinct, _rank_key, _row
from actsearch.engine.record import TrialRecord, records

__all__ = ["SearchedChoice", "StudySummary", "failure_reasons", "searched_choices"]


@dataclass(frozen=True)
class StudySummary:
    """Counts, the best layouts and the uniform baselines of a study."""

    complete: int
    pruned: int
    failed: int
    diverged: int
    running: int
    top: list[LayoutRow]  # best complete trials, best first
    baselines: list[LayoutRow]  # the best complete trial of each uniform layout, best first
    epochs_trained: int  # summed over finished trials
    epochs_if_unpruned: int  # had every finished trial run all its epochs


def _summarize(recs: Sequence[TrialRecord], top_k: int, max_epochs: int,
               sign: int = 1) -> StudySummary:
    complete = sorted((_row(r, sign) for r in recs if r.is_complete), key=_rank_key)
    # A trial that lost the race for the budget's last slot never ran: no failure.
    states = Counter(r.state for r in recs if not r.over_budget)
    finished = [r for r in recs if r.is_finished]
    return StudySummary(
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        diverged=sum(r.diverged for r in recs),
        running=states[TrialState.RUNNING],
        top=complete[:top_k],
        baselines=[row for row in _distinct(complete) if row.uniform],
        epochs_trained=sum(int(r.epochs or 0) for r in finished),
        epochs_if_unpruned=max_epochs * len(finished),
    )


def failure_reasons(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Failed trials counted by reason (the text before the first colon of ``error``).

    Reasons: ``out of memory``, an exception's type name, ``interrupted``, ``worker lost``
    (found by pid) and ``no heartbeat`` (a FAIL without an ``error`` attr that was retried:
    the heartbeat check failed it). Most frequent first.
    """
    recs = records(trials)
    retried = {n for r in recs for n in r.retry_history}
    counts: Counter[str] = Counter()
    for r in recs:
        if r.state != TrialState.FAIL or r.over_budget:  # over budget: it never ran
            continue
        if r.error:
            counts[r.reason] += 1
        else:
            counts["no heartbeat" if r.number in retried else "unknown"] += 1
    return dict(counts.most_common())


@dataclass(frozen=True)
class SearchedChoice:
    """A searched choice besides the activations (depth, norm): how often each value was tried
    and how often it completed, so that a choice every trial of which was pruned is said."""

    name: str
    values: list[str]  # every value the space offered, in its order
    complete: dict[str, int]
    pruned: dict[str, int]

    @property
    def line(self) -> str:
        parts = [f"{v}: {self.complete.get(v, 0)} complete, {self.pruned.get(v, 0)} pruned"
                 for v in self.values]
        never = [v for v in self.values if not self.complete.get(v)]
        text = f"searched {self.name} ({'; '.join(parts)})"
        if never:
            text += (f"; no complete trial used {' or '.join(never)}: every finalist and the "
                     f"verdict are about the other {self.name} values")
        return text


def searched_choices(recs: Sequence[TrialRecord]) -> list[SearchedChoice]:
    """The searched depth and norm, with counts per value (the lr is continuous: its values
    are in each candidate's label instead)."""
    result = []
    for name in ("depth", "norm"):
        values: list[str] = []
        for r in recs:
            dist = r.distributions.get(name)
            if isinstance(dist, CategoricalDistribution):
                values += [str(c) for c in dist.choices if str(c) not in values]
            elif dist is not None and hasattr(dist, "low") and not values:
                values = [str(v) for v in range(int(dist.low), int(dist.high) + 1)]
        values += sorted({str(r.params[name]) for r in recs if name in r.params} - set(values))
        if not values:
            continue
        complete = Counter(str(r.params[name]) for r in recs if r.is_complete and name in r.params)
        pruned = Counter(str(r.params[name]) for r in recs
                         if r.state == TrialState.PRUNED and name in r.params)
        result.append(SearchedChoice(name, values, dict(complete), dict(pruned)))
    return result
