"""One pipeline under every face: a run's options, its preparation, and what follows the search.

- ``RunOptions`` holds every run parameter of a search, checked and defaulted here once: the
  API passes what its caller gave (``None`` for "not given"), the CLI what its flags say.
- ``prepare`` readies a new or resumed search before its study exists: the data read first (a
  bad file must leave no study behind), the model's sites found, the device chosen.
- ``stored_run`` readies the same from a stored study alone: what a worker, an export and the
  claims' model variants need.
- ``after_search`` runs what follows the trials, in order: the finalists, the claims, the
  latency.

``with_sites`` (a factory model's sites), ``load_data`` and ``run_finalists`` are called from
here only (``tests/test_architecture.py`` checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actsearch.errors import ActsearchError

if TYPE_CHECKING:
    import optuna
    import torch

    from actsearch.schema.space import SearchSpace
    from actsearch.training.data import Arrays, Dataset, DeviceData

__all__ = ["DTYPES", "Prepared", "RunOptions", "after_search", "check_sample_shape",
           "population_size", "prepare", "stored_run", "trial_budget", "variant_space"]

DTYPES = ("float32", "float64")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expect(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ActsearchError(f"{name}: expected {expected}, got {value!r}", parameter=name)


@dataclass(frozen=True)
class RunOptions:
    """How a search runs. Each default is written here and nowhere else.

    Attributes:
        trials: Finished (complete or pruned) trials the study should hold; None: the
            space's budget.
        timeout: Seconds after which no trial starts; None: the space's.
        study: The study's name; None: the space's name.
        storage: An Optuna storage URL; None: the run folder ``runs_dir/<study>/``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        seed: Sampler and training seed; None: the space's.
        workers: Worker processes on this host sharing the study.
        population: Candidates trained at once, or ``"auto"``; None: the space's.
        finalists: The best layouts retrained with fresh seeds after the search (0: none).
        seeds: Fresh seeds per finalist.
        claim_seeds: Fresh seeds per arm of the claims (0: no claims; else at least 2).
        latency: ``compiled``, ``eager`` or ``off``; None: ``$ACTSEARCH_LATENCY``, else
            ``compiled``.
        runs_dir: Where run folders go.
        threads: CPU threads for training; None: 1 (fastest for small models).
        dtype: ``float32`` or ``float64``.
    """

    trials: int | None = None
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    device: str = "auto"
    seed: int | None = None
    workers: int = 1
    population: int | str | None = None
    finalists: int = 5
    seeds: int = 3
    claim_seeds: int = 3
    latency: str | None = None
    runs_dir: str | Path = "runs"
    threads: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("trials", "threads"):
            value = getattr(self, name)
            _expect(name, value, value is None or _is_int(value) and value > 0,
                    "a positive integer")
        _expect("timeout", self.timeout, self.timeout is None or isinstance(
            self.timeout, int | float) and not isinstance(self.timeout, bool)
                and self.timeout > 0, "a positive number of seconds")
        _expect("workers", self.workers, _is_int(self.workers) and self.workers > 0,
                "a positive integer")
        _expect("seeds", self.seeds, _is_int(self.seeds) and self.seeds > 0,
                "a positive integer")
        _expect("finalists", self.finalists, _is_int(self.finalists) and self.finalists >= 0,
                "an integer >= 0")
        _expect("claim_seeds", self.claim_seeds, _is_int(self.claim_seeds) and (
            self.claim_seeds == 0 or self.claim_seeds >= 2), "0 (no claims) or an integer >= 2")
        _expect("seed", self.seed, self.seed is None or _is_int(self.seed) and self.seed >= 0,
                "an integer >= 0")
        _expect("device", self.device, isinstance(self.device, str),
                "cpu, cuda, cuda:N or auto")
        if self.dtype not in DTYPES:
            raise ActsearchError(f"dtype: expected one of {', '.join(DTYPES)}, got "
                                 f"{self.dtype!r}", parameter="dtype")
        from actsearch.engine.latency import MODES, default_mode

        if self.latency is None:  # read when a search starts: the environment may change
            object.__setattr__(self, "latency", default_mode())
        _expect("latency", self.latency, self.latency in MODES, " or ".join(map(repr, MODES)))

    @classmethod
    def given(cls, **values: Any) -> RunOptions:
        """The options with what a caller gave; a value of None takes the default."""
        return cls(**{name: value for name, value in values.items() if value is not None})

    @property
    def timed(self) -> bool:
        """Whether latency is measured after the search (it times finalists and arms)."""
        return self.latency != "off" and (self.finalists > 0 or self.claim_seeds > 0)


@dataclass(frozen=True)
class Prepared:
    """A search made ready before its study exists.

    Attributes:
        space: The space, a factory model's sites found (``space.custom``).
        study: The study's name.
        url: The storage URL.
        device: The torch device trials train on.
        threads: The CPU threads set for training (None on a GPU).
        dataset: A data factory's splits (None for a named data set).
        arrays: A named data set's arrays, read once (None with a data factory).
        trials: The budget: finished trials the study should hold.
        timeout: Seconds after which no trial starts (None: none).
        notes: What the search leaves out, one line each (no test split, DataLoaders...).
    """

    space: SearchSpace
    study: str
    url: str
    device: torch.device
    threads: int | None
    dataset: Dataset | None
    arrays: Arrays | None
    trials: int
    timeout: float | None
    notes: tuple[str, ...]

    def data(self, split_seed: int, dtype: str) -> DeviceData:
        """The splits on the device: a data factory's as returned, a named data set split
        with the study's seed."""
        import torch

        from actsearch.training.data import load_data, to_device

        dataset = self.dataset or load_data(self.space.data, split_seed, self.arrays)
        return to_device(dataset, self.device, getattr(torch, dtype))


def prepare(space: SearchSpace, options: RunOptions,
            model_fn: Callable[..., Any] | None = None,
            data_fn: Callable[[], Any] | None = None) -> Prepared:
    """Ready a search of ``space``: storage URL, device and threads, the data read and
    checked, a factory model's sites found. ``model_fn``/``data_fn``: the functions a
    Python caller gave instead of factories."""
    import torch

    from actsearch.engine.storage import resolve_storage_url
    from actsearch.models.custom import with_sites
    from actsearch.training.data import factory_data, read_data
    from actsearch.training.fit import configure_threads, select_device

    if options.workers > 1 and model_fn is not None:
        raise ActsearchError("workers: a model given in Python cannot be imported by worker "
                             "processes; name an importable factory in a space file "
                             "(model.factory)", parameter="workers")
    study = options.study or space.name
    url = resolve_storage_url(options.storage, study, options.runs_dir, options.workers)
    device = select_device(options.device)
    threads = configure_threads(device, options.threads) if device.type == "cpu" else None
    # Read the data before the study exists: a missing or malformed file must not leave an
    # empty study behind whose space then differs from the corrected file.
    dataset = factory_data(space.data, data_fn, space.train.class_targets) \
        if space.data.factory is not None else None
    if dataset is not None and space.model.factory is None and (
            dataset.loaders is not None or not dataset.n_classes):
        raise ActsearchError(f"{space.source}: data.factory: a shipped model family "
                             f"needs tensors of class labels (its output is one per class); "
                             f"with DataLoaders or other targets, name your model "
                             f"(model.factory)")
    arrays = None if dataset is not None else read_data(space.data)
    sample = dataset.x_train if dataset is not None else arrays[0]
    check_sample_shape(space, tuple(sample.shape[1:]))  # likewise: before the study exists
    # A factory model's sites, found on two samples, before the study queues its baselines.
    space = with_sites(space, torch.as_tensor(sample[:2], dtype=torch.float32), model_fn)
    return Prepared(space, study, url, device, threads, dataset, arrays,
                    trial_budget(options.trials, space), options.timeout or space.timeout,
                    tuple(_notes(space, dataset)))


def trial_budget(trials: int | None, space: SearchSpace) -> int:
    """The finished trials a study should hold: as asked (checked by ``RunOptions`` or
    ``WorkerOptions``), else the space's budget (``budget.trials``, on resume the file's)."""
    return trials or space.trials


def check_sample_shape(space: SearchSpace, shape: tuple[int, ...]) -> None:
    """Refuse a CNN whose layers shrink samples of this shape to nothing (every trial would
    fail); reading a space could not check it against data it had not read."""
    from actsearch.schema.space import conv_shape_problem

    problem = conv_shape_problem(space.model, max(space.depths), shape)
    if problem is not None:
        raise ActsearchError(f"{space.source}: model.kernel_size: {problem}")


def _notes(space: SearchSpace, dataset: Dataset | None) -> list[str]:
    """What a search of a factory model or data leaves out, one line each."""
    from actsearch.models.layout import uniform_choices

    notes = []
    if dataset is not None and not dataset.has_test:
        notes.append(f"data.factory returned no test split: test {space.objectives[0][0]} "
                     f"is measured on the validation split")
    if dataset is not None and dataset.loaders is not None:
        notes.append("data.factory returned DataLoaders: training and evaluation iterate them "
                     "as given (their batch size, order and workers; train.batch_size does "
                     "not apply), one model at a time")
    if space.metric.name != "accuracy":
        notes.append(f"metric {space.metric.name} "
                     f"({'maximise' if space.metric.maximize else 'minimise'}): "
                     f"trials are ranked, pruned and compared by it; the robustness and "
                     f"convergence probes measure accuracy and are not measured")
    if space.custom is not None:
        left_out = uniform_choices(space)[1]
        if left_out:
            notes.append(f"baselines: no uniform {', '.join(left_out)}: not a choice of every "
                         f"group")
    return notes


def population_size(prepared: Prepared, options: RunOptions,
                    say: Callable[[str], None]) -> int:
    """How many candidates train at once: the setting, or ``auto``'s measurement on a
    sample of the data (split seed 0's: the study does not exist yet), 1 where the model
    cannot train as a population (said in one line) or workers share the search."""
    from actsearch.training.population import (
        auto_measures,
        population_problem,
        resolve_population,
    )

    space = prepared.space
    value = options.population or space.population
    if value != "auto" and resolve_population(value).size == 1:
        return 1
    if options.workers > 1:
        if value != "auto":
            say("one candidate at a time: each worker trains its own trials")
        return 1
    if value == "auto" and not auto_measures(prepared.trials):  # without reading the data
        return 1
    probe = prepared.data(0, options.dtype)
    if value == "auto":
        choice = resolve_population(value, space, probe, prepared.trials)
        say(choice.why)
        return choice.size
    size = resolve_population(value).size
    reason = population_problem(space, probe)
    if reason is not None:
        say(f"one candidate at a time: {reason}")
        return 1
    return size


def stored_run(study: optuna.Study, space: SearchSpace, device: torch.device | None = None,
               dtype: str | None = None) -> tuple[SearchSpace, Dataset, DeviceData | None]:
    """A stored study's space with its sites found as the search that created it found them,
    its splits (the study's split seed), and those splits on ``device`` (None: not moved) in
    ``dtype`` (None: as the data set holds them)."""
    import torch

    from actsearch.engine.record import study_seed
    from actsearch.models.custom import with_sites
    from actsearch.training.data import study_data, to_device

    split_seed = study_seed(study, space)
    dataset = study_data(space.data, split_seed, classes=space.train.class_targets)
    space = with_sites(space, torch.as_tensor(dataset.x_train[:2]))
    data = None if device is None else to_device(dataset, device,
                                                 getattr(torch, dtype) if dtype else None)
    return space, dataset, data


def variant_space(space: SearchSpace, variant: str) -> SearchSpace:
    """The space whose trials build a claim arm's model: the space itself, or for
    ``WITHOUT_NORM`` its factory called with ``claims.without_norm``'s keyword arguments over
    ``model.kwargs``, its sites found again and tied into the same groups."""
    from actsearch.engine.claims import WITHOUT_NORM
    from actsearch.models.custom import with_sites

    if not variant:
        return space
    if variant != WITHOUT_NORM or space.claims.without_norm is None or space.custom is None:
        raise ValueError(f"no model variant {variant!r} in space {space.name!r}")
    kwargs = {**space.model.kwargs, **space.claims.without_norm.kwargs}
    plain = dataclasses.replace(space, model=dataclasses.replace(space.model, kwargs=kwargs),
                                custom=None)
    found = with_sites(plain, space.custom.example_input, space.custom.factory)
    before = [g.name for g in space.custom.groups]
    after = [g.name for g in found.custom.groups]
    if after != before:
        raise ActsearchError(f"{space.source}: claims.without_norm: the model built with "
                             f"{kwargs} has groups {', '.join(after)}; expected the same as "
                             f"with model.kwargs ({', '.join(before)})")
    return found


def after_search(study: optuna.Study, space: SearchSpace, data: DeviceData,
                 options: RunOptions, say: Callable[[str], None]) -> bool:
    """What follows the trials, in order: the finalists (unless the same best layouts were
    retrained already), the claims' arms (those not yet trained with these seeds), the
    latency of what they trained (unless timed already). Returns whether Ctrl-C (or SIGTERM)
    stopped it; what finished before is stored."""
    from actsearch.engine.claims import run_claims
    from actsearch.engine.finalists import finalists_current, run_finalists
    from actsearch.engine.latency import latency_current, run_latency

    try:
        if options.finalists > 0:
            if finalists_current(study, options.finalists, options.seeds):
                say("finalists: unchanged (the same best layouts, already retrained)")
            else:
                run_finalists(study, space, data, options.finalists, options.seeds,
                              progress=say)
        if options.claim_seeds > 0:
            run_claims(study, space, data, options.claim_seeds, progress=say,
                       variant=variant_space)
        if options.timed:
            if latency_current(study, space, options.latency):
                say("latency: unchanged (the same layouts, already timed)")
            else:
                run_latency(study, space, data, compile=options.latency == "compiled",
                            progress=say)
    except KeyboardInterrupt:
        return True
    return False
