"""Create or resume a study: sampler, pruner, the stored space and the uniform baselines.

A study remembers the space it was created from (as a study user attribute), so it can be
resumed, reported on or exported with nothing but its storage URL and name.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from actsearch.engine.record import BASELINE_ATTR, SEED_ATTR
from actsearch.engine.storage import (
    FINISHED,
    SPACE_ATTR,
    make_storage,
    space_of_study,
    study_names,
)
from actsearch.errors import ActsearchError, mask_url
from actsearch.models.layout import uniform_candidates
from actsearch.schema.space import STUDY_NAME, Metric, SearchSpace, space_to_document

__all__ = [
    "FINISHED",
    "make_pruner",
    "make_sampler",
    "open_study",
    "space_of_study",
]



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


def make_sampler(space: SearchSpace, seed: int,
                 concurrent: bool = True) -> optuna.samplers.BaseSampler:
    """The space's sampler. ``concurrent``: other trials may run while one is sampled."""
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True lets the multivariate TPE model conditional params (an ELU alpha exists only
    # where that layer picked ELU) without falling back to independent sampling. The constant
    # liar (Optuna 5's default) counts running trials as bad ones so that trials sampled side
    # by side (populations, workers, other machines) differ; it re-reads every trial from the
    # storage for each group of params it samples, which cost a lone sequential search about
    # 6% of its time for nothing: there the only running trial is the one being sampled,
    # which it leaves out (the same trials either way: tests/test_study.py).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=10, constant_liar=concurrent)


def open_study(space: SearchSpace | None, study_name: str, storage: Any,
               seed: int | None = None, concurrent: bool = True
               ) -> tuple[optuna.Study, SearchSpace]:
    """Create the study, or load it when it exists (then the space must be the same but for
    its budget and population, which are ``space``'s).

    Args:
        space: The validated space; None to load an existing study and use its stored space.
        study_name: The study's name in the storage.
        storage: An Optuna storage URL (or a storage object).
        seed: The sampler seed (default: the space's).
        concurrent: Whether other trials may run while this process samples one (a
            population, workers here or elsewhere); False only for a lone sequential search
            on its own storage. See ``make_sampler``.

    Returns:
        The study and the space it searches.
    """
    where = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
    if isinstance(storage, str):
        storage = make_storage(storage)  # raises a one-line ActsearchError itself
    existing = study_names(storage, where)
    if not STUDY_NAME.fullmatch(study_name):
        raise ActsearchError(f"study: expected letters, digits, '_', '-' or '.' (it names "
                             f"the run folder), got {study_name!r}", parameter="study")
    created = study_name not in existing
    if space is None and created:
        raise ActsearchError(f"study: no study {study_name!r} in {where}; "
                             f"studies there: {', '.join(existing) or 'none'}", parameter="study")
    n_before = 0
    if created:
        seed = space.seed if seed is None else seed
    else:
        probe = optuna.load_study(study_name=study_name, storage=storage)
        stored = space_of_study(probe)
        space = stored if space is None else space
        differences = _differences(_comparable(stored), _comparable(space))
        if differences:
            raise ActsearchError(f"study {study_name}: the study was created from a different "
                                 f"space ({'; '.join(differences)}); choose another study name",
                                 parameter="study")
        space = dataclasses.replace(stored, trials=space.trials, timeout=space.timeout,
                                    population=space.population, custom=space.custom,
                                    scoring=space.scoring)
        if space != stored:  # workers elsewhere read the budget from the stored space
            probe.set_user_attr(SPACE_ATTR, space_to_document(space))
        seed = probe.user_attrs.get(SEED_ATTR, space.seed if seed is None else seed)
        n_before = len(probe.get_trials(deepcopy=False))
    # On resume, offset the seed by the trials already run: the same seed would replay the
    # sampler's random start-up suggestions and repeat finished trials.
    sampler = make_sampler(space, seed + n_before, concurrent)
    directions = [Metric.of(o).optuna_direction for o in space.objectives]
    # Several objectives: Optuna refuses trial.report, so its pruner stays idle and the
    # objective prunes on stored curves (actsearch.engine.pruning).
    try:
        pruner = make_pruner(space) if len(directions) == 1 else optuna.pruners.NopPruner()
    except ValueError as e:  # settings Optuna refuses, e.g. reduction_factor: 1
        raise ActsearchError(f"{space.source}: pruner: {e}") from None
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if created:
        study.set_user_attr(SPACE_ATTR, space_to_document(space))
        study.set_user_attr(SEED_ATTR, seed)
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # The dashboard and Optuna's plots label axes with these.
            # The first objective is the validation metric (accuracy, or train.metric's).
            study.set_metric_names([f"validation {name}" if i == 0 else name
                                    for i, (name, _) in enumerate(space.objectives)])
    if space.model.factory is None or space.custom is not None:
        # A worker opens a factory model's study before it has found the sites (it reads the
        # data first); the search that created the study queued the baselines.
        _enqueue_missing_baselines(study, space)
    return study, space


def _comparable(space: SearchSpace) -> dict[str, Any]:
    # The budget and the population size may change between runs; the rest may not.
    document = space_to_document(space)
    document.pop("budget")
    document.pop("population")
    return document


def _differences(stored: Any, given: Any, where: str = "") -> list[str]:
    """The fields where two space documents differ, as ``field: X in the study, Y here``."""
    if isinstance(stored, dict) and isinstance(given, dict):
        return [line for key in sorted(stored.keys() | given.keys(), key=str)
                for line in _differences(stored.get(key), given.get(key),
                                         f"{where}.{key}" if where else str(key))]
    if stored == given:
        return []
    return [f"{where or 'space'}: {stored!r} in the study, {given!r} here"]


def _enqueue_missing_baselines(study: optuna.Study, space: SearchSpace) -> None:
    """Queue each uniform baseline that has not finished and is not waiting already."""
    seen = [t.params for t in study.get_trials(deepcopy=False, states=FINISHED)]
    seen += [t.system_attrs.get("fixed_params", {}) for t in study.get_trials(
        deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))]
    for params in uniform_candidates(space):
        if params not in seen:
            study.enqueue_trial(params, user_attrs={BASELINE_ATTR: True})
