"""Create or resume a study: storage URLs, run folders, sampler, pruner, baselines, optimize.

A study remembers the space it was created from (as a study user attribute), so it can be
resumed, reported on or exported with nothing but its storage URL and name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from actsearch.errors import ActsearchError, mask_url
from actsearch.layout import uniform_candidates
from actsearch.objective import GuardedObjective, Objective, TrialFailed, TrialListener
from actsearch.population import population_support, run_population_search
from actsearch.space import SearchSpace, parse_space, space_to_document

__all__ = [
    "FINISHED",
    "default_storage",
    "make_storage",
    "requeue_trial",
    "resolve_storage_url",
    "make_pruner",
    "make_sampler",
    "mask_url",
    "open_study",
    "run_search",
    "space_of_study",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_SPACE_ATTR = "actsearch_space"
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats (RDB storages)
GRACE_PERIOD = 30  # seconds without a heartbeat before a running trial counts as lost
MAX_RETRY = 3  # a trial whose worker keeps dying is retried at most this many times
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
    folder = Path(runs_dir) / study_name
    journal = (folder / "journal.log").resolve()
    if journal.exists() or (workers > 1 and not (folder / "study.db").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        return f"journal://{journal}"
    return default_storage(study_name, runs_dir)


def make_storage(url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD,
                 max_retry: int | None = MAX_RETRY) -> optuna.storages.BaseStorage:
    """The Optuna storage for a URL (see the README's "Storage URLs").

    Args:
        url: ``sqlite:///``, ``postgresql://``, ``mysql://`` (any SQLAlchemy driver suffix) or
            ``journal:///path.log``.
        heartbeat_interval: Seconds between heartbeats of a running trial (RDB storages).
        grace_period: Seconds without a heartbeat after which a trial is failed and retried.
        max_retry: How often one trial is retried after its worker died (None: no limit).

    Raises:
        ActsearchError: An unknown scheme, a missing database driver, an unreachable server.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "journal":
        if not url.startswith("journal://") or url == "journal://":
            raise ActsearchError(f"--storage {url}: expected journal:///absolute/path.log or "
                                 f"journal://relative/path.log")
        path = Path(url[len("journal://"):])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
        except OSError as e:
            raise ActsearchError(f"--storage {url}: cannot open the journal ({e})") from None
        return optuna.storages.journal.JournalStorage(backend)
    if scheme not in _RDB_SCHEMES:
        raise ActsearchError(f"--storage {mask_url(url)}: unknown storage; expected sqlite:///, "
                             f"postgresql://, mysql:// or journal:/// URL")
    engine_kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        # Several processes on one SQLite file wait for its write lock; the default 5 s
        # ends in "database is locked" failures under four busy workers.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        # A server may drop idle connections between long trials; test them before use.
        engine_kwargs["pool_pre_ping"] = True
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
        raise ActsearchError(f"--storage {mask_url(url)}: the database driver is not "
                             f"installed{hint}") from None
    except Exception as e:  # unreachable server, bad credentials, bad path
        raise ActsearchError(f"--storage {mask_url(url)}: cannot open storage "
                             f"({mask_url(str(e)).splitlines()[0]})") from None
    if scheme == "sqlite":
        _use_wal(storage)
    return storage


def _use_wal(storage: optuna.storages.RDBStorage) -> None:
    """Put an SQLite storage in WAL mode.

    Optuna commits every report and user attribute; SQLite's default rollback journal syncs
    the disk on each commit, which cost ~6 ms a commit here and made a 0.5 s trial take 0.86 s
    (bench/overhead.py). WAL with synchronous=NORMAL survives a crashed process (not a power
    cut for the last commits) and lets readers (dashboards, reports) work beside a writer.
    """
    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    storage.engine.dispose()  # connections opened before the listener existed


def requeue_trial(study: optuna.Study, trial: FrozenTrial,
                  max_retry: int | None = MAX_RETRY) -> bool:
    """Queue a failed trial again with the parameters it had; False once retried ``max_retry``.

    The new trial carries ``failed_trial`` and ``retry_history`` system attrs exactly like
    Optuna's ``RetryHeartbeatStaleTrialCallback`` (so its ``retry_history()`` works on both), and
    an enqueued trial's ``fixed_params`` (a baseline stays a baseline).
    """
    system_attrs: dict[str, Any] = {"failed_trial": trial.number, "retry_history": [],
                                    **trial.system_attrs}
    system_attrs["retry_history"] = [*system_attrs["retry_history"], trial.number]
    if max_retry is not None and len(system_attrs["retry_history"]) > max_retry:
        return False
    # Only what says where the trial came from; results and errors belong to the dead one.
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k == "baseline"}
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


def make_pruner(space: SearchSpace) -> optuna.pruners.BasePruner:
    settings = dict(space.pruner.settings)
    name = space.pruner.name
    if name == "median":
        return optuna.pruners.MedianPruner(**settings)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(**settings)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**settings)
    if name == "hyperband":
        settings.setdefault("max_resource", space.train.epochs)
        return optuna.pruners.HyperbandPruner(**settings)
    return optuna.pruners.NopPruner()


def make_sampler(space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True lets the multivariate TPE model conditional params (an ELU alpha exists only
    # where that layer picked ELU) without falling back to independent sampling.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=10)


def space_of_study(study: optuna.Study) -> SearchSpace:
    """Rebuild the validated space a study was created from."""
    attrs = study._storage.get_study_user_attrs(study._study_id)
    if _SPACE_ATTR not in attrs:
        raise ActsearchError(f"study {study.study_name!r}: not an actsearch study (no space)")
    return parse_space(attrs[_SPACE_ATTR], f"study {study.study_name}")


def open_study(space: SearchSpace | None, study_name: str, storage: Any,
               seed: int | None = None) -> tuple[optuna.Study, SearchSpace]:
    """Create the study, or load it when it exists (then the space must be the same).

    Args:
        space: The validated space; None to load an existing study and use its stored space.
        study_name: The study's name in the storage.
        storage: An Optuna storage URL (or a storage object).
        seed: The sampler seed (default: the space's).

    Returns:
        The study and the space it searches.
    """
    url = storage
    try:
        storage = make_storage(url) if isinstance(url, str) else url
        existing = optuna.study.get_all_study_names(storage)
    except Exception as e:  # bad URL, missing driver, unreachable server
        where = mask_url(str(url))
        raise ActsearchError(f"--storage {where}: cannot open storage ({e})") from None
    if space is None:
        if study_name not in existing:
            raise ActsearchError(f"--study: no study {study_name!r} in {mask_url(str(url))}; "
                                 f"studies there: {', '.join(existing) or 'none'}")
        probe = optuna.load_study(study_name=study_name, storage=storage)
        space = space_of_study(probe)
    seed = space.seed if seed is None else seed
    created = study_name not in existing
    n_before = 0
    if not created:
        probe = optuna.load_study(study_name=study_name, storage=storage)
        stored = space_of_study(probe)
        if _comparable(stored) != _comparable(space):
            raise ActsearchError(f"--study {study_name}: the study was created from a different "
                                 f"space ({stored.name}); choose a new --study name")
        space = stored
        seed = probe.user_attrs.get("seed", seed)
        n_before = len(probe.trials)
    # On resume, offset the seed by the trials already run: the same seed would replay the
    # sampler's random start-up suggestions and repeat finished trials.
    sampler = make_sampler(space, seed + n_before)
    directions = [{"max": "maximize", "min": "minimize"}[d] for _, d in space.objectives]
    # Several objectives: Optuna refuses trial.report, so its pruner stays idle and the
    # objective prunes on stored curves (actsearch.pruning).
    pruner = make_pruner(space) if len(directions) == 1 else optuna.pruners.NopPruner()
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if created:
        study.set_user_attr(_SPACE_ATTR, space_to_document(space))
        study.set_user_attr("seed", seed)
        study.set_metric_names([name for name, _ in space.objectives])
    _enqueue_missing_baselines(study, space)
    return study, space


def _comparable(space: SearchSpace) -> dict[str, Any]:
    # The budget and the population size may change between runs; the rest may not.
    document = space_to_document(space)
    document.pop("budget")
    document.pop("population")
    return document


def _enqueue_missing_baselines(study: optuna.Study, space: SearchSpace) -> None:
    """Queue each uniform baseline that has not finished and is not waiting already."""
    seen = [t.params for t in study.get_trials(deepcopy=False, states=FINISHED)]
    seen += [t.system_attrs.get("fixed_params", {}) for t in study.get_trials(
        deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))]
    for params in uniform_candidates(space):
        if params not in seen:
            study.enqueue_trial(params, user_attrs={"baseline": True})


def run_search(
    space: SearchSpace,
    study: optuna.Study,
    data: Any,
    device: Any,
    trials: int,
    timeout: float | None = None,
    listener: TrialListener | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    population: int = 1,
) -> int:
    """Run trials until the study holds ``trials`` finished trials or ``timeout`` passes.

    A trial that fails (out of memory, an unexpected exception) is recorded as FAIL with its
    reason and the search goes on. With ``population`` above 1 (and a space a population can
    train), that many candidates train at once (``actsearch.population``). Returns the number
    of trials this call finished. A KeyboardInterrupt marks the running trials failed and
    propagates; finished trials are already stored.
    """
    finished_before = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = trials - finished_before
    if remaining <= 0:
        return 0
    if population > 1 and population_support(space) is None and len(space.objectives) == 1:
        return run_population_search(space, study, data, device, trials, population, timeout,
                                     listener, callbacks)
    seed = study.user_attrs.get("seed", space.seed)
    objective = GuardedObjective(Objective(space, data, device, seed, listener))
    # MaxTrialsCallback counts finished trials across every worker on the storage. n_trials
    # also counts failed trials: the allowance leaves room for a few failures and retries of
    # trials lost by other workers, yet a run of failures cannot loop for ever.
    stop = optuna.study.MaxTrialsCallback(trials, states=FINISHED)
    study.optimize(objective, n_trials=remaining + max(3, remaining // 2), timeout=timeout,
                   callbacks=[stop, *callbacks], gc_after_trial=False, catch=(TrialFailed,))
    return len(study.get_trials(deepcopy=False, states=FINISHED)) - finished_before
