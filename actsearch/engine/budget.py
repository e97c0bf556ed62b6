"""Exact trial budgets: N trials asked, N finished, with any number of workers on one study.

Workers share a study through its storage (an SQLite or journal file, a database server), so
the budget is kept there too. Counting finished trials before starting one is not enough:
four workers that each see 7 of 8 finished all start a trial and the study ends with 11.
Instead a trial holds one of the study's ``trials`` *slots* while it is WAITING, RUNNING,
COMPLETE or PRUNED (a FAIL trial holds none, so a failed trial's slot goes to a new one), and
a trial that :meth:`TrialBudget.reserve` gets from ``study.ask()`` may run only if fewer than
``trials`` holders have a smaller trial number. Losers are failed at once, marked
``over_budget`` (or, when they were queued trials, put back in the queue).

Why at most ``trials`` trials can ever finish: the storage numbers trials serially (an RDB
storage locks the study's row while it creates one, a journal numbers them in log order), so
when a worker checks its trial every trial with a smaller number exists and is visible. A
trial that will finish is never FAIL before that (FAIL is final), so at every moment until
it finishes it is in a holding state. Suppose ``trials + 1`` trials finished and take the one
of them with the largest number: when its worker checked it, the other ``trials`` had smaller
numbers, existed, and were holding, so the check failed and it never ran: a contradiction.
This holds whatever the interleaving, on one host or many, and whichever check ran last.

And the budget is reached: a trial lost with its worker holds its slot until it is found
(by its dead pid on this host, :func:`~actsearch.engine.storage.fail_stale_trials`, by its
stale heartbeat on database storages, ``optuna.storages.fail_stale_trials``, or, asked but
never claimed, a grace period after it started), failed and queued again;
:meth:`TrialBudget.reserve` looks for such trials before each ask and while it waits for a
slot. What is left queued once the budget is met (a retry copy, a baseline) is failed as
``over_budget`` rather than left WAITING for ever, and so is a second copy of one failed
trial (a requeue retried after an outage), so that a retry chain finishes at most once.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.record import (
    ERROR_ATTR,
    FINISHED,
    OVER_BUDGET_ATTR,
    WORKER_ATTR,
    TrialRecord,
    worker_id,
)
from actsearch.engine.storage import fail_stale_trials, grace_period

__all__ = ["HOLDING", "TrialBudget"]

HOLDING = (TrialState.WAITING, TrialState.RUNNING, *FINISHED)  # states that hold a slot


class TrialBudget:
    """Hands out a study's trial slots so that exactly ``trials`` trials finish.

    Args:
        study: The study; other processes, here or on other hosts, may work on it through
            the same storage, each with its own ``TrialBudget`` and the same ``trials``.
        trials: Finished (COMPLETE or PRUNED) trials the study should end with.
        poll_seconds: How often a worker that waits for a slot looks again.
        timeout: Seconds (from now) after which :meth:`reserve` hands out no more slots.
        clock: The clock of ``timeout`` (seconds, monotonic).
        hook: Called with ``"ask"`` just before each ``study.ask()`` and with ``"wait"`` just
            before each pause for a slot; tests use it to force interleavings.
        concurrent: Whether other processes may run trials of the study. False (a lone search
            on its own run folder, as ``engine.study.make_sampler`` assumes too): no other
            worker can take a slot or die holding one, so the asked trial is kept without a
            second read and lost trials are looked for only once, when the search starts.

    Raises:
        ValueError: ``trials`` below 0, ``poll_seconds`` not positive, ``timeout`` negative.
    """

    def __init__(self, study: optuna.Study, trials: int, *, poll_seconds: float = 1.0,
                 timeout: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 hook: Callable[[str], None] | None = None, concurrent: bool = True) -> None:
        if trials < 0:
            raise ValueError(f"trials: expected 0 or more, got {trials}")
        if not poll_seconds > 0:
            raise ValueError(f"poll_seconds: expected a positive number, got {poll_seconds}")
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout: expected 0 or more seconds, got {timeout}")
        self.study = study
        self.trials = trials
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.hook = hook
        self.concurrent = concurrent
        self._deadline = None if timeout is None else clock() + timeout
        # Storages with heartbeats: a RUNNING trial no worker claimed within the grace
        # period is lost too (fail_stale_trials' unclaimed_after).
        self._grace = grace_period(study._storage)
        self._heartbeats = self._grace is not None
        self._looked_for_lost = False
        self._met = False  # reserve() found the budget met (and failed the leftovers)
        # Alone (not concurrent) the study changes only through this process: one read, then
        # counts, instead of a read of every trial before each one.
        self._known_finished: int | None = None
        self._running = 0  # trials reserved here and not yet ended

    # --- reading ----------------------------------------------------------------------------

    def finished(self) -> int:
        """COMPLETE and PRUNED trials in the study (every worker's)."""
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def expired(self) -> bool:
        """Whether the timeout has passed (never without one)."""
        return self._deadline is not None and self.clock() >= self._deadline

    # --- slots ------------------------------------------------------------------------------

    def reserve(self, *, wait: bool = True) -> optuna.Trial | None:
        """A RUNNING trial that holds one of the study's slots, or None when there is none.

        The trial comes from ``study.ask()``, so queued (WAITING) trials, baselines and retries
        of lost trials, are run first, as ``study.optimize`` did; its ``worker`` user attr is
        set, and on a storage with heartbeats one heartbeat is recorded (then run it inside
        :func:`~actsearch.engine.storage.heartbeat` and tell it).

        Before each ask, and while it waits, trials of dead workers are failed and queued
        again (by pid on this host; by heartbeat on database storages with heartbeats).

        Args:
            wait: When every slot is held by trials that are still running (they may fail and
                free theirs), wait for one (True), or return None at once (False: for a
                process that already holds running trials of its own, e.g. a population
                reserving its next member, since it would wait on itself).

        Returns:
            The trial; None when the study holds ``trials`` finished trials (then queued
            trials that are left are failed as ``over_budget``), when the timeout has passed,
            or, with ``wait=False``, when no slot is free now.
        """
        while True:
            self._find_lost()
            trials: Sequence[FrozenTrial] | None = None
            if self.concurrent or self._known_finished is None:
                trials = self.study.get_trials(deepcopy=False)
                finished = sum(t.state in FINISHED for t in trials)
                if not self.concurrent:
                    self._known_finished = finished
            else:  # alone: the count of the first read, plus what ended() was told since
                finished = self._known_finished
            if finished >= self.trials:
                if trials is None:
                    trials = self.study.get_trials(deepcopy=False)
                self._fail_leftovers(trials, finished)
                self._met = True
                return None
            if self.expired():
                return None
            free = (self._slot_free(trials) if trials is not None
                    else finished + self._running < self.trials)
            if free:
                if self.hook is not None:
                    self.hook("ask")
                with warnings.catch_warnings():
                    # Optuna warns that heartbeats are meant for study.optimize; this loop
                    # sends them itself (storage.heartbeat).
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    trial = self.study.ask()
                if self._claim(trial):
                    self._running += 1
                    return trial
                continue  # another worker took the slot first: look again at once
            if not wait:
                return None
            if self.hook is not None:
                self.hook("wait")
            pause = self.poll_seconds
            if self._deadline is not None:
                pause = min(pause, max(0.0, self._deadline - self.clock()))
            time.sleep(pause)

    def ended(self, finished: bool) -> None:
        """A trial this budget reserved was told: ``finished`` when COMPLETE or PRUNED."""
        self._running = max(0, self._running - 1)
        if finished and self._known_finished is not None:
            self._known_finished += 1

    def close(self) -> list[int]:
        """Tidy the study once this worker stops: call it when the loop ends (``finally``).

        When the budget is met, fails the trials no worker will run: queued (WAITING) ones
        (a retry copy or a baseline with no slot left), marked ``over_budget``, and RUNNING
        ones of dead processes on this host (not queued again). When it is not met (a
        timeout, an interrupt) it changes nothing: a resumed search runs the queued trials.

        Returns:
            The numbers of the trials it failed.
        """
        if self._met and not self.concurrent:
            return []  # reserve() just failed the leftovers; no one else adds any
        finished = self.finished()
        if finished < self.trials:
            return []
        lost = fail_stale_trials(self.study, budget=self.trials,
                                 unclaimed_after=self._grace)
        return lost + self._fail_leftovers(self.study.get_trials(deepcopy=False), finished)

    # --- inside -----------------------------------------------------------------------------

    def _find_lost(self) -> None:
        """Fail (and queue again) the trials of dead workers: each holds a slot until then."""
        if not self.concurrent and self._looked_for_lost:
            return
        self._looked_for_lost = True
        # Just back from an outage of the storage, every other worker may be too: their
        # heartbeats (and claims) stopped with the server (a restart, a failover longer than
        # the grace period), not with them. Judge them again once a grace period has passed.
        recovered = getattr(self.study._storage, "recovered_at", None)
        judge = self._heartbeats and not (recovered is not None
                                          and time.monotonic() - recovered < self._grace)
        fail_stale_trials(self.study, budget=self.trials,
                          unclaimed_after=self._grace if judge else None)
        if judge:
            # What study.optimize did before each trial: trials whose heartbeat stopped are
            # failed and handed to the storage's callback, which queues them again.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)

    def _slot_free(self, trials: Sequence[FrozenTrial]) -> bool:
        """Whether ``study.ask()`` would get a trial that wins a slot, were no one else asking.

        ask() pops the queued trial with the smallest number first, else makes a new one
        with a number above all; if that trial cannot win, no trial can now. Asking only then
        means a worker alone never makes a trial it must fail.
        """
        first = min((t.number for t in trials if t.state == TrialState.WAITING),
                    default=math.inf)
        held = sum(t.state in HOLDING and t.number < first for t in trials)
        return held < self.trials

    def _claim(self, trial: optuna.Trial) -> bool:
        """Keep the asked trial if it wins a slot, else fail it or put it back in the queue."""
        try:
            return self._decide(trial)
        except BaseException:
            # A storage error or Ctrl-C between ask and the decision: a RUNNING trial left
            # without its worker attr or a heartbeat would hold a slot that no one can free.
            with contextlib.suppress(Exception):
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise

    def _decide(self, trial: optuna.Trial) -> bool:
        storage, trial_id = self.study._storage, trial._trial_id
        try:
            # First of all: from here on a killed process leaves a trial that can be found
            # (a database storage never counts a trial without any heartbeat as stale).
            if self._heartbeats:
                storage.record_heartbeat(trial_id)
            trial.set_user_attr(WORKER_ATTR, worker_id())
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # a leftover queued trial, failed by a worker that found the budget met
        if not self.concurrent:  # no one else asks: the pre-check before ask() decided it
            return True
        trials = self.study.get_trials(deepcopy=False)
        mine = next(t for t in trials if t.number == trial.number)
        retried = mine.system_attrs.get("failed_trial")
        first = min((t.number for t in trials if retried is not None
                     and t.system_attrs.get("failed_trial") == retried), default=trial.number)
        if first < trial.number:
            # A second copy of one failed trial (a requeue tried again after its first try
            # was committed, as the connection died): the first copy is the rerun, so that a
            # retry chain never finishes twice. This one never runs.
            record = TrialRecord(error=f"over budget: a second copy of failed trial {retried} "
                                       f"(trial {first} reruns it), not run", over_budget=True)
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                record.write(trial, (ERROR_ATTR, OVER_BUDGET_ATTR))
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            return False
        held = sum(t.state in HOLDING and t.number < trial.number for t in trials)
        if held < self.trials:
            return True
        try:
            if mine.params or "fixed_params" in mine.system_attrs:
                # A queued trial (a baseline, a retry) that another worker's trial overtook:
                # back to the queue, holding its slot as before, so that it runs if that
                # trial fails, and is failed by close() if the budget is met without it.
                trial.set_user_attr(WORKER_ATTR, None)
                storage.set_trial_state_values(trial_id, TrialState.WAITING)
            else:
                record = TrialRecord(error=f"over budget: the {self.trials} slots are held by "
                                           f"{held} earlier trials", over_budget=True)
                record.write(trial, (ERROR_ATTR, OVER_BUDGET_ATTR))
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # failed as a leftover by a worker that found the budget met
        return False

    def _fail_leftovers(self, trials: Sequence[FrozenTrial], finished: int) -> list[int]:
        """Fail the queued trials left once the budget is met; their numbers."""
        storage = self.study._storage
        failed = []
        for t in trials:
            if t.state != TrialState.WAITING:
                continue
            try:
                storage.set_trial_user_attr(
                    t._trial_id, ERROR_ATTR, f"over budget: queued, not run: the study holds "
                                             f"{finished} finished trials of {self.trials}")
                storage.set_trial_user_attr(t._trial_id, OVER_BUDGET_ATTR, True)
                if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    failed.append(t.number)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first
        return failed
