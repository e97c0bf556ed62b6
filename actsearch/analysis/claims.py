"""The folklore's claims judged: each designed comparison tested by a paired t-test over seeds
(or, for latency, over block pairs), Holm's method over every comparison of the study, and a
verdict per comparison and per claim (``analyze_claims``). The designs and their arms'
training are ``actsearch.engine.claims``'; the terms they use, ``actsearch.engine.terms``'."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actsearch.stats import ALPHA, POWER, describe, holm, judge, paired_test, seeds_needed

__all__ = ["CLAIM_TEST", "LATENCY_METRIC", "METHOD", "ArmRow", "ClaimResult", "Claims",
           "ComparisonResult", "analyze_claims"]

CLAIM_TEST = "paired t-test over seeds,"
# How the claims are tested and judged (``analyze_claims``), in words: the report prints it under
# the claims table, after the terms (``actsearch.engine.terms.TERMS``).
METHOD = ("Each arm trains with the same fresh seeds, so each comparison is paired by seed (a "
          "paired t-test of the per-seed contrast; the normalisation claim's contrast is (ELU "
          "- ReLU without norm) - (ELU - ReLU with it)). Holm's method adjusts the p-values of "
          f"all the comparisons together; supported: Holm p < {ALPHA:g} with the claimed sign, "
          f"contradicted: Holm p < {ALPHA:g} against it, not resolved otherwise, with the seeds "
          f"per arm a paired t-test at Holm's strictest level ({ALPHA:g} / comparisons) would "
          f"need for {POWER:.0%} power if the effect and spread seen were true. A claim holds "
          "when all its comparisons do, falls when any falls. The latency claim is an "
          "equivalence: per alternating block pair, log(ELU's latency / ReLU's) - log(1 + "
          "margin), whose mean is below 0 (supported) when ELU costs less than the margin; its "
          "effect and interval are printed as ratios.")
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
