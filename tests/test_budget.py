"""Exact trial budgets (actsearch.engine.budget): N asked, N finished, with any number of workers.

The workers here are real processes on real storages (a journal file, an SQLite file, a
PostgreSQL server from the ``postgres_url`` fixture); the interleavings that lose slots are
forced with the budget's hook (a barrier every worker waits on just before it asks), not hoped
for. Nothing trains: a trial suggests ``x`` and is told a value.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.budget import TrialBudget
from actsearch.engine.record import FINISHED, worker_id
from actsearch.engine.storage import (
    fail_stale_trials,
    heartbeat,
    make_storage,
    requeue_trial,
)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPAWN = multiprocessing.get_context("spawn")  # no forked copies of open storages


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "journal":
        return f"journal://{tmp_path}/study.log"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    return request.getfixturevalue("postgres_url")


def _new_study(url: str, **storage_args: Any) -> optuna.Study:
    # A fresh name: the PostgreSQL server is shared by the whole session.
    name = f"budget_{os.getpid()}_{time.monotonic_ns()}"
    return optuna.create_study(storage=make_storage(url, **storage_args), study_name=name)


def _states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _over_budget(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("over_budget") is True


def _run(budget: TrialBudget, study: optuna.Study,
         outcome: Callable[[int], TrialState] = lambda i: TrialState.COMPLETE) -> int:
    """A driver: reserve, "train" (suggest x), tell ``outcome(i)`` for the i-th trial run."""
    ran = 0
    while (trial := budget.reserve()) is not None:
        with heartbeat(study, trial):
            x = trial.suggest_float("x", 0.0, 1.0)
        state = outcome(ran)
        if state == TrialState.COMPLETE:
            study.tell(trial, x)
        else:
            if state == TrialState.FAIL:
                trial.set_user_attr("error", "ValueError: boom")
            study.tell(trial, state=state)
        ran += 1
    budget.close()
    return ran


# --- several processes ------------------------------------------------------------------------


def _barrier_worker(url: str, name: str, index: int, trials: int, barrier: Any, rounds: int,
                    results: Any) -> None:
    """A worker process: its first ``rounds`` asks wait for every other worker's."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    asks = 0

    def hook(event: str) -> None:
        nonlocal asks
        if event == "ask":
            asks += 1
            if asks <= rounds:
                barrier.wait(timeout=60)

    def outcome(i: int) -> TrialState:
        time.sleep(0.05)  # "training"
        return TrialState.FAIL if index == 0 and i == 0 else TrialState.COMPLETE

    ran = _run(TrialBudget(study, trials, poll_seconds=0.05, timeout=60, hook=hook), study,
               outcome)
    results.put((index, asks, ran))


@pytest.mark.slow  # worker processes
@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
def test_four_processes_asking_at_once_finish_exactly_the_budget(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _url(kind, tmp_path, request)
    study = _new_study(url)
    study.enqueue_trial({"x": 0.25})  # baselines: popped first, as study.optimize did
    study.enqueue_trial({"x": 0.75})
    # Three rounds in lock step. 1: two pop the baselines, two make trials; worker 0's trial
    # fails (its slot comes free). 2: four more, 7 finished. 3: all four see 7 of 8 and ask
    # at once; counting finished trials would run four (11 finished): one slot is left.
    barrier, results = SPAWN.Barrier(4), SPAWN.Queue()
    procs = [SPAWN.Process(target=_barrier_worker,
                           args=(url, study.study_name, i, 8, barrier, 3, results))
             for i in range(4)]
    for p in procs:
        p.start()
    reports = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [asks for _, asks, _ in reports] == [3, 3, 3, 3]
    assert sum(ran for _, _, ran in reports) == 9  # 8 finished + worker 0's failure

    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(12))
    assert _states(study) == {"COMPLETE": 8, "FAIL": 4}
    assert [t.params for t in trials[:2]] == [{"x": 0.25}, {"x": 0.75}]
    assert not any(_over_budget(t) for t in trials[:2])  # ran (worker 0's may have failed)
    losers = [t for t in trials if _over_budget(t)]
    assert [t.number for t in losers] == [9, 10, 11]  # trial 8 took the last slot
    for t in losers:
        assert t.state == TrialState.FAIL and not t.params  # never trained
        # 8 to 10 earlier trials: the losers before it may not have been failed yet.
        assert re.fullmatch(r"over budget: the 8 slots are held by (8|9|10) earlier trials",
                            t.user_attrs["error"])
    assert [t.user_attrs["error"] for t in trials if t.state == TrialState.FAIL
            and not _over_budget(t)] == ["ValueError: boom"]
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 4 and all(w.startswith(f"{socket.gethostname()}:") for w in workers)


def _reserve_and_hang(url: str, name: str, trials: int, ready: Any, foreign: bool) -> None:
    """A worker that reserves one trial, sends heartbeats and waits to be killed."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(url, heartbeat_interval=1, grace_period=2) if foreign \
        else make_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    trial = TrialBudget(study, trials).reserve()
    assert trial is not None
    trial.suggest_float("x", 0.0, 1.0)
    if foreign:  # as if on another host: only its stopped heartbeat can tell it is lost
        trial.set_user_attr("worker", "elsewhere:1")
    with heartbeat(study, trial):
        ready.set()
        time.sleep(300)


def _kill_on_first_wait(proc: Any, events: list[str]) -> Callable[[str], None]:
    def hook(event: str) -> None:
        if event == "wait" and "wait" not in events:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(timeout=30)
        events.append(event)

    return hook


def _assert_retried_once(study: optuna.Study, lost: FrozenTrial, trials: int) -> None:
    all_trials = study.get_trials()
    assert len(study.get_trials(states=FINISHED)) == trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert all_trials[lost.number].state == TrialState.FAIL
    retries = [t for t in all_trials
               if RetryHeartbeatStaleTrialCallback.retry_history(t) == [lost.number]]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == lost.params
    assert not [t for t in all_trials if _over_budget(t)]


@pytest.mark.slow  # a worker process
def test_a_killed_worker_is_found_by_pid_while_the_others_wait(tmp_path: Path) -> None:
    url = f"journal://{tmp_path}/study.log"
    study = _new_study(url)
    ready = SPAWN.Event()
    doomed = SPAWN.Process(target=_reserve_and_hang,
                           args=(url, study.study_name, 4, ready, False))
    doomed.start()
    try:
        assert ready.wait(timeout=60)
        (lost,) = study.get_trials(states=(TrialState.RUNNING,))
        assert lost.user_attrs["worker"] == f"{socket.gethostname()}:{doomed.pid}"
        # This worker runs 3 trials; the 4th slot is the doomed one's, so it must wait, and
        # while it waits it finds the trial of the (then killed) worker and runs its retry.
        events: list[str] = []
        budget = TrialBudget(study, 4, poll_seconds=0.05, timeout=30,
                             hook=_kill_on_first_wait(doomed, events))
        start = time.monotonic()
        assert _run(budget, study) == 4
        assert time.monotonic() - start < 10
    finally:
        doomed.kill()
        doomed.join()
    assert events.count("ask") == 4 and "wait" in events
    _assert_retried_once(study, lost, 4)
    failed = study.get_trials()[lost.number]
    assert failed.user_attrs["error"] == f"worker lost: {socket.gethostname()}:{doomed.pid} " \
                                         f"is gone"


@pytest.mark.slow  # a worker process
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_lost_trial_is_found_by_its_heartbeat_while_the_others_wait(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _url(kind, tmp_path, request)
    study = _new_study(url, heartbeat_interval=1, grace_period=2)
    ready = SPAWN.Event()
    doomed = SPAWN.Process(target=_reserve_and_hang,
                           args=(url, study.study_name, 3, ready, True))
    doomed.start()
    try:
        assert ready.wait(timeout=60)
        (lost,) = study.get_trials(states=(TrialState.RUNNING,))
        events: list[str] = []
        budget = TrialBudget(study, 3, poll_seconds=0.1, timeout=30,
                             hook=_kill_on_first_wait(doomed, events))
        start = time.monotonic()
        assert _run(budget, study) == 3
        # The grace period (2 s) after its last heartbeat, not a pid check, found it.
        assert 1.0 < time.monotonic() - start < 15
    finally:
        doomed.kill()
        doomed.join()
    assert events.count("ask") == 3 and events.count("wait") > 5
    lost = study.get_trials()[lost.number]
    assert lost.user_attrs["worker"] == "elsewhere:1"
    _assert_retried_once(study, lost, 3)


# --- races forced in one process --------------------------------------------------------------


@pytest.fixture(params=["journal", "sqlite"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> optuna.Study:
    return _new_study(_url(request.param, tmp_path, request))


def test_a_loser_is_failed_and_marked(study: optuna.Study) -> None:
    other = TrialBudget(study, 1)
    taken: list[optuna.Trial | None] = []

    def hook(event: str) -> None:
        # Another worker takes the last slot between this one's check and its ask.
        if event == "ask" and not taken:
            taken.append(other.reserve())

    me = TrialBudget(study, 1, hook=hook)
    assert me.reserve(wait=False) is None  # lost the race; then no slot is free
    winner, loser = study.get_trials()
    assert taken[0] is not None and taken[0].number == winner.number == 0
    assert winner.state == TrialState.RUNNING and not _over_budget(winner)
    assert loser.state == TrialState.FAIL and _over_budget(loser)
    assert loser.user_attrs["error"] == "over budget: the 1 slots are held by 1 earlier trials"
    assert loser.user_attrs["worker"] == worker_id()
    study.tell(taken[0], 0.5)
    assert me.reserve() is None and me.finished() == 1
    assert len(study.get_trials()) == 2


def test_a_queued_loser_goes_back_to_the_queue(study: optuna.Study) -> None:
    for x in (0.1, 0.2, 0.3):
        study.enqueue_trial({"x": x})
    other = TrialBudget(study, 1)
    taken: list[optuna.Trial | None] = []

    def hook(event: str) -> None:
        if event == "ask" and not taken:
            taken.append(other.reserve())  # pops the first queued trial

    me = TrialBudget(study, 1, hook=hook)
    assert me.reserve(wait=False) is None  # popped the second, which had no slot
    first, second, third = study.get_trials()
    assert first.state == TrialState.RUNNING
    assert second.state == third.state == TrialState.WAITING  # not failed: still queued
    assert second.user_attrs.get("worker") is None and "error" not in second.user_attrs
    # The winner fails (an error in training): its slot goes to the queued trial.
    study.tell(taken[0], state=TrialState.FAIL)
    trial = me.reserve()
    assert trial is not None and trial.number == 1
    assert trial.suggest_float("x", 0.0, 1.0) == 0.2
    study.tell(trial, 0.2)
    # The budget is met: the last queued trial is failed as a leftover, not left WAITING.
    assert me.reserve() is None
    third = study.get_trials()[2]
    assert third.state == TrialState.FAIL and _over_budget(third)
    assert third.user_attrs["error"] == ("over budget: queued, not run: the study holds 1 "
                                         "finished trials of 1")
    assert _states(study) == {"FAIL": 2, "COMPLETE": 1}


def test_a_lone_worker_never_makes_a_loser(study: optuna.Study) -> None:
    for i in range(7):  # more queued trials than the budget
        study.enqueue_trial({"x": i / 10})
    asks: list[str] = []
    budget = TrialBudget(study, 5, hook=asks.append)
    outcomes = [TrialState.FAIL, TrialState.PRUNED]
    ran = _run(budget, study, lambda i: outcomes[i] if i < len(outcomes) else TrialState.COMPLETE)
    assert ran == 6 and asks == ["ask"] * 6  # every trial it asked for ran; it never waited
    trials = study.get_trials()
    assert _states(study) == {"FAIL": 2, "PRUNED": 1, "COMPLETE": 4}
    assert [t.number for t in trials if _over_budget(t)] == [6]  # the queued one left over
    assert "queued, not run" in trials[6].user_attrs["error"]
    assert budget.finished() == 5 and budget.close() == []


def test_the_timeout_ends_a_wait(study: optuna.Study) -> None:
    held = TrialBudget(study, 1).reserve()  # a live worker's trial holds the only slot
    assert held is not None
    events: list[str] = []
    # Polls every 0.05 s for a second: several waits even when a busy machine slows each
    # storage read (0.3 s once saw only two under load).
    budget = TrialBudget(study, 1, poll_seconds=0.05, timeout=1.0, hook=events.append)
    start = time.monotonic()
    assert budget.reserve() is None
    assert 0.95 < time.monotonic() - start < 5
    assert budget.expired() and "ask" not in events and events.count("wait") >= 3
    assert len(study.get_trials()) == 1
    assert TrialBudget(study, 1).reserve(wait=False) is None  # no wait without a free slot
    with pytest.raises(ValueError, match="trials: expected 0 or more, got -1"):
        TrialBudget(study, -1)
    with pytest.raises(ValueError, match="poll_seconds"):
        TrialBudget(study, 1, poll_seconds=0)


# --- requeuing and leftovers ------------------------------------------------------------------


def _dead_pid() -> int:
    proc = SPAWN.Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_no_retry_once_the_budget_is_met_and_leftovers_are_failed(study: optuna.Study) -> None:
    done = study.ask()
    study.tell(done, 1.0)
    dead = _dead_pid()
    lost = study.ask()
    lost.suggest_float("x", 0.0, 1.0)
    lost.set_user_attr("worker", f"{socket.gethostname()}:{dead}")
    # The budget (1) is met: the dead worker's trial is failed, and not queued again.
    assert fail_stale_trials(study, budget=1) == [lost.number]
    assert not study.get_trials(states=(TrialState.WAITING,))
    frozen = study.get_trials()[lost.number]
    assert requeue_trial(study, frozen, budget=2)  # a budget not met yet: queued
    # Without a budget (the heartbeat callback of database storages) a copy is queued ...
    assert requeue_trial(study, frozen)
    budget = TrialBudget(study, 2)
    assert budget.close() == []  # ... kept while the budget is not met (a resume runs them)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2
    trial = budget.reserve()
    assert trial is not None and trial.params == frozen.params
    study.tell(trial, 0.5)
    # ... and failed once it is: no WAITING trial is left behind.
    (leftover,) = study.get_trials(states=(TrialState.WAITING,))
    assert budget.close() == [leftover.number]
    assert not study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    assert _over_budget(study.get_trials()[leftover.number])


# --- heartbeats -------------------------------------------------------------------------------


class _BeatingStorage:
    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        self.beats: list[tuple[int, float]] = []

    def get_heartbeat_interval(self) -> float | None:
        return self.interval

    def record_heartbeat(self, trial_id: int) -> None:
        self.beats.append((trial_id, time.monotonic()))


class _Study:
    def __init__(self, storage: _BeatingStorage) -> None:
        self._storage = storage


class _Trial:
    _trial_id = 7


def test_heartbeat_beats_at_once_then_every_interval_until_the_block_ends() -> None:
    storage = _BeatingStorage(0.05)
    threads = threading.active_count()
    with heartbeat(_Study(storage), _Trial()):  # type: ignore[arg-type]
        assert len(storage.beats) == 1  # at once, before the block runs
        time.sleep(0.32)
        assert threading.active_count() == threads + 1
    count = len(storage.beats)
    assert 5 <= count <= 8 and {trial_id for trial_id, _ in storage.beats} == {7}
    time.sleep(0.15)
    assert len(storage.beats) == count and threading.active_count() == threads
    quiet = _BeatingStorage(None)  # a storage without heartbeats (a journal file)
    with heartbeat(_Study(quiet), _Trial()):  # type: ignore[arg-type]
        pass
    assert quiet.beats == []


@pytest.mark.slow  # waits out real heartbeat intervals
def test_heartbeat_keeps_a_real_trial_fresh(tmp_path: Path) -> None:
    study = _new_study(f"sqlite:///{tmp_path}/h.db", heartbeat_interval=1, grace_period=1)
    trial = TrialBudget(study, 1).reserve()
    assert trial is not None
    stale = study._storage._get_stale_trial_ids  # the check other workers run
    with heartbeat(study, trial):
        # Past the grace period after reserve's own heartbeat (SQLite keeps whole seconds):
        # only the beats of the block keep it fresh.
        time.sleep(2.5)
        assert stale(study._study_id) == []
