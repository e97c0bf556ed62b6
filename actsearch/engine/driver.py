"""The trial driver: one ask/tell loop for every search, over any trainer.

The driver owns what a search does with trials: it reserves them within the budget and the
timeout, samples each one's candidate, hands it to a trainer (one at a time, or a population
of K), reports every epoch's validation metric and asks the pruner, stops the candidates
the pruner gives up on (never a uniform baseline), records each trial's end in its
``TrialRecord``, measures complete ones, tells Optuna, and calls the callbacks. One fault
policy for every trainer: a candidate that raises fails its own trial with the reason and
traceback and the search goes on, until ``max_failures_in_a_row`` trials have failed one
after another (then it stops with one line that says why). A user mistake
(``ActsearchError``) stops the search at once; an interrupt (Ctrl-C, SIGTERM) marks the
running trials failed and propagates. Finished trials are always stored. A trial that another
worker failed while this one could not reach the storage for longer than the grace period (a
partition, a stopped process) is dropped with one line: it was run again elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import optuna
import torch
from optuna.trial import TrialState

from actsearch.engine.budget import TrialBudget
from actsearch.engine.pruning import EpochPruning
from actsearch.engine.record import FINISHED, TrialRecord, study_seed, worker_id
from actsearch.engine.storage import heartbeat
from actsearch.engine.suggest import suggest_candidate
from actsearch.errors import ActsearchError
from actsearch.models.layout import Candidate, relu_layout
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.fit import EpochStats, scoring_of
from actsearch.training.population import PopulationTrainer, population_problem
from actsearch.training.probes import probe_model
from actsearch.training.trainers import (
    Job,
    Member,
    SequentialTrainer,
    Trainer,
    describe_error,
    start_model,
)

__all__ = [
    "MAX_FAILURES_IN_A_ROW",
    "Callback",
    "DriveResult",
    "StopSearch",
    "TrialListener",
    "make_trainer",
    "run_trials",
    "trial_seed",
]

MAX_FAILURES_IN_A_ROW = 5  # failed trials one after another that stop a search
_log = logging.getLogger(__name__)


class TrialListener(Protocol):
    """Receives progress from inside trials (the live view implements it)."""

    def trial_started(self, number: int, layout: str) -> None: ...

    def epoch_done(self, number: int, stats: EpochStats) -> None: ...


# Called after each trial ends (complete, pruned or failed) with the study and its record.
Callback = Callable[[optuna.Study, TrialRecord], None]


class StopSearch(Exception):  # noqa: N818 (a signal to stop, not an error)
    """Raise from a callback to start no more trials; running ones finish."""


@dataclass(frozen=True)
class DriveResult:
    """What one ``run_trials`` call did."""

    finished: int  # trials this call finished (complete or pruned)
    failed: int
    stop_reason: str | None = None  # set when the search stopped before its budget


def trial_seed(seed: int, number: int) -> int:
    """The weights-and-data-order seed of trial ``number`` in a study seeded with ``seed``."""
    return (seed * 1_000_003 + number) % 2**31


def make_trainer(space: SearchSpace, data: DeviceData, population: int) -> Trainer:
    """A population of ``population`` when above 1 and the space allows it, else one at a
    time (``population_problem`` says why not: a DataLoader, a model vmap cannot run...)."""
    if population > 1 and population_problem(space, data) is None:
        return PopulationTrainer(space, data, population)
    return SequentialTrainer(space, data)


@dataclass
class _Running:
    trial: optuna.Trial
    record: TrialRecord
    member: Member
    baseline: bool
    beats: contextlib.ExitStack


def run_trials(
    study: optuna.Study,
    space: SearchSpace,
    data: DeviceData,
    *,
    trials: int,
    timeout: float | None = None,
    population: int = 1,
    listener: TrialListener | None = None,
    callbacks: Sequence[Callback] = (),
    max_failures_in_a_row: int = MAX_FAILURES_IN_A_ROW,
    budget: TrialBudget | None = None,
    measure: bool = True,
    concurrent: bool = True,
    say: Callable[[str], None] | None = None,
) -> DriveResult:
    """Run trials until the study holds ``trials`` finished ones or ``timeout`` passes.

    Args:
        study: The study (its sampler, pruner and directions are used as they are).
        space: Its space.
        data: The splits on the training device (models train in their dtype).
        trials: Finished (complete or pruned) trials the study should hold, counting other
            workers' on the same storage.
        timeout: Seconds after which no trial starts (running ones finish).
        population: Candidates trained at once (``make_trainer``).
        listener: Told when a trial starts and after each of its epochs.
        callbacks: Called after each trial ends; one may raise ``StopSearch``.
        max_failures_in_a_row: Failed trials one after another that stop the search.
        budget: How trial slots are reserved (default: ``TrialBudget(study, trials)``).
        measure: Probe every complete trial (``actsearch.training.probes``); objectives other
            than accuracy need the probes and measure regardless.
        concurrent: Whether other processes may run trials of the study (see
            ``TrialBudget``); False for a lone search on its own run folder.
        say: Where the line about a dropped trial goes (default: this module's logger).
    """
    if max_failures_in_a_row < 1:
        raise ActsearchError(f"max_failures_in_a_row: expected a positive integer, got "
                             f"{max_failures_in_a_row}", parameter="max_failures_in_a_row")
    budget = budget or TrialBudget(study, trials, timeout=timeout, concurrent=concurrent)
    return _Driver(study, space, data, population, listener, callbacks, max_failures_in_a_row,
                   budget, measure, say or _log.warning).run()


class _Driver:
    def __init__(self, study: optuna.Study, space: SearchSpace, data: DeviceData,
                 population: int, listener: TrialListener | None,
                 callbacks: Sequence[Callback], max_failures_in_a_row: int,
                 budget: TrialBudget, measure: bool, say: Callable[[str], None]) -> None:
        self.study, self.space, self.data = study, space, data
        self.say = say
        self.listener, self.callbacks = listener, list(callbacks)
        self.max_failures = max_failures_in_a_row
        self.budget = budget
        self.trainer = make_trainer(space, data, population)
        self.pruning = EpochPruning(study, space)
        self.scoring = scoring_of(space)  # the probes' loss; a metric of one's own skips some
        self.seed = study_seed(study, space)
        self.multi = len(space.objectives) > 1
        self.measure = measure or self.multi
        self.running: dict[int, _Running] = {}
        self.finished = self.failed = self.failures_in_a_row = 0
        self.stop_reason: str | None = None
        self.accepting = True
        # Relative latency needs a fixed reference model (uniform ReLU) per depth and norm;
        # built only when a latency objective asks for it: timing it doubles the probes' cost.
        self.wants_reference = any(n.startswith("latency") for n, _ in space.objectives)
        self._references: dict[tuple[int, str], torch.nn.Module] = {}

    def run(self) -> DriveResult:
        try:
            while True:
                while self.accepting and self.trainer.active < self.trainer.capacity:
                    # With trials of its own running, a process must not wait for a slot:
                    # they may hold the slots it waits for.
                    trial = self.budget.reserve(wait=not self.running)
                    if trial is None:
                        # With trials of its own running, None may mean only "no slot is
                        # free now": try again after the next epoch, unless the budget is met
                        # or the time is up.
                        if (not self.running or self.budget.expired()
                                or self.budget.finished() >= self.budget.trials):
                            self.accepting = False
                        break
                    self._start(trial)
                if self.trainer.active == 0:
                    break
                self._after_epoch(self.trainer.train_epoch())
        except BaseException as e:
            self._abort(e)
            raise
        finally:
            self.budget.close()
        return DriveResult(self.finished, self.failed, self.stop_reason)

    # --- a trial's start ------------------------------------------------------------------

    def _start(self, trial: optuna.Trial) -> None:
        # The budget wrote the worker attribute and a first heartbeat as it reserved the trial.
        record = TrialRecord(number=trial.number, worker=worker_id())
        beats = contextlib.ExitStack()
        beats.enter_context(heartbeat(self.study, trial))
        try:
            candidate = suggest_candidate(trial, self.space)
            record.layout = str(candidate.layout)
            record.seed = trial_seed(self.seed, trial.number)
            record.uniform = candidate.layout.is_uniform
            record.write(trial, ["layout", "seed", "uniform"])
            if self.listener is not None:
                self.listener.trial_started(trial.number, record.layout)
            member = self.trainer.add(Job(candidate, record.seed, trial))
        except BaseException as e:  # not running yet, so _abort would not see it
            with contextlib.suppress(Exception):
                record.error = _reason(e)
                record.write(trial, ["error"])
                self.study.tell(trial, state=TrialState.FAIL)
            beats.close()
            raise
        baseline = bool(TrialRecord.from_user_attrs(trial.user_attrs).baseline)
        self.running[trial.number] = _Running(trial, record, member, baseline, beats)
        self.pruning.joined(trial)

    # --- after an epoch -------------------------------------------------------------------

    def _after_epoch(self, members: list[Member]) -> None:
        trained = [m for m in members if m.result.status in ("running", "complete")]
        for member in trained:
            stats = member.result.history[-1]
            if self.listener is not None:
                self.listener.epoch_done(member.tag.number, stats)
            self.pruning.report(member.tag, stats.val_acc, stats.epoch)
        # Every member reports first, then the pruner decides for all of them.
        decisions = self.pruning.decide([(m.tag, m.result.history[-1].epoch) for m in trained])
        taken = self.pruning.reports.taken
        for member, prune in zip(trained, decisions, strict=True):
            # A baseline is asked too (pruners keep rung records) but trains to the end.
            if prune and not self.running[member.tag.number].baseline:
                self.trainer.stop(member)
            elif member.tag.number in taken:  # failed elsewhere: no use training it on
                self.trainer.stop(member)
        for member in members:
            if member.result.status != "running":
                # Popped once told: a fault while ending it leaves it to _abort to fail.
                self._end(self.running[member.tag.number])
                del self.running[member.tag.number]
        if self.stop_reason is None and self.failures_in_a_row >= self.max_failures:
            last = next((r for r in reversed(members) if r.error), None)
            self.stop_reason = (f"{self.failures_in_a_row} trials in a row failed (the last: "
                                f"{last.error if last else 'unknown'})")
            self.accepting = False

    def _end(self, run: _Running) -> None:
        trial = run.trial
        try:
            try:
                frozen = self._tell(run)
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
                # ValueError: Optuna's "Cannot tell a FAIL trial". Either way, when another
                # worker failed the trial (its heartbeat lapsed while this one was cut off or
                # stopped), it was queued again there: this result is dropped, not told.
                frozen = self.study._storage.get_trial(trial._trial_id)
                if frozen.state == TrialState.RUNNING:
                    raise
                self._drop(run, frozen)
                return
        finally:
            run.beats.close()
            self.pruning.reports.taken.discard(trial.number)
        self.budget.ended(frozen.state in FINISHED)
        run.member.model = None  # a population may hold many finished members
        done = TrialRecord.from_frozen(frozen)
        for callback in self.callbacks:
            try:
                callback(self.study, done)
            except StopSearch:
                self.accepting = False
                self.stop_reason = self.stop_reason or "stopped by a callback"

    def _drop(self, run: _Running, frozen: optuna.trial.FrozenTrial) -> None:
        """Say in one line that a trial failed elsewhere is dropped; it counts for nothing."""
        self.pruning.left(run.trial)
        self.budget.ended(False)
        run.member.model = None
        why = TrialRecord.from_frozen(frozen).error or "no heartbeat within the grace period"
        self.say(f"trial {frozen.number}: already {frozen.state.name} in the storage ({why}), "
                 f"so another worker runs it again; dropping this worker's result")

    def _tell(self, run: _Running) -> optuna.trial.FrozenTrial:
        """Record a trial's end and tell Optuna; the told trial."""
        trial, record, member = run.trial, run.record, run.member
        result = member.result
        self.pruning.flush(trial)  # before tell: a pruned trial's value is its last report
        self.pruning.left(trial)
        if result.status == "complete":
            try:
                self._record_result(record, member)
                values = self._values(record, member)
            except ActsearchError:
                raise
            except Exception as e:  # a probe's fault fails this trial only
                member.fail(e)
        if result.status == "failed":
            record.error, record.traceback = member.error, member.traceback
            record.write(trial, ["error", "traceback"])
            frozen = self.study.tell(trial, state=TrialState.FAIL)
            self.failed += 1
            self.failures_in_a_row += 1
        else:
            if result.status == "complete":
                frozen = self.study.tell(trial, values)
            else:
                # Stopped and diverged candidates are pruned: the sampler learns they are
                # bad, and the study goes on. `end` tells the two apart.
                self._record_result(record, member)
                frozen = self.study.tell(trial, state=TrialState.PRUNED)
            self.finished += 1
            self.failures_in_a_row = 0
        return frozen

    def _record_result(self, record: TrialRecord, member: Member) -> None:
        history, result = member.result.history, member.result
        last = history[-1].epoch if history else 0
        record.end = {"complete": "complete", "stopped": f"pruned at epoch {last}",
                      "diverged": f"diverged at epoch {last}"}[result.status]
        record.epochs = last
        record.val_acc_curve = [round(h.val_acc, 6) for h in history]
        record.val_loss_curve = [round(h.val_loss, 6) for h in history]
        record.train_seconds = round(result.train_seconds, 4)
        record.samples_per_second = round(result.samples_per_second, 1)
        names = ["end", "epochs", "val_acc_curve", "val_loss_curve", "train_seconds",
                 "samples_per_second"]
        if history:
            record.val_acc = round(history[-1].val_acc, 6)
            names.append("val_acc")
        if member.shared_with > 1:
            record.population = member.shared_with
            names.append("population")
        record.write(member.tag, names)

    def _values(self, record: TrialRecord, member: Member) -> float | tuple[float, ...]:
        """The test metric and probes of a complete member, then the values to tell."""
        record.test_acc = round(member.test_acc or 0.0, 6)
        record.write(member.tag, ["test_acc"])
        if not self.measure:
            return member.result.history[-1].val_acc
        reference = self._reference(member.candidate) if self.wants_reference else None
        record.probes = probe_model(member.model, self.data, self.data.x_train.device,
                                    member.result, reference,
                                    by_site=self.space.custom is not None,
                                    scoring=self.scoring, metric=self.space.objectives[0][0])
        # One write for all probes: 23 separate attributes cost 0.5 s on SQLite.
        record.write(member.tag, ["probes"])
        if not self.multi:
            return member.result.history[-1].val_acc
        return record.objective_values(self.space.objectives)

    def _reference(self, candidate: Candidate) -> torch.nn.Module:
        """The uniform-ReLU model latencies are relative to (a factory model's: ReLU at
        every site; ``with_sites`` refuses a latency objective where a group lacks it): the
        candidate's depth and norm with ReLU everywhere, started from the search's seed."""
        key = (candidate.layout.depth, candidate.norm)
        if key not in self._references:
            relu = dataclasses.replace(candidate, layout=relu_layout(candidate.layout.depth))
            self._references[key] = start_model(self.space, self.data, relu, self.seed).eval()
        return self._references[key]

    # --- faults ---------------------------------------------------------------------------

    def _abort(self, error: BaseException) -> None:
        """Fail the running trials with the reason that stopped the search."""
        reason = _reason(error)
        with contextlib.suppress(Exception):  # the storage may be what failed
            self.pruning.flush()
        for run in self.running.values():
            with contextlib.suppress(Exception):
                run.record.error = reason
                run.record.write(run.trial, ["error"])
                self.study.tell(run.trial, state=TrialState.FAIL, skip_if_finished=True)
            run.beats.close()
        self.running.clear()


def _reason(error: BaseException) -> str:
    """Why a trial failed because the search stopped: an interrupt, a user mistake, a fault."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted: stopped by a signal or Ctrl-C"
    return describe_error(error)
