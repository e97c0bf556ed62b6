"""Statistics for comparing layouts: summaries with confidence intervals, Welch's t-test, the
paired t-test of designed comparisons (claims), Holm's correction, the seeds a comparison
needs, Pareto fronts and per-layer activation preference.

Pure functions (numpy and scipy, no torch, no printing) returning plain dataclasses, so that
``analysis``/``report`` can compute here and render elsewhere, and tests check numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALPHA",
    "POWER",
    "LayerPreference",
    "PairedResult",
    "Summary",
    "WelchResult",
    "describe",
    "holm",
    "judge",
    "layer_preference",
    "paired_test",
    "pareto_front",
    "seeds_needed",
    "welch_test",
]

ALPHA = 0.05  # every test's significance level (family-wise, after Holm, where several are read)
POWER = 0.8  # the power ``seeds_needed`` plans for


def _student_t():
    # scipy.stats takes ~0.65 s to import; only the intervals and tests need it, not the
    # Pareto front the dashboard's graphs use.
    from scipy import stats

    return stats.t


def _normal():
    from scipy import stats

    return stats.norm


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and a t-based confidence interval of the mean."""

    n: int
    mean: float
    std: float  # sample std (ddof=1); nan when n < 2
    ci_low: float  # nan when n < 2
    ci_high: float
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def _values(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: expected at least one value")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: expected finite values, got {a.tolist()}")
    return a


def describe(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Summarise repeated measurements (e.g. one layout's accuracy over seeds).

    The interval is mean +- t_{(1+confidence)/2, n-1} * std / sqrt(n), which assumes the
    values are independent draws of a roughly normal quantity.
    """
    a = _values(values, "values")
    n, mean = a.size, float(a.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, confidence)
    std = float(a.std(ddof=1))
    half = float(_student_t().ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class WelchResult:
    """Welch's unequal-variance t-test of mean(a) - mean(b)."""

    label_a: str
    label_b: str
    mean_a: float
    mean_b: float
    difference: float  # mean_a - mean_b
    ci_low: float  # confidence interval of the difference (Welch-Satterthwaite df)
    ci_high: float
    df: float
    t: float
    p_value: float  # two-sided
    alpha: float
    verdict: str  # one sentence for reports

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def welch_test(a: Sequence[float], b: Sequence[float], label_a: str = "A", label_b: str = "B",
               alpha: float = 0.05) -> WelchResult:
    """Welch's t-test (two-sided) with a (1 - alpha) confidence interval of the difference.

    t = (mean_a - mean_b) / se with se^2 = s_a^2/n_a + s_b^2/n_b and Welch-Satterthwaite
    df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)); the same t and p as
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``. When both samples have zero variance
    the test is decided exactly: p = 1 for equal means, 0 otherwise. The verdict says "no
    significant difference" whenever p >= alpha.

    Args:
        a, b: At least two finite values each (e.g. validation accuracy over seeds).
        label_a, label_b: Names used in the verdict.
        alpha: Significance level; the interval has confidence 1 - alpha.
    """
    x, y = _values(a, label_a), _values(b, label_b)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"Welch's t-test needs at least 2 values per group, got "
                         f"{x.size} ({label_a}) and {y.size} ({label_b})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ma, mb = float(x.mean()), float(y.mean())
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    diff = ma - mb
    se = math.sqrt(va + vb)
    if se == 0:
        # Identical values within each group: the t distribution is degenerate, but the
        # answer is not in doubt.
        df = float(x.size + y.size - 2)
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0 else 0.0
        lo = hi = diff
    else:
        df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
        t = diff / se
        p = float(2 * _student_t().sf(abs(t), df))
        half = float(_student_t().ppf(1 - alpha / 2, df)) * se
        lo, hi = diff - half, diff + half
    level = f"{100 * (1 - alpha):g}% CI"
    if p >= alpha:
        verdict = (f"no significant difference between {label_a} and {label_b} "
                   f"(difference {diff:+.4g}, {level} {lo:+.4g} to {hi:+.4g}, p = {p:.3g})")
    else:
        higher, lower = (label_a, label_b) if diff > 0 else (label_b, label_a)
        verdict = (f"{higher} is higher than {lower} by {abs(diff):.4g} "
                   f"({level} of {label_a} - {label_b}: {lo:+.4g} to {hi:+.4g}, p = {p:.3g})")
    return WelchResult(label_a, label_b, ma, mb, diff, lo, hi, df, t, p, alpha, verdict)


@dataclass(frozen=True)
class PairedResult:
    """A paired t-test of the mean of per-seed differences (the same seeds in both arms)."""

    n: int  # seeds with a value in every arm
    effect: float  # mean of the per-seed differences
    sd: float  # their sample std (ddof=1)
    ci_low: float  # (1 - alpha) confidence interval of the effect (t, n - 1 df)
    ci_high: float
    t: float
    p_value: float  # two-sided


def paired_test(differences: Sequence[float], alpha: float = ALPHA) -> PairedResult:
    """The paired t-test: per-seed differences d_i (arm A - arm B with seed i, or a difference
    of such differences for an interaction), t = mean(d) / (sd(d) / sqrt(n)) with n - 1 df.

    The same t and p as ``scipy.stats.ttest_rel`` (or ``ttest_1samp(d, 0)``). Pairing removes
    what a seed does to both arms alike (the data order, the initial weights' luck). When
    every difference is equal the test is decided exactly: p = 1 for zero, 0 otherwise.

    Args:
        differences: At least two finite per-seed differences.
        alpha: The interval has confidence 1 - alpha.
    """
    d = _values(differences, "differences")
    if d.size < 2:
        raise ValueError(f"a paired t-test needs at least 2 seeds, got {d.size}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n, effect = d.size, float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0:
        t = 0.0 if effect == 0 else math.copysign(math.inf, effect)
        return PairedResult(n, effect, 0.0, effect, effect, t, 1.0 if effect == 0 else 0.0)
    se = sd / math.sqrt(n)
    t = effect / se
    p = float(2 * _student_t().sf(abs(t), n - 1))
    half = float(_student_t().ppf(1 - alpha / 2, n - 1)) * se
    return PairedResult(n, effect, sd, effect - half, effect + half, t, p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th smallest (i = 1..m) becomes max over j <= i of
    min(1, (m - j + 1) * p_(j)); a hypothesis is rejected at family-wise level alpha when its
    adjusted p is below alpha. Controls the chance of any false claim among the m tests
    under any dependence between them, and is never less powerful than Bonferroni.
    """
    p = [float(v) for v in p_values]
    if any(not 0 <= v <= 1 for v in p):
        raise ValueError(f"p-values must be in [0, 1], got {p}")
    m = len(p)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p[i])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                 tests: int = 1) -> int | None:
    """Seeds per arm for a paired two-sided t-test to detect ``effect`` with ``power``.

    The smallest n >= 2 with (t_{1-a/2, n-1} + t_{power, n-1}) * sd / |effect| <= sqrt(n),
    a = alpha / tests: the level of the strictest step of Holm's method over ``tests``
    comparisons (Bonferroni's), so the count holds for whichever step the comparison lands on.
    Starts from the normal approximation ((z_{1-a/2} + z_{power}) * sd / |effect|)^2, which the
    t distribution's heavier tails raise by a seed or two at small counts. Assumes the
    observed effect and the std of the per-seed differences are the true ones and normal
    differences. None when the effect is zero (no count resolves it).
    """
    if not math.isfinite(effect) or not math.isfinite(sd) or effect == 0:
        return None
    if tests < 1:
        raise ValueError(f"tests must be at least 1, got {tests}")
    a = alpha / tests
    ratio = sd / abs(effect)
    z = _normal().ppf(1 - a / 2) + _normal().ppf(power)
    n = max(2, math.ceil((z * ratio) ** 2))
    t = _student_t()
    while (t.ppf(1 - a / 2, n - 1) + t.ppf(power, n - 1)) * ratio > math.sqrt(n):
        n += 1
    return n


def judge(effect: float, p_adjusted: float, claimed_sign: int, alpha: float = ALPHA) -> str:
    """A claim's comparison, decided: ``supported`` when the Holm-adjusted p is below alpha
    and the effect has the claimed sign, ``contradicted`` when it is below alpha with the
    opposite sign, ``not resolved`` otherwise."""
    if claimed_sign not in (1, -1):
        raise ValueError(f"claimed_sign must be 1 or -1, got {claimed_sign}")
    if p_adjusted >= alpha or effect == 0:
        return "not resolved"
    return "supported" if effect * claimed_sign > 0 else "contradicted"


def pareto_front(points: Sequence[Sequence[float]], signs: Sequence[int]) -> list[int]:
    """Indices (ascending) of the non-dominated points.

    A point dominates another when it is at least as good in every objective and strictly
    better in one, "good" per objective by its sign: +1 higher is better, -1 lower is. Equal
    points do not dominate each other, so duplicates on the front are all kept. Points with a
    non-finite value are never on the front (a failed measurement is not a trade-off).
    """
    if any(s not in (1, -1) for s in signs):
        raise ValueError(f"signs must be 1 or -1, got {list(signs)}")
    if len(points) == 0:
        return []
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(signs):
        raise ValueError(f"expected points of {len(signs)} values each (one per direction), "
                         f"got shape {p.shape}")
    finite = np.isfinite(p).all(axis=1)
    g = p * np.asarray(signs)  # now larger is better everywhere
    front = []
    for i in np.flatnonzero(finite):
        others = g[finite]
        dominated = ((others >= g[i]).all(axis=1) & (others > g[i]).any(axis=1)).any()
        if not dominated:
            front.append(int(i))
    return front


@dataclass(frozen=True)
class LayerPreference:
    """Which activations the best trials use at one depth.

    ``top`` and ``overall`` map each activation name to its fraction among the top trials and
    among all trials that have this layer; an activation with top > overall is preferred.
    """

    layer: int  # 0-based, input side first
    n_top: int  # top trials that have this layer
    n_all: int  # trials that have this layer
    top: dict[str, float]
    overall: dict[str, float]

    @property
    def favourite(self) -> str | None:
        """The most frequent activation among the top trials (ties: first by name)."""
        if self.n_top == 0:
            return None
        return max(sorted(self.top), key=lambda k: self.top[k])


def layer_preference(layouts: Sequence[Sequence[str]], values: Sequence[float],
                     sign: int = 1,
                     top_fraction: float = 0.25) -> list[LayerPreference]:
    """Per depth, the share of each activation among the best trials.

    The top trials are the ``ceil(top_fraction * n)`` best by value (at least one; ties
    broken by input order); trials with a non-finite value are left out. Layouts may differ
    in depth: at depth i only trials with at least i+1 layers count. Pass plain activation
    names (``elu``, not ``elu(0.50)``) to pool parameter values.

    Args:
        layouts: One list of activation names per trial, input side first.
        values: The trials' objective values, in the same order.
        sign: +1 when higher values are better, -1 when lower are.
        top_fraction: The share of trials that counts as top (0.25: the top quartile).
    """
    if len(layouts) != len(values):
        raise ValueError(f"got {len(layouts)} layouts but {len(values)} values")
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1, got {sign!r}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    kept = [(list(lay), float(v)) for lay, v in zip(layouts, values, strict=True)
            if math.isfinite(float(v))]
    if not kept:
        return []
    order = sorted(range(len(kept)), key=lambda i: -sign * kept[i][1])  # stable: input order
    top = [kept[i][0] for i in order[:max(1, math.ceil(top_fraction * len(kept)))]]
    everyone = [lay for lay, _ in kept]
    names = sorted({a for lay in everyone for a in lay})

    def shares(group: list[list[str]], depth: int) -> tuple[int, dict[str, float]]:
        at = [lay[depth] for lay in group if len(lay) > depth]
        return len(at), {a: (at.count(a) / len(at) if at else 0.0) for a in names}

    result = []
    for depth in range(max(len(lay) for lay in everyone)):
        n_top, top_shares = shares(top, depth)
        n_all, all_shares = shares(everyone, depth)
        result.append(LayerPreference(depth, n_top, n_all, top_shares, all_shares))
    return result
