"""Pruning decisions: Optuna's pruners without a storage read per decision, and pruning for
multi-objective studies, which Optuna's pruners cannot serve.

``trial.should_prune()`` makes the pruner call ``study.get_trials()``, and Optuna's cached
storage re-reads every unfinished trial from the database on each call: about 6 ms a call on
SQLite here, more than a tenth of a small model's epoch, and K reads of K trials when a
population of K decides one by one. ``StudySnapshot`` gives a pruner the trials of one read,
and ``EpochPruning`` keeps one until the running trials change: a sequential trial decides
every epoch against one read, a
population against one read per join or leave (the complete trials do not change while one
process trains).

Writes are batched too: each ``trial.report`` is one storage write (about 1.75 ms on SQLite
between two epochs of training, when the caches are cold; the default trial's 20 cost 8% of
its 0.46 s on a 2-core CPU, bench/overhead.py). ``ReportBuffer`` keeps reports in memory,
pruners decide against the snapshot plus those reports, and the buffer writes them at most
once a second and when the trial ends: every epoch's value reaches Optuna (and
optuna-dashboard's intermediate-value chart), a running trial's values at most a second
late. TensorBoard's SummaryWriter (``flush_secs``) makes the same trade.

Optuna refuses ``trial.report`` when a study has several objectives, so its pruners never see
a learning curve there. ``CurveMedianPruner`` prunes such studies on the primary metric, the
validation accuracy, median-style: at epoch k a running trial whose best accuracy so far is
below the median of the complete trials' accuracies at epoch k stops. Complete trials carry
their curve in the ``val_acc_curve`` user attribute, so no intermediate values are needed.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.record import TrialRecord
from actsearch.schema.space import SearchSpace

__all__ = ["CurveMedianPruner", "EpochPruning", "ReportBuffer", "StudySnapshot"]

FLUSH_SECONDS = 1.0  # the longest a report waits in memory before it reaches the storage


class CurveMedianPruner:
    """Median pruning on stored validation curves (the MedianPruner's rule).

    Args:
        n_startup_trials: No pruning until this many trials are complete.
        n_warmup_steps: No pruning before this epoch (1-based epochs, as reported).
        enabled: False never prunes (the space's pruner is ``none``).
        maximize: Whether a higher validation metric is better (accuracy); False for a
            metric minimised (train.metric): the best so far is then the lowest, and a trial
            stops when it is above the median.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 enabled: bool = True, maximize: bool = True) -> None:
        if n_startup_trials < 0 or n_warmup_steps < 0:
            raise ValueError("n_startup_trials and n_warmup_steps must be >= 0")
        self.n_startup_trials, self.n_warmup_steps = n_startup_trials, n_warmup_steps
        self.enabled, self.maximize = enabled, maximize
        self._curves: dict[int, list[float]] = {}  # complete trials never change: cached

    @classmethod
    def for_space(cls, space: SearchSpace) -> CurveMedianPruner:
        """The space's median/percentile settings; other pruners use the median defaults."""
        settings = space.pruner.settings
        return cls(settings.get("n_startup_trials", 5), settings.get("n_warmup_steps", 0),
                   enabled=space.pruner.name != "none",
                   maximize=space.metric.maximize)

    def better(self, a: float, b: float) -> float:
        """The better of two values of the validation metric."""
        return max(a, b) if self.maximize else min(a, b)

    def should_prune(self, study: optuna.Study, epoch: int, best_so_far: float) -> bool:
        """Whether a trial whose best validation accuracy up to ``epoch`` is ``best_so_far``
        should stop (``refresh`` then ``decide``)."""
        if not self.enabled or epoch < self.n_warmup_steps:
            return False
        self.refresh(study)
        return self.decide(epoch, best_so_far)

    def refresh(self, study: optuna.Study) -> None:
        """Read the curves of trials completed since the last refresh (one storage read).

        A trial's decisions need one refresh when it starts: with one process no trial
        completes while it trains.
        """
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number not in self._curves:
                self._curves[trial.number] = TrialRecord.from_frozen(trial).val_acc_curve

    def decide(self, epoch: int, best_so_far: float) -> bool:
        """``should_prune`` against the curves of the last ``refresh``."""
        if not self.enabled or epoch < self.n_warmup_steps:
            return False
        if len(self._curves) < max(self.n_startup_trials, 1):
            return False
        at_epoch = [c[epoch - 1] for c in self._curves.values() if len(c) >= epoch]
        if not at_epoch:
            return False
        median = statistics.median(at_epoch)
        return best_so_far < median if self.maximize else best_so_far > median


# Pruners whose prune() (Optuna 5) reads the study only through get_trials(), direction and
# _storage.set_trial_system_attr(), so that they can decide against a StudySnapshot. Exact
# types: a subclass may read more. HyperbandPruner builds bracket studies on the storage
# itself, so it (like any other pruner) goes through trial.should_prune() one by one.
SNAPSHOT_PRUNERS = (optuna.pruners.MedianPruner, optuna.pruners.PercentilePruner,
                     optuna.pruners.SuccessiveHalvingPruner, optuna.pruners.NopPruner)


def _snapshotable(study: optuna.Study) -> bool:
    """Whether the study's pruner can decide against a StudySnapshot (multi-objective
    studies cannot prune through Optuna at all)."""
    return type(study.pruner) in SNAPSHOT_PRUNERS and len(study.directions) == 1


class _SnapshotStorage:
    """The study's storage, except that set_trial_system_attr also updates the snapshot."""

    def __init__(self, snapshot: StudySnapshot, storage: Any) -> None:
        self._snapshot, self._storage = snapshot, storage

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._storage.set_trial_system_attr(trial_id, key, value)
        self._snapshot._set_system_attr(trial_id, key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


class StudySnapshot:
    """A study as its pruner sees it, with the trials of one read instead of one per call.

    ``trial.should_prune()`` makes the pruner call ``study.get_trials()``, which re-reads
    every unfinished trial from the storage: K members deciding one by one cost K reads of K
    running trials each. Between two epochs' reports the trials change only by what the
    pruners write (SuccessiveHalvingPruner's rung values, kept up to date here), so one read
    after all members reported gives each member the decision ``should_prune`` would give.
    Everything else is the real study's.
    """

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._trials = list(study.get_trials(deepcopy=False))
        self._index = {t.number: i for i, t in enumerate(self._trials)}
        self._by_id = {t._trial_id: t.number for t in self._trials}
        self._storage = _SnapshotStorage(self, study._storage)

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = [t for t in self._trials if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def frozen(self, trial: optuna.Trial) -> FrozenTrial:
        """The trial as ``trial.should_prune()`` passes it to the pruner (a copy)."""
        return copy.copy(self._trials[self._index[trial.number]])

    def add_report(self, number: int, step: int, value: float) -> None:
        """Add a report the trial just made (``trial.report``) to the snapshot's copy."""
        i = self._index[number]
        updated = copy.copy(self._trials[i])
        updated.intermediate_values = {**self._trials[i].intermediate_values, step: value}
        self._trials[i] = updated

    def _set_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        # The snapshot's trials may be the storage cache's own objects: replace, not mutate.
        i = self._index[self._by_id[trial_id]]
        updated = copy.copy(self._trials[i])
        updated.system_attrs = {**self._trials[i].system_attrs, key: value}
        self._trials[i] = updated

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class ReportBuffer:
    """``trial.report`` for several epochs and trials, kept in memory and written in bursts.

    ``report`` keeps a value in memory; ``flush`` writes what waits (with ``trial.report``,
    so Optuna sees exactly the values and steps it would have seen); ``flush_if_due`` does
    so once ``flush_seconds`` passed since the last write. Whoever ends a trial flushes it
    first: Optuna gives a pruned trial its last reported value.
    """

    def __init__(self, flush_seconds: float | None = None) -> None:
        self.flush_seconds = FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._pending: dict[int, tuple[optuna.Trial, list[tuple[int, float]]]] = {}
        self._last_flush = time.monotonic()
        # Trials whose reports the storage refused because they are finished already: another
        # worker failed them (this one was cut off past the grace period). Their reports are
        # dropped; the driver stops and drops the trials themselves.
        self.taken: set[int] = set()

    def report(self, trial: optuna.Trial, value: float, step: int) -> None:
        self._pending.setdefault(trial.number, (trial, []))[1].append((step, value))

    def pending(self) -> list[tuple[int, int, float]]:
        """What waits, as ``(trial number, step, value)``."""
        return [(number, step, value) for number, (_, reports) in self._pending.items()
                for step, value in reports]

    def flush(self, trial: optuna.Trial | None = None) -> None:
        """Write what waits: ``trial``'s reports, or everyone's."""
        numbers = list(self._pending) if trial is None else [trial.number]
        for number in numbers:
            owner, reports = self._pending.get(number, (None, []))
            try:
                while reports:  # a failed write leaves the rest waiting
                    step, value = reports[0]
                    owner.report(value, step)
                    reports.pop(0)
            except optuna.exceptions.UpdateFinishedTrialError:
                self.taken.add(number)
            self._pending.pop(number, None)
        if trial is None:
            self._last_flush = time.monotonic()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()


class EpochPruning:
    """Reports and pruning decisions for the trials one driver runs, an epoch at a time.

    The driver calls ``report`` for every trial that trained an epoch, then ``decide`` for
    all of them at once, ``joined``/``left`` when the set of running trials changes, and
    ``flush(trial)`` before it ends a trial (Optuna gives a pruned trial its last reported
    value).

    Single objective: each epoch's value goes to Optuna through a ``ReportBuffer``, and the
    study's pruner decides against a ``StudySnapshot`` read when the running trials last
    changed, plus the reports made since; so one read serves a sequential trial from start to
    end, and a population between joins and leaves, with exactly ``should_prune``'s
    decisions (no other process changes the complete trials meanwhile; with several workers,
    trials others complete count from the next snapshot on). Pruners outside
    ``SNAPSHOT_PRUNERS`` read the storage themselves: the reports are written first and
    ``trial.should_prune()`` decides. Several objectives: ``CurveMedianPruner`` on the best
    validation accuracy so far, its curves refreshed when the running trials changed.

    Args:
        study: The study whose trials are run.
        space: Its space (the curve pruner's settings for several objectives).
        flush_seconds: The longest a report waits in memory (default ``FLUSH_SECONDS``).
    """

    def __init__(self, study: optuna.Study, space: SearchSpace,
                 flush_seconds: float | None = None) -> None:
        self.study = study
        self.curves = CurveMedianPruner.for_space(space) if len(study.directions) > 1 else None
        self.never = self.curves is None and type(study.pruner) is optuna.pruners.NopPruner
        self.snapshotable = self.curves is None and _snapshotable(study) and not self.never
        self.reports = ReportBuffer(flush_seconds)
        self._snapshot: StudySnapshot | None = None
        self._stale = True  # the curves of the multi-objective pruner
        self._best: dict[int, float] = {}

    def joined(self, trial: optuna.Trial) -> None:
        """A trial started: the next decision reads the study again."""
        self._snapshot, self._stale = None, True

    def left(self, trial: optuna.Trial) -> None:
        """A trial ended (flush it first): the next decision reads the study again."""
        self._snapshot, self._stale = None, True
        self._best.pop(trial.number, None)

    def report(self, trial: optuna.Trial, value: float, step: int) -> None:
        """The trial's validation metric after epoch ``step``."""
        if self.curves is not None:  # Optuna refuses reports with several objectives
            best = self._best.get(trial.number)
            self._best[trial.number] = value if best is None else self.curves.better(best, value)
            return
        self.reports.report(trial, value, step)
        if self._snapshot is not None:
            self._snapshot.add_report(trial.number, step, value)

    def decide(self, trials: Sequence[tuple[optuna.Trial, int]]) -> list[bool]:
        """Whether each ``(trial, epoch)`` that just reported should stop."""
        if self.curves is not None:
            if self._stale and self.curves.enabled:
                self.curves.refresh(self.study)
                self._stale = False
            return [self.curves.decide(epoch, self._best[trial.number])
                    for trial, epoch in trials]
        if self.never:
            self.reports.flush_if_due()
            return [False] * len(trials)
        if not self.snapshotable:
            self.reports.flush()
            return [trial.should_prune() for trial, _ in trials]
        if self._snapshot is None:
            self._snapshot = StudySnapshot(self.study)
            for number, step, value in self.reports.pending():
                self._snapshot.add_report(number, step, value)
        snapshot, pruner = self._snapshot, self.study.pruner
        decisions = [bool(pruner.prune(snapshot, snapshot.frozen(trial))) for trial, _ in trials]
        self.reports.flush_if_due()
        return decisions

    def flush(self, trial: optuna.Trial | None = None) -> None:
        """Write the reports that wait: ``trial``'s, or everyone's."""
        self.reports.flush(trial)
