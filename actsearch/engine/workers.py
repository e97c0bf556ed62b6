"""Scale out and survive faults: worker processes on one study, and trials of dead workers.

A worker (``actsearch.api.worker(storage, study)``, the CLI's ``worker``) loads the
study's stored space and runs trials until the study holds the requested number of finished
trials. What it runs is a typed ``WorkerOptions``; :func:`run_workers` starts N worker
processes on one host (a search's ``workers``), each as
``python -m actsearch.engine.workers OPTIONS.json``.
Storages, heartbeats and retries are in :mod:`actsearch.engine.storage`, exact budgets in
:mod:`actsearch.engine.budget`; the fault handling inside a trial is in
:mod:`actsearch.engine.driver`.

Storages with heartbeats (database servers) fail and retry a dead worker's trial after the grace
period; for the journal file, :func:`~actsearch.engine.storage.fail_stale_trials` finds such
trials by process id, also while a worker waits for a slot (:mod:`actsearch.engine.budget`).

A worker outlives a database server it cannot reach (a partition, a restart): each storage
call is retried with backoff for ``storage_patience`` seconds, with one line when the outage
begins and one when it ends, and only then does the worker give up, in one line (exit 1). A
worker that comes back to find its trial failed by another one drops its result in one line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import optuna
from optuna.trial import TrialState

from actsearch.engine.pipeline import DTYPES
from actsearch.engine.record import TrialRecord, study_seed, worker_id
from actsearch.engine.storage import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    STORAGE_PATIENCE,
    STORAGE_TIMEOUT,
    StorageUnreachable,
    fail_stale_trials,
    make_storage,
    study_names,
)
from actsearch.engine.study import make_sampler, open_study
from actsearch.errors import EXIT_INTERRUPTED, ActsearchError, mask_url

__all__ = [
    "WorkerOptions",
    "main",
    "run",
    "run_worker",
    "run_workers",
]


def _positive(name: str, value: Any, kind: type | tuple[type, ...] = int) -> None:
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)
                              or value <= 0):
        raise ActsearchError(f"{name}: expected a positive "
                             f"{'integer' if kind is int else 'number'}, got {value!r}",
                             parameter=name)


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker runs. Each default is written here and nowhere else.

    Attributes:
        storage: The study's storage URL (journal://, sqlite://, postgresql://, ...).
        study: An existing actsearch study in that storage.
        trials: Finished trials the study should hold; None: the space's budget.
        timeout: Stop starting trials after this many seconds.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: CPU threads for torch; None: 1 (a worker of several on a host: the cores
            shared between them).
        dtype: ``float32`` or ``float64``.
        workers: Worker processes to start on this host (1: this process).
        worker_index: Varies the sampler's seed between workers; None: from the pid.
        heartbeat_interval: Seconds between heartbeats on database storages.
        grace_period: Seconds without a heartbeat before a trial counts as lost.
        storage_timeout: Seconds after which a database call on a dead link fails (then it
            is retried) instead of hanging.
        storage_patience: Seconds for which an unreachable database is retried before the
            worker gives up.
        quiet: No line per trial.
    """

    storage: str
    study: str
    trials: int | None = None
    timeout: float | None = None
    device: str = "auto"
    threads: int | None = None
    dtype: str = "float32"
    workers: int = 1
    worker_index: int | None = None
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    storage_timeout: float = STORAGE_TIMEOUT
    storage_patience: float = STORAGE_PATIENCE
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("storage", "study", "device"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ActsearchError(f"{name}: expected a non-empty string, got "
                                     f"{getattr(self, name)!r}", parameter=name)
        for name in ("trials", "threads", "workers", "heartbeat_interval", "grace_period"):
            _positive(name, getattr(self, name))
        for name in ("timeout", "storage_timeout", "storage_patience"):
            _positive(name, getattr(self, name), (int, float))
        if self.worker_index is not None and not isinstance(self.worker_index, int):
            raise ActsearchError(f"worker_index: expected an integer, got "
                                 f"{self.worker_index!r}", parameter="worker_index")
        if self.dtype not in DTYPES:
            raise ActsearchError(f"dtype: expected one of {', '.join(DTYPES)}, got "
                                 f"{self.dtype!r}", parameter="dtype")

    @classmethod
    def given(cls, **values: Any) -> WorkerOptions:
        """The options with what a caller gave; a value of None takes the default."""
        return cls(**{name: value for name, value in values.items() if value is not None})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_file(cls, path: str | Path) -> WorkerOptions:
        """Options written by ``to_json``; a bad file is one error naming it and the field."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ActsearchError(f"{path}: expected a worker's options as JSON ({e})") from None
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or set(values) - fields:
            unknown = sorted(set(values) - fields) if isinstance(values, dict) else values
            raise ActsearchError(f"{path}: unknown worker options {unknown!r}; expected "
                                 f"some of {', '.join(sorted(fields))}")
        try:
            return cls(**values)
        except (ActsearchError, TypeError) as e:
            raise ActsearchError(f"{path}: {e}") from None


# --- running trials ---------------------------------------------------------------------------


class _TrialLines:
    """Prints one line per finished trial of this worker (workers have no live view)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, study: optuna.Study, trial: TrialRecord) -> None:
        if trial.state == TrialState.COMPLETE:
            result = f"val_acc {trial.accuracy:.4f}"
        elif trial.state == TrialState.FAIL:
            result = f"FAILED ({trial.error or 'unknown'})"
        else:
            result = trial.end or trial.state.name.lower()
        print(f"{self.prefix} trial {trial.number:>4} {trial.layout or '?'}: {result}",
              flush=True)


def run_worker(options: WorkerOptions) -> int:
    """One worker: load the stored study, run trials until it holds ``options.trials``.

    Returns:
        The exit code: 0 done, 130 stopped by SIGINT/SIGTERM, 1 stopped early (a run of
        failures, or the storage unreachable for longer than its patience). User mistakes
        raise :class:`ActsearchError`.
    """
    from actsearch.engine.driver import run_trials
    from actsearch.engine.pipeline import stored_run, trial_budget
    from actsearch.training.fit import configure_threads, select_device

    if threading_main():
        # SIGTERM (a scheduler's or run_workers' stop) is handled like Ctrl-C: Optuna marks the
        # running trial failed, finished trials are already stored.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage, study_name = options.storage, options.study
    index = os.getpid() if options.worker_index is None else options.worker_index
    prefix = f"[worker {index} {worker_id()}]"

    def say(line: str) -> None:  # outages and dropped trials, whatever ``quiet`` says
        print(f"{prefix} {line}", flush=True)

    # Workers share the study with other processes: on every database storage, SQLite files
    # included, a running trial sends heartbeats so that a surviving worker can fail and
    # retry it if this process dies (a lone search relies on the pid check on resume).
    store = make_storage(storage, heartbeat_interval=options.heartbeat_interval,
                         grace_period=options.grace_period, timeout=options.storage_timeout,
                         patience=options.storage_patience, say=say)
    names = study_names(store, mask_url(storage))
    if study_name not in names:  # with the hint a worker needs: create the study first
        raise ActsearchError(f"study: no study {study_name!r} in {mask_url(storage)}; "
                             f"studies there: {', '.join(names) or 'none'}; create it first "
                             f"with a search of that storage and study name",
                             parameter="study")
    study, space = open_study(None, study_name, store)
    # Workers that start together see the same trial count, so open_study gives them the
    # same sampler seed: they would all propose the same layouts. Vary it by worker.
    study.sampler = make_sampler(space, study_seed(study, space)
                                 + len(study.trials) + 104_729 * (index + 1))
    lost = fail_stale_trials(study)
    torch_device = select_device(options.device)
    if torch_device.type == "cpu":
        configure_threads(torch_device, options.threads)
    # A factory model's sites, found as the search that created the study found them.
    space, _, data = stored_run(study, space, torch_device, options.dtype)
    target = trial_budget(options.trials, space)
    if not options.quiet:
        print(f"{prefix} study {study_name} in {mask_url(storage)}: {target} trials, device "
              f"{torch_device}{f', failed {len(lost)} stale trials' if lost else ''}",
              flush=True)
    try:
        done = run_trials(study, space, data, trials=target, timeout=options.timeout,
                          callbacks=[] if options.quiet else [_TrialLines(prefix)], say=say)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except StorageUnreachable as e:
        say(f"gave up: {e}")
        return 1
    if done.stop_reason is not None:
        print(f"{prefix} stopped early: {done.stop_reason}", flush=True)
        return 1
    return 0


def threading_main() -> bool:
    """Whether this is the main thread (signal handlers can only be set there)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_workers(n: int, options: WorkerOptions, *, gpus: int | None = None,
                cores: int | None = None, env: Mapping[str, str] | None = None,
                command: Sequence[str] = (sys.executable, "-m", "actsearch.engine.workers")
                ) -> int:
    """Start ``n`` worker processes on one study, wait for them, return an exit status.

    Each worker runs ``command OPTIONS.json``: ``options`` with its own ``worker_index`` (and
    ``workers`` 1), written to a temporary file. Create the study first (``open_study``) so
    that workers do not race to create it and enqueue baselines twice.

    With several GPUs each worker gets one (``CUDA_VISIBLE_DEVICES``, round robin); otherwise
    each gets ``max(1, cores // n)`` CPU threads unless ``options.threads`` says. SIGINT and
    SIGTERM are forwarded as SIGTERM (each worker fails its running trial and exits); a
    second signal kills them.

    Returns:
        0 when every worker succeeded, 130 when stopped by a signal, else the first failing
        worker's exit code (128 + N for a worker killed by signal N).
    """
    if n < 1:
        raise ActsearchError(f"workers: expected at least 1, got {n}", parameter="workers")
    if gpus is None:
        import torch

        on_cpu = options.device == "cpu"
        gpus = 0 if on_cpu or not torch.cuda.is_available() else torch.cuda.device_count()
    threads = max(1, (cores or _cpu_cores()) // n)
    base_env = dict(os.environ if env is None else env)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="actsearch-workers-") as folder:
        for i in range(n):
            child_env = dict(base_env)
            child = dataclasses.replace(options, workers=1, worker_index=i)
            if gpus > 1:
                child_env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
            elif options.threads is None:
                child = dataclasses.replace(child, threads=threads)
                # Also caps the OpenMP/MKL pools torch starts before set_num_threads runs.
                child_env.setdefault("OMP_NUM_THREADS", str(threads))
                child_env.setdefault("MKL_NUM_THREADS", str(threads))
            path = Path(folder) / f"worker-{i}.json"
            path.write_text(child.to_json(), encoding="utf-8")
            # Own process group: a terminal's Ctrl-C reaches only us, and we stop each worker
            # once (two SIGINTs would interrupt a worker while it records the failed trial).
            try:
                procs.append(subprocess.Popen([*command, str(path)], env=child_env,
                                              process_group=0))
            except OSError as e:  # e.g. out of processes: stop those already started
                for p in procs:
                    p.kill()
                raise ActsearchError(f"workers {n}: cannot start worker {i} ({e})",
                                     parameter="workers") from None
        return _wait(procs)


def _wait(procs: list[subprocess.Popen[bytes]]) -> int:
    signals_seen: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        signals_seen.append(signum)
        stop = signal.SIGTERM if len(signals_seen) == 1 else signal.SIGKILL
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(stop)
                except ProcessLookupError:
                    pass

    previous = {}
    if threading_main():
        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, forward)
    try:
        codes = [p.wait() for p in procs]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signals_seen:
        return EXIT_INTERRUPTED
    for code in codes:
        if code != 0:
            return 128 - code if code < 0 else code
    return 0


def run(options: WorkerOptions) -> int:
    """``actsearch worker``: this process as one worker, or ``options.workers`` processes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        if options.workers > 1:
            return run_workers(options.workers, options)
        return run_worker(options)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m actsearch.engine.workers OPTIONS.json``: one worker process, as
    ``run_workers`` starts it; a user mistake is one line on stderr (exit 2)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if len(args) != 1:
            raise ActsearchError("usage: python -m actsearch.engine.workers OPTIONS.json")
        return run(WorkerOptions.from_file(args[0]))
    except ActsearchError as e:
        print(f"actsearch worker: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
