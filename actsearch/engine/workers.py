"""Scale out and survive faults: worker processes on one study, and trials of dead workers.

A worker is ``actsearch worker --storage URL --study NAME``: it loads the study's stored
space and runs trials until the study holds the requested number of finished trials.
:func:`run_workers` starts N of them on one host (``actsearch search --workers N``).
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

import argparse
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from types import FrameType

import optuna
from optuna.trial import TrialState

from actsearch.engine.record import TrialRecord, worker_id
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
    "run_from_args",
    "run_worker",
    "run_workers",
]


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


def run_worker(storage: str, study_name: str, *, trials: int | None = None,
               timeout: float | None = None, device: str | None = None,
               threads: int | None = None, worker_index: int | None = None,
               heartbeat_interval: int | None = None, grace_period: int = GRACE_PERIOD,
               storage_timeout: float = STORAGE_TIMEOUT,
               storage_patience: float = STORAGE_PATIENCE,
               quiet: bool = False, dtype: str = "float32") -> int:
    """One worker: load the stored study, run trials until it holds ``trials`` finished.

    Args:
        storage: The study's storage URL (journal://, sqlite://, postgresql://, ...).
        study_name: An existing actsearch study in that storage.
        trials: Finished trials the study should hold (default: the space's budget).
        timeout: Stop starting trials after this many seconds.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: CPU threads for torch.
        worker_index: Varies the sampler's seed between workers (default: from the pid).
        heartbeat_interval: Seconds between heartbeats on database storages (default 10).
        grace_period: Seconds without a heartbeat before a trial counts as lost.
        storage_timeout: Seconds after which a database call on a dead link fails (then it
            is retried) instead of hanging.
        storage_patience: Seconds for which an unreachable database is retried before the
            worker gives up.
        quiet: No line per trial.
        dtype: ``float32`` or ``float64``.

    Returns:
        The exit code: 0 done, 130 stopped by SIGINT/SIGTERM, 1 stopped early (a run of
        failures, or the storage unreachable for longer than its patience). User mistakes
        raise :class:`ActsearchError`.
    """
    import torch

    from actsearch.engine.driver import run_trials
    from actsearch.models.custom import with_sites
    from actsearch.training.data import study_data, to_device
    from actsearch.training.fit import configure_threads, select_device

    if threading_main():
        # SIGTERM (a scheduler's or run_workers' stop) is handled like Ctrl-C: Optuna marks the
        # running trial failed, finished trials are already stored.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    index = os.getpid() if worker_index is None else worker_index
    prefix = f"[worker {index} {worker_id()}]"

    def say(line: str) -> None:  # outages and dropped trials, whatever --quiet says
        print(f"{prefix} {line}", flush=True)

    # Workers share the study with other processes: on every database storage, SQLite files
    # included, a running trial sends heartbeats so that a surviving worker can fail and
    # retry it if this process dies (a lone search relies on the pid check on resume).
    store = make_storage(storage, heartbeat_interval=heartbeat_interval or HEARTBEAT_INTERVAL,
                         grace_period=grace_period, timeout=storage_timeout,
                         patience=storage_patience, say=say)
    names = study_names(store, mask_url(storage))
    if study_name not in names:  # with the hint a worker needs: create the study first
        raise ActsearchError(f"study: no study {study_name!r} in {mask_url(storage)}; "
                             f"studies there: {', '.join(names) or 'none'}; create it first "
                             f"with 'actsearch search SPACE --storage URL --study NAME'",
                             parameter="study")
    study, space = open_study(None, study_name, store)
    # Workers that start together see the same trial count, so open_study gives them the
    # same sampler seed: they would all propose the same layouts. Vary it by worker.
    study.sampler = make_sampler(space, study.user_attrs.get("seed", space.seed)
                                 + len(study.trials) + 104_729 * (index + 1))
    lost = fail_stale_trials(study)
    torch_device = select_device(device)
    if torch_device.type == "cpu":
        configure_threads(torch_device, threads)
    dataset = study_data(space.data, study.user_attrs["seed"],
                         classes=space.train.class_targets)
    data = to_device(dataset, torch_device, getattr(torch, dtype))
    # A factory model's sites, found as the search that created the study found them.
    space = with_sites(space, torch.as_tensor(dataset.x_train[:2]))
    target = trials or space.trials
    if not quiet:
        print(f"{prefix} study {study_name} in {mask_url(storage)}: {target} trials, device "
              f"{torch_device}{f', failed {len(lost)} stale trials' if lost else ''}",
              flush=True)
    try:
        done = run_trials(study, space, data, trials=target, timeout=timeout,
                          callbacks=[] if quiet else [_TrialLines(prefix)], say=say)
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


def run_workers(n: int, worker_args: Sequence[str], *, gpus: int | None = None,
                cores: int | None = None, env: Mapping[str, str] | None = None,
                command: Sequence[str] = (sys.executable, "-m", "actsearch", "worker")) -> int:
    """Start ``n`` worker processes on one study, wait for them, return an exit status.

    Each worker runs ``command + worker_args + --worker-index I``; ``worker_args`` are the
    arguments of ``actsearch worker`` (``--storage URL --study NAME`` and optionally
    ``--trials``, ``--timeout``, ``--device``, ``--threads``). Create the study first
    (``open_study``) so that workers do not race to create it and enqueue baselines twice.

    With several GPUs each worker gets one (``CUDA_VISIBLE_DEVICES``, round robin); otherwise
    each gets ``max(1, cores // n)`` CPU threads unless ``--threads`` is among the arguments.
    SIGINT and SIGTERM are forwarded as SIGTERM (each worker fails its running trial and
    exits); a second signal kills them.

    Returns:
        0 when every worker succeeded, 130 when stopped by a signal, else the first failing
        worker's exit code (128 + N for a worker killed by signal N).
    """
    if n < 1:
        raise ActsearchError(f"workers: expected at least 1, got {n}", parameter="workers")
    args = list(worker_args)
    if gpus is None:
        import torch

        on_cpu = "--device" in args and args[args.index("--device") + 1] == "cpu"
        gpus = 0 if on_cpu or not torch.cuda.is_available() else torch.cuda.device_count()
    threads = max(1, (cores or _cpu_cores()) // n)
    base_env = dict(os.environ if env is None else env)
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(n):
        child_env = dict(base_env)
        child_args = [*args, "--worker-index", str(i)]
        if gpus > 1:
            child_env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
        elif "--threads" not in args:
            child_args += ["--threads", str(threads)]
            # Also caps the OpenMP/MKL pools torch starts before set_num_threads runs.
            child_env.setdefault("OMP_NUM_THREADS", str(threads))
            child_env.setdefault("MKL_NUM_THREADS", str(threads))
        # Own process group: a terminal's Ctrl-C reaches only us, and we stop each worker
        # once (two SIGINTs would interrupt a worker while it records the failed trial).
        try:
            procs.append(subprocess.Popen([*command, *child_args], env=child_env,
                                          process_group=0))
        except OSError as e:  # e.g. out of processes: stop those already started
            for p in procs:
                p.kill()
            raise ActsearchError(f"workers {n}: cannot start worker {i} ({e})",
                                 parameter="workers") from None
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


# --- command line ----------------------------------


def _child_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--storage", args.storage, "--study", args.study,
            "--grace-period", str(args.grace_period)]
    for flag, value in (("--trials", args.trials), ("--timeout", args.timeout),
                        ("--device", args.device), ("--threads", args.threads),
                        ("--heartbeat-interval", args.heartbeat_interval),
                        ("--storage-timeout", args.storage_timeout),
                        ("--storage-patience", args.storage_patience)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + ["--dtype", args.dtype] + (["--quiet"] if args.quiet else [])


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``actsearch worker`` for parsed arguments; user mistakes raise ActsearchError."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        if args.workers > 1:
            return run_workers(args.workers, _child_argv(args))
        return run_worker(args.storage, args.study, trials=args.trials, timeout=args.timeout,
                          device=args.device, threads=args.threads,
                          worker_index=args.worker_index,
                          heartbeat_interval=args.heartbeat_interval,
                          grace_period=args.grace_period,
                          storage_timeout=args.storage_timeout or STORAGE_TIMEOUT,
                          storage_patience=args.storage_patience or STORAGE_PATIENCE,
                          quiet=args.quiet,
                          dtype=args.dtype)
