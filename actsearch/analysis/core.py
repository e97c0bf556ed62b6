"""The ``Analysis`` of a study, the one thing every face reads, and ``analyze(study)``, which
assembles it from the other modules' views of the trial records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from actsearch.analysis.claims import Claims, analyze_claims
from actsearch.analysis.convergence_checks import Convergence, convergence
from actsearch.analysis.graph_data import GRAPH_TOP_K, Curve, UniformVsMixed, _bars, _curves
from actsearch.analysis.headline import cost_line, headline_lines
from actsearch.analysis.latency import (
    ActivationLatency,
    LatencyCosts,
    _latencies,
    analyze_latency,
)
from actsearch.analysis.pareto import ParetoInfo, _pareto_info
from actsearch.analysis.preference import (
    TOP_FRACTION,
    HeatmapInfo,
    _activation_choices,
    _heatmap,
    layer_importance,
)
from actsearch.analysis.rows import (
    LayoutRow,
    _distinct,
    _rank_key,
    _row,
    choices_of,
    metric_name,
    metric_sign,
)
from actsearch.analysis.sites import SiteProbe, _best_sites
from actsearch.analysis.summary import (
    SearchedChoice,
    StudySummary,
    _summarize,
    searched_choices,
)
from actsearch.analysis.verdict import (
    BestUniform,
    FinalistComparison,
    Verdict,
    best_uniform,
    compare_finalists,
    decide,
)
from actsearch.engine.record import (
    CLAIMS_ATTR,
    FINALISTS_ATTR,
    LATENCY_ATTR,
    TrialRecord,
    records,
)
from actsearch.schema.space import NOT_MEASURED
from actsearch.stats import LayerPreference, layer_preference

__all__ = ["Analysis", "analyze", "analyze_records"]


@dataclass(frozen=True)
class Analysis:
    """Everything the report, the graphs and the dashboard's note say about a study."""

    study_name: str
    objectives: list[tuple[str, str]]
    summary: StudySummary
    pareto_info: ParetoInfo  # every complete trial, the front marked
    finalists: list[FinalistComparison]
    preferences: list[LayerPreference]
    importance: dict[str, float]
    probes: dict[int, dict[str, Any]]  # trial -> probes, for the trials the tables list
    best_uniform: BestUniform | None  # see ``best_uniform``
    comparison: Verdict  # see ``decide``
    heatmap: HeatmapInfo
    bars: UniformVsMixed
    curves: list[Curve]  # the best layouts, best first, then the best uniform
    convergence: Convergence  # did the baselines and finalists converge, or overfit?
    claims: Claims  # the folklore's claims, judged (``analyze_claims``)
    searched: list[SearchedChoice]  # the searched depth and norm, counted per value
    search_mixed: LayoutRow | None  # the best mixed layout in the search (validation)
    latency: list[ActivationLatency]  # each activation's uniform layout, as measured
    wall_seconds: float | None = None  # first trial's start to last trial's end
    # A factory model's best complete trial, site by site (``site_probes``); [] otherwise.
    sites: list[SiteProbe] = field(default_factory=list)
    sites_trial: int | None = None
    # Finalists' and each activation's latency against ReLU, eager and compiled.
    latency_costs: LatencyCosts = field(default_factory=lambda: LatencyCosts(False))

    @property
    def metric(self) -> str:
        """The validation metric's name: accuracy, or train.metric's."""
        return metric_name(self.objectives)

    @property
    def probe_notes(self) -> list[str]:
        """Why some probes were not measured (a metric of one's own skips those that measure
        accuracy), once each, as the trials stored it."""
        return list(dict.fromkeys(str(p[NOT_MEASURED]) for p in self.probes.values()
                                  if p.get(NOT_MEASURED)))

    @property
    def best(self) -> FinalistComparison | LayoutRow | None:
        """The best layout found: the finalist with the best mean test metric, or (no
        finalists) the search's best by the validation metric."""
        measured = [f for f in self.finalists if f.mean is not None]
        if measured:
            return max(measured, key=lambda f: f.sign * float(f.mean))
        return self.summary.top[0] if self.summary.top else None

    @property
    def cost(self) -> str:
        """What the search cost, in one line."""
        return cost_line(self)

    @property
    def headline(self) -> list[str]:
        """The answer, first in every face: the best layout, whether it beats the best uniform
        one, each claim's verdict, and the cost."""
        return headline_lines(self)

    @property
    def pareto(self) -> list[tuple[LayoutRow, tuple[float, ...]]]:
        """The non-dominated trials with their values, best accuracy first."""
        return [(p.row, p.values) for p in self.pareto_info.front]

    @property
    def verdict(self) -> str:
        """One sentence: does the best mixed finalist beat the best uniform one?"""
        return self.comparison.text


def analyze_records(study_name: str, recs: Sequence[TrialRecord],
                    finalists: Sequence[dict[str, Any]], objectives: Sequence[tuple[str, str]],
                    max_epochs: int, top_k: int = 10, graph_top_k: int = GRAPH_TOP_K,
                    importance: dict[str, float] | None = None,
                    claims: dict[str, Any] | None = None,
                    wall_seconds: float | None = None,
                    latency: dict[str, Any] | None = None) -> Analysis:
    """The analysis of trial records and a study's ``finalists`` attribute (see ``analyze``).

    Args:
        study_name: For the titles.
        recs: Every trial's record, in trial order.
        finalists: The study's finalists attribute (``actsearch.engine.finalists``), or [].
        objectives: ``(name, direction)`` pairs, accuracy first.
        max_epochs: The recipe's epoch count (for what pruning saved).
        top_k: Rows of the top-layouts table.
        graph_top_k: Mixed layouts in the uniform-vs-mixed bars, layouts in the curves.
        importance: Parameter -> importance (``layer_importance``), if computed.
        claims: The study's claims attribute (``actsearch.engine.claims``), if any.
        wall_seconds: What the trials took, first start to last end.
        latency: The study's latency attribute (``actsearch.engine.latency``), if any.
    """
    sign, metric = metric_sign(objectives), metric_name(objectives)
    summary = _summarize(recs, top_k, max_epochs, sign)
    complete = [r for r in recs if r.is_complete]
    by_number = {r.number: r for r in complete}
    rows = sorted((_row(r, sign) for r in complete), key=_rank_key)
    ranked = [row for row in rows if not math.isnan(row.val_acc)]
    comparisons = compare_finalists(finalists, {r.number: choices_of(r.params) for r in recs},
                                    sign)
    reference = best_uniform(rows, comparisons, metric)
    preferences = layer_preference([r.activations for r in complete],
                                   [r.accuracy for r in complete],
                                   sign,
                                   top_fraction=TOP_FRACTION)
    heatmap = _heatmap([by_number[row.number] for row in ranked], preferences,
                       _activation_choices(complete))
    distinct = _distinct(ranked)
    shown = {r.number for r in summary.top} | {r.number for r in summary.baselines}
    probes = {r.number: r.probes for r in complete if r.number in shown and r.probes is not None}
    judged = [r.number for r in summary.baselines] + [f["number"] for f in finalists]
    checks = convergence([by_number[n] for n in dict.fromkeys(judged) if n in by_number],
                         finalists, sign, metric)
    return Analysis(study_name, list(objectives), summary, _pareto_info(recs, objectives),
                    comparisons, preferences, dict(importance or {}), probes, reference,
                    decide(comparisons, metric), heatmap,
                    _bars(comparisons, distinct, reference, graph_top_k, metric),
                    _curves(distinct, by_number, reference, graph_top_k), checks,
                    analyze_claims(claims, latency), searched_choices(recs),
                    next((row for row in distinct if not row.uniform), None),
                    _latencies(summary.baselines, by_number), wall_seconds,
                    *_best_sites(ranked, by_number), analyze_latency(latency))


def analyze(study: optuna.Study, objectives: Sequence[tuple[str, str]], max_epochs: int,
            top_k: int = 10, *, graph_top_k: int = GRAPH_TOP_K,
            importance: bool = True) -> Analysis:
    """The full analysis of a study (pure: reads the study, returns data).

    Args:
        study: The study (finished or still running).
        objectives: The space's ``(name, direction)`` pairs, accuracy first.
        max_epochs: The recipe's epoch count.
        top_k: Rows of the top-layouts table.
        graph_top_k: Mixed layouts in the uniform-vs-mixed bars, layouts in the curves.
        importance: Compute fANOVA importances (about a second; the dashboard's note, redrawn
            while a study runs, does without).
    """
    trials = study.get_trials(deepcopy=False)
    recs = records(trials)
    finalists = study.user_attrs.get(FINALISTS_ATTR) or []
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return analyze_records(study.study_name, recs, finalists, objectives, max_epochs, top_k,
                           graph_top_k, layer_importance(study) if importance else None,
                           study.user_attrs.get(CLAIMS_ATTR), wall,
                           study.user_attrs.get(LATENCY_ATTR))
