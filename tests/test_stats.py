from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from actsearch.stats import (
    describe,
    holm,
    judge,
    layer_preference,
    paired_test,
    pareto_front,
    seeds_needed,
    welch_test,
)

A = [0.912, 0.905, 0.921, 0.899, 0.915, 0.908]
B = [0.880, 0.893, 0.871, 0.902, 0.885]


def test_describe_matches_scipy() -> None:
    s = describe(A)
    lo, hi = st.t.interval(0.95, len(A) - 1, loc=np.mean(A), scale=st.sem(A))
    assert s.n == 6
    assert s.mean == pytest.approx(np.mean(A))
    assert s.std == pytest.approx(np.std(A, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert s.half_width == pytest.approx((hi - lo) / 2)


def test_describe_one_value_and_bad_input() -> None:
    s = describe([0.5])
    assert s.mean == 0.5 and math.isnan(s.std) and math.isnan(s.ci_low)
    with pytest.raises(ValueError, match="at least one"):
        describe([])
    with pytest.raises(ValueError, match="finite"):
        describe([1.0, math.nan])


def test_welch_matches_scipy() -> None:
    w = welch_test(A, B, "mixed", "relu")
    ref = st.ttest_ind(A, B, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert w.t == pytest.approx(ref.statistic)
    assert w.p_value == pytest.approx(ref.pvalue)
    assert w.df == pytest.approx(ref.df)
    assert (w.ci_low, w.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert w.difference == pytest.approx(np.mean(A) - np.mean(B))
    assert w.significant
    assert w.verdict.startswith("mixed is higher than relu by")


def test_welch_verdict_when_not_significant() -> None:
    a, b = [0.90, 0.92, 0.88, 0.91], [0.91, 0.89, 0.90, 0.93]
    w = welch_test(a, b, "elu", "selu")
    assert w.p_value == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
    assert w.p_value >= 0.05 and not w.significant
    assert "no significant difference" in w.verdict
    assert w.ci_low < 0 < w.ci_high


def test_welch_lower_first_group_and_zero_variance() -> None:
    assert welch_test(B, A, "b", "a").verdict.startswith("a is higher than b")
    same = welch_test([1.0, 1.0], [1.0, 1.0, 1.0])
    assert same.p_value == 1.0 and "no significant difference" in same.verdict
    apart = welch_test([2.0, 2.0], [1.0, 1.0])
    assert apart.p_value == 0.0 and apart.ci_low == apart.ci_high == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        welch_test([1.0], [1.0, 2.0])


def test_pareto_front_of_hand_made_points() -> None:
    # (accuracy: maximise, latency: minimise)
    points = [(0.90, 10.0), (0.80, 5.0), (0.85, 12.0), (0.70, 4.0), (0.80, 6.0),
              (0.90, 10.0), (math.nan, 1.0)]
    # 2 is dominated by 0, 4 by 1; 5 duplicates 0 (kept); 6 has no accuracy.
    assert pareto_front(points, [1, -1]) == [0, 1, 3, 5]
    # Reversed: 0 is dominated by 2 (lower and higher), 1 by 4.
    assert pareto_front(points[:5], [-1, 1]) == [2, 3, 4]
    assert pareto_front([], [1]) == []
    assert pareto_front([(3.0,), (1.0,), (3.0,)], [1]) == [0, 2]


def test_pareto_front_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="signs must be 1 or -1"):
        pareto_front([(1.0, 2.0)], [1, 0])
    with pytest.raises(ValueError, match="one per direction"):
        pareto_front([(1.0, 2.0)], [1])


def test_layer_preference_of_hand_made_trials() -> None:
    layouts = [["elu", "relu"], ["elu", "selu"], ["relu", "relu"], ["selu", "relu"],
               ["relu", "selu"], ["relu", "relu"], ["selu", "selu"], ["relu", "relu", "elu"]]
    values = [0.95, 0.94, 0.80, 0.81, 0.82, 0.70, 0.75, math.nan]
    prefs = layer_preference(layouts, values)  # top quartile of 7 finite: the best 2
    assert [p.layer for p in prefs] == [0, 1]  # the 3-layer trial had no value
    first, second = prefs
    assert first.n_top == 2 and first.n_all == 7
    assert first.top == {"elu": 1.0, "relu": 0.0, "selu": 0.0}
    assert first.overall["relu"] == pytest.approx(3 / 7)
    assert first.favourite == "elu"
    assert second.top == {"elu": 0.0, "relu": 0.5, "selu": 0.5}
    assert second.favourite == "relu"  # a tie goes to the first name


def test_layer_preference_minimize_and_varying_depth() -> None:
    layouts = [["relu"], ["selu", "elu"], ["elu", "elu"], ["relu", "relu"]]
    prefs = layer_preference(layouts, [1.0, 2.0, 3.0, 4.0], -1, top_fraction=0.5)
    assert prefs[0].top == {"elu": 0.0, "relu": 0.5, "selu": 0.5}
    assert prefs[1].n_top == 1 and prefs[1].top["elu"] == 1.0  # only trial 1 is that deep
    assert layer_preference([], []) == []
    with pytest.raises(ValueError, match="layouts"):
        layer_preference([["relu"]], [1.0, 2.0])


def test_holm_against_a_hand_computation() -> None:
    # Sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06,
    # the running maximum keeps the order of rejections).
    adjusted = holm([0.03, 0.01, 0.04, 0.02])
    assert adjusted == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])  # min(1, 2 * 0.4), then max
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []
    assert holm([0.2]) == [0.2]  # one test: nothing to correct
    with pytest.raises(ValueError, match="p-values"):
        holm([1.5])


def test_paired_test_matches_scipy_and_beats_welch_on_paired_data() -> None:
    rng = np.random.default_rng(3)
    seed_luck = rng.normal(0, 0.05, 8)  # shared by both arms of a seed
    a = 0.70 + seed_luck + rng.normal(0, 0.002, 8)
    b = 0.69 + seed_luck + rng.normal(0, 0.002, 8)
    r = paired_test(a - b)
    ref = st.ttest_rel(a, b)
    assert r.t == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert r.ci_low < r.effect < r.ci_high and r.ci_low > 0  # the planted +0.01 is found
    assert r.p_value < welch_test(a, b).p_value  # the seed's luck cancels in the pairs


def test_paired_test_degenerate_and_bad_input() -> None:
    assert paired_test([0.01, 0.01]).p_value == 0.0
    assert paired_test([0.0, 0.0]).p_value == 1.0
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_test([0.1])


def test_seeds_needed_by_hand() -> None:
    # Normal approximation ((1.96 + 0.8416) * 2)^2 = 31.4 -> 32; the t distribution at 31 df
    # asks a little more: (2.0395 + 0.8534) * 2 = 5.786 > sqrt(32) = 5.657, and at n = 34,
    # (2.0345 + 0.8527) * 2 = 5.774 <= sqrt(34) = 5.831.
    assert seeds_needed(0.01, 0.02) == 34
    n = seeds_needed(0.01, 0.02)
    for m, ok in ((n - 1, False), (n, True)):  # the smallest n that meets the condition
        lhs = (st.t.ppf(0.975, m - 1) + st.t.ppf(0.8, m - 1)) * 2
        assert bool(lhs <= math.sqrt(m)) is ok
    assert seeds_needed(-0.01, 0.02) == n  # the sign does not matter
    # Read among 4 comparisons (Holm), the strictest step's level is 0.05 / 4: more seeds.
    assert seeds_needed(0.01, 0.02, tests=4) > n
    assert seeds_needed(0.5, 0.01) == 2  # never fewer than a paired test needs
    assert seeds_needed(0.0, 0.02) is None


def test_judge_reads_the_adjusted_p_and_the_claimed_direction() -> None:
    assert judge(0.02, 0.01, +1) == "supported"
    assert judge(-0.02, 0.01, +1) == "contradicted"
    assert judge(-0.02, 0.01, -1) == "supported"
    assert judge(0.02, 0.2, +1) == "not resolved"
    with pytest.raises(ValueError, match="claimed_sign"):
        judge(0.02, 0.01, 0)
