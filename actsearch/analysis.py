"""The analysis of a study: trial records in, one ``Analysis`` out. Pure: no printing, no torch.

Every face draws the ``Analysis`` that ``analyze`` returns and computes nothing of its own: the
report's tables, the graphs (``actsearch.faces.graphs``) and the dashboard's note. So they
cannot disagree: the ranking of layouts, the best uniform layout (``best_uniform``) and the
verdict on mixed vs uniform layouts (``decide``) are each defined once, here. Trial attributes
are read through ``actsearch.engine.record.TrialRecord``, never by name.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.record import FINALISTS_ATTR, TrialRecord, records
from actsearch.stats import (
    LayerPreference,
    WelchResult,
    layer_preference,
    pareto_front,
    welch_test,
)

__all__ = [
    "GRAPH_TOP_K",
    "TOP_FRACTION",
    "Analysis",
    "BestUniform",
    "Convergence",
    "ConvergenceCheck",
    "Curve",
    "FinalistComparison",
    "HeatmapInfo",
    "LayoutRow",
    "ParetoInfo",
    "ParetoPoint",
    "StudySummary",
    "UniformVsMixed",
    "Verdict",
    "analyze",
    "analyze_records",
    "best_uniform",
    "compare_finalists",
    "convergence",
    "decide",
    "failure_reasons",
    "layer_importance",
    "pareto_rows",
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


def _row(record: TrialRecord) -> LayoutRow:
    return LayoutRow(record.number, record.layout or "?", record.accuracy,
                     int(record.epochs or 0), float(record.train_seconds or 0.0),
                     bool(record.uniform), record.end or record.state.name,
                     None if record.test_acc is None else float(record.test_acc))


def _rank_key(row: LayoutRow) -> tuple[bool, float, int]:
    # Validation accuracy ranks every table and graph, whatever the objectives (it is always
    # measured); ties go to the earlier trial, unmeasured trials last.
    unmeasured = math.isnan(row.val_acc)
    return unmeasured, 0.0 if unmeasured else -row.val_acc, row.number


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


def _summarize(recs: Sequence[TrialRecord], top_k: int, max_epochs: int) -> StudySummary:
    complete = sorted((_row(r) for r in recs if r.is_complete), key=_rank_key)
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


def compare_finalists(finalists: Sequence[dict[str, Any]]) -> list[FinalistComparison]:
    """Each finalist vs the uniform finalist with the best mean test accuracy (Welch's t-test).

    ``finalists`` is the study's ``finalists`` attribute (see ``actsearch.engine.finalists``).
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
                                       f.get("ci_high"), f.get("stability"), versus,
                                       f is reference))
    return rows


@dataclass(frozen=True)
class BestUniform:
    """The uniform layout every comparison is made against (chosen by ``best_uniform``)."""

    number: int  # its search trial
    layout: str
    val_acc: float  # its search trial's validation accuracy (NaN when not in the study)
    test_mean: float | None  # its mean test accuracy over the finalists' seeds, if chosen by it

    @property
    def chosen_by(self) -> str:
        """Why this one, in words (every face prints the same)."""
        if self.test_mean is not None:
            return (f"the best mean test accuracy of the uniform finalists over fresh seeds, "
                    f"{self.test_mean:.4f}")
        return (f"the best validation accuracy of the uniform layouts in the search, "
                f"{self.val_acc:.4f}")


def best_uniform(complete: Sequence[LayoutRow], finalists: Sequence[FinalistComparison]
                 ) -> BestUniform | None:
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
                           math.nan if row is None else row.val_acc, float(reference.mean))
    uniform = sorted((r for r in complete if r.uniform and not math.isnan(r.val_acc)),
                     key=_rank_key)
    if not uniform:
        return None
    return BestUniform(uniform[0].number, uniform[0].layout, uniform[0].val_acc, None)


@dataclass(frozen=True)
class Verdict:
    """Mixed vs uniform, decided once (``decide``) for every face."""

    outcome: str  # "mixed" or "uniform" (significantly higher), "tie" or "none" (no verdict)
    text: str  # one sentence, as reports print it
    reason: str = ""  # outcome "none": why there is no verdict, in a few words
    mixed: FinalistComparison | None = None  # the best mixed finalist, by mean test accuracy
    uniform: FinalistComparison | None = None  # the best uniform finalist (the reference)

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
        if self.outcome == "tie":
            return (f"verdict: no significant difference in test accuracy "
                    f"(p = {test.p_value:.3g})")
        winner, loser = ("mixed", "uniform") if self.outcome == "mixed" else ("uniform", "mixed")
        return (f"verdict: best {winner} beats best {loser} by {abs(test.difference):.4f} "
                f"test accuracy (p = {test.p_value:.3g})")


def decide(finalists: Sequence[FinalistComparison]) -> Verdict:
    """Does the best mixed finalist beat the best uniform one? The one verdict rule.

    The mixed finalist with the best mean test accuracy over fresh seeds against the uniform
    reference (``compare_finalists``), by Welch's t-test; search accuracy (one run per layout)
    never decides it.
    """
    def none(reason: str, rest: str) -> Verdict:
        return Verdict("none", f"{reason}: {rest}", reason)

    if not finalists:
        return none("no finalists were retrained", "no verdict on mixed vs uniform layouts")
    reference = next((f for f in finalists if f.reference), None)
    if not any(f.uniform and len(f.test_acc) >= 2 for f in finalists):
        return none("no uniform finalist finished two seeds", "no verdict on mixed vs uniform")
    mixed = [f for f in finalists if not f.uniform and f.versus_uniform is not None]
    if not mixed:
        return none("no mixed layout among the finalists", "the best layouts found are uniform")
    best = max(mixed, key=lambda f: f.mean if f.mean is not None else -1.0)
    test = best.versus_uniform
    assert test is not None
    outcome = "tie" if not test.significant else "mixed" if test.difference > 0 else "uniform"
    return Verdict(outcome, test.verdict, "", best, reference)


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
    if len(objectives) > 1:
        names = tuple(n for n, _ in objectives)
        directions = tuple(d for _, d in objectives)
        pairs = [(r, tuple(float(v) for v in r.values)) for r in complete
                 if r.values is not None]
    else:
        names, directions = ("val acc", "train s"), ("max", "min")
        pairs = [(r, (r.accuracy, math.nan if r.train_seconds is None
                      else float(r.train_seconds))) for r in complete]
    # A failed measurement is not a trade-off: such trials are not drawn at all.
    pairs = [(r, v) for r, v in pairs if all(math.isfinite(x) for x in v)]
    front = set(pareto_front([v for _, v in pairs],
                             ["maximize" if d == "max" else "minimize" for d in directions]))
    return ParetoInfo(names, directions, [ParetoPoint(_row(r), v, i in front)
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
    layers: list[int]  # rows: layer index, input side first
    shares: list[list[float]]  # shares[layer][activation], each row sums to 1 (or is all 0)
    counts: list[int]  # top trials that have each layer
    mean_params: list[list[float | None]]  # mean parameter (ELU alpha) where one exists
    top_trials: int  # size of the top quarter
    complete_trials: int  # complete trials with a validation accuracy


def _activation_choices(recs: Sequence[TrialRecord]) -> list[str]:
    """All activations the space offered, in the space's order (from the distributions)."""
    names: list[str] = []
    for r in recs:
        for key, dist in r.distributions.items():
            if key.startswith("act_") and isinstance(dist, CategoricalDistribution):
                names += [str(c) for c in dist.choices if str(c) not in names]
    for r in recs:  # enqueued params only, should a trial lack distributions
        for name in r.activations:
            if name not in names:
                names.append(name)
    return names


def _top_count(n: int) -> int:
    # As stats.layer_preference counts its top trials.
    return max(1, math.ceil(TOP_FRACTION * n)) if n else 0


def _heatmap(ranked: Sequence[TrialRecord], preferences: Sequence[LayerPreference],
             choices: list[str]) -> HeatmapInfo:
    top = ranked[:_top_count(len(ranked))]
    shares, means = [], []
    for pref in preferences:
        i = pref.layer
        shares.append([pref.top.get(a, 0.0) for a in choices])
        chosen = [r.params for r in top if f"act_{i}" in r.params]
        row: list[float | None] = []
        for a in choices:
            values = [float(v) for p in chosen if str(p[f"act_{i}"]) == a for k, v in p.items()
                      if k.startswith(f"{a}_") and k.endswith(f"_{i}")]
            row.append(sum(values) / len(values) if values else None)
        means.append(row)
    return HeatmapInfo(choices, [p.layer for p in preferences], shares,
                       [p.n_top for p in preferences], means, len(top), len(ranked))


# ----------------------------------------------------------------------------- graphs' data


@dataclass(frozen=True)
class UniformVsMixed:
    """The bars of the uniform-vs-mixed figure: search accuracy, one run per layout."""

    uniform: list[LayoutRow]  # the best trial of each uniform layout, best first
    mixed: list[LayoutRow]  # the best trials of the best mixed layouts, best first


@dataclass(frozen=True)
class Curve:
    """One trial's validation accuracy and loss per epoch."""

    number: int
    layout: str
    uniform: bool
    val_acc: list[float]  # per epoch, epoch 1 first
    val_loss: list[float]


def _curves(distinct: Sequence[LayoutRow], by_number: dict[int, TrialRecord],
            reference: BestUniform | None, k: int) -> list[Curve]:
    """The best ``k`` layouts with a curve, then the best uniform when not among them (the
    reference the others must beat)."""
    with_curve = [row for row in distinct if by_number[row.number].val_acc_curve]
    chosen = with_curve[:k]
    if reference is not None and reference.layout not in {row.layout for row in chosen}:
        record = by_number.get(reference.number)
        if record is not None and record.val_acc_curve:
            chosen.append(_row(record))
    return [Curve(row.number, row.layout, row.uniform,
                  [float(v) for v in by_number[row.number].val_acc_curve],
                  [float(v) for v in by_number[row.number].val_loss_curve]) for row in chosen]


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
                f"Not converged: validation accuracy was still rising at the end of training "
                f"for {len(self.not_converged)} of {n} layouts checked (e.g. {c.layout}: "
                f"{c.gain:+.4f} over the last {c.window} epochs, "
                f"{_noise_words(c)} {c.noise:.4f}); the comparison is about a recipe that had "
                f"not converged.")
        if self.overfitting:
            c = max(self.overfitting, key=lambda c: c.last_loss / c.best_loss)
            lines.append(
                f"Overfitting: validation loss rose while accuracy plateaued for "
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
           loss_curves: Sequence[Sequence[float]], noise: float | None
           ) -> ConvergenceCheck | None:
    """The check of one layout's curves, one per seed; ``noise`` stands in for the gains'
    spread when there is one curve. None when too short to judge."""
    epochs = min(len(c) for c in (*acc_curves, *loss_curves))
    window = max(1, round(epochs / 5))
    if epochs < 2 * window or epochs < 3:
        return None
    gains = [_mean(c[epochs - window:epochs]) - _mean(c[epochs - 2 * window:epochs - window])
             for c in acc_curves]
    noise = _std(gains) if len(gains) > 1 else noise
    loss = [_mean([c[e] for c in loss_curves]) for e in range(epochs)]
    best = min(range(epochs), key=lambda e: loss[e])
    return ConvergenceCheck(number, layout, len(acc_curves), epochs, window, _mean(gains),
                            NOISE_FLOOR if noise is None else noise, noise is not None,
                            best + 1, loss[best], loss[-1])


def convergence(trials: Sequence[TrialRecord], finalists: Sequence[dict[str, Any]]
                ) -> Convergence:
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
        check = _check(f["number"], f["layout"], acc, loss, None)
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
        check = _check(r.number, r.layout or "?", [r.val_acc_curve], [r.val_loss_curve], noise)
        if check is not None:
            checks.append(check)
    return Convergence(checks)


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
                    importance: dict[str, float] | None = None) -> Analysis:
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
    """
    summary = _summarize(recs, top_k, max_epochs)
    complete = [r for r in recs if r.is_complete]
    by_number = {r.number: r for r in complete}
    rows = sorted((_row(r) for r in complete), key=_rank_key)
    ranked = [row for row in rows if not math.isnan(row.val_acc)]
    comparisons = compare_finalists(finalists)
    reference = best_uniform(rows, comparisons)
    preferences = layer_preference([r.activations for r in complete],
                                   [r.accuracy for r in complete], top_fraction=TOP_FRACTION)
    heatmap = _heatmap([by_number[row.number] for row in ranked], preferences,
                       _activation_choices(complete))
    distinct = _distinct(ranked)
    bars = UniformVsMixed([row for row in distinct if row.uniform],
                          [row for row in distinct if not row.uniform][:graph_top_k])
    shown = {r.number for r in summary.top} | {r.number for r in summary.baselines}
    probes = {r.number: r.probes for r in complete if r.number in shown and r.probes is not None}
    judged = [r.number for r in summary.baselines] + [f["number"] for f in finalists]
    checks = convergence([by_number[n] for n in dict.fromkeys(judged) if n in by_number],
                         finalists)
    return Analysis(study_name, list(objectives), summary, _pareto_info(recs, objectives),
                    comparisons, preferences, dict(importance or {}), probes, reference,
                    decide(comparisons), heatmap, bars,
                    _curves(distinct, by_number, reference, graph_top_k), checks)


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
    recs = records(study.get_trials(deepcopy=False))
    finalists = study.user_attrs.get(FINALISTS_ATTR) or []
    return analyze_records(study.study_name, recs, finalists, objectives, max_epochs, top_k,
                           graph_top_k, layer_importance(study) if importance else None)
