"""The folklore's claims: which apply to a space, their arms (trained with the same seeds,
resumable), and their verdicts on data whose truth is planted by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

import actsearch.engine.claims as claims_module
from actsearch.analysis import analyze_claims
from actsearch.engine.claims import design, run_claims
from actsearch.engine.record import CLAIMS_ATTR
from actsearch.models.layout import candidate_from_params
from actsearch.schema.space import load_space
from actsearch.stats import holm, paired_test, seeds_needed
from actsearch.training.data import load_data, to_device


def _document(a: list[float], b: list[float], sign: int = 1) -> dict:
    """One claim comparing arm a with arm b on test accuracy, claimed a > b (sign 1)."""
    return {"seeds": list(range(len(a))),
            "claims": [{"key": "k", "statement": "a beats b", "reason": "",
                        "comparisons": [{"label": "a - b", "metric": "test_acc",
                                         "weights": {"a": 1, "b": -1}, "sign": sign}]}],
            "arms": {"a": {"layout": "a", "norm": "none", "test_acc": a},
                     "b": {"layout": "b", "norm": "none", "test_acc": b}}}


def _paired(effect: float, n: int = 8, noise: float = 0.002, seed: int = 0
            ) -> tuple[list[float], list[float]]:
    # A seed's luck moves both arms alike; the planted effect separates them.
    rng = np.random.default_rng(seed)
    luck = rng.normal(0, 0.03, n)
    b = 0.70 + luck + rng.normal(0, noise, n)
    a = 0.70 + effect + luck + rng.normal(0, noise, n)
    return a.tolist(), b.tolist()


def test_a_planted_difference_is_supported_its_opposite_contradicted() -> None:
    a, b = _paired(+0.02)
    (claim,) = analyze_claims(_document(a, b)).results
    assert claim.verdict == "supported"
    (c,) = claim.comparisons
    assert c.ci_low > 0 and c.effect == pytest.approx(np.mean(np.subtract(a, b)))
    assert c.seeds_needed is None
    (claim,) = analyze_claims(_document(b, a)).results  # the planted effect the other way
    assert claim.verdict == "contradicted" and claim.comparisons[0].ci_high < 0
    (claim,) = analyze_claims(_document(a, b, sign=-1)).results  # claimed the other way
    assert claim.verdict == "contradicted"


def test_no_difference_is_not_resolved_with_the_seeds_it_would_need() -> None:
    a, b = _paired(0.0, n=4, noise=0.01)
    (claim,) = analyze_claims(_document(a, b)).results
    assert claim.verdict == "not resolved"
    (c,) = claim.comparisons
    assert c.ci_low < 0 < c.ci_high
    d = np.subtract(a, b)
    # One comparison: Holm's family is itself (stats.seeds_needed is checked by hand there).
    assert c.seeds_needed == seeds_needed(d.mean(), d.std(ddof=1), tests=1)
    assert c.seeds_needed > c.n  # the seeds run did not resolve it: more are needed
    assert claim.seeds_needed == c.seeds_needed and "seeds per arm" in claim.line


def test_an_interaction_is_a_difference_of_paired_differences() -> None:
    # ELU leads ReLU by 3 points without norm and by 1 with it: the advantage fades by 2.
    rng = np.random.default_rng(1)
    luck = rng.normal(0, 0.03, 6)
    arms = {"relu": 0.60 + luck, "elu": 0.63 + luck + rng.normal(0, 0.002, 6),
            "relu n": 0.65 + luck, "elu n": 0.66 + luck + rng.normal(0, 0.002, 6)}
    document = {"seeds": list(range(6)), "claims": [{
        "key": "fade", "statement": "fades", "reason": "", "comparisons": [{
            "label": "i", "metric": "test_acc", "sign": 1,
            "weights": {"elu": 1, "relu": -1, "elu n": -1, "relu n": 1}}]}],
        "arms": {k: {"test_acc": v.tolist()} for k, v in arms.items()}}
    (claim,) = analyze_claims(document).results
    expected = (arms["elu"] - arms["relu"]) - (arms["elu n"] - arms["relu n"])
    assert claim.comparisons[0].effect == pytest.approx(expected.mean())
    assert claim.comparisons[0].p_value == pytest.approx(paired_test(expected).p_value)
    assert claim.verdict == "supported"


def test_holm_runs_over_every_comparison_of_every_claim_and_a_failed_seed_drops_out() -> None:
    a, b = _paired(0.004, n=5, noise=0.004, seed=2)
    c, d = _paired(0.01, n=5, noise=0.004, seed=3)
    document = _document(a, b)
    document["claims"].append({"key": "k2", "statement": "c beats d", "reason": "",
                               "comparisons": [{"label": "c - d", "metric": "test_acc",
                                                "weights": {"c": 1, "d": -1}, "sign": 1}]})
    c[1] = None  # a failed seed: its pair is left out
    document["arms"].update({"c": {"test_acc": c}, "d": {"test_acc": d}})
    first, second = analyze_claims(document).results
    p1 = paired_test(np.subtract(a, b)).p_value
    kept = [j for j in range(5) if j != 1]
    p2 = paired_test([c[j] - d[j] for j in kept]).p_value
    assert second.comparisons[0].n == 4
    assert [first.comparisons[0].p_holm, second.comparisons[0].p_holm] == \
        pytest.approx(holm([p1, p2]))
    assert first.comparisons[0].p_value == pytest.approx(p1)  # the raw p is kept beside it


def test_not_applicable_and_not_run() -> None:
    document = _document(*_paired(0.02))
    document["claims"].append({"key": "gate", "statement": "sharp gates", "reason":
                               "no gating paths", "comparisons": []})
    gate = analyze_claims(document).results[1]
    assert gate.verdict == "not applicable" and "no gating paths" in gate.line
    old = analyze_claims(None)
    assert not old.ran and "not run" in old.lines[0]


def test_which_claims_apply_to_todays_spaces() -> None:
    space = load_space("mnist1d_mlp")
    claims, arms = design(space)
    by_key = {c.key: c for c in claims}
    assert by_key["sharp-gate-smooth-signal"].reason  # no gates in an MLP: not applicable
    assert by_key["elu-fades-with-norm"].reason  # mnist1d_mlp searches no norm
    assert not by_key["relu-early-elu-deep"].reason
    assert not by_key["elu-fewer-dead-centred"].reason
    layouts = {a.name: str(candidate_from_params(a.params, space).layout) for a in arms}
    # Depth 3: early is the first floor(3/2) = 1 layer, the middle one counts as deep.
    assert layouts["relu early, elu deep"] == "relu | elu(1.00) | elu(1.00)"
    assert layouts["elu early, relu deep"] == "elu(1.00) | relu | relu"
    assert len(arms) == 4  # the dead-unit claim reuses the uniform arms

    norm = load_space("mnist1d_mlp_norm")
    claims, arms = design(norm)
    fades = next(c for c in claims if c.key == "elu-fades-with-norm")
    assert not fades.reason and len(fades.comparisons) == 2  # batch and layer vs none
    candidates = {a.name: candidate_from_params(a.params, norm) for a in arms}
    assert candidates["uniform elu, batch norm"].norm == "batch"
    assert candidates["uniform elu"].norm == "none"
    # Depth 4: two early layers, two deep.
    assert str(candidates["relu early, elu deep"].layout).split(" | ")[:2] == ["relu", "relu"]
    # Arms differ only in what they are designed to differ in.
    assert len({c.lr for c in candidates.values()}) == 1


def test_arms_share_seeds_and_a_resume_trains_none_again(write_space, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    space = load_space(write_space())
    study = optuna.create_study(study_name="c", storage=f"sqlite:///{tmp_path}/c.db",
                                direction="maximize")
    data = to_device(load_data(space.data, 0), "cpu")
    trained: list[tuple[str, list[int]]] = []
    real = claims_module.train_seeds

    def counting(space, data, candidate, seeds):
        trained.append((str(candidate.layout), list(seeds)))
        return real(space, data, candidate, seeds)

    def interrupted(space, data, candidate, seeds):
        if len(trained) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third arm trains
        return counting(space, data, candidate, seeds)

    monkeypatch.setattr(claims_module, "train_seeds", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_claims(study, space, data, seeds=2)
    assert len(study.user_attrs[CLAIMS_ATTR]["arms"]) == 2  # stored arm by arm
    monkeypatch.setattr(claims_module, "train_seeds", counting)
    lines: list[str] = []
    document = run_claims(study, space, data, seeds=2, progress=lines.append)
    assert study.user_attrs[CLAIMS_ATTR] == document and len(document["arms"]) == 4
    assert len(trained) == 4 and len(lines) == 2  # the resume trained only the last two
    assert len({tuple(seeds) for _, seeds in trained}) == 1  # the same seeds in every arm
    for arm in document["arms"].values():
        assert len(arm["test_acc"]) == len(arm["dead_frac"]) == len(arm["abs_mean"]) == 2
        assert all(0 <= v <= 1 for v in arm["dead_frac"])
    results = {r.key: r for r in analyze_claims(document).results}
    assert results["relu-early-elu-deep"].comparisons[0].n == 2

    trained.clear()
    assert run_claims(study, space, data, seeds=2) == document
    assert trained == []  # every arm was stored with these seeds: nothing retrained
    run_claims(study, space, data, seeds=3)  # more seeds: new pairs, every arm again
    assert len(trained) == 4


def test_run_claims_needs_two_seeds(write_space, tmp_path: Path) -> None:
    space = load_space(write_space())
    study = optuna.create_study()
    with pytest.raises(ValueError, match="seeds"):
        run_claims(study, space, None, seeds=1)  # type: ignore[arg-type]
