"""The Python API: a whole search as ``actsearch search`` runs it, its analysis, its report.

``search()`` is the engine every face calls: the CLI parses arguments, calls it and renders
what it returns. It reads the data, opens (or resumes) the study with its baselines, runs the
trials (the trial driver, or worker processes), retrains the finalists and analyses the study.
Errors a caller can make raise ``ActsearchError`` naming the parameter (``trials``, ``device``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from rich.console import Console

from actsearch.analysis import Analysis, BestUniform, LayoutRow
from actsearch.analysis import analyze as _analyze
from actsearch.engine.record import FINISHED, records, study_seed
from actsearch.engine.storage import load_run, space_of_study
from actsearch.errors import EXIT_INTERRUPTED, ActsearchError, mask_url
from actsearch.schema.space import SearchSpace, load_space

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn

    from actsearch.engine.driver import Callback
    from actsearch.models.sites import SiteReport

__all__ = ["SearchResult", "analyze", "check_space", "dashboard", "export", "report", "search",
           "site_groups", "sites", "space_schema", "train", "worker"]

@dataclass(frozen=True)
class SearchResult:
    """What a search did and found, as plain objects.

    Attributes:
        study: The Optuna study (every trial, with its ``TrialRecord`` attributes).
        space: The space it searched.
        storage: The study's storage URL (password masked).
        analysis: Everything the report says (``actsearch.analysis.Analysis``).
        finished: Trials this call finished (complete or pruned).
        failed: Trials this call failed.
        interrupted: Stopped by Ctrl-C or SIGTERM; finished trials are kept.
        stop_reason: Why the trials stopped before the budget, if they did (e.g. a run of
            failures, or a callback's ``StopSearch``).
        report_files: report.html and report.md, when asked for.
    """

    study: optuna.Study
    space: SearchSpace
    storage: str
    analysis: Analysis
    finished: int = 0
    failed: int = 0
    interrupted: bool = False
    stop_reason: str | None = None
    report_files: tuple[Path, ...] = ()

    @property
    def best_layouts(self) -> list[LayoutRow]:
        """The best complete trials by validation accuracy, best first."""
        return list(self.analysis.summary.top)

    @property
    def best_uniform(self) -> BestUniform | None:
        """The uniform layout every comparison is made against (the analysis' one rule)."""
        return self.analysis.best_uniform

    @property
    def verdict(self) -> str:
        """One sentence: does the best mixed finalist beat the best uniform one?"""
        return self.analysis.verdict


def _expect(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ActsearchError(f"{name}: expected {expected}, got {value!r}", parameter=name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _resolve_space(space: str | Path | SearchSpace | None) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if space is not None and not isinstance(space, str | Path):
        raise ActsearchError(f"space: expected a space file, a shipped space's name or a "
                             f"SearchSpace, got {type(space).__name__}", parameter="space")
    return load_space(space)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    # Optuna logs every trial (and every failed one with its traceback); the progress lines
    # and the closing lines say what happened, in one line each.
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # A scheduler's stop is handled like Ctrl-C: the running trials are marked failed.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def search(
    space: str | Path | SearchSpace | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    device: str | None = None,
    seed: int | None = None,
    workers: int | None = None,
    population: int | str | None = None,
    finalists: int | None = None,
    seeds: int | None = None,
    claim_seeds: int | None = None,
    latency: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | str = True,
    runs_dir: str | Path | None = None,
    threads: int | None = None,
    dtype: str | None = None,
    report: bool | str | Path = False,
    console: Console | None = None,
    model: Callable[..., nn.Module] | None = None,
    data: Any = None,
    groups: dict[str, Any] | None = None,
    choices: Sequence[str] | None = None,
    kwargs: dict[str, Any] | None = None,
    init: str = "keep",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    loss: Callable[..., Any] | None = None,
    metric: Callable[..., Any] | None = None,
    metric_direction: str | None = None,
    metric_name: str | None = None,
) -> SearchResult:
    """Search a space's activation layouts: what ``actsearch search`` runs.

    Runs the uniform baselines first, then trials sampled by the space's sampler (pruned by
    its pruner), retrains the finalists with fresh seeds, trains the claims' designed
    comparisons, and analyses the study. Running it again with the same study resumes it:
    finished trials are kept and never repeated.

    Every run parameter left out (None) takes its default from
    ``actsearch.engine.pipeline.RunOptions``, where each is defined once.

    Args:
        space: A space file, the name of a shipped space (``actsearch spaces``), or a
            ``SearchSpace``; default ``mnist1d_mlp``.
        trials: Finished (complete or pruned) trials the study should hold; default the
            space's budget.
        timeout: Seconds after which no trial starts; default the space's.
        study: The study's name; default the space's name.
        storage: An Optuna storage URL (``sqlite:///``, ``journal:///``, ``postgresql://``);
            default the run folder ``runs_dir/<study>/``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the default).
        seed: Sampler and training seed; default the space's.
        workers: Worker processes on this host sharing the study (default 1).
        population: Candidates trained at once, or ``"auto"``; default the space's.
        finalists: The best layouts retrained with fresh seeds after the search (default 5;
            0: none).
        seeds: Fresh seeds per finalist (default 3).
        claim_seeds: Fresh seeds per arm of the claims' designed comparisons
            (``actsearch.engine.claims``), the same in every arm (default 3; 0: no claims;
            else at least 2, for a paired test).
        latency: After the finalists and claims, time their layouts and each activation's
            uniform layout against uniform ReLU: ``"compiled"`` (eager and under
            ``torch.compile``: seconds per model), ``"eager"`` or ``"off"``; default
            ``$ACTSEARCH_LATENCY``, else ``"compiled"``.
        callbacks: Called after each finished trial with the study and the trial's
            ``TrialRecord``; one may raise ``actsearch.StopSearch`` to start no more trials.
        progress: True: a live view on a terminal, a line per trial elsewhere; ``"plain"``:
            a line per trial; False: silent.
        runs_dir: Where run folders go (default ``runs``).
        threads: CPU threads for training (default 1, fastest for small models).
        dtype: ``float32`` (the default) or ``float64`` (populations then follow sequential
            runs exactly).
        report: Write report.html and report.md: True for the run folder, or a folder.
        console: Where progress goes (default: standard output).
        model: Your own model instead of a space: a function that returns an ``nn.Module``
            (called with ``kwargs`` for every trial); then ``data`` too, and optionally
            ``groups``, ``choices``, ``init``, ``epochs``, ``lr``, ``batch_size``, as a space
            file gives them. The study records that the model is not importable: it resumes
            from Python given the same objects; worker processes and export need a factory
            named in a space file.
        data: With ``model``: ``(train, val)`` or ``(train, val, test)``, each ``(x, y)``
            tensors or a ``TensorDataset`` (kept on the device), or each a ``DataLoader``
            (iterated as given: its batch size, not ``batch_size``), or a function that
            returns them.
        groups: Group name -> site patterns, or a mapping ``{sites, choices, elu_alpha}``.
        choices: The activations each group may choose (default: relu, elu, selu).
        kwargs: The model function's keyword arguments.
        init: ``keep`` the model's weights, or ``auto``: re-initialise the layer feeding
            each replaced site.
        epochs: The training recipe's epochs (default: a space file's default).
        lr: The training recipe's learning rate (default: a space file's default).
        batch_size: The training recipe's batch size (default: a space file's default).
        loss: With ``model``: your loss, ``loss(outputs, targets)`` of a batch returning its
            mean (default: cross-entropy on class labels), as ``train.loss``.
        metric: With ``model``: your validation metric, ``metric(outputs, targets)`` of a
            whole split returning a number (default: accuracy), as ``train.metric``; trials
            are ranked, pruned and compared by it.
        metric_direction: ``"maximize"`` or ``"minimize"``: required with ``metric``.
        metric_name: Its name in tables and reports (default: the function's name).

    Returns:
        A ``SearchResult``. Ctrl-C or SIGTERM stops the trials (the running ones are marked
        failed) and the result says ``interrupted``; nothing finished is lost.
    """
    from actsearch.engine.driver import run_trials
    from actsearch.engine.pipeline import (
        RunOptions,
        after_search,
        population_size,
        prepare,
    )
    from actsearch.engine.storage import fail_stale_trials, make_storage
    from actsearch.engine.study import open_study
    from actsearch.engine.workers import WorkerOptions, run_workers
    from actsearch.faces.live import LiveView
    from actsearch.faces.report import write_report

    options = RunOptions.given(
        trials=trials, timeout=timeout, study=study, storage=storage, device=device, seed=seed,
        workers=workers, population=population, finalists=finalists, seeds=seeds,
        claim_seeds=claim_seeds, latency=latency, runs_dir=runs_dir, threads=threads,
        dtype=dtype)
    model_fn = data_fn = None
    if model is not None or data is not None:
        resolved, model_fn, data_fn = _python_space(
            space, model, data, groups=groups, choices=choices, kwargs=kwargs, init=init,
            epochs=epochs, lr=lr, batch_size=batch_size, trials=trials, loss=loss,
            metric=metric, metric_direction=metric_direction, metric_name=metric_name)
    else:
        for name, value in (("groups", groups), ("choices", choices), ("kwargs", kwargs),
                            ("epochs", epochs), ("lr", lr), ("batch_size", batch_size),
                            ("loss", loss), ("metric", metric),
                            ("metric_direction", metric_direction),
                            ("metric_name", metric_name)):
            if value is not None:
                raise ActsearchError(f"{name}: only with model= (a space file says it "
                                     f"otherwise)", parameter=name)
        resolved = _resolve_space(space)
    if progress not in (True, False, "plain"):
        raise ActsearchError(f"progress: expected True, False or 'plain', got {progress!r}",
                             parameter="progress")
    say = _Say(console, progress)
    run = prepare(resolved, options, model_fn, data_fn)
    resolved, study_name, url = run.space, run.study, run.url
    size = population_size(run, options, say)
    # Without a storage URL the study lives in its own run folder: a lone sequential search
    # there samples without the constant liar (see actsearch.engine.study.make_sampler).
    alone = size == 1 and options.workers == 1 and options.storage is None
    with _quiet_optuna():
        the_study, resolved = open_study(resolved, study_name, make_storage(url),
                                         seed=options.seed, concurrent=not alone)
        lost = fail_stale_trials(the_study)  # dead processes' trials on this host: requeued
        previous = the_study.get_trials(deepcopy=False, states=FINISHED)
        shape = (f"{len(resolved.choices)} activations x "
                 f"{'/'.join(map(str, resolved.depths))} layers" if resolved.custom is None
                 else f"{sum(len(g.sites) for g in resolved.custom.groups)} sites in "
                 f"{len(resolved.custom.groups)} groups")
        say(f"actsearch: study [bold]{study_name}[/bold] in {mask_url(url)}: space "
            f"{resolved.name}, {shape}, device {run.device}"
            f"{f' ({run.threads} thread)' if run.threads else ''}, "
            f"{f'population {size}, ' if size > 1 else ''}"
            f"{run.trials} trials{f' or {run.timeout:.0f}s' if run.timeout else ''}"
            f"{f', resuming with {len(previous)} finished' if previous else ''}"
            f"{f', {len(lost)} trials of dead processes failed and queued again' if lost else ''}")
        for note in run.notes:
            say(note)
        if len(previous) >= run.trials:
            say(f"nothing to run: the study already has {len(previous)} finished trials "
                f"(ask for more than {len(previous)} trials to extend it)")
        interrupted, finished, failed, stop_reason = False, 0, 0, None
        with _sigterm_as_interrupt():
            if options.workers > 1:
                worker = WorkerOptions.given(
                    storage=url, study=study_name, trials=run.trials, timeout=run.timeout,
                    device=options.device, threads=options.threads, dtype=options.dtype)
                interrupted = run_workers(options.workers, worker) == EXIT_INTERRUPTED
            data = run.data(study_seed(the_study, resolved), options.dtype)
            if options.workers == 1:
                view = LiveView(run.trials, run.timeout, say.console,
                                live=False if progress == "plain" else None,
                                previous=records(previous),
                                sign=resolved.metric.sign) \
                    if progress else None
                try:
                    with view or contextlib.nullcontext():
                        done = run_trials(the_study, resolved, data, trials=run.trials,
                                          timeout=run.timeout, population=size, listener=view,
                                          callbacks=[*([view] if view else []), *callbacks],
                                          concurrent=not alone)
                    finished, failed, stop_reason = done.finished, done.failed, \
                        done.stop_reason
                except KeyboardInterrupt:
                    interrupted = True
            if not interrupted:
                interrupted = after_search(the_study, resolved, data, options, say)
        analysis = _analyze(the_study, resolved.objectives, resolved.train.epochs)
        files: tuple[Path, ...] = ()
        if report:
            folder = Path(options.runs_dir) / study_name if report is True else Path(report)
            files = write_report(analysis, folder)
    return SearchResult(the_study, resolved, mask_url(url), analysis, finished, failed,
                        interrupted, stop_reason, files)


def _python_space(space: Any, model: Any, data: Any, *, groups: dict[str, Any] | None,
                  choices: Sequence[str] | None, kwargs: dict[str, Any] | None, init: str,
                  epochs: int | None, lr: float | None, batch_size: int | None,
                  trials: int | None, loss: Any = None, metric: Any = None,
                  metric_direction: str | None = None, metric_name: str | None = None
                  ) -> tuple[SearchSpace, Callable[..., Any], Callable[[], Any]]:
    """The space ``search(model=..., data=...)`` describes, with the model and data functions.

    It is validated as a space file would be (the same one-line errors); its factories are
    stored as ``<python>:<name>``, which says that they cannot be imported again.
    """
    from actsearch.schema.space import IN_PYTHON, parse_space

    if space is not None:
        raise ActsearchError("space: give a space or model= and data=, not both",
                             parameter="space")
    _expect("model", model, callable(model), "a function that returns a torch nn.Module")
    if data is None:
        raise ActsearchError("data: expected (train, val) or (train, val, test), or a function "
                             "that returns them, with model=", parameter="data")
    data_fn = data if callable(data) else lambda: data

    def named(function: Any, default: str) -> str:
        name = getattr(function, "__name__", "")
        return name if name.isidentifier() else default

    document: dict[str, Any] = {
        "name": named(model, "model"),
        "description": "given in Python (actsearch.search(model=...))",
        "model": {"factory": f"{IN_PYTHON}:{named(model, 'model')}", "kwargs": kwargs or {},
                  "init": init},
        "data": {"factory": f"{IN_PYTHON}:{named(data_fn, 'data')}"},
        "groups": groups or {},
        "train": {key: value for key, value in (("epochs", epochs), ("lr", lr),
                                                ("batch_size", batch_size))
                  if value is not None},
    }
    if choices is not None:
        document["activations"] = {"choices": list(choices)}
    if trials is not None:
        document["budget"] = {"trials": trials}
    if loss is not None:
        _expect("loss", loss, callable(loss), "a function (outputs, targets) -> mean loss")
        document["train"]["loss"] = f"{IN_PYTHON}:{named(loss, 'loss')}"
    if metric is not None:
        _expect("metric", metric, callable(metric), "a function (outputs, targets) -> number")
        _expect("metric_direction", metric_direction,
                metric_direction in ("maximize", "minimize"), "'maximize' or 'minimize'")
        document["train"]["metric"] = {"factory": f"{IN_PYTHON}:{named(metric, 'metric')}",
                                       "direction": metric_direction,
                                       **({"name": metric_name} if metric_name else {})}
    else:
        for name, value in (("metric_direction", metric_direction),
                            ("metric_name", metric_name)):
            if value is not None:
                raise ActsearchError(f"{name}: only with metric=", parameter=name)
    resolved = parse_space(document, "actsearch.search()")
    if loss is not None or metric is not None:
        from actsearch.training.fit import Scoring

        resolved = dataclasses.replace(resolved, scoring=Scoring(loss, metric))
    return resolved, model, data_fn


def worker(storage: str, study: str, *, trials: int | None = None,
           timeout: float | None = None, device: str | None = None, threads: int | None = None,
           dtype: str | None = None, workers: int | None = None,
           worker_index: int | None = None, heartbeat_interval: int | None = None,
           grace_period: int | None = None, storage_timeout: float | None = None,
           storage_patience: float | None = None, quiet: bool | None = None) -> int:
    """Run trials of an existing study as a worker (what ``actsearch worker`` runs): one
    process, or ``workers`` processes on this host; start one per machine or GPU on the same
    storage. Every parameter left out takes its default from
    ``actsearch.engine.workers.WorkerOptions``, which describes each.

    Returns:
        The exit code: 0 done, 130 stopped by SIGINT/SIGTERM, 1 stopped early (a run of
        failures, or the storage unreachable for longer than its patience).
    """
    from actsearch.engine.workers import WorkerOptions, run

    return run(WorkerOptions.given(
        storage=storage, study=study, trials=trials, timeout=timeout, device=device,
        threads=threads, dtype=dtype, workers=workers, worker_index=worker_index,
        heartbeat_interval=heartbeat_interval, grace_period=grace_period,
        storage_timeout=storage_timeout, storage_patience=storage_patience, quiet=quiet))


class _Say:
    """Progress lines: on the console unless progress is off."""

    def __init__(self, console: Console | None, progress: bool | str) -> None:
        self.console = console or Console(soft_wrap=True)
        self.enabled = bool(progress)

    def __call__(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, highlight=False)


def _load(study_or_run: optuna.Study | str | Path, storage: str | None,
          runs_dir: str | Path) -> optuna.Study:
    if isinstance(study_or_run, optuna.Study):
        return study_or_run
    return load_run(study_or_run, storage, runs_dir)


def analyze(study_or_run: optuna.Study | str | Path, *, storage: str | None = None,
            runs_dir: str | Path = "runs") -> Analysis:
    """The analysis of a study: an ``optuna.Study``, a run folder, a ``.db`` file, or a study
    name (in ``runs_dir``, or in ``storage``)."""
    with _quiet_optuna():
        study = _load(study_or_run, storage, runs_dir)
        space = space_of_study(study)
        return _analyze(study, space.objectives, space.train.epochs)


def report(study_or_run: optuna.Study | str | Path, *, out: str | Path | None = None,
           storage: str | None = None, runs_dir: str | Path = "runs",
           analysis: Analysis | None = None) -> tuple[Path, ...]:
    """Write a study's report.html and report.md; returns their paths.

    Args:
        study_or_run: As for ``analyze``.
        out: The folder (default: the run folder, ``runs_dir/<study>``).
        analysis: The study's analysis, when it is at hand already.
    """
    from actsearch.faces.report import write_report

    with _quiet_optuna():
        study = _load(study_or_run, storage, runs_dir)
        if analysis is None:
            space = space_of_study(study)
            analysis = _analyze(study, space.objectives, space.train.epochs)
        run = None if isinstance(study_or_run, optuna.Study) else Path(study_or_run)
        folder = Path(out) if out is not None else (
            run if run is not None and run.is_dir() else Path(runs_dir) / study.study_name)
        return write_report(analysis, folder)


def export(run_or_study: optuna.Study | str | Path, *, top: int = 1,
           out: str | Path | None = None, fmt: str = "yaml", weights: bool = False,
           storage: str | None = None, runs_dir: str | Path = "runs",
           device: str | None = None, threads: int | None = None) -> list[Path]:
    """Export a study's best complete trials as config files (what ``actsearch export`` runs):
    ``export_configs`` into ``out``, by default ``exports/`` beside the study (its run folder
    or ``.db`` file's folder, else ``runs_dir/<study>``). Retraining (``weights``, ONNX) runs on
    ``device`` with ``threads`` CPU threads."""
    from actsearch.engine.export import export_configs
    from actsearch.training.fit import configure_threads, select_device

    with _quiet_optuna():
        study = _load(run_or_study, storage, runs_dir)
    if out is None:  # beside the study: runs/<study>/exports
        run = None if isinstance(run_or_study, optuna.Study) else Path(run_or_study)
        folder = None if run is None else run if run.is_dir() else \
            run.parent if run.is_file() else None
        out = (folder or Path(runs_dir) / study.study_name) / "exports"
    torch_device = select_device(device)
    if torch_device.type == "cpu" and (weights or fmt == "onnx"):
        configure_threads(torch_device, threads)
    return export_configs(study, top=top, out_dir=out, fmt=fmt, weights=weights,
                          device=torch_device)


def train(config: str | Path, *, seed: int | None = None, device: str | None = None,
          threads: int | None = None, trust_code: bool = False) -> tuple[Any, Any]:
    """Retrain an exported config from scratch (what ``actsearch train`` runs): the config as
    read (``read_config``) and the run (``train_config``: its seed, epochs, status, time,
    validation and test metric)."""
    from actsearch.engine.export import read_config, train_config
    from actsearch.training.fit import configure_threads, select_device

    read = read_config(config)
    torch_device = select_device(device)
    if torch_device.type == "cpu":
        configure_threads(torch_device, threads)
    return read, train_config(config, seed=seed, device=torch_device, trust_code=trust_code)


def space_schema() -> dict[str, Any]:
    """The JSON Schema of space files (the CLI's ``spaces``; shipped as
    ``actsearch/schema/space.schema.json``), for editors."""
    from actsearch.schema.space import space_json_schema

    return space_json_schema()


def check_space(path: str | Path) -> str:
    """Validate a space file, and a data file it names, without running any factory; its one
    ``ok`` line (a mistake raises ``ActsearchError`` naming the file and the field)."""
    from actsearch.engine.pipeline import check_sample_shape

    space = load_space(Path(path))
    if space.data.factory is not None or space.model.factory is not None:
        # Checked without running the factories: they are the user's code.
        model = f"factory {space.model.factory}" if space.model.factory else space.model.family
        data = f"factory {space.data.factory}" if space.data.factory else space.data.name
        return (f"{path}: ok ({space.name}: {model}, {len(space.choices)} activations, "
                f"{len(space.groups)} groups, data {data}; the factories are not run)")
    data = space.data.name
    if space.data.path is not None:  # a user file: read and check it too
        from actsearch.training.data import read_data

        x, y, _, _ = read_data(space.data)
        check_sample_shape(space, tuple(x.shape[1:]))
        data += f" {space.data.path}: {len(x)} samples, {len(set(y.tolist()))} classes"
    return (f"{path}: ok ({space.name}: {space.model.family}, {len(space.choices)} "
            f"activations, depth {'/'.join(map(str, space.depths))}, data {data})")


def dashboard(run_or_study: str | Path, *, storage: str | None = None,
              runs_dir: str | Path = "runs", host: str = "127.0.0.1", port: int = 8080,
              refresh: float | None = None) -> None:
    """Serve a study in optuna-dashboard with actsearch's graphs and a summary note, until
    stopped (Ctrl-C). ``run_or_study`` as for ``analyze``; ``refresh``: redraw the graphs
    every so many seconds, for a study that is still running."""
    from actsearch.engine.storage import resolve_run
    from actsearch.faces.dashboard import serve_dashboard

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, study_name = resolve_run(str(run_or_study), storage, runs_dir)
    serve_dashboard(url, study_name, host, port, refresh)


def site_groups(target: str | Path | SearchSpace, report: SiteReport,
                groups: dict[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Each site's group: a space's own groups (a space file's or a shipped space's, named
    as it names them; a shipped family's, one per hidden layer, named as the layer's trial
    param), or ``groups`` (name -> site patterns) over a factory's sites; a site no group
    picks is its own group."""
    from actsearch.models.custom import group_specs
    from actsearch.models.groups import resolve_groups

    is_space = isinstance(target, SearchSpace) or ":" not in str(target) or \
        Path(target).suffix in (".yaml", ".yml")
    if not groups and is_space:
        space = _resolve_space(target)
        try:
            resolved = resolve_groups(report, group_specs(space, report), choices=space.choices)
        except ActsearchError as e:
            raise ActsearchError(f"{space.source}: {e}") from None
    else:
        resolved = resolve_groups(report, dict(groups or {}))
    return {site: group.name for group in resolved for site in group.sites}


def _space_model(space: SearchSpace) -> tuple[nn.Module, tuple[int, ...]]:
    """The model a space's trials start from (its first depth, every layer its first
    choice) and one sample's shape."""
    from actsearch.models.build import base_model
    from actsearch.schema.space import KNOWN_INPUT_SHAPES

    shape = KNOWN_INPUT_SHAPES.get(space.data.name)
    if space.data.factory is not None:  # the user's data: its samples' shape
        from actsearch.training.data import factory_data

        shape = factory_data(space.data, classes=space.train.class_targets).input_shape
    elif shape is None:  # a user's data file: its samples' shape
        from actsearch.training.data import read_data

        shape = tuple(read_data(space.data)[0].shape[1:])
    return base_model(space, shape), shape


def sites(model: str | Path | SearchSpace | nn.Module | Callable[..., nn.Module],
          example_input: Any = None, *, input_shape: Sequence[int] | None = None,
          kwargs: dict[str, Any] | None = None, split_shared: bool = True,
          base_dir: str | Path = ".") -> SiteReport:
    """The activation sites of a model (``actsearch sites`` prints them).

    Args:
        model: A model, a function that builds one, a factory's name (``module:function`` or
            ``path/to/file.py:function``, imported from ``base_dir``), or a space (a space
            file, a shipped space's name or a ``SearchSpace``: the model its trials start
            from, with the data's input shape).
        example_input: A batch the model takes; else ``input_shape`` makes one.
        input_shape: One sample's shape (e.g. ``(1, 8, 8)``): the example input is a batch of
            two such samples. A space knows its own.
        kwargs: Keyword arguments for the factory.
        split_shared: One site per call of a module called several times, or one tied site.
    """
    import torch
    from torch import nn

    from actsearch.models.factory import load_factory
    from actsearch.models.sites import find_sites

    name = None
    with torch.random.fork_rng(devices=[]):  # building a model leaves the caller's RNG alone
        if isinstance(model, SearchSpace) or (
                isinstance(model, str | Path) and (":" not in str(model)
                                                   or Path(model).is_file())):
            model, shape = _space_model(_resolve_space(model))
            input_shape = shape if input_shape is None else input_shape
        elif isinstance(model, str | Path):
            name = str(model)
            model = load_factory(name, base_dir)(**(kwargs or {}))
        elif not isinstance(model, nn.Module) and callable(model):
            name = getattr(model, "__name__", repr(model))
            model = model(**(kwargs or {}))
    if not isinstance(model, nn.Module):
        if name:
            raise ActsearchError(f"factory {name!r} returned {type(model).__name__!r}, "
                                 f"expected a torch nn.Module")
        raise ActsearchError(f"model: expected a torch nn.Module, a factory or a space, got "
                             f"{type(model).__name__}", parameter="model")
    if example_input is None:
        if input_shape is None:
            raise ActsearchError("input_shape: needed for a model that is not a space's: one "
                                 "sample's shape, e.g. (1, 8, 8)", parameter="input_shape")
        _expect("input_shape", input_shape, all(_is_int(n) and n > 0 for n in input_shape),
                "one sample's shape, e.g. (1, 8, 8)")
        example_input = torch.randn((2, *input_shape),
                                    generator=torch.Generator().manual_seed(0))
    return find_sites(model, example_input, split_shared=split_shared)
