"""Workers and faults: several processes on one study, a killed worker, errors inside trials.

The multi-process tests start real worker processes (``actsearch worker``); the
PostgreSQL test uses the ``postgres_url`` fixture of conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import torch
from conftest import REPO
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from actsearch.analysis import failure_reasons
from actsearch.engine.driver import run_trials
from actsearch.engine.record import FINISHED
from actsearch.engine.storage import fail_stale_trials, make_storage, resolve_storage_url
from actsearch.engine.study import open_study
from actsearch.errors import ActsearchError
from actsearch.faces.report import failure_line
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import EpochStats, Run

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

FAST = {"data.samples": 300, "train.epochs": 2, "pruner": {"name": "none"}}


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _create(space_path: Path, storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    study, _ = open_study(load_space(space_path), name, storage)
    return study


def _assert_recorded_once(study: optuna.Study, trials: int) -> None:
    all_trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in all_trials]
    assert sorted(numbers) == list(range(len(numbers))), "a trial number is missing or twice"
    assert len({t._trial_id for t in all_trials}) == len(all_trials)
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == trials  # exactly


# A worker whose training step hangs on its first trial after saying so in a marker file, so
# the test can kill it mid-trial; the others are slowed a little (the survivors must outlive the
# grace period for the heartbeat check to run).
_PATCHED_WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from actsearch.faces.cli import main
    from actsearch.training.fit import Run

    marker, delay = os.environ.get("HANG_MARKER"), float(os.environ.get("STEP_DELAY", "0"))
    real_epoch = Run.epoch

    def epoch(self):
        if marker:
            Path(marker).write_text(str(os.getpid()))
            time.sleep(120)
        if self.epochs_done == 0:
            time.sleep(delay)
        return real_epoch(self)

    Run.epoch = epoch
    sys.exit(main(["worker", *sys.argv[1:]]))
""")


def _start_worker(args: list[str], tmp_path: Path, hang_marker: Path | None = None,
                  delay: float = 0.0) -> subprocess.Popen[str]:
    env = _worker_env()
    env["STEP_DELAY"] = str(delay)
    if hang_marker is not None:
        env["HANG_MARKER"] = str(hang_marker)
    return subprocess.Popen([sys.executable, "-c", _PATCHED_WORKER, *args], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited early ({proc.returncode}):\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            pytest.fail("worker never started a trial")
        time.sleep(0.05)


# --- storages ---------------------------------------------------------------------------------


def test_storage_choice(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert resolve_storage_url(None, "a", runs, workers=1) == f"sqlite:///{runs}/a/study.db"
    journal = f"journal://{(runs / 'b' / 'journal.log').resolve()}"
    assert resolve_storage_url(None, "b", runs, workers=4) == journal
    storage = make_storage(resolve_storage_url(None, "b", runs, workers=4))
    assert isinstance(storage, optuna.storages.journal.JournalStorage)
    optuna.create_study(storage=storage, study_name="b")
    # A run folder keeps its storage: resuming with one worker finds the journal.
    assert resolve_storage_url(None, "b", runs, workers=1) == journal
    assert resolve_storage_url("sqlite:///x.db", "b", runs, 4) == "sqlite:///x.db"
    rdb = make_storage(f"sqlite:///{tmp_path}/h.db", heartbeat_interval=2, grace_period=5)
    assert isinstance(rdb, optuna.storages.RDBStorage)
    assert (rdb.heartbeat_interval, rdb.grace_period) == (2, 5)
    with pytest.raises(ActsearchError, match="unknown storage"):
        make_storage("redis://u:pw@h/0")
    # The password never reaches a message, even when the driver is missing.
    with pytest.raises(ActsearchError) as e:
        make_storage("mysql+nosuchdriver://bob:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(e.value) and "bob:***@" in str(e.value)


# --- faults inside trials ---------------------------------------------------------------------


def test_faults_fail_one_trial_and_the_study_goes_on(write_space, tmp_path: Path,
                                                     monkeypatch) -> None:
    space_path = write_space(FAST)
    storage = make_storage(f"sqlite:///{tmp_path}/f.db")
    study = _create(space_path, storage, "f")
    space = load_space(space_path)
    data = to_device(load_data(space.data, 0), "cpu")
    real_epoch, runs = Run.epoch, []

    def faulty_epoch(self: Run) -> EpochStats:
        if self.epochs_done == 0:
            runs.append(self)
        if len(runs) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if len(runs) == 3:
            raise ValueError("boom")
        if len(runs) == 4:  # a divergence is a pruned trial, told apart by `end`
            nan = float("nan")
            stats = EpochStats(1, nan, nan, 0.1, 0.01)
            self.result.history.append(stats)
            self.result.status = "diverged"
            return stats
        return real_epoch(self)

    monkeypatch.setattr(Run, "epoch", faulty_epoch)
    done = run_trials(study, space, data, trials=5)
    assert (done.finished, done.failed, done.stop_reason) == (5, 2, None)
    trials = study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.user_attrs["error"] for t in failed] == [
        "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB", "ValueError: boom"]
    assert "ValueError: boom" in failed[1].user_attrs["traceback"]
    assert "faulty_epoch" in failed[1].user_attrs["traceback"]
    diverged = [t for t in trials if str(t.user_attrs.get("end")).startswith("diverged")]
    assert len(diverged) == 1 and diverged[0].state == TrialState.PRUNED
    assert all(t.user_attrs["worker"] == f"{socket.gethostname()}:{os.getpid()}"
               for t in trials)
    assert failure_reasons(trials) == {"out of memory": 1, "ValueError": 1}
    assert failure_line(trials) == ("2 trials failed: 1 out of memory, 1 ValueError; "
                                    "1 diverged (pruned) (see each trial's user attrs 'error' "
                                    "and 'traceback')")


def test_user_mistakes_and_interrupts_stop_the_study(write_space, tmp_path: Path,
                                                    monkeypatch) -> None:
    space_path = write_space(FAST)
    study = _create(space_path, make_storage(f"sqlite:///{tmp_path}/u.db"), "u")
    space = load_space(space_path)
    data = to_device(load_data(space.data, 0), "cpu")

    def mistake(self: Run) -> EpochStats:
        raise ActsearchError("train.optimizer: unknown optimizer 'adamx'")

    monkeypatch.setattr(Run, "epoch", mistake)
    with pytest.raises(ActsearchError):
        run_trials(study, space, data, trials=3)

    def interrupted(self: Run) -> EpochStats:
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, data, trials=3)
    # Two baselines failed; the third still waits for a run without the mistake.
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2 + [TrialState.WAITING]
    assert study.trials[0].user_attrs["error"].startswith("ActsearchError: train.optimizer")
    assert study.trials[1].user_attrs["error"].startswith("interrupted")
    assert failure_reasons(study.trials) == {"ActsearchError": 1, "interrupted": 1}


@pytest.mark.slow  # a search until four trials fail
def test_a_run_of_failures_stops_the_search_with_one_line(write_space, tmp_path: Path,
                                                          monkeypatch) -> None:
    space_path = write_space(FAST)
    study = _create(space_path, make_storage(f"sqlite:///{tmp_path}/r.db"), "r")
    space = load_space(space_path)

    def broken(self: Run) -> EpochStats:
        raise ValueError("the model is broken")

    monkeypatch.setattr(Run, "epoch", broken)
    done = run_trials(study, space, to_device(load_data(space.data, 0), "cpu"), trials=20,
                      max_failures_in_a_row=4)
    assert (done.finished, done.failed) == (0, 4)
    assert done.stop_reason == ("4 trials in a row failed (the last: ValueError: the model is "
                                "broken)")
    assert len(study.trials) == 4  # no trial started after the fourth failure
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_resume_fails_a_dead_workers_trial_and_retries_it(write_space, tmp_path: Path) -> None:
    space_path = write_space(FAST)
    storage = make_storage(f"journal://{tmp_path}/r.log")
    study = _create(space_path, storage, "r")
    # A trial left RUNNING by a process that died (its pid is gone) ...
    dead = subprocess.Popen(["true"])
    dead.wait()
    lost = study.ask()
    lost.suggest_categorical("act_0", ["relu", "elu", "selu"])
    lost.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    # ... and one of a live process on another host, which must be left alone.
    other = study.ask()
    other.set_user_attr("worker", "elsewhere:1")
    assert fail_stale_trials(study) == [lost.number]
    stale = study.trials[lost.number]
    assert stale.state == TrialState.FAIL
    assert stale.user_attrs["error"] == f"worker lost: {socket.gethostname()}:{dead.pid} is gone"
    assert study.trials[other.number].state == TrialState.RUNNING
    waiting = study.get_trials(states=(TrialState.WAITING,))
    retry = [t for t in waiting if RetryHeartbeatStaleTrialCallback.retry_history(t)]
    assert len(retry) == 1 and retry[0].params == stale.params
    assert fail_stale_trials(study) == []  # idempotent
    # A single process that knows it is alone fails the foreign one too, then resumes.
    assert fail_stale_trials(study, assume_alone=True) == [other.number]
    space = load_space(space_path)
    run_trials(study, space, to_device(load_data(space.data, 0), "cpu"), trials=5)
    done = [t for t in study.get_trials(states=FINISHED)
            if RetryHeartbeatStaleTrialCallback.retry_history(t) == [lost.number]]
    assert len(done) == 1 and done[0].params["act_0"] == stale.params["act_0"]
    assert failure_reasons(study.trials) == {"worker lost": 2}


# --- several processes ------------------------------------------------------------------------


@pytest.mark.slow  # a worker process
def test_sigterm_stops_workers_gracefully(write_space, tmp_path: Path) -> None:
    space_path = write_space(FAST)
    url = f"journal://{tmp_path}/t.log"
    study = _create(space_path, make_storage(url), "t")
    marker = tmp_path / "hang"
    worker = _start_worker(["--storage", url, "--study", "t", "--device", "cpu"], tmp_path,
                           hang_marker=marker)
    _wait_for(marker, worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 130
    trials = study.get_trials(states=(TrialState.FAIL, TrialState.RUNNING, *FINISHED))
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].user_attrs["error"].startswith("interrupted")


@pytest.mark.slow  # worker processes
def test_four_workers_on_the_one_host_journal(write_space, tmp_path: Path) -> None:
    space_path = write_space({**FAST, "sampler.name": "random", "train.epochs": 1})
    url = resolve_storage_url(None, "four", tmp_path / "runs", workers=4)
    assert url.startswith("journal://")
    study = _create(space_path, make_storage(url), "four")
    run = subprocess.run(
        [sys.executable, "-m", "actsearch", "worker", "--workers", "4", "--storage", url,
         "--study", "four", "--trials", "8", "--device", "cpu", "--quiet"],
        env=_worker_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    _assert_recorded_once(study, 8)
    # A trial that lost a race for the last slots never ran; no other trial failed.
    assert all(t.user_attrs.get("over_budget") for t in study.get_trials(
        states=(TrialState.FAIL,)))
    workers = {t.user_attrs["worker"] for t in study.get_trials()}
    assert 2 <= len(workers) <= 4
    # Workers vary their sampler seeds: they do not all propose the same layouts.
    sampled = [tuple(sorted(t.params.items())) for t in study.get_trials()
               if "baseline" not in t.user_attrs]
    assert len(set(sampled)) > len(sampled) // 2


@pytest.mark.slow  # worker processes
def test_postgres_survives_a_killed_worker(write_space, tmp_path: Path, postgres_url: str) -> None:
    space_path = write_space({**FAST, "sampler.name": "random"})
    name = f"pg{os.getpid()}_{time.monotonic_ns()}"
    beat = ["--heartbeat-interval", "1", "--grace-period", "2"]
    storage = make_storage(postgres_url, heartbeat_interval=1, grace_period=2)
    study = _create(space_path, storage, name)
    args = ["--storage", postgres_url, "--study", name, "--trials", "10", "--device", "cpu",
            *beat]
    marker = tmp_path / "hang"
    doomed = _start_worker([*args, "--worker-index", "0"], tmp_path, hang_marker=marker)
    # The survivor is slowed so that it still runs trials once the grace period has passed.
    survivor = _start_worker([*args, "--worker-index", "1"], tmp_path, delay=0.4)
    _wait_for(marker, doomed)
    time.sleep(0.3)  # a heartbeat or two reaches the server first
    killed = [t for t in study.get_trials(states=(TrialState.RUNNING,))
              if t.user_attrs.get("worker", "").endswith(f":{doomed.pid}")]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert len(killed) == 1
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out
    assert "actsearch-ci-secret" not in out and "postgres:***@" in out

    trials = study.get_trials()
    _assert_recorded_once(study, 10)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 10
    dead = trials[killed[0].number]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials
               if RetryHeartbeatStaleTrialCallback.retry_history(t) == [dead.number]]
    assert len(retries) == 1 and retries[0].number > dead.number
    assert retries[0].state == TrialState.COMPLETE
    assert {k: retries[0].params[k] for k in dead.params} == dead.params
    # On one host the survivor finds the dead process by its pid before the heartbeat lapses;
    # a worker on another host is found by its heartbeat (tests/test_budget.py).
    assert failure_reasons(trials) == {"worker lost": 1}
    assert len(study.get_trials(states=FINISHED)) == 10  # exactly the budget
