"""The finalists against the best uniform layout: the comparisons (Welch, then Holm over the
finalists), the best uniform rule (``best_uniform``) and the verdict (``decide``), each
defined once for every face."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actsearch.analysis.rows import LayoutRow, _rank_key, with_choices
from actsearch.stats import ALPHA, WelchResult, holm, welch_test

__all__ = ["BestUniform", "FinalistComparison", "Verdict", "best_uniform", "compare_finalists",
           "decide"]


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
