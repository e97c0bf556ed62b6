"""Pure functions over finished trials -> plain dataclasses. No printing, no torch."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from actsearch.stats import (
    LayerPreference,
    WelchResult,
    layer_preference,
    pareto_front,
    welch_test,
)

__all__ = [
    "Analysis",
    "FinalistComparison",
    "LayoutRow",
    "StudySummary",
    "analyze",
    "compare_finalists",
    "failure_reasons",
    "layer_importance",
    "pareto_rows",
    "summarize",
]


@dataclass(frozen=True)
class LayoutRow:
    """One finished trial as the tables show it."""

    number: int
    layout: str
    val_acc: float
    epochs: int
    train_seconds: float
    uniform: bool
    end: str


@dataclass(frozen=True)
class StudySummary:
    """Counts, the best layouts and the uniform baselines of a study."""

    complete: int
    pruned: int
    failed: int
    diverged: int
    running: int
    top: list[LayoutRow]  # best complete trials, best first
    baselines: list[LayoutRow]  # the best complete trial of each uniform layout
    epochs_trained: int  # summed over finished trials
    epochs_if_unpruned: int  # had every finished trial run all its epochs

    @property
    def best_uniform(self) -> LayoutRow | None:
        return max(self.baselines, key=lambda r: r.val_acc, default=None)


def _row(trial: FrozenTrial) -> LayoutRow:
    attrs = trial.user_attrs
    # Validation accuracy ranks the tables, whatever the objectives (it is always measured).
    value = attrs.get("val_acc", float("nan"))
    return LayoutRow(trial.number, attrs.get("layout", "?"), float(value),
                     int(attrs.get("epochs", 0)), float(attrs.get("train_seconds", 0.0)),
                     bool(attrs.get("uniform", False)), attrs.get("end", trial.state.name))


def summarize(trials: Sequence[FrozenTrial], top_k: int = 10, max_epochs: int = 0) -> StudySummary:
    """Summarise a study's trials; ``max_epochs`` is the recipe's epoch count."""
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    complete = sorted((_row(t) for t in by_state[TrialState.COMPLETE]),
                      key=lambda r: (-r.val_acc, r.number))
    baselines: dict[str, LayoutRow] = {}
    for row in complete:
        if row.uniform and row.layout not in baselines:
            baselines[row.layout] = row
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]
    return StudySummary(
        complete=len(by_state[TrialState.COMPLETE]),
        pruned=len(by_state[TrialState.PRUNED]),
        failed=len(by_state[TrialState.FAIL]),
        diverged=sum(str(t.user_attrs.get("end", "")).startswith("diverged") for t in trials),
        running=len(by_state[TrialState.RUNNING]),
        top=complete[:top_k],
        baselines=list(baselines.values()),
        epochs_trained=sum(int(t.user_attrs.get("epochs", 0)) for t in finished),
        epochs_if_unpruned=max_epochs * len(finished),
    )


def failure_reasons(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Failed trials counted by reason (the text before the first colon of ``error``).

    Reasons: ``out of memory``, an exception's type name, ``interrupted``, ``worker lost``
    (found by pid) and ``no heartbeat`` (a FAIL without an ``error`` attr that was retried:
    the heartbeat check failed it). Most frequent first.
    """
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counts: Counter[str] = Counter()
    for t in trials:
        if t.state != TrialState.FAIL:
            continue
        error = t.user_attrs.get("error")
        if error:
            counts[str(error).split(":", 1)[0]] += 1
        else:
            counts["no heartbeat" if t.number in retried else "unknown"] += 1
    return dict(counts.most_common())


@dataclass(frozen=True)
class FinalistComparison:
    """A finalist's test accuracy over fresh seeds, against the best uniform baseline's."""

    number: int
    layout: str
    uniform: bool
    test_acc: list[float]
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    stability: float | None  # instability of the search trial + std over seeds (lower: steadier)
    versus_uniform: WelchResult | None  # None for the baseline itself or too few seeds


def compare_finalists(finalists: Sequence[dict[str, Any]]) -> list[FinalistComparison]:
    """Each finalist vs the uniform finalist with the best mean test accuracy (Welch's t-test).

    ``finalists`` is the study's ``finalists`` attribute (see ``actsearch.search.finalists``).
    """
    uniform = [f for f in finalists if f.get("uniform") and f.get("test_acc")]
    reference = max(uniform, key=lambda f: f["mean"], default=None)
    rows = []
    for f in finalists:
        test = list(f.get("test_acc") or [])
        versus = None
        if (reference is not None and f is not reference and len(test) >= 2
                and len(reference["test_acc"]) >= 2):
            versus = welch_test(test, reference["test_acc"], f["layout"], reference["layout"])
        rows.append(FinalistComparison(f["number"], f["layout"], bool(f.get("uniform")), test,
                                       f.get("mean"), f.get("std"), f.get("ci_low"),
                                       f.get("ci_high"), f.get("stability"), versus))
    return rows


def _layers(trial: FrozenTrial) -> list[str]:
    acts = sorted((k for k in trial.params if k.startswith("act_")), key=lambda k: int(k[4:]))
    return [trial.params[k] for k in acts]


def pareto_rows(trials: Sequence[FrozenTrial], objectives: Sequence[tuple[str, str]]
                ) -> list[tuple[LayoutRow, tuple[float, ...]]]:
    """The non-dominated complete trials under the study's objectives, best accuracy first.

    With one objective, the front of validation accuracy (max) against training time (min):
    which layouts buy accuracy with speed.
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(objectives) > 1:
        points = [tuple(t.values) for t in complete]
        directions = ["maximize" if d == "max" else "minimize" for _, d in objectives]
    else:
        points = [(float(t.user_attrs.get("val_acc", math.nan)),
                   float(t.user_attrs.get("train_seconds", math.nan))) for t in complete]
        directions = ["maximize", "minimize"]
    front = pareto_front(points, directions) if points else []
    rows = [(_row(complete[i]), points[i]) for i in front]
    return sorted(rows, key=lambda r: (-r[0].val_acc, r[0].number))


def layer_importance(study: optuna.Study) -> dict[str, float]:
    """How much each searched parameter explains validation accuracy (Optuna's fANOVA).

    Empty when there are too few complete trials or nothing varies.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 4:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(
                study, target=lambda t: float(t.user_attrs.get("val_acc", math.nan)),
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))
    except (ValueError, RuntimeError):  # e.g. a single distinct value in every param
        return {}


@dataclass(frozen=True)
class Analysis:
    """Everything a report shows about a study."""

    study_name: str
    objectives: list[tuple[str, str]]
    summary: StudySummary
    pareto: list[tuple[LayoutRow, tuple[float, ...]]]
    finalists: list[FinalistComparison]
    preferences: list[LayerPreference]
    importance: dict[str, float]
    probes: dict[int, dict[str, Any]] = field(default_factory=dict)  # trial -> probes

    @property
    def verdict(self) -> str:
        """One sentence: does the best mixed finalist beat the best uniform one?"""
        if not self.finalists:
            return "no finalists were retrained: no verdict on mixed vs uniform layouts"
        if not any(f.uniform and len(f.test_acc) >= 2 for f in self.finalists):
            return "no uniform finalist finished two seeds: no verdict on mixed vs uniform"
        mixed = [f for f in self.finalists if not f.uniform and f.versus_uniform is not None]
        if not mixed:
            return "no mixed layout among the finalists: the best layouts found are uniform"
        best = max(mixed, key=lambda f: f.mean if f.mean is not None else -1.0)
        return best.versus_uniform.verdict  # type: ignore[union-attr]


def analyze(study: optuna.Study, objectives: Sequence[tuple[str, str]], max_epochs: int,
            top_k: int = 10) -> Analysis:
    """The full analysis of a study (pure: reads the study, returns data)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    summary = summarize(trials, top_k=top_k, max_epochs=max_epochs)
    preferences = []
    if complete:
        preferences = layer_preference([_layers(t) for t in complete],
                                       [float(t.user_attrs.get("val_acc", 0.0))
                                        for t in complete])
    shown = {r.number for r in summary.top} | {r.number for r in summary.baselines}
    probes = {t.number: t.user_attrs["probes"] for t in complete
              if t.number in shown and "probes" in t.user_attrs}
    return Analysis(study.study_name, list(objectives), summary,
                    pareto_rows(trials, objectives),
                    compare_finalists(study.user_attrs.get("finalists", [])),
                    preferences, layer_importance(study), probes)
