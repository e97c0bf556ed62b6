"""The analysis of a study: trial records in, one ``Analysis`` out. Pure: no printing, no torch.

Every face draws the ``Analysis`` that ``analyze`` returns and computes nothing of its own: the
report's tables, the graphs (``actsearch.faces.graphs``) and the dashboard's note. So they
cannot disagree: the ranking of layouts, the best uniform layout (``best_uniform``) and the
verdict on mixed vs uniform layouts (``decide``) are each defined once, here. Trial attributes
are read through ``actsearch.engine.record.TrialRecord``, never by name.

One module per view, each importable on its own; every public name is re-exported here:

- ``rows``: trials as rows (``LayoutRow``), the one ranking, searched choices in a label;
- ``summary``: counts, the best layouts and baselines, failure reasons, searched choices;
- ``verdict``: the finalists' comparisons, the best uniform rule, the verdict;
- ``pareto``: the trials in objective space and their front;
- ``preference``: the per-layer (per-group) preference and fANOVA importance;
- ``sites``: a factory model's per-site probes;
- ``graph_data``: the uniform-vs-mixed bars and the learning curves;
- ``convergence_checks``: did the baselines and finalists converge, or overfit;
- ``claims``: the claims' tests and verdicts (``analyze_claims``);
- ``latency``: latency per activation and against ReLU (``analyze_latency``);
- ``headline``: the answer in words, first in every face;
- ``core``: the ``Analysis`` and ``analyze``.
"""

from __future__ import annotations

from actsearch.analysis.claims import (
    CLAIM_TEST,
    LATENCY_METRIC,
    ArmRow,
    ClaimResult,
    Claims,
    ComparisonResult,
    analyze_claims,
)
from actsearch.analysis.convergence_checks import (
    LOSS_RISE,
    MIN_GAIN,
    NOISE_FLOOR,
    Convergence,
    ConvergenceCheck,
    convergence,
)
from actsearch.analysis.core import Analysis, analyze, analyze_records
from actsearch.analysis.graph_data import GRAPH_TOP_K, Bar, Curve, UniformVsMixed
from actsearch.analysis.latency import (
    ActivationLatency,
    LatencyCost,
    LatencyCosts,
    analyze_latency,
)
from actsearch.analysis.pareto import ParetoInfo, ParetoPoint, pareto_rows
from actsearch.analysis.preference import TOP_FRACTION, HeatmapInfo, layer_importance
from actsearch.analysis.rows import LayoutRow, choices_of, metric_name, metric_sign, with_choices
from actsearch.analysis.sites import SiteProbe, site_probes
from actsearch.analysis.summary import (
    SearchedChoice,
    StudySummary,
    failure_reasons,
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

__all__ = [
    "CLAIM_TEST",
    "GRAPH_TOP_K",
    "LATENCY_METRIC",
    "LOSS_RISE",
    "MIN_GAIN",
    "NOISE_FLOOR",
    "TOP_FRACTION",
    "ActivationLatency",
    "Analysis",
    "ArmRow",
    "Bar",
    "BestUniform",
    "ClaimResult",
    "Claims",
    "ComparisonResult",
    "Convergence",
    "ConvergenceCheck",
    "Curve",
    "FinalistComparison",
    "HeatmapInfo",
    "LatencyCost",
    "LatencyCosts",
    "LayoutRow",
    "ParetoInfo",
    "ParetoPoint",
    "SearchedChoice",
    "SiteProbe",
    "StudySummary",
    "UniformVsMixed",
    "Verdict",
    "analyze",
    "analyze_claims",
    "analyze_latency",
    "analyze_records",
    "best_uniform",
    "choices_of",
    "compare_finalists",
    "convergence",
    "decide",
    "failure_reasons",
    "layer_importance",
    "metric_name",
    "metric_sign",
    "pareto_rows",
    "searched_choices",
    "site_probes",
    "with_choices",
]
