"""The analysis of a study: trial records in, one ``Analysis`` out. Pure: no printing, no torch.

Every face draws the ``Analysis`` that ``analyze`` returns and computes nothing of its own: the
report's tables, the graphs (``actsearch.faces.graphs``) and the dashboard's note. So they
cannot disagree: the ranking of layouts, the best uniform layout (``best_uniform``) and the
verdict on mixed vs uniform layouts (``decide``) are each defined once, here. Trial attributes
are read through ``actsearch.engine.record.TrialRecord``, never by name.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.record import (
    CLAIMS_ATTR,
    FINALISTS_ATTR,
    LATENCY_ATTR,
    TrialRecord,
    records,
)
from actsearch.schema.space import NOT_MEASURED
from actsearch.stats import (
    ALPHA,
    POWER,
    LayerPreference,
    WelchResult,
    describe,
    holm,
    judge,
    layer_preference,
    paired_test,
    pareto_front,
    seeds_needed,
    welch_test,
)

__all__ = [
    "GRAPH_TOP_K",
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
    "pareto_rows",
    "searched_choices",
    "site_probes",
    "with_choices",
]

TOP_FRACTION = 0.25  # the per-layer preference (table and heatmap) looks at the best quarter
GRAPH_TOP_K = 5  # layouts in the graphs: mixed bars beside the uniform ones, learning curves


# ----------------------------------------------------------------------------- rows and ranking


@dataclass(frozen=True)
class LayoutRow:
    """One finished trial as the tables and graphs show it."""

    number: int
    layout: str
    val_acc: float  # NaN when none was measured
    epochs: int
    train_seconds: float
    uniform: bool
    end: str
    test_acc: float | None = None  # complete trials: the held-out test split
    choices: str = ""  # the searched choices besides the activations, e.g. "norm batch"
    # +1 where a higher validation metric is better (accuracy), -1 where lower is (a
    # train.metric minimised): what ranking a row means.
    sign: int = 1

    @property
    def label(self) -> str:
        """The layout with its searched choices, as every table and graph names a candidate."""
        return with_choices(self.layout, self.choices)


def metric_sign(objectives: Sequence[tuple[str, str]]) -> int:
    """+1 when the first objective, the validation metric, is maximised; -1 when minimised."""
    return 1 if not objectives or objectives[0][1] == "max" else -1


def metric_name(objectives: Sequence[tuple[str, str]]) -> str:
    """The validation metric's name in words: accuracy, or train.metric's name."""
    return objectives[0][0] if objectives else "accuracy"


# The searched choices besides the activations (``actsearch.models.layout``'s param names), in
# the order a label names them.
_CHOICE_PARAMS = ("depth", "norm", "lr")


def choices_of(params: dict[str, Any]) -> str:
    """A trial's searched choices besides its activations, in words ("" when none searched):
    a param is in a trial's params only where the space searches it."""
    parts = []
    for name in _CHOICE_PARAMS:
        if name in params:
            value = params[name]
            parts.append(f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts)


def with_choices(layout: str, choices: str) -> str:
    return f"{layout} [{choices}]" if choices else layout


def _row(record: TrialRecord, sign: int = 1) -> LayoutRow:
    return LayoutRow(record.number, record.layout or "?", record.accuracy,
                     int(record.epochs or 0), float(record.train_seconds or 0.0),
                     bool(record.uniform), record.end or record.state.name,
                     None if record.test_acc is None else float(record.test_acc),
                     choices_of(record.params), sign)


def _rank_key(row: LayoutRow) -> tuple[bool, float, int]:
    # The validation metric ranks every table and graph, whatever the objectives (it is always
    # measured); ties go to the earlier trial, unmeasured trials last.
    unmeasured = math.isnan(row.val_acc)
    return unmeasured, 0.0 if unmeasured else -row.sign * row.val_acc, row.number


def _distinct(ranked: Sequence[LayoutRow]) -> list[LayoutRow]:
    """The best row of each distinct layout, best first: a sampler may propose a layout twice,
    and the graphs show layouts, not repeats."""
    seen: set[str] = set()
    best = []
    for row in ranked:
        if row.layout not in seen:
            seen.add(row.layout)
            best.append(row)
    return best


# ----------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class StudySummary:
    """Counts, the best layouts and the uniform baselines of a study."""

    complete: int
    pruned: int
    failed: int
    diverged: int
    running: int
    top: list[LayoutRow]  # best complete trials, best first
    baselines: list[LayoutRow]  # the best complete trial of each uniform layout, best first
    epochs_trained: int  # summed over finished trials
    epochs_if_unpruned: int  # had every finished trial run all its epochs


def _summarize(recs: Sequence[TrialRecord], top_k: int, max_epochs: int,
               sign: int = 1) -> StudySummary:
    complete = sorted((_row(r, sign) for r in recs if r.is_complete), key=_rank_key)
    # A trial that lost the race for the budget's last slot never ran: no failure.
    states = Counter(r.state for r in recs if not r.over_budget)
    finished = [r for r in recs if r.is_finished]
    return StudySummary(
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        diverged=sum(r.diverged for r in recs),
        running=states[TrialState.RUNNING],
        top=complete[:top_k],
        baselines=[row for row in _distinct(complete) if row.uniform],
        epochs_trained=sum(int(r.epochs or 0) for r in finished),
        epochs_if_unpruned=max_epochs * len(finished),
    )


def failure_reasons(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Failed trials counted by reason (the text before the first colon of ``error``).

    Reasons: ``out of memory``, an exception's type name, ``interrupted``, ``worker lost``
    (found by pid) and ``no heartbeat`` (a FAIL without an ``error`` attr that was retried:
    the heartbeat check failed it). Most frequent first.
    """
    recs = records(trials)
    retried = {n for r in recs for n in r.retry_history}
    counts: Counter[str] = Counter()
    for r in recs:
        if r.state != TrialState.FAIL or r.over_budget:  # over budget: it never ran
            continue
        if r.error:
            counts[r.reason] += 1
        else:
            counts["no heartbeat" if r.number in retried else "unknown"] += 1
    return dict(counts.most_common())


# ----------------------------------------------------------------------------- finalists


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
    reference: bool = False  # the uniform finalist the others are compared with
    choices: str = ""  # its search trial's searched choices besides the activations
    # Holm's adjustment of versus_uniform's p over every finalist compared with the reference:
    # the table reads them together, and the verdict picks its mixed finalist among them.
    p_holm: float | None = None
    sign: int = 1  # as LayoutRow's: -1 where the metric is minimised

    @property
    def label(self) -> str:
        return with_choices(self.layout, self.choices)

    @property
    def significant(self) -> bool:
        """Different from the reference after Holm's correction."""
        return self.p_holm is not None and self.p_holm < ALPHA


def compare_finalists(finalists: Sequence[dict[str, Any]],
                      choices: dict[int, str] | None = None,
                      sign: int = 1) -> list[FinalistComparison]:
    """Each finalist vs the uniform finalist with the best mean test metric (Welch's t-test),
    the p-values adjusted together by Holm's method.

    ``finalists`` is the study's ``finalists`` attribute (see ``actsearch.engine.finalists``);
    ``choices`` maps search trials to their searched choices (``choices_of``); ``sign`` -1
    where the metric is minimised (the best mean is then the lowest).
    """
    uniform = [f for f in finalists if f.get("uniform") and f.get("test_acc")]
    reference = max(uniform, key=lambda f: sign * f["mean"], default=None)
    tests: list[WelchResult | None] = []
    labels = {f["number"]: with_choices(f["layout"], (choices or {}).get(f["number"], ""))
              for f in finalists}
    for f in finalists:
        test = list(f.get("test_acc") or [])
        versus = None
        if (reference is not None and f is not reference and len(test) >= 2
                and len(reference["test_acc"]) >= 2):
            versus = welch_test(test, reference["test_acc"], labels[f["number"]],
                                labels[reference["number"]])
        tests.append(versus)
    adjusted = iter(holm([t.p_value for t in tests if t is not None]))
    rows = []
    for f, versus in zip(finalists, tests, strict=True):
        rows.append(FinalistComparison(
            f["number"], f["layout"], bool(f.get("uniform")), list(f.get("test_acc") or []),
            f.get("mean"), f.get("std"), f.get("ci_low"), f.get("ci_high"),
            f.get("stability"), versus, f is reference, (choices or {}).get(f["number"], ""),
            None if versus is None else next(adjusted), sign))
    return rows


@dataclass(frozen=True)
class BestUniform:
    """The uniform layout every comparison is made against (chosen by ``best_uniform``)."""

    number: int  # its search trial
    layout: str
    val_acc: float  # its search trial's validation metric (NaN when not in the study)
    test_mean: float | None  # its mean test metric over the finalists' seeds, if chosen by it
    metric: str = "accuracy"  # the validation metric's name

    @property
    def chosen_by(self) -> str:
        """Why this one, in words (every face prints the same)."""
        if self.test_mean is not None:
            return (f"the best mean test {self.metric} of the uniform finalists over fresh "
                    f"seeds, {self.test_mean:.4f}")
        return (f"the best validation {self.metric} of the uniform layouts in the search, "
                f"{self.val_acc:.4f}")


def best_uniform(complete: Sequence[LayoutRow], finalists: Sequence[FinalistComparison],
                 metric: str = "accuracy") -> BestUniform | None:
    """The best uniform layout: the one rule behind every table, graph and note.

    The uniform finalist the verdict compares with (the best mean test accuracy over fresh
    seeds, see ``compare_finalists``) when there is one; otherwise (no finalists yet, as in a
    running study) the uniform layout with the best validation accuracy in the search, ties to
    the earlier trial. None when no uniform layout has completed.

    Args:
        complete: The study's complete trials as rows (any order).
        finalists: ``compare_finalists`` of the study's finalists (may be empty).
    """
    reference = next((f for f in finalists if f.reference), None)
    if reference is not None and reference.mean is not None:
        row = next((r for r in complete if r.number == reference.number), None)
        return BestUniform(reference.number, reference.layout,
                           math.nan if row is None else row.val_acc, float(reference.mean),
                           metric)
    uniform = sorted((r for r in complete if r.uniform and not math.isnan(r.val_acc)),
                     key=_rank_key)
    if not uniform:
        return None
    return BestUniform(uniform[0].number, uniform[0].layout, uniform[0].val_acc, None, metric)


@dataclass(frozen=True)
class Verdict:
    """Mixed vs uniform, decided once (``decide``) for every face."""

    outcome: str  # "mixed" or "uniform" (significantly higher), "tie" or "none" (no verdict)
    text: str  # one sentence, as reports print it
    reason: str = ""  # outcome "none": why there is no verdict, in a few words
    mixed: FinalistComparison | None = None  # the best mixed finalist, by mean test accuracy
    uniform: FinalistComparison | None = None  # the best uniform finalist (the reference)
    metric: str = "accuracy"  # the validation metric's name

    @property
    def test(self) -> WelchResult | None:
        """The Welch test the verdict rests on (None without a verdict)."""
        return None if self.mixed is None else self.mixed.versus_uniform

    @property
    def short(self) -> str:
        """A few words for a figure's subtitle."""
        test = self.test
        if test is None:
            return f"no verdict: {self.reason}"
        p = self.mixed.p_holm if self.mixed is not None else None
        p_words = f"Holm p = {p:.3g}" if p is not None else f"p = {test.p_value:.3g}"
        if self.outcome == "tie":
            return f"verdict: no significant difference in test {self.metric} ({p_words})"
        winner, loser = ("mixed", "uniform") if self.outcome == "mixed" else ("uniform", "mixed")
        return (f"verdict: best {winner} beats best {loser} by {abs(test.difference):.4f} "
                f"test {self.metric} ({p_words})")


def decide(finalists: Sequence[FinalistComparison], metric: str = "accuracy") -> Verdict:
    """Does the best mixed finalist beat the best uniform one? The one verdict rule.

    The mixed finalist with the best mean test accuracy over fresh seeds against the uniform
    reference (``compare_finalists``), by Welch's t-test; search accuracy (one run per layout)
    never decides it.
    """
    def none(reason: str, rest: str) -> Verdict:
        return Verdict("none", f"{reason}: {rest}", reason, metric=metric)

    if not finalists:
        return none("no finalists were retrained", "no verdict on mixed vs uniform layouts")
    reference = next((f for f in finalists if f.reference), None)
    if not any(f.uniform and len(f.test_acc) >= 2 for f in finalists):
        return none("no uniform finalist finished two seeds", "no verdict on mixed vs uniform")
    mixed = [f for f in finalists if not f.uniform and f.versus_uniform is not None]
    if not mixed:
        return none("no mixed layout among the finalists", "the best layouts found are uniform")
    sign = mixed[0].sign  # -1: a lower mean is better (a minimised metric)
    best = max(mixed, key=lambda f: sign * f.mean if f.mean is not None else -math.inf)
    test = best.versus_uniform
    assert test is not None and best.p_holm is not None
    outcome = ("tie" if not best.significant else "mixed" if sign * test.difference > 0
               else "uniform")
    compared = sum(1 for f in finalists if f.versus_uniform is not None)  # Holm's family
    return Verdict(outcome, _verdict_text(test, best.p_holm, compared, metric, sign), "", best,
                   reference, metric)


def _verdict_text(test: WelchResult, p_holm: float, compared: int, metric: str = "accuracy",
                  sign: int = 1) -> str:
    """Welch's sentence, decided by the Holm-adjusted p (the mixed finalist was picked among
    ``compared`` finalists tested against the reference); for a minimised metric it says
    that the lower one is the better."""
    level = f"{100 * (1 - ALPHA):g}% CI"
    # Said even for one comparison (nothing to correct): every face shows the p that decides.
    holm_words = (f", Holm-adjusted p = {p_holm:.3g} over {compared} finalist"
                  f"{'s' if compared != 1 else ''} compared")
    if p_holm >= ALPHA:
        return (f"no significant difference between {test.label_a} and {test.label_b} "
                f"(difference {test.difference:+.4g}, {level} {test.ci_low:+.4g} to "
                f"{test.ci_high:+.4g}, p = {test.p_value:.3g}{holm_words})")
    higher, lower = ((test.label_a, test.label_b) if test.difference > 0
                     else (test.label_b, test.label_a))
    better = "" if sign > 0 else f": {lower} is the better (a lower {metric} is better)"
    return (f"{higher} is higher than {lower} by {abs(test.difference):.4g} ({level} of "
            f"{test.label_a} - {test.label_b}: {test.ci_low:+.4g} to {test.ci_high:+.4g}, "
            f"p = {test.p_value:.3g}{holm_words}){better}")


# ----------------------------------------------------------------------------- Pareto front


@dataclass(frozen=True)
class ParetoPoint:
    """A complete trial in objective space."""

    row: LayoutRow
    values: tuple[float, ...]  # one per axis of ``ParetoInfo.names``
    on_front: bool


@dataclass(frozen=True)
class ParetoInfo:
    """The complete trials in objective space and which of them are non-dominated.

    With one objective the axes are validation accuracy (max) and training time (min): which
    layouts buy accuracy with speed. With several, the study's own objectives (accuracy first).
    """

    names: tuple[str, ...]  # the axes
    directions: tuple[str, ...]  # "max" or "min" per axis
    points: list[ParetoPoint]  # trials with finite values on every axis, in trial order

    @property
    def signs(self) -> tuple[int, ...]:
        """+1 for a maximised axis, -1 for a minimised one."""
        return tuple(1 if d == "max" else -1 for d in self.directions)

    @property
    def front(self) -> list[ParetoPoint]:
        """The non-dominated points, best validation accuracy first."""
        return sorted((p for p in self.points if p.on_front), key=lambda p: _rank_key(p.row))


def _pareto_info(recs: Sequence[TrialRecord], objectives: Sequence[tuple[str, str]]
                 ) -> ParetoInfo:
    complete = [r for r in recs if r.is_complete]
    sign = metric_sign(objectives)
    if len(objectives) > 1:
        names = tuple(n for n, _ in objectives)
        directions = tuple(d for _, d in objectives)
        pairs = [(r, tuple(float(v) for v in r.values)) for r in complete
                 if r.values is not None]
    else:
        name = metric_name(objectives)
        names = ("val acc" if name == "accuracy" else f"val {name}", "train s")
        directions = (objectives[0][1] if objectives else "max", "min")
        pairs = [(r, (r.accuracy, math.nan if r.train_seconds is None
                      else float(r.train_seconds))) for r in complete]
    # A failed measurement is not a trade-off: such trials are not drawn at all.
    pairs = [(r, v) for r, v in pairs if all(math.isfinite(x) for x in v)]
    front = set(pareto_front([v for _, v in pairs],
                             ["maximize" if d == "max" else "minimize" for d in directions]))
    return ParetoInfo(names, directions, [ParetoPoint(_row(r, sign), v, i in front)
                                          for i, (r, v) in enumerate(pairs)])


def pareto_rows(trials: Sequence[FrozenTrial], objectives: Sequence[tuple[str, str]]
                ) -> list[tuple[LayoutRow, tuple[float, ...]]]:
    """The non-dominated complete trials under the study's objectives, best accuracy first.

    With one objective, the front of validation accuracy (max) against training time (min):
    which layouts buy accuracy with speed.
    """
    return [(p.row, p.values) for p in _pareto_info(records(trials), objectives).front]


# ----------------------------------------------------------------------------- per layer


@dataclass(frozen=True)
class HeatmapInfo:
    """Which activation the top trials use at each depth (the per-layer preference, with every
    activation the space offered and the mean parameter, e.g. ELU's alpha)."""

    activations: list[str]  # columns, in the space's order
    layers: list[int]  # rows: layer (or a factory model's group) index, input side first
    shares: list[list[float]]  # shares[layer][activation], each row sums to 1 (or is all 0)
    counts: list[int]  # top trials that have each layer
    mean_params: list[list[float | None]]  # mean parameter (ELU alpha) where one exists
    top_trials: int  # size of the top quarter
    complete_trials: int  # complete trials with a validation accuracy
    # Each row's name ("layer 1", or a factory model's group) and the param it counts.
    labels: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)

    @property
    def per_group(self) -> bool:
        """Rows are a factory model's groups of sites, not layers."""
        return any(k.startswith("act:") for k in self.params)


def _activation_choices(recs: Sequence[TrialRecord]) -> list[str]:
    """All activations the space offered, in the space's order (from the distributions)."""
    names: list[str] = []
    for r in recs:
        for key, dist in r.distributions.items():
            if key.startswith(("act_", "act:")) and isinstance(dist, CategoricalDistribution):
                names += [str(c) for c in dist.choices if str(c) not in names]
    for r in recs:  # enqueued params only, should a trial lack distributions
        for name in r.activations:
            if name not in names:
                names.append(name)
    return names


def _top_count(n: int) -> int:
    # As stats.layer_preference counts its top trials.
    return max(1, math.ceil(TOP_FRACTION * n)) if n else 0


def _choice_rows(recs: Sequence[TrialRecord], depth: int) -> list[str]:
    """The choice param of each preference row: ``act_<i>``, or a factory model's
    ``act:<group>`` (its groups' order, from a layout that has them all)."""
    keys = max((r.choice_params for r in recs), key=len, default=[])
    return keys if len(keys) >= depth else [f"act_{i}" for i in range(depth)]


def _row_label(key: str) -> str:
    return key[4:] if key.startswith("act:") else f"layer {int(key[4:]) + 1}"


def _heatmap(ranked: Sequence[TrialRecord], preferences: Sequence[LayerPreference],
             choices: list[str]) -> HeatmapInfo:
    top = ranked[:_top_count(len(ranked))]
    keys = _choice_rows(ranked, len(preferences))
    shares, means = [], []
    for pref in preferences:
        key = keys[pref.layer]
        # A parameter's param ends as its choice's: elu_alpha_3 (act_3), elu_alpha:g (act:g).
        suffix = key[3:]
        shares.append([pref.top.get(a, 0.0) for a in choices])
        chosen = [r.params for r in top if key in r.params]
        row: list[float | None] = []
        for a in choices:
            values = [float(v) for p in chosen if str(p[key]) == a for k, v in p.items()
                      if k.startswith(f"{a}_") and k.endswith(suffix)]
            row.append(sum(values) / len(values) if values else None)
        means.append(row)
    rows = [keys[p.layer] for p in preferences]
    return HeatmapInfo(choices, [p.layer for p in preferences], shares,
                       [p.n_top for p in preferences], means, len(top), len(ranked),
                       [_row_label(k) for k in rows], rows)


@dataclass(frozen=True)
class SiteProbe:
    """One site's probes in a factory model's trial (``site_probes``)."""

    site: str  # as find_sites names it
    act_mean: float | None
    act_std: float | None
    dead_frac: float | None
    grad_norm: float | None  # of d(loss)/d(the site's output)


def site_probes(probes: dict[str, Any] | None) -> list[SiteProbe]:
    """A trial's per-site probes in execution order, input side first; [] when its probes
    are per layer (a shipped family) or missing."""
    means = (probes or {}).get("act_mean")
    if not isinstance(means, dict):
        return []

    def at(key: str, site: str) -> float | None:
        values = probes.get(key)
        return values.get(site) if isinstance(values, dict) else None

    return [SiteProbe(site, at("act_mean", site), at("act_std", site), at("dead_frac", site),
                      at("grad_norm", site)) for site in means]


# ----------------------------------------------------------------------------- graphs' data


@dataclass(frozen=True)
class Bar:
    """One bar of the uniform-vs-mixed figure."""

    number: int  # the search trial
    label: str  # layout and searched choices
    uniform: bool
    value: float
    ci_low: float | None  # 95% interval over seeds (None: one run)
    ci_high: float | None
    runs: int


@dataclass(frozen=True)
class UniformVsMixed:
    """The bars of the uniform-vs-mixed figure: the finalists' mean test accuracy over fresh
    seeds with 95% intervals, the numbers the verdict rests on. A study without finalists (one
    still running) has only its search: validation accuracy, one run per layout, and says so
    (``measure``)."""

    measure: str  # "test" (finalists) or "search"
    uniform: list[Bar]  # best first
    mixed: list[Bar]
    reference: float | None  # the best uniform layout's value on the same measure
    metric: str = "accuracy"  # the validation metric's name

    @property
    def axis(self) -> str:
        if self.measure == "test":
            return f"test {self.metric} of the finalists over fresh seeds (mean, 95% CI)"
        return f"validation {self.metric} in the search (one run each; no finalists yet)"


def _bars(finalists: Sequence[FinalistComparison], distinct: Sequence[LayoutRow],
          reference: BestUniform | None, k: int, metric: str = "accuracy") -> UniformVsMixed:
    measured = [f for f in finalists if f.mean is not None]
    if measured:
        bars = [Bar(f.number, f.label, f.uniform, float(f.mean), f.ci_low, f.ci_high,
                    len(f.test_acc))
                for f in sorted(measured, key=lambda f: -f.sign * float(f.mean))]
        return UniformVsMixed("test", [b for b in bars if b.uniform],
                              [b for b in bars if not b.uniform][:k],
                              None if reference is None else reference.test_mean, metric)
    bars = [Bar(r.number, r.label, r.uniform, r.val_acc, None, None, 1) for r in distinct]
    return UniformVsMixed("search", [b for b in bars if b.uniform],
                          [b for b in bars if not b.uniform][:k],
                          None if reference is None or math.isnan(reference.val_acc)
                          else reference.val_acc, metric)


@dataclass(frozen=True)
class Curve:
    """One trial's validation accuracy and loss per epoch."""

    number: int
    layout: str
    uniform: bool
    val_acc: list[float]  # per epoch, epoch 1 first
    val_loss: list[float]
    label: str = ""  # the layout with its searched choices


def _curves(distinct: Sequence[LayoutRow], by_number: dict[int, TrialRecord],
            reference: BestUniform | None, k: int) -> list[Curve]:
    """The best ``k`` layouts with a curve, then the best uniform when not among them (the
    reference the others must beat)."""
    with_curve = [row for row in distinct if by_number[row.number].val_acc_curve]
    chosen = with_curve[:k]
    if reference is not None and reference.layout not in {row.layout for row in chosen}:
        record = by_number.get(reference.number)
        if record is not None and record.val_acc_curve:
            chosen.append(_row(record, chosen[0].sign if chosen else 1))
    return [Curve(row.number, row.layout, row.uniform,
                  [float(v) for v in by_number[row.number].val_acc_curve],
                  [float(v) for v in by_number[row.number].val_loss_curve], row.label)
            for row in chosen]


# ----------------------------------------------------------------------------- importance


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
                study, target=lambda t: TrialRecord.from_frozen(t).accuracy,
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))
    except (ValueError, RuntimeError):  # e.g. a single distinct value in every param
        return {}


# ----------------------------------------------------------------------------- convergence

NOISE_FLOOR = 0.01  # the gain's noise assumed when no seed-to-seed spread was measured
MIN_GAIN = 0.005  # a gain of less than half a point over the last fifth is no longer learning
LOSS_RISE = 0.05  # validation loss this much (5%) above its lowest point: it rose


@dataclass(frozen=True)
class ConvergenceCheck:
    """How one layout's training ended, read off its validation curves (one per seed).

    ``gain``: the mean validation accuracy of the last fifth of the epochs minus that of the
    fifth before, averaged over seeds; the layout was still improving when the gain exceeds
    ``noise``, the seed-to-seed spread (std) of that gain, and ``MIN_GAIN``. ``overfitting``:
    the mean validation loss was lowest before the last fifth and ended ``LOSS_RISE`` or more
    above that, while the accuracy no longer improved.
    """

    number: int  # the search trial
    layout: str
    runs: int  # curves read: the finalist's seeds, or 1 (the search trial)
    epochs: int
    window: int  # epochs in the last fifth
    gain: float
    noise: float
    noise_measured: bool  # False: no seed spread was measured, NOISE_FLOOR stands in
    best_loss_epoch: int
    best_loss: float
    last_loss: float

    @property
    def improving(self) -> bool:
        return self.gain > max(self.noise, MIN_GAIN)

    @property
    def overfitting(self) -> bool:
        return (not self.improving and self.best_loss_epoch <= self.epochs - self.window
                and self.last_loss > self.best_loss * (1 + LOSS_RISE))


@dataclass(frozen=True)
class Convergence:
    """The convergence checks of the uniform baselines and the finalists, and what they say."""

    checks: list[ConvergenceCheck]
    metric: str = "accuracy"  # the validation metric's name; a gain is its improvement

    @property
    def not_converged(self) -> list[ConvergenceCheck]:
        return [c for c in self.checks if c.improving]

    @property
    def overfitting(self) -> list[ConvergenceCheck]:
        return [c for c in self.checks if c.overfitting]

    @property
    def lines(self) -> list[str]:
        """Plain sentences for every face (none when training converged without overfitting)."""
        lines, n = [], len(self.checks)
        if self.not_converged:
            c = max(self.not_converged, key=lambda c: c.gain - c.noise)
            lines.append(
                f"Not converged: validation {self.metric} was still "
                f"{'rising' if self.metric == 'accuracy' else 'improving'} at the end of training "
                f"for {len(self.not_converged)} of {n} layouts checked (e.g. {c.layout}: "
                f"{c.gain:+.4f} over the last {c.window} epochs, "
                f"{_noise_words(c)} {c.noise:.4f}); the comparison is about a recipe that had "
                f"not converged.")
        if self.overfitting:
            c = max(self.overfitting, key=lambda c: c.last_loss / c.best_loss)
            lines.append(
                f"Overfitting: validation loss rose while {self.metric} plateaued for "
                f"{len(self.overfitting)} of {n} layouts checked (e.g. {c.layout}: lowest "
                f"{c.best_loss:.4f} at epoch {c.best_loss_epoch}, {c.last_loss:.4f} after "
                f"epoch {c.epochs}); the comparison is about models past their best "
                f"validation loss.")
        return lines


def _noise_words(check: ConvergenceCheck) -> str:
    if check.runs > 1:
        return f"{check.runs} seeds, against the spread of that gain over them,"
    if check.noise_measured:
        return "one run, against the finalists' spread of that gain (at least the floor),"
    return "one run, against the noise floor"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _check(number: int, layout: str, acc_curves: Sequence[Sequence[float]],
           loss_curves: Sequence[Sequence[float]], noise: float | None, sign: int = 1
           ) -> ConvergenceCheck | None:
    """The check of one layout's curves, one per seed; ``noise`` stands in for the gains'
    spread when there is one curve; ``sign`` -1 for a minimised metric (its gain is a fall).
    None when too short to judge."""
    epochs = min(len(c) for c in (*acc_curves, *loss_curves))
    window = max(1, round(epochs / 5))
    if epochs < 2 * window or epochs < 3:
        return None
    gains = [sign * (_mean(c[epochs - window:epochs])
                     - _mean(c[epochs - 2 * window:epochs - window])) for c in acc_curves]
    noise = _std(gains) if len(gains) > 1 else noise
    loss = [_mean([c[e] for c in loss_curves]) for e in range(epochs)]
    best = min(range(epochs), key=lambda e: loss[e])
    return ConvergenceCheck(number, layout, len(acc_curves), epochs, window, _mean(gains),
                            NOISE_FLOOR if noise is None else noise, noise is not None,
                            best + 1, loss[best], loss[-1])


def convergence(trials: Sequence[TrialRecord], finalists: Sequence[dict[str, Any]],
                sign: int = 1, metric: str = "accuracy") -> Convergence:
    """Convergence checks of the finalists and of search trials (the uniform baselines').

    A finalist is judged on its fresh seeds' curves against the spread of their gains; a
    search trial (one run; a finalist stored without curves too) against the median spread
    of the finalists' gains (the same recipe's seed noise) but at least ``NOISE_FLOOR``. Only
    trials that trained every epoch are judged.
    """
    checks: list[ConvergenceCheck] = []
    spreads = []
    judged: set[int] = set()
    for f in finalists:
        acc, loss = f.get("val_acc_curves") or [], f.get("val_loss_curves") or []
        if not acc or len(acc) != len(loss):
            continue  # stored by a version that kept no curves: its search trial stands in
        check = _check(f["number"], f["layout"], acc, loss, None, sign)
        if check is not None:
            checks.append(check)
            judged.add(f["number"])
            if check.noise_measured:
                spreads.append(check.noise)
    # One curve fluctuates more than a mean over seeds: a single run's noise is at least the
    # floor.
    noise = max(sorted(spreads)[len(spreads) // 2], NOISE_FLOOR) if spreads else None
    for r in trials:
        if r.number in judged or not r.val_acc_curve or len(r.val_acc_curve) != r.epochs:
            continue
        check = _check(r.number, r.layout or "?", [r.val_acc_curve], [r.val_loss_curve], noise,
                       sign)
        if check is not None:
            checks.append(check)
    return Convergence(checks, metric)


# ----------------------------------------------------------------------------- claims

CLAIM_TEST = "paired t-test over seeds,"
# A comparison whose metric is "latency:<mode>:<batch>" reads the ``latency`` attribute
# (``actsearch.engine.latency``): the arm's per block pair ratios against uniform ReLU.
LATENCY_METRIC = "latency:"


@dataclass(frozen=True)
class ComparisonResult:
    """One designed comparison of a claim, tested and judged (see ``analyze_claims``)."""

    label: str
    metric: str  # "test_acc", "dead_frac" or "abs_mean"
    sign: int  # the claimed direction of the effect
    n: int  # seeds with a value in every arm
    effect: float | None  # mean per-seed contrast (None: fewer than 2 seeds)
    ci_low: float | None  # 95% interval of the effect (not adjusted)
    ci_high: float | None
    p_value: float | None
    p_holm: float | None  # adjusted over every claim comparison of the study
    verdict: str  # supported, contradicted or not resolved
    seeds_needed: int | None  # not resolved: seeds per arm for 80% power at this effect
    # A latency comparison tests log(ratio) - log(1 + margin); this is log(1 + margin), so
    # that the words can give the ratio itself.
    offset: float = 0.0

    @property
    def latency(self) -> bool:
        """A latency comparison: its effect is a log ratio less log(1 + margin)."""
        return self.metric.startswith(LATENCY_METRIC)

    def value_text(self, value: float | None) -> str:
        """The effect or a bound as printed: a difference, or (latency) the ratio itself."""
        if value is None:
            return "-"
        return f"x{math.exp(value + self.offset):.3f}" if self.latency else f"{value:+.4f}"

    @property
    def words(self) -> str:
        """The comparison in a few words, as every face prints it."""
        latency = self.latency
        unit = "block pairs" if latency else "seeds"
        if self.effect is None:
            return f"{self.label}: {self.n} {unit} measured, too few to test"
        test = (f"margin x{math.exp(self.offset):.2f}, paired t-test of log ratios over block "
                f"pairs," if latency else CLAIM_TEST)
        text = (f"{self.label} {self.value_text(self.effect)} (95% CI "
                f"{self.value_text(self.ci_low)} to {self.value_text(self.ci_high)}, {test} "
                f"n = {self.n}, Holm p = {self.p_holm:.3g}): {self.verdict}")
        if self.verdict == "not resolved":
            per = "in all" if latency else "per arm"
            text += (f", ~{self.seeds_needed} {unit} {per} would resolve it ({POWER:.0%} power)"
                     if self.seeds_needed is not None else ", no effect seen")
        return text


@dataclass(frozen=True)
class ClaimResult:
    """A claim of the folklore and its verdict."""

    key: str
    statement: str
    verdict: str  # supported, contradicted, not resolved, not applicable, not run
    comparisons: list[ComparisonResult]
    reason: str = ""  # not applicable / not run: why

    @property
    def seeds_needed(self) -> int | None:
        """Not resolved: the most seeds per arm any of its unresolved comparisons needs."""
        needs = [c.seeds_needed for c in self.comparisons if c.verdict == "not resolved"]
        return None if not needs or None in needs else max(n for n in needs if n is not None)

    @property
    def line(self) -> str:
        """The claim's verdict in one line."""
        if self.reason:
            return f"{self.statement}: {self.verdict} ({self.reason})"
        return f"{self.statement}: {self.verdict}: " + "; ".join(c.words for c in self.comparisons)


@dataclass(frozen=True)
class ArmRow:
    """A claim arm: a designed layout trained with the claim seeds."""

    name: str
    layout: str
    norm: str
    test_acc: list[float]
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Claims:
    """The claims' verdicts (``analyze_claims``); ``ran`` is False for a study without them."""

    ran: bool
    seeds: int
    results: list[ClaimResult]
    arms: list[ArmRow]

    @property
    def lines(self) -> list[str]:
        if not self.ran:
            return ["Claims: not run (claim seeds 0, or a study from before claims existed)"]
        return [f"Claim: {r.line}" for r in self.results]


def _combine(verdicts: Sequence[str]) -> str:
    # A claim holds when every comparison it makes holds; one comparison against it is enough
    # to contradict it.
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    return "contradicted" if "contradicted" in verdicts else "not resolved"


def _latency_margin(latency: dict[str, Any] | None) -> float:
    return math.log1p(float((latency or {}).get("margin", 0.0)))


def _column(arms: dict[str, Any], latency: dict[str, Any] | None, arm: str,
            metric: str) -> list[float | None]:
    """An arm's values for a comparison: per seed, or (a latency metric) per block pair the
    log of its latency ratio against uniform ReLU, less log(1 + margin)."""
    if not metric.startswith(LATENCY_METRIC):
        return arms.get(arm, {}).get(metric) or []
    _, mode, batch = metric.split(":")
    entry = next((m for m in (latency or {}).get("models", []) if m["label"] == arm), {})
    margin = _latency_margin(latency)
    return [math.log(r) - margin for r in entry.get(mode, {}).get(batch, []) if r > 0]


def analyze_claims(document: dict[str, Any] | None,
                   latency: dict[str, Any] | None = None) -> Claims:
    """The claims' comparisons from the study's ``claims`` attribute (``actsearch.engine.claims``)
    and, for the latency claim, its ``latency`` attribute (``actsearch.engine.latency``).

    Per seed, a comparison's contrast is the weighted sum of its arms' values with that seed
    (seeds where an arm failed are left out); its mean is tested against 0 by a paired t-test.
    A latency comparison's values are per block pair: log(arm's latency / uniform ReLU's) -
    log(1 + margin), so "costs little" (at most the margin) is a negative mean. Every
    comparison of every claim is one family for Holm's correction (a report reads them
    together). A comparison is supported when its Holm-adjusted p is below ALPHA and the
    effect has the claimed sign, contradicted when below with the opposite sign, not resolved
    otherwise; a claim is supported when all its comparisons are, contradicted when any is.
    A latency claim of a study whose latencies were not measured is "not run".
    """
    if not document:
        return Claims(False, 0, [], [])
    arms = document.get("arms", {})
    tested: list[tuple[int, int, dict[str, Any], Any]] = []  # (claim, comparison, spec, test)
    per_claim: list[list[tuple[dict[str, Any], int, Any]]] = []
    for ci, claim in enumerate(document.get("claims", [])):
        rows = []
        for ki, spec in enumerate(claim.get("comparisons", [])):
            weights = spec["weights"]
            columns = [_column(arms, latency, name, spec["metric"]) for name in weights]
            n_seeds = min((len(c) for c in columns), default=0)
            contrast = [sum(w * col[j] for w, col in zip(weights.values(), columns, strict=True))
                        for j in range(n_seeds) if all(col[j] is not None for col in columns)]
            test = paired_test(contrast) if len(contrast) >= 2 else None
            rows.append((spec, len(contrast), test))
            if test is not None:
                tested.append((ci, ki, spec, test))
        per_claim.append(rows)
    adjusted = dict(zip([(ci, ki) for ci, ki, _, _ in tested],
                        holm([t.p_value for *_, t in tested]), strict=True))
    results = []
    for ci, claim in enumerate(document.get("claims", [])):
        comparisons = []
        for ki, (spec, n, test) in enumerate(per_claim[ci]):
            sign = int(spec.get("sign", 1))
            offset = (_latency_margin(latency) if spec["metric"].startswith(LATENCY_METRIC)
                      else 0.0)
            if test is None:
                comparisons.append(ComparisonResult(spec["label"], spec["metric"], sign, n, None,
                                                    None, None, None, None, "not resolved",
                                                    None, offset))
                continue
            p_holm = adjusted[(ci, ki)]
            verdict = judge(test.effect, p_holm, sign)
            comparisons.append(ComparisonResult(
                spec["label"], spec["metric"], sign, n, test.effect, test.ci_low, test.ci_high,
                test.p_value, p_holm, verdict,
                seeds_needed(test.effect, test.sd, tests=len(tested))
                if verdict == "not resolved" else None, offset))
        measures_latency = any(c["metric"].startswith(LATENCY_METRIC)
                               for c in claim.get("comparisons", []))
        if claim.get("reason"):
            results.append(ClaimResult(claim["key"], claim["statement"], "not applicable", [],
                                       claim["reason"]))
        elif measures_latency and not latency:
            results.append(ClaimResult(claim["key"], claim["statement"], "not run", [],
                                       "latency was not measured after the search"))
        else:
            results.append(ClaimResult(claim["key"], claim["statement"],
                                       _combine([c.verdict for c in comparisons]), comparisons))
    rows = []
    for name, arm in arms.items():
        accs = [float(v) for v in arm.get("test_acc") or [] if v is not None]
        summary = describe(accs) if accs else None
        rows.append(ArmRow(name, arm.get("layout", "?"), arm.get("norm", "?"), accs,
                           None if summary is None else summary.mean,
                           None if summary is None or summary.n < 2 else summary.ci_low,
                           None if summary is None or summary.n < 2 else summary.ci_high))
    return Claims(True, len(document.get("seeds", [])), results, rows)


# ----------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class ActivationLatency:
    """An activation's inference latency on the device the study ran on: its uniform layout's
    probes (the best complete trial of it), so the network around it is the same for each."""

    activation: str
    number: int  # the uniform trial measured
    b1_ms: float  # batch 1: median over timed blocks, milliseconds
    b1_iqr_ms: float | None  # the interquartile range of those blocks
    big_ms: float | None  # at the probes' large batch


def _latencies(baselines: Sequence[LayoutRow], by_number: dict[int, TrialRecord]
               ) -> list[ActivationLatency]:
    rows = []
    for row in baselines:
        record = by_number.get(row.number)
        probes = (record.probes if record is not None else None) or {}
        if (record is None or not record.activations or probes.get("lat_b1_ms") is None
                or any(r.activation == record.activations[0] for r in rows)):
            continue  # one row per activation: its best uniform layout (baselines come best first)
        iqr, big = probes.get("lat_b1_iqr_ms"), probes.get("lat_big_ms")
        rows.append(ActivationLatency(record.activations[0], row.number,
                                      float(probes["lat_b1_ms"]),
                                      None if iqr is None else float(iqr),
                                      None if big is None else float(big)))
    return rows


@dataclass(frozen=True)
class LatencyCost:
    """A layout's latency against uniform ReLU (same depth and norm), eager and compiled:
    the median over alternating block pairs of the ratio, per batch size."""

    label: str  # "trial 12" (a finalist) or "uniform elu"
    kind: str  # "finalist" or "activation"
    layout: str
    norm: str
    eager: dict[int, float]  # batch size -> median ratio
    compiled: dict[int, float]  # empty when torch.compile was not used


@dataclass(frozen=True)
class LatencyCosts:
    """``analyze_latency``: what each activation and each finalist costs in latency on the
    study's device (``actsearch.engine.latency``); ``ran`` is False when not measured."""

    ran: bool
    device: str = ""
    threads: int = 0
    margin: float = 0.0
    compile_failure: str | None = None  # why there are no compiled figures
    batch_sizes: list[int] = field(default_factory=list)
    rows: list[LatencyCost] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """Each activation's cost against ReLU, eager and compiled, one line each."""
        if not self.ran:
            return []
        out = []
        for row in self.rows:
            if row.kind != "activation" or row.label == "uniform relu":
                continue
            parts = []
            for b in self.batch_sizes:
                modes = [f"x{getattr(row, mode)[b]:.2f} {mode}" for mode in ("eager", "compiled")
                         if b in getattr(row, mode)]
                parts.append(f"{', '.join(modes)} at batch {b}")
            name = row.label.removeprefix("uniform ")
            out.append(f"{name.upper()} at every site against ReLU: {'; '.join(parts)} "
                       f"({self.device}, {self.threads} thread"
                       f"{'s' if self.threads != 1 else ''})")
        if self.compile_failure:
            out.append(f"Compiled latency: not measured ({self.compile_failure})")
        return out


def analyze_latency(document: dict[str, Any] | None) -> LatencyCosts:
    """The ``latency`` attribute's ratios as medians per layout, mode and batch size."""
    if not document:
        return LatencyCosts(False)

    def medians(by_batch: dict[str, list[float]]) -> dict[int, float]:
        return {int(b): float(statistics.median(v)) for b, v in by_batch.items() if v}

    rows = [LatencyCost(m["label"], m["kind"], m["layout"], m["norm"], medians(m["eager"]),
                        medians(m.get("compiled") or {})) for m in document.get("models", [])]
    return LatencyCosts(True, document.get("device", "?"), int(document.get("threads", 0)),
                        float(document.get("margin", 0.0)), document.get("compile"),
                        [int(b) for b in document.get("batch_sizes", [])], rows)


# ----------------------------------------------------------------------------- searched choices


@dataclass(frozen=True)
class SearchedChoice:
    """A searched choice besides the activations (depth, norm): how often each value was tried
    and how often it completed, so that a choice every trial of which was pruned is said."""

    name: str
    values: list[str]  # every value the space offered, in its order
    complete: dict[str, int]
    pruned: dict[str, int]

    @property
    def line(self) -> str:
        parts = [f"{v}: {self.complete.get(v, 0)} complete, {self.pruned.get(v, 0)} pruned"
                 for v in self.values]
        never = [v for v in self.values if not self.complete.get(v)]
        text = f"searched {self.name} ({'; '.join(parts)})"
        if never:
            text += (f"; no complete trial used {' or '.join(never)}: every finalist and the "
                     f"verdict are about the other {self.name} values")
        return text


def searched_choices(recs: Sequence[TrialRecord]) -> list[SearchedChoice]:
    """The searched depth and norm, with counts per value (the lr is continuous: its values
    are in each candidate's label instead)."""
    result = []
    for name in ("depth", "norm"):
        values: list[str] = []
        for r in recs:
            dist = r.distributions.get(name)
            if isinstance(dist, CategoricalDistribution):
                values += [str(c) for c in dist.choices if str(c) not in values]
            elif dist is not None and hasattr(dist, "low") and not values:
                values = [str(v) for v in range(int(dist.low), int(dist.high) + 1)]
        values += sorted({str(r.params[name]) for r in recs if name in r.params} - set(values))
        if not values:
            continue
        complete = Counter(str(r.params[name]) for r in recs if r.is_complete and name in r.params)
        pruned = Counter(str(r.params[name]) for r in recs
                         if r.state == TrialState.PRUNED and name in r.params)
        result.append(SearchedChoice(name, values, dict(complete), dict(pruned)))
    return result


# ----------------------------------------------------------------------------- the analysis


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
        s = self.summary
        saved = s.epochs_if_unpruned - s.epochs_trained
        share = f" ({saved / s.epochs_if_unpruned:.0%})" if s.epochs_if_unpruned else ""
        text = (f"{s.complete + s.pruned + s.failed} trials ({s.complete} complete, {s.pruned} "
                f"pruned, {s.failed} failed); pruning saved {saved} of {s.epochs_if_unpruned} "
                f"epochs{share}")
        if self.wall_seconds is not None:
            text += f"; the trials took {self.wall_seconds:.0f} s"
        seeds = {len(f.test_acc) for f in self.finalists}
        if self.finalists:
            text += (f"; {len(self.finalists)} finalists retrained with "
                     f"{'/'.join(map(str, sorted(seeds)))} seeds")
        if self.claims.ran:
            text += f"; {len(self.claims.arms)} claim arms with {self.claims.seeds} seeds"
        return text

    @property
    def headline(self) -> list[str]:
        """The answer, first in every face: the best layout, whether it beats the best uniform
        one, each claim's verdict, and the cost."""
        best = self.best
        if best is None:
            lines = ["Best layout: no trial has completed yet."]
        elif isinstance(best, FinalistComparison):
            ci = ("" if best.ci_low is None else
                  f", 95% CI {best.ci_low:.4f} to {best.ci_high:.4f}")
            lines = [f"Best layout: {best.label} ({'uniform' if best.uniform else 'mixed'}, "
                     f"trial {best.number}): test {self.metric} {best.mean:.4f}{ci} over "
                     f"{len(best.test_acc)} fresh seeds."]
        else:
            lines = [f"Best layout: {best.label} ({'uniform' if best.uniform else 'mixed'}, "
                     f"trial {best.number}): validation {self.metric} {best.val_acc:.4f} in the "
                     f"search (one run; no finalists retrained)."]
        lines.append(f"Mixed vs best uniform: {self.verdict}.")
        lines += [f"{line}." for line in self.claims.lines]
        lines += [f"Latency: {line}." for line in self.latency_costs.lines]
        lines += [f"Note: {c.line}." for c in self.searched if any(not c.complete.get(v)
                                                                   for v in c.values)]
        lines += [f"Note: not measured: {note}." for note in self.probe_notes]
        lines.append(f"Cost: {self.cost}.")
        return lines

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
                                   "maximize" if sign > 0 else "minimize",
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


def _best_sites(ranked: Sequence[LayoutRow], by_number: dict[int, TrialRecord]
                ) -> tuple[list[SiteProbe], int | None]:
    """The per-site probes of the best complete trial that has them, and its number."""
    for row in ranked:
        sites = site_probes(by_number[row.number].probes)
        if sites:
            return sites, row.number
    return [], None


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
