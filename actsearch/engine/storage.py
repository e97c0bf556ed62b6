"""Optuna storages from URLs: run folders, SQLite in WAL mode, journal files, databases with
heartbeats and a patience for outages, and finding and requeuing the trials of dead workers.

Kept free of torch, so that the dashboard and reports open studies without loading it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.record import BASELINE_ATTR, ERROR_ATTR, FINISHED, WORKER_ATTR
from actsearch.errors import ActsearchError, mask_url
from actsearch.schema.space import STUDY_NAME, SearchSpace, parse_space

__all__ = [
    "FINISHED",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "STORAGE_PATIENCE",
    "STORAGE_TIMEOUT",
    "PatientStorage",
    "StorageUnreachable",
    "default_storage",
    "fail_stale_trials",
    "grace_period",
    "heartbeat",
    "heartbeat_interval",
    "load_run",
    "make_storage",
    "requeue_trial",
    "resolve_run",
    "resolve_storage_url",
    "space_of_study",
    "study_names",
]

_log = logging.getLogger(__name__)
SPACE_ATTR = "actsearch_space"  # the study user attribute that holds its space document

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats (RDB storages)
GRACE_PERIOD = 30  # seconds without a heartbeat before a running trial counts as lost
MAX_RETRY = 3  # a trial whose worker keeps dying is retried at most this many times
# Database servers: a call on a dead link (a partition drops packets silently, so nothing
# resets the connection) fails after about STORAGE_TIMEOUT seconds instead of hanging in a
# read for ever; a storage that cannot be reached is retried, with backoff, for
# STORAGE_PATIENCE seconds (a restart, a failover, a link that comes back) before giving up.
STORAGE_TIMEOUT = 10
STORAGE_PATIENCE = 600
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def default_storage(study_name: str, runs_dir: str | Path = "runs") -> str:
    """``runs/<study>/study.db`` as an SQLite URL (the folder is created)."""
    folder = Path(runs_dir) / study_name
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'study.db'}"


def resolve_storage_url(url: str | None, study_name: str, runs_dir: str | Path = "runs",
                        workers: int = 1) -> str:
    """The storage URL a study uses: ``url`` itself, or the run folder's default.

    Without a URL: ``journal:///.../runs/<study>/journal.log`` when that file exists or when
    ``workers > 1`` (SQLite serialises writers and times out under several processes), else
    the SQLite default (``runs/<study>/study.db``), which is also kept when it exists already.
    The journal path is absolute so that workers started in another folder find it.
    """
    if url:
        return url
    if not STUDY_NAME.fullmatch(study_name):  # before it names a folder
        raise ActsearchError(f"study: expected letters, digits, '_', '-' or '.' (it names "
                             f"the run folder), got {study_name!r}", parameter="study")
    folder = Path(runs_dir) / study_name
    journal = (folder / "journal.log").resolve()
    if journal.exists() or (workers > 1 and not (folder / "study.db").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        return f"journal://{journal}"
    return default_storage(study_name, runs_dir)


def make_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int = GRACE_PERIOD,
                 max_retry: int | None = MAX_RETRY, timeout: float = STORAGE_TIMEOUT,
                 patience: float = STORAGE_PATIENCE,
                 say: Callable[[str], None] | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage for a URL (see docs/scaling.md).

    Args:
        url: ``sqlite:///``, ``postgresql://``, ``mysql://`` (any SQLAlchemy driver suffix) or
            ``journal:///path.log``.
        heartbeat_interval: Seconds between heartbeats of a running trial (RDB storages).
            Default: 10 for database servers; none for SQLite files, which a lone search
            uses: a resumed run finds a dead process's trials by process id instead
            (:func:`fail_stale_trials`), and trials save ~10 ms each.
            Workers (``actsearch.engine.workers.run_worker``) ask for heartbeats on SQLite too.
        grace_period: Seconds without a heartbeat after which a trial is failed and retried.
        max_retry: How often one trial is retried after its worker died (None: no limit).
        timeout: Database servers: seconds after which connecting, or waiting on a link that
            stopped answering, fails (connect timeout, TCP keepalives and user timeout, and
            the server's idle-in-transaction timeout for a client cut off mid-transaction).
        patience: Database servers: seconds for which a storage call that cannot reach the
            server is retried with backoff (:class:`PatientStorage`) before it raises
            :class:`StorageUnreachable`.
        say: Where the one line per outage goes (default: this module's logger).

    Raises:
        ActsearchError: An unknown scheme, a missing database driver, an unreachable server.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "journal":
        if not url.startswith("journal://") or url == "journal://":
            raise ActsearchError(f"storage {url}: expected journal:///absolute/path.log or "
                                 f"journal://relative/path.log", parameter="storage")
        path = Path(url[len("journal://"):])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
        except OSError as e:
            raise ActsearchError(f"storage {url}: cannot open the journal ({e})",
                                 parameter="storage") from None
        return optuna.storages.journal.JournalStorage(backend)
    if scheme == "sqlite" and url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://"):
        raise ActsearchError(f"storage {url}: expected a file after sqlite:///, e.g. "
                             f"sqlite:///runs/study.db", parameter="storage")
    if scheme not in _RDB_SCHEMES:
        raise ActsearchError(f"storage {mask_url(url)}: unknown storage; expected sqlite:///, "
                             f"postgresql://, mysql:// or journal:/// URL", parameter="storage")
    engine_kwargs: dict[str, Any] = {}
    if heartbeat_interval is None and scheme != "sqlite":
        heartbeat_interval = HEARTBEAT_INTERVAL
    if scheme == "sqlite":
        # Several processes on one SQLite file wait for its write lock; the default 5 s
        # ends in "database is locked" failures under four busy workers.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        # A server may drop idle connections between long trials, or restart: test them
        # before use. The driver's own timeouts make a dead link fail instead of hang.
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = _link_timeouts(scheme, url, timeout)
    try:
        with warnings.catch_warnings():
            # heartbeat_interval is flagged experimental; it has been stable since Optuna 2.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=_Requeue(max_retry))
    except ImportError:
        extra = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql"}.get(scheme)
        hint = f"; install it with: pip install 'actsearch[{extra}]'" if extra else ""
        raise ActsearchError(f"storage {mask_url(url)}: the database driver is not "
                             f"installed{hint}", parameter="storage") from None
    except Exception as e:  # unreachable server, bad credentials, bad path
        raise ActsearchError(f"storage {mask_url(url)}: cannot open storage "
                             f"({mask_url(str(e)).splitlines()[0]})",
                             parameter="storage") from None
    if scheme == "sqlite":
        _configure_sqlite(storage)
        return storage
    return PatientStorage(storage, mask_url(url), patience=patience, say=say)


def _link_timeouts(scheme: str, url: str, timeout: float) -> dict[str, Any]:
    """The database driver's settings that turn a dead link into an error within ``timeout``.

    A partitioned host's packets are dropped, not refused: without these a client blocked in
    a read waits for ever (the kernel's keepalive starts after two hours), and the server
    keeps the cut-off session, with any row locks it holds, as long.
    """
    seconds = max(1, round(timeout))
    if scheme == "mysql":  # pymysql's names
        return {"connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds}
    settings: dict[str, Any] = {
        "connect_timeout": max(2, seconds),  # libpq reads less than 2 as 2
        # An idle connection (waiting for a reply that was lost) is probed after `seconds`
        # and dropped after three unanswered probes; sent data unacknowledged for `seconds`
        # drops it too (tcp_user_timeout, Linux).
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, seconds // 3),
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 1000,
    }
    if "options=" not in url:  # the URL's own server options win
        # The server ends a session left idle inside a transaction (its client cut off while
        # holding the study's row lock) instead of blocking every other worker.
        settings["options"] = f"-c idle_in_transaction_session_timeout={max(5, seconds) * 1000}"
    return settings


def _configure_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Put an SQLite storage in WAL mode, with transactions that hold the write lock.

    WAL: Optuna commits every report and user attribute; SQLite's default rollback journal
    syncs the disk on each commit, which cost ~6 ms a commit here and made a 0.5 s trial take
    0.86 s (bench/overhead.py). WAL with synchronous=NORMAL survives a crashed process (not a
    power cut for the last commits) and lets readers (dashboards, reports) work beside a writer.

    BEGIN IMMEDIATE: Python's sqlite3 driver opens a transaction only at the first write, so
    Optuna's read-check-write steps (``SELECT ... FOR UPDATE``, which SQLite ignores, then an
    UPDATE) were not atomic between processes: two workers could both pop the same queued
    trial (``set_trial_state_values(RUNNING)`` on a WAITING trial returned True to both) and
    both run it, or both tell it. Each transaction now begins with BEGIN IMMEDIATE, which
    takes the database's write lock (waiting up to the connect timeout for it), so those steps
    are serial as on a database server (tests/test_budget.py, four processes on SQLite).
    """
    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # the driver emits no BEGIN of its own: _begin does
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(storage.engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    storage.engine.dispose()  # connections opened before the listeners existed


# --- outages of database servers -----------------------------------------------------------


class StorageUnreachable(ActsearchError):
    """The database server stayed unreachable for longer than the storage's patience."""


def _unreachable(error: BaseException) -> BaseException | None:
    """The error (or what caused it) that says the server could not be reached or went away:
    a refused or timed-out connection, a connection the server closed (a restart), a read on a
    dead link; None for any other error. Such a call can be tried again; any other error is
    the caller's to see."""
    from sqlalchemy import exc

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
            return seen
        if isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class PatientStorage(_CachedStorage):
    """Optuna's storage of a database server, whose calls outlive outages.

    Each call that fails because the server cannot be reached (:func:`_unreachable`) is tried
    again after 0.5, 1, 2, ... (at most 30) seconds, until ``patience`` seconds have passed
    since the outage began; then it raises :class:`StorageUnreachable`. An outage is said in
    one line when it begins ("storage URL unreachable, retrying for up to N s: reason") and in
    one when it ends, however many calls and threads wait in it.

    A write that failed as its connection died may have been committed: telling a trial again
    then finds it finished. ``set_trial_state_values`` counts that as done when the stored
    state and values are the ones it set (so a retried tell never raises "Cannot tell"); a
    trial someone else finished still raises ``UpdateFinishedTrialError``. A trial created
    twice so (``study.ask``) is left RUNNING without a worker and failed after the grace period
    by :func:`fail_stale_trials`.

    It is Optuna's own cached wrapper of ``RDBStorage`` (what ``create_study`` would wrap the
    storage in), so studies use it as they are.
    """

    def __init__(self, backend: optuna.storages.RDBStorage, shown: str, *,
                 patience: float = STORAGE_PATIENCE,
                 say: Callable[[str], None] | None = None) -> None:
        super().__init__(backend)
        self.shown, self.patience = shown, patience
        self.say = say or _log.warning
        self._down_since: float | None = None  # monotonic time the outage began
        self.recovered_at: float | None = None  # monotonic time the last outage ended
        self._outage_lock = threading.Lock()

    def record_heartbeat_once(self, trial_id: int) -> None:
        """One try at a heartbeat (the heartbeat thread's next beat is its retry); an outage
        it meets is said as the other calls' are."""
        try:
            super().record_heartbeat(trial_id)
        except Exception as e:
            cause = _unreachable(e)
            if cause is not None:
                self._outage_began(cause)
            raise
        self._outage_ended()

    def _patiently(self, name: str, call: Callable[[], Any], retried: Callable[[], Any]) -> Any:
        delay, failed = 0.5, False
        while True:
            try:
                result = retried() if failed else call()
            except Exception as e:
                cause = _unreachable(e)
                if cause is None:
                    raise
                failed = True
                waited = self._outage_began(cause)
                if waited >= self.patience:
                    raise StorageUnreachable(
                        f"storage {self.shown}: unreachable for {waited:.1f} s, giving up "
                        f"(patience {self.patience:g} s; last error in {name}: "
                        f"{_first_line(cause)})") from None
                time.sleep(min(delay, self.patience - waited))
                delay = min(2 * delay, 30.0)
                continue
            self._outage_ended()
            return result

    def _outage_began(self, error: BaseException) -> float:
        """Seconds since the outage began; says so the first time."""
        with self._outage_lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                self.say(f"storage {self.shown} unreachable, retrying for up to "
                         f"{self.patience:g} s: {_first_line(error)}")
            return now - self._down_since

    def _outage_ended(self) -> None:
        if self._down_since is None:  # the usual case: no lock taken
            return
        with self._outage_lock:
            if self._down_since is not None:
                self.recovered_at = time.monotonic()
                self.say(f"storage {self.shown} reachable again after "
                         f"{self.recovered_at - self._down_since:.1f} s")
                self._down_since = None

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Any = None) -> bool:
        def again() -> bool:
            try:
                return _CachedStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                stored = self._backend.get_trial(trial_id)  # the first try went through?
                if stored.state == state and (values is None or stored.values == list(values)):
                    return True
                raise

        return self._patiently(
            "set_trial_state_values",
            lambda: _CachedStorage.set_trial_state_values(self, trial_id, state, values), again)


def _patient(name: str) -> Callable[..., Any]:
    method = getattr(_CachedStorage, name)

    @functools.wraps(method)
    def call(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        def once() -> Any:
            return method(self, *args, **kwargs)

        return self._patiently(name, once, once)

    return call


# Every call that reaches the server, but the heartbeat thread's (record_heartbeat_once).
for _name in [*(n for n, v in vars(_CachedStorage).items()
                if callable(v) and not n.startswith("_")
                and n not in ("set_trial_state_values", "get_heartbeat_interval",
                              "get_heartbeat_stale_trial_callback")),
              "_get_stale_trial_ids"]:
    setattr(PatientStorage, _name, _patient(_name))


def _first_line(error: BaseException) -> str:
    """An error's first line, passwords masked (SQLAlchemy's names the driver's error)."""
    text = mask_url(str(error)).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def requeue_trial(study: optuna.Study, trial: FrozenTrial,
                  max_retry: int | None = MAX_RETRY, *, budget: int | None = None) -> bool:
    """Queue a failed trial again with the parameters it had; False once retried ``max_retry``
    times, or when the study already holds ``budget`` finished trials.

    The new trial carries ``failed_trial`` and ``retry_history`` system attrs exactly like
    Optuna's ``RetryHeartbeatStaleTrialCallback`` (so its ``retry_history()`` works on both), and
    an enqueued trial's ``fixed_params`` (a baseline stays a baseline).

    ``budget`` is given where the caller knows the study's trial budget
    (:class:`actsearch.engine.budget.TrialBudget` does). The heartbeat callback of RDB storages
    (:class:`_Requeue`) cannot know it: the storage is made before any budget, and a study
    does not store the ``trials`` its workers run with. A copy queued when the budget is met
    anyway is a WAITING trial no worker runs; ``TrialBudget`` fails it (``over_budget``)
    when it finds the budget met, so none is left behind.
    """
    system_attrs: dict[str, Any] = {"failed_trial": trial.number, "retry_history": [],
                                    **trial.system_attrs}
    system_attrs["retry_history"] = [*system_attrs["retry_history"], trial.number]
    if max_retry is not None and len(system_attrs["retry_history"]) > max_retry:
        return False
    if budget is not None and len(study.get_trials(deepcopy=False, states=FINISHED)) >= budget:
        return False
    # Only what says where the trial came from; results and errors belong to the dead one.
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k == BASELINE_ATTR}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=user_attrs, system_attrs=system_attrs))
    return True


class _Requeue:
    """Heartbeat-stale callback of RDB storages: queue the lost trial again."""

    def __init__(self, max_retry: int | None) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue_trial(study, trial, self.max_retry)


# --- dead workers -----------------------------------------------------------------------------



def _process_start(pid: int) -> tuple[float | None, bool]:
    """(start time as a Unix time, is a zombie) from /proc; (None, False) where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return None, False
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parens
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0] == "Z"


def _pid_alive(pid: int, since: datetime | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started, zombie = _process_start(pid)
    if zombie:  # killed, not yet reaped by its parent
        return False
    # A pid reused by a process that started after the trial did is not the trial's worker.
    return not (started is not None and since is not None
                and started > since.timestamp() + 1.0)


def fail_stale_trials(study: optuna.Study, *, assume_alone: bool = False, requeue: bool = True,
                      max_retry: int | None = MAX_RETRY, budget: int | None = None,
                      unclaimed_after: float | None = None) -> list[int]:
    """Fail the RUNNING trials whose worker process is gone, and queue their params again.

    For storages without heartbeats (journal files, SQLite files) a killed worker leaves its
    trial RUNNING for ever. A trial's ``worker`` user attr (``host:pid``, set when it starts)
    tells whose it is: on this host a trial whose pid no longer runs (or now belongs to a
    newer process) is stale. Trials of other hosts, or with no ``worker`` attr, are left alone
    unless ``assume_alone`` says no other process works on the study now.

    ``budget``: no copy is queued once the study holds that many finished trials (see
    :func:`requeue_trial`).

    ``unclaimed_after`` (seconds; storages with heartbeats pass their grace period): a RUNNING
    trial that no worker claimed (no ``worker`` attr) that long after it started is lost too.
    A worker claims its trial milliseconds after ``study.ask()``; one killed in between, or an
    ask retried after its first try was committed, leaves a trial with neither a worker nor a
    heartbeat, which Optuna's heartbeat check never fails (its clock: this host's, as Optuna
    stamps a trial's start with the asking host's).

    Returns:
        The numbers of the trials marked failed.
    """
    host = socket.gethostname()
    failed = []
    unclaimed_before = (None if unclaimed_after is None
                        else datetime.now() - timedelta(seconds=unclaimed_after))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner is None:
            dead = assume_alone or (unclaimed_before is not None
                                    and trial.datetime_start is not None
                                    and trial.datetime_start < unclaimed_before)
        else:
            owner_host, _, pid = str(owner).rpartition(":")
            if owner_host != host or not pid.isdigit():
                dead = assume_alone
            else:
                dead = int(pid) != os.getpid() and not _pid_alive(int(pid), trial.datetime_start)
        if not dead:
            continue
        storage, trial_id = study._storage, trial._trial_id
        try:
            storage.set_trial_user_attr(trial_id, ERROR_ATTR,
                                        f"worker lost: {owner or 'unknown worker'} is gone"
                                        if owner or assume_alone else
                                        "worker lost: no worker claimed it")
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another process failed it first
        failed.append(trial.number)
        if requeue:
            requeue_trial(study, study._storage.get_trial(trial_id), max_retry, budget=budget)
    return failed


# --- heartbeats of our own ask/tell loop ------------------------------------------------------


def grace_period(storage: optuna.storages.BaseStorage) -> float | None:
    """Seconds without a heartbeat before a trial counts as lost; None without heartbeats."""
    if heartbeat_interval(storage) is None:
        return None
    backend = getattr(storage, "_backend", storage)  # Optuna's cached wrapper, or ours
    return backend.grace_period or 2 * backend.heartbeat_interval


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> float | None:
    """Seconds between a running trial's heartbeats; None where the storage has none.

    Only RDB storages made with a ``heartbeat_interval`` (and Optuna's cached wrapper of them)
    have heartbeats; journal files and plain SQLite files find dead workers by process id.
    """
    get = getattr(storage, "get_heartbeat_interval", None)
    return get() if get is not None else None


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Keep a running trial's heartbeat fresh while the block runs.

    ``study.optimize`` ran Optuna's own heartbeat thread around each trial; an ask/tell loop
    must do it itself, or other workers (``optuna.storages.fail_stale_trials``) fail the
    trial as lost once the grace period passes. On a storage with heartbeats this records
    one at once and then one every interval from a daemon thread, until the block exits; on
    other storages it does nothing.

    Uses ``study._storage`` and ``trial._trial_id``: the project pins Optuna 5.0.x, whose
    public API has no heartbeat call for one trial.
    """
    storage = study._storage
    interval = heartbeat_interval(storage)
    if interval is None:
        yield
        return
    trial_id = trial._trial_id
    storage.record_heartbeat(trial_id)  # at once: a trial without any heartbeat is never stale
    stop = threading.Event()
    # One try per beat: the next beat is the retry, and the block's end must not wait for a
    # beat that is patient through an outage. A PatientStorage says outages itself.
    once = getattr(storage, "record_heartbeat_once", None)

    def beat() -> None:
        failing = False
        while not stop.wait(interval):
            try:
                (once or storage.record_heartbeat)(trial_id)
                failing = False
            except Exception as e:  # a dropped connection: the next beat may get through
                if once is None and not failing:  # one line per outage, not one per beat
                    _log.warning("heartbeat of trial id %s failed: %s", trial_id,
                                 _first_line(e.__cause__ or e))
                failing = True

    # A daemon: a process that exits without leaving the block (os._exit, a fatal error)
    # must not be kept alive by its heartbeat, which would hide that the trial is lost.
    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def study_names(storage: optuna.storages.BaseStorage, shown: str) -> list[str]:
    """The studies in a storage; ``shown`` names it (password masked) in the one-line error."""
    try:
        return optuna.study.get_all_study_names(storage)
    except Exception as e:  # unreachable server, not a database, unreadable file
        first = mask_url(str(e)).splitlines()[0] if str(e) else type(e).__name__
        raise ActsearchError(f"storage {shown}: cannot open storage ({first})",
                             parameter="storage") from None


def resolve_run(run_or_study: str | Path, storage: str | None = None,
                runs_dir: str | Path = "runs") -> tuple[str, str]:
    """The storage URL and study name that a run folder or study name (and ``storage``) names.

    A run folder (``runs/<study>`` holding ``study.db``, or ``journal.log`` when several
    workers ran) or a ``.db`` file gives its storage and the study in it; a study name gives
    ``storage``, or else the run folder ``runs_dir/<name>``.

    Raises:
        ActsearchError: when no such folder, file or study exists.
    """
    url, name, _ = _resolve_run(run_or_study, storage, runs_dir)
    return url, name


def _resolve_run(run_or_study: str | Path, storage: str | None,
                 runs_dir: str | Path) -> tuple[str, str, optuna.storages.BaseStorage]:
    """``resolve_run``, and the storage it opened to find the study."""
    text = str(run_or_study)
    path = Path(text)
    name = path.name if path.is_dir() else None if path.is_file() else text
    if storage is None:
        run = path if path.exists() else Path(runs_dir) / text
        if run.is_file():
            storage = f"sqlite:///{run.resolve()}"
        elif (run / "study.db").is_file():
            storage = f"sqlite:///{(run / 'study.db').resolve()}"
        elif (run / "journal.log").is_file():
            storage = f"journal://{(run / 'journal.log').resolve()}"
        elif path.is_dir():
            raise ActsearchError(f"{text}: a folder without study.db or journal.log; expected "
                                 f"a run folder (runs/<study>) or a study name")
        else:
            raise ActsearchError(f"{text}: neither a run folder nor the name of a study with "
                                 f"a run folder in {runs_dir}/; give the storage URL of a study "
                                 f"stored elsewhere")
    opened = make_storage(storage)
    names = study_names(opened, mask_url(storage))
    if name is None or (name not in names and len(names) == 1 and path.is_dir()):
        # A .db file, or a renamed run folder: the one study in it.
        if len(names) != 1:
            raise ActsearchError(f"{text}: expected one study in {mask_url(storage)}, found "
                                 f"{len(names)} ({', '.join(names) or 'none'}); pass "
                                 f"the storage and the study name")
        return storage, names[0], opened
    if name not in names:
        raise ActsearchError(f"no study {name!r} in {mask_url(storage)}; studies there: "
                             f"{', '.join(names) or 'none'}")
    return storage, name, opened


def load_run(run_or_study: str | Path, storage: str | None = None,
             runs_dir: str | Path = "runs") -> optuna.Study:
    """Load the study ``resolve_run`` names, without changing it."""
    _, name, opened = _resolve_run(run_or_study, storage, runs_dir)
    return optuna.load_study(study_name=name, storage=opened)


def space_of_study(study: optuna.Study) -> SearchSpace:
    """Rebuild the validated space a study was created from (stored at its creation)."""
    attrs = study._storage.get_study_user_attrs(study._study_id)
    if SPACE_ATTR not in attrs:
        raise ActsearchError(f"study {study.study_name!r}: not an actsearch study (no space)")
    return parse_space(attrs[SPACE_ATTR], f"study {study.study_name}")
