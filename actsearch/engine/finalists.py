"""Finalists: the best layouts and the best uniform baseline, retrained with fresh seeds.

A search ranks layouts by one training run each on the validation split; a difference of a
point can be seed noise. So after the search the best K layouts (the Pareto front for several
objectives, top K by validation accuracy for one) and the best uniform baseline are retrained
with S fresh seeds each and evaluated once on the held-out test split. The results are stored
in the study's ``finalists`` user attribute (the trials themselves are finished and immutable),
where ``analysis`` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from actsearch.engine.record import FINALISTS_ATTR, TrialRecord, instability, records, study_seed
from actsearch.models.layout import candidate_from_params
from actsearch.schema.space import SearchSpace
from actsearch.stats import describe
from actsearch.training.data import DeviceData
from actsearch.training.population import train_seeds

__all__ = ["FINALISTS_ATTR", "finalists_current", "run_finalists", "select_finalists"]

_SEED_OFFSET = 7_919  # finalist seeds differ from every search trial's seed


def _goodness(study: optuna.Study) -> Callable[[TrialRecord], float]:
    """A trial's validation metric as "higher is better" (negated when the study's first
    objective, the metric, is minimised); unmeasured trials last."""
    sign = -1.0 if study.directions[0] == StudyDirection.MINIMIZE else 1.0

    def goodness(trial: TrialRecord) -> float:
        return sign * trial.val_acc if trial.val_acc is not None else float("-inf")

    return goodness


def select_finalists(study: optuna.Study, k: int) -> list[TrialRecord]:
    """The best K layouts (Pareto front or top K by the validation metric), then the best
    uniform baseline when it is not among them; one trial per distinct layout."""
    complete = records(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    pool = records(study.best_trials) if len(study.directions) > 1 else complete
    goodness = _goodness(study)
    chosen: list[TrialRecord] = []
    layouts: set[str | None] = set()
    for trial in sorted(pool, key=lambda t: (-goodness(t), t.number)):
        if trial.layout not in layouts and len(chosen) < k:
            chosen.append(trial)
            layouts.add(trial.layout)
    best_uniform = max((t for t in complete if t.uniform), key=goodness, default=None)
    if best_uniform is not None and best_uniform.layout not in layouts:
        chosen.append(best_uniform)
    return chosen


def finalists_current(study: optuna.Study, k: int, seeds: int) -> bool:
    """Whether the stored finalists are the ones ``run_finalists(study, k, seeds)`` would
    retrain now: the same trials, each with ``seeds`` seeds."""
    stored = study.user_attrs.get(FINALISTS_ATTR)
    if not stored:
        return False
    numbers = [t.number for t in select_finalists(study, k)]
    return ([entry["number"] for entry in stored] == numbers
            and all(len(entry["seeds"]) == seeds for entry in stored))


def run_finalists(study: optuna.Study, space: SearchSpace, data: DeviceData, k: int = 5,
                  seeds: int = 3,
                  progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Retrain the finalists with ``seeds`` fresh seeds each and store the results.

    Args:
        study: A finished (or interrupted) study.
        space: Its space.
        data: The study's splits on the training device.
        k: How many of the best layouts (the best uniform baseline comes on top).
        seeds: Fresh seeds per layout (at least 2 for a spread and a confidence interval).
        progress: Called with a line per finalist.

    Returns:
        One dict per finalist (also stored as the study's ``finalists`` user attribute):
        trial number, layout, uniform, seeds, per-seed test and validation metric (accuracy
        unless the space names its own; the keys say ``acc`` either way), the test
        metric's mean, std and 95% confidence interval, and ``stability`` (lower is
        steadier): the trial's ``instability`` plus the test accuracy's std over seeds.
    """
    if k < 1 or seeds < 1:
        raise ValueError("k and seeds must be at least 1")
    base = study_seed(study, space) + _SEED_OFFSET
    results = []
    metric = space.objectives[0][0]
    for trial in select_finalists(study, k):
        candidate = candidate_from_params(trial.params, space)
        seed_list = [base + 1_000 * trial.number + j for j in range(seeds)]
        runs = train_seeds(space, data, candidate, seed_list)
        test = [float(r.test_acc) for r in runs if r.test_acc is not None]
        val = [r.result.history[-1].val_acc for r in runs if r.result.history]
        summary = describe(test) if test else None
        entry = {
            "number": trial.number,
            "layout": trial.layout,
            "uniform": bool(trial.uniform),
            "seeds": seed_list,
            "test_acc": [round(a, 6) for a in test],
            "val_acc": [round(a, 6) for a in val],
            # Per seed, for the report's convergence check (actsearch.analysis.convergence_checks).
            "val_acc_curves": [[round(h.val_acc, 4) for h in r.result.history] for r in runs],
            "val_loss_curves": [[round(h.val_loss, 4) for h in r.result.history] for r in runs],
            "diverged": sum(r.result.status == "diverged" for r in runs),
            "failed": sum(r.error is not None for r in runs),
            "mean": None if summary is None else round(summary.mean, 6),
            "std": None if summary is None or summary.n < 2 else round(summary.std, 6),
            "ci_low": None if summary is None or summary.n < 2 else round(summary.ci_low, 6),
            "ci_high": None if summary is None or summary.n < 2 else round(summary.ci_high, 6),
        }
        # Stability: the trial's single-run instability plus the spread over seeds.
        single = instability(trial.probes or {})
        entry["stability"] = (None if entry["std"] is None or math.isnan(single)
                              else round(single + entry["std"], 6))
        results.append(entry)
        if progress is not None:
            spread = f" +- {entry['std']:.4f}" if entry["std"] is not None else ""
            mean = f"{entry['mean']:.4f}" if entry["mean"] is not None else "-"
            progress(f"finalist trial {trial.number} {entry['layout']}: test {metric} "
                     f"{mean}{spread} over {len(test)} seeds")
    study.set_user_attr(FINALISTS_ATTR, results)
    return results
