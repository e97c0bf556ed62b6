"""A real cluster's faults: storages that outlive outages, trials failed elsewhere dropped in
one line, trials no worker claimed found lost, and (marked ``cluster``) every scenario of
bench/faultlab.py on separate network hosts with PostgreSQL.

The cluster scenarios need root, iproute2 and the PostgreSQL server binaries; elsewhere they
skip with the reason, and under CI (``CI=true``, which runs as root) a missing capability is a
failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.exc
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from actsearch.engine.budget import TrialBudget
from actsearch.engine.driver import run_trials
from actsearch.engine.record import FINISHED
from actsearch.engine.storage import (
    PatientStorage,
    StorageUnreachable,
    fail_stale_trials,
    make_storage,
    requeue_trial,
)
from actsearch.engine.study import open_study
from actsearch.errors import mask_url
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import EpochStats, Run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import faultlab  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
              pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")]

URL = "postgresql://bob:s3cret@db.example:5432/x"  # only shown in messages, never reached


def _down(times: int, real: Any) -> Any:
    """A storage call that fails as an unreachable server does, ``times`` times, then works."""
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise optuna.exceptions.StorageInternalError("commit failed") from \
                sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionError(
                    "connection to server at \"db.example\" failed: Connection refused"))
        return real(*args, **kwargs)

    return call


def _patient(tmp_path: Path, patience: float = 30.0) -> tuple[PatientStorage, list[str]]:
    said: list[str] = []
    backend = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/p.db")
    return PatientStorage(backend, mask_url(URL), patience=patience, say=said.append), said


def test_an_outage_is_retried_and_said_once_each_way(tmp_path: Path, monkeypatch) -> None:
    storage, said = _patient(tmp_path)
    monkeypatch.setattr("actsearch.engine.storage.time.sleep", lambda s: None)
    study = optuna.create_study(storage=storage, study_name="p")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    backend = storage._backend
    monkeypatch.setattr(backend, "_get_trials", _down(3, backend._get_trials))
    assert len(study.get_trials()) == 2
    assert said == [
        "storage postgresql://bob:***@db.example:5432/x unreachable, retrying for up to 30 s: "
        "OperationalError: (builtins.ConnectionError) connection to server at \"db.example\" "
        "failed: Connection refused",
        said[1]]
    assert said[1].startswith("storage postgresql://bob:***@db.example:5432/x reachable again "
                              "after ")
    # Any other error is the caller's, at once and without a word.
    monkeypatch.setattr(backend, "_get_trials", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        study.get_trials()
    assert len(said) == 2


def test_an_outage_past_the_patience_gives_up_in_one_line(tmp_path: Path,
                                                          monkeypatch) -> None:
    storage, said = _patient(tmp_path, patience=0.3)
    study = optuna.create_study(storage=storage, study_name="p")
    backend = storage._backend
    monkeypatch.setattr(backend, "_get_trials", _down(10**6, backend._get_trials))
    with pytest.raises(StorageUnreachable) as e:
        study.get_trials()
    message = str(e.value)
    assert re.match(r"storage postgresql://bob:\*\*\*@db\.example:5432/x: unreachable for "
                    r"0\.[3-9] s, giving up \(patience 0\.3 s; last error in get_all_trials: "
                    r"OperationalError: ", message), message
    assert "\n" not in message and "s3cret" not in message
    assert len(said) == 1  # it began; it never ended


def test_a_tell_retried_after_its_first_try_went_through_is_done(tmp_path: Path,
                                                                 monkeypatch) -> None:
    storage, said = _patient(tmp_path)
    monkeypatch.setattr("actsearch.engine.storage.time.sleep", lambda s: None)
    study = optuna.create_study(storage=storage, study_name="p")
    trial = study.ask()
    backend = storage._backend
    real = backend.set_trial_state_values

    def committed_then_lost(*args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(backend, "set_trial_state_values", real)
        real(*args, **kwargs)  # the commit reached the server; its answer did not come back
        raise sqlalchemy.exc.OperationalError("COMMIT", {}, ConnectionError("server closed"))

    monkeypatch.setattr(backend, "set_trial_state_values", committed_then_lost)
    assert study.tell(trial, 0.5).state == TrialState.COMPLETE  # no "Cannot tell" error
    assert study.trials[0].values == [0.5] and len(said) == 2
    # A trial someone else finished differently is not ours to call done.
    other = study.ask()
    storage.set_trial_state_values(other._trial_id, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(other._trial_id, TrialState.COMPLETE, [1.0])


def test_database_servers_get_link_timeouts(monkeypatch) -> None:
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def rdb(url: str, engine_kwargs: dict[str, Any], **kwargs: Any) -> None:
        seen.update(engine_kwargs)
        raise Stop("stopped before connecting")

    monkeypatch.setattr(optuna.storages, "RDBStorage", rdb)
    with pytest.raises(Exception, match="cannot open storage"):
        make_storage(URL, timeout=6)
    args = seen["connect_args"]
    assert seen["pool_pre_ping"] is True
    assert (args["connect_timeout"], args["keepalives_idle"], args["keepalives_interval"],
            args["keepalives_count"], args["tcp_user_timeout"]) == (6, 6, 2, 3, 6000)
    assert args["options"] == "-c idle_in_transaction_session_timeout=6000"
    seen.clear()
    with pytest.raises(Exception, match="cannot open storage"):
        make_storage(f"sqlite:///{os.devnull}x")
    assert seen["connect_args"] == {"timeout": 60}  # SQLite files: as before


def test_a_trial_failed_elsewhere_is_dropped_in_one_line(write_space, tmp_path: Path,
                                                         monkeypatch) -> None:
    space_path = write_space({"data.samples": 300, "train.epochs": 3, "pruner": {"name": "none"},
                              "sampler.name": "random"})
    space = load_space(space_path)
    study, _ = open_study(space, "d", make_storage(f"sqlite:///{tmp_path}/d.db"))
    real_epoch, started = Run.epoch, []

    def epoch(self: Run) -> EpochStats:
        if self.epochs_done == 0:
            started.append(self)
        if len(started) == 4 and self.epochs_done == 1:
            # Another worker's heartbeat check, while this one was cut off: failed, queued again.
            (mine,) = study.get_trials(states=(TrialState.RUNNING,))
            study._storage.set_trial_state_values(mine._trial_id, TrialState.FAIL)
            requeue_trial(study, study._storage.get_trial(mine._trial_id))
        return real_epoch(self)

    monkeypatch.setattr(Run, "epoch", epoch)
    said: list[str] = []
    done = run_trials(study, space, to_device(load_data(space.data, 0), "cpu"), trials=6,
                      say=said.append)
    trials = study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and not failed[0].user_attrs.get("val_acc")  # nothing told
    assert said == [f"trial {failed[0].number}: already FAIL in the storage (no heartbeat within "
                    f"the grace period), so another worker runs it again; dropping this "
                    f"worker's result"]
    assert (done.finished, done.failed, done.stop_reason) == (6, 0, None)
    assert len(study.get_trials(states=FINISHED)) == 6
    reruns = [t for t in trials
              if RetryHeartbeatStaleTrialCallback.retry_history(t) == [failed[0].number]]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert reruns[0].params == failed[0].params


def test_a_trial_no_worker_claimed_is_lost_after_the_grace_period(tmp_path: Path) -> None:
    study = optuna.create_study(storage=make_storage(f"journal://{tmp_path}/u.log"),
                                study_name="u")
    # Asked five minutes ago by a worker killed before it claimed it (no worker attr, no
    # heartbeat: Optuna's heartbeat check never fails it) ...
    template = optuna.trial.create_trial(state=TrialState.RUNNING)
    template.datetime_start = datetime.now() - timedelta(minutes=5)
    study._storage.create_new_trial(study._study_id, template)
    # ... and one asked just now, whose worker is about to claim it.
    fresh = study.ask()
    assert fail_stale_trials(study) == []  # without the rule: neither is found
    assert fail_stale_trials(study, unclaimed_after=60) == [0]
    lost, young = study.trials[0], study.trials[fresh.number]
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs["error"] == "worker lost: no worker claimed it"
    assert young.state == TrialState.RUNNING


def test_a_rerun_queued_twice_runs_once(tmp_path: Path) -> None:
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path}/t.db"),
                                study_name="t")
    lost = study.ask()
    lost.suggest_float("x", 0.0, 1.0)
    study._storage.set_trial_state_values(lost._trial_id, TrialState.FAIL)
    frozen = study._storage.get_trial(lost._trial_id)
    # Queued twice: a requeue whose first try was committed though its connection died.
    assert requeue_trial(study, frozen) and requeue_trial(study, frozen)
    budget = TrialBudget(study, 5)
    first = budget.reserve()
    assert first is not None and first.number == 1 and first.params == lost.params
    second = budget.reserve()  # the copy is failed as it is claimed; a new trial runs
    assert second is not None and second.number == 3
    copy = study.trials[2]
    assert copy.state == TrialState.FAIL and copy.user_attrs["over_budget"] is True
    assert copy.user_attrs["error"] == ("over budget: a second copy of failed trial 0 (trial 1 "
                                        "reruns it), not run")


def test_back_from_an_outage_a_worker_judges_no_heartbeat_for_a_grace_period(
        tmp_path: Path) -> None:
    backend = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/h.db", heartbeat_interval=1,
                                         grace_period=1)
    storage = PatientStorage(backend, "h", say=lambda line: None)
    study = optuna.create_study(storage=storage, study_name="h")
    trial = study.ask()
    trial.set_user_attr("worker", "elsewhere:1")
    storage.record_heartbeat(trial._trial_id)
    time.sleep(2.2)  # its worker stopped beating: stale, by the server's clock
    # Everyone's heartbeats stopped with the server's: this worker is just back from it.
    storage.recovered_at = time.monotonic()
    assert TrialBudget(study, 5).reserve(wait=False) is not None
    assert study.trials[0].state == TrialState.RUNNING
    storage.recovered_at = time.monotonic() - 1.5  # a grace period later
    TrialBudget(study, 5).reserve(wait=False)
    assert study.trials[0].state == TrialState.FAIL


# --- the cluster: separate network hosts, PostgreSQL, real faults ----------------------------


def _need_a_lab() -> None:
    """Skip, saying why, where the lab cannot be built; under CI, which can, fail instead."""
    why = faultlab.missing()
    if why is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI runs the cluster scenarios as root with iproute2: {why}")
        pytest.skip(f"cluster scenarios: {why}")


@pytest.fixture(scope="module")
def lab() -> Any:
    """One lab (hosts, links, a server) for every scenario; removed however the tests end."""
    _need_a_lab()
    with faultlab.Lab(workers=2) as opened:
        yield opened


@pytest.mark.slow  # the cluster
@pytest.mark.cluster
@pytest.mark.parametrize("scenario", faultlab.SCENARIOS, ids=[s.name.replace(" ", "-")
                                                              for s in faultlab.SCENARIOS])
def test_a_cluster_fault_loses_and_doubles_nothing(lab: faultlab.Lab,
                                                   scenario: faultlab.Scenario) -> None:
    run = faultlab.SCENARIOS.index(scenario)
    outcome = faultlab.run_scenario(lab, scenario, trials=8, run=run)
    logs = "\n".join(f"--- {name}:\n{text[-3000:]}" for name, text in outcome.logs.items())
    assert outcome.problems == [], logs
    assert (outcome.finished, outcome.lost, outcome.duplicated, outcome.left) == (8, 0, 0, 0), \
        logs
    assert outcome.rerun == (1 if scenario.rerun else 0), logs
    survivors = outcome.exits[1:] if scenario.killed else outcome.exits
    assert set(survivors) == {0}, logs


@pytest.mark.slow  # the cluster
@pytest.mark.cluster
def test_a_worker_cut_off_for_good_gives_up_in_one_line(lab: faultlab.Lab,
                                                         tmp_path: Path) -> None:
    name = f"gives-up-{os.getpid()}"
    study = lab.new_study(name)
    log = tmp_path / "worker.log"
    worker = lab.start_worker(0, name, 8, log, patience=3)
    faultlab.wait_mid_trial(study, lab, worker)
    lab.cut(0)
    try:
        code = worker.wait(timeout=120)
    finally:
        lab.heal(0)
    said = log.read_text()
    assert code == 1, said
    (gave_up,) = [line for line in said.splitlines() if "gave up" in line]
    assert re.fullmatch(r"\[worker 0 \S+\] gave up: storage postgresql://postgres:\*\*\*@"
                        r"10\.213\.0\.2:\d+/actsearch: unreachable for \d+\.\d s, giving up "
                        r"\(patience 3 s; last error in \w+: \w+: .+\)", gave_up), gave_up
    assert said.count("unreachable, retrying for up to 3 s") == 1, said
    assert "Traceback" not in said and "actsearch-ci-secret" not in said, said


@pytest.mark.slow  # the cluster
@pytest.mark.cluster
def test_the_lab_leaves_nothing_behind_when_a_test_fails() -> None:
    _need_a_lab()
    with pytest.raises(RuntimeError, match="a failing test"):
        with faultlab.Lab(workers=1) as lab:
            lab.cut(0)
            sleeper = subprocess.Popen(["ip", "netns", "exec", lab.worker_ns[0], "sleep", "300"])
            lab.procs.append(sleeper)
            pidfile = lab.dir / "pg" / "data" / "postmaster.pid"
            postmaster = int(pidfile.read_text().splitlines()[0])
            raise RuntimeError("a failing test")
    assert sleeper.poll() is not None
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    assert lab.tag not in namespaces and lab.tag not in links
    assert not lab.dir.exists()
    assert _ends(postmaster)


def _ends(pid: int, seconds: float = 20) -> bool:
    """Whether process ``pid`` is gone (or a zombie its parent has not reaped) within
    ``seconds``: a stopped server removes its pid file a moment before it exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False
