"""The folklore's claims: which apply to a space, their arms (trained with the same seeds,
resumable), and their verdicts on data whose truth is planted by construction."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from conftest import with_train

import actsearch.engine.claims as claims_module
from actsearch.analysis import analyze_claims
from actsearch.api import search
from actsearch.engine.claims import WITHOUT_NORM, design, run_claims
from actsearch.engine.pipeline import variant_space
from actsearch.engine.record import CLAIMS_ATTR
from actsearch.errors import ActsearchError
from actsearch.models.custom import with_sites
from actsearch.models.layout import candidate_from_params
from actsearch.models.sites import find_sites
from actsearch.schema.space import SearchSpace, load_space, parse_space, space_to_document
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
        run_claims(study, space, data, seeds=2, variant=variant_space)
    assert len(study.user_attrs[CLAIMS_ATTR]["arms"]) == 2  # stored arm by arm
    monkeypatch.setattr(claims_module, "train_seeds", counting)
    lines: list[str] = []
    document = run_claims(study, space, data, seeds=2, variant=variant_space,
                          progress=lines.append)
    assert study.user_attrs[CLAIMS_ATTR] == document and len(document["arms"]) == 4
    assert len(trained) == 4 and len(lines) == 2  # the resume trained only the last two
    assert len({tuple(seeds) for _, seeds in trained}) == 1  # the same seeds in every arm
    for arm in document["arms"].values():
        assert len(arm["test_acc"]) == len(arm["dead_frac"]) == len(arm["abs_mean"]) == 2
        assert all(0 <= v <= 1 for v in arm["dead_frac"])
    results = {r.key: r for r in analyze_claims(document).results}
    assert results["relu-early-elu-deep"].comparisons[0].n == 2

    trained.clear()
    assert run_claims(study, space, data, seeds=2, variant=variant_space) == document
    assert trained == []  # every arm was stored with these seeds: nothing retrained
    # More seeds: new pairs, every arm again.
    run_claims(study, space, data, seeds=3, variant=variant_space)
    assert len(trained) == 4


def test_run_claims_needs_two_seeds(write_space, tmp_path: Path) -> None:
    space = load_space(write_space())
    study = optuna.create_study()
    with pytest.raises(ValueError, match="seeds"):
        run_claims(study, space, None, seeds=1, variant=variant_space)  # type: ignore[arg-type]


# ----------------------------------------------------------------- factory models' claims

def _found(name: str, **kwargs) -> SearchSpace:
    """A shipped factory space with its sites found (kwargs replace the model's)."""
    space = load_space(name)
    if kwargs:
        space = dataclasses.replace(space, model=dataclasses.replace(
            space.model, kwargs={**space.model.kwargs, **kwargs}))
    return with_sites(space, torch.zeros(2, 40))


def _activations(model: torch.nn.Module, space: SearchSpace) -> list[str]:
    """The activation each site of a built model runs, in execution order."""
    return [s.activation for s in find_sites(model, space.custom.example_input).sites]


def test_a_factory_space_without_gates_lists_the_gate_claim_as_not_applicable() -> None:
    claims, _ = design(_found("mnist1d_resnet"))
    by_key = {c.key: c for c in claims}
    gate = by_key["sharp-gate-smooth-signal"]
    assert not gate.comparisons and "role" in gate.reason
    fades = by_key["elu-fades-with-norm"]  # no model without norm declared
    assert not fades.comparisons and "claims.without_norm" in fades.reason


def test_early_and_deep_are_the_first_half_of_the_groups_in_execution_order() -> None:
    space = _found("mnist1d_resnet")
    claims, arms = design(space)
    order = next(c for c in claims if c.key == "relu-early-elu-deep")
    assert not order.reason and len(order.comparisons) == 3
    by_name = {a.name: a for a in arms}
    # Three groups by stage: early is the first floor(3/2) = 1, the stem's and first stage's.
    assert by_name["relu early, elu deep"].params == {
        "act:stage1": "relu", "act:stage2": "elu", "elu_alpha:stage2": 1.0,
        "act:stage3": "elu", "elu_alpha:stage3": 1.0}
    model = space.custom.build(candidate_from_params(by_name["relu early, elu deep"].params,
                                                     space).layout)
    sites = find_sites(model, space.custom.example_input).names
    acts = _activations(model, space)
    first = [a for s, a in zip(sites, acts, strict=True) if s.startswith(("stem", "stages.0"))]
    rest = [a for s, a in zip(sites, acts, strict=True) if s.startswith(("stages.1", "stages.2"))]
    assert set(first) == {"relu"} and set(rest) == {"elu"} and len(first) == 7

    # No groups declared: each site is its own group, early the first floor(19/2) = 9 sites.
    ungrouped = with_sites(dataclasses.replace(load_space("mnist1d_resnet"), groups={}),
                           torch.zeros(2, 40))
    _, arms = design(ungrouped)
    mixed = next(a for a in arms if a.name == "relu early, elu deep")
    built = ungrouped.custom.build(candidate_from_params(mixed.params, ungrouped).layout)
    assert _activations(built, ungrouped) == ["relu"] * 9 + ["elu"] * 10


def test_a_gated_space_gives_the_gate_claim_its_arms() -> None:
    space = _found("mnist1d_gated")
    claims, arms = design(space)
    by_key = {c.key: c for c in claims}
    gate = by_key["sharp-gate-smooth-signal"]
    assert not gate.reason and len(gate.comparisons) == 3
    by_name = {a.name: a for a in arms}
    assert by_name["relu gate, elu signal"].params == {
        "act:gate": "relu", "act:signal": "elu", "elu_alpha:signal": 1.0}
    assert by_name["elu gate, relu signal"].params == {
        "act:gate": "elu", "elu_alpha:gate": 1.0, "act:signal": "relu"}
    # The standard GLU (a sigmoid gate) is trained beside them, in no comparison.
    reference = "sigmoid gate, elu signal (reference)"
    assert by_name[reference].params["act:gate"] == "sigmoid"
    assert all(reference not in c.weights for c in gate.comparisons)
    # Uniform ReLU is both the dead-unit claim's arm and the gate claim's: trained once.
    assert len({tuple(sorted(a.params.items())) for a in arms}) == len(arms)
    assert {w for c in gate.comparisons for w in c.weights} <= set(by_name)
    model = space.custom.build(candidate_from_params(by_name["relu gate, elu signal"].params,
                                                     space).layout)
    assert _activations(model, space) == ["relu", "elu"] * 3  # each block: gate, then signal
    # Gates and signals interleave block by block: neither is early or deep.
    order = by_key["relu-early-elu-deep"]
    assert not order.comparisons and "interleave" in order.reason


def test_the_norm_claim_builds_the_model_with_and_without_norm() -> None:
    space = _found("mnist1d_resnet_bn")
    claims, arms = design(space)
    (fades,) = [c for c in claims if c.key == "elu-fades-with-norm"]
    (comparison,) = fades.comparisons
    by_name = {a.name: a for a in arms}
    without = {n for n, a in by_name.items() if a.variant == WITHOUT_NORM}
    assert without == {"uniform relu, without norm", "uniform elu, without norm"}
    # (ELU - ReLU without norm) - (ELU - ReLU with norm)
    assert comparison.weights == {"uniform elu, without norm": 1,
                                  "uniform relu, without norm": -1,
                                  "uniform elu": -1, "uniform relu": 1}

    def norms(arm_space: SearchSpace) -> int:
        layout = candidate_from_params(by_name["uniform elu"].params, arm_space).layout
        model = arm_space.custom.build(layout)
        return sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())

    plain = variant_space(space, WITHOUT_NORM)
    assert plain.custom.kwargs["norm"] == "none" and space.custom.kwargs["norm"] == "batch"
    assert norms(space) > 0 and norms(plain) == 0
    assert variant_space(space, "") is space


def test_a_variant_whose_sites_differ_is_one_line() -> None:
    space = _found("mnist1d_resnet_bn")
    bad = dataclasses.replace(space, claims=parse_space(
        {"model": {"factory": "actsearch.zoo.resnet:resnet1d"},
         "claims": {"without_norm": {"kwargs": {"stages": 1}}}}, "x").claims, groups={})
    bad = with_sites(dataclasses.replace(bad, custom=None), torch.zeros(2, 40))
    with pytest.raises(ActsearchError, match=r"claims\.without_norm: the model built with .* has "
                                             r"groups .*; expected the same") as info:
        variant_space(bad, WITHOUT_NORM)
    assert "\n" not in str(info.value)


def test_roles_and_the_model_without_norm_are_declared_fields() -> None:
    document = {"model": {"factory": "actsearch.zoo.gated:gated_conv"},
                "groups": {"gate": {"sites": ["*.gate_act"], "role": "gate"}},
                "claims": {"without_norm": {"kwargs": {"norm": "none"}}}}
    space = parse_space(document, "s.yaml")
    assert space.groups["gate"].role == "gate"
    stored = space_to_document(space)
    assert stored["groups"]["gate"]["role"] == "gate"
    assert stored["claims"] == {"without_norm": {"kwargs": {"norm": "none"}}}
    assert parse_space(stored, "s.yaml").claims == space.claims
    # Spaces without them store the document they stored before.
    assert "claims" not in space_to_document(load_space("mnist1d_resnet"))
    for bad, message in (
            ({**document, "groups": {"gate": {"sites": ["a"], "role": "gates"}}},
             r"groups\.gate\.role: .*expected one of: gate, signal"),
            ({"claims": {"without_norm": {"kwargs": {"norm": "none"}}}},
             r"claims\.without_norm: only for a factory model")):
        with pytest.raises(ActsearchError, match=message):
            parse_space(bad, "s.yaml")


# Each shipped factory space, end to end on a tiny budget: its models shrunk (fewer and
# narrower blocks, the same groups and roles), one epoch, its baselines and one more trial.
_TINY = {"mnist1d_gated": {"channels": 8, "hidden": 8, "depth": 2},
         "mnist1d_resnet": {"width": 4, "blocks": 1},
         "mnist1d_resnet_bn": {"width": 4, "blocks": 1}}


@pytest.mark.slow  # end to end, three model families
@pytest.mark.parametrize("name", sorted(_TINY))
def test_each_shipped_factory_space_reports_its_claims(name: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    space = with_train(name, epochs=1)
    space = dataclasses.replace(space, model=dataclasses.replace(
        space.model, kwargs={**space.model.kwargs, **_TINY[name]}))
    built: dict[str, Any] = {}
    real = claims_module.train_seeds

    def recording(arm_space, data, candidate, seeds):
        built[str(candidate.layout)] = built.get(str(candidate.layout), []) + [
            arm_space.custom.kwargs.get("norm")]
        return real(arm_space, data, candidate, seeds)

    monkeypatch.setattr(claims_module, "train_seeds", recording)
    result = search(space, trials=5, finalists=1, seeds=2, claim_seeds=2, progress=False,
                    runs_dir=tmp_path, device="cpu", report=True)
    document = result.study.user_attrs[CLAIMS_ATTR]
    _, arms = design(result.space)
    assert set(document["arms"]) == {a.name for a in arms}
    assert all(len(arm["test_acc"]) == 2 for arm in document["arms"].values())
    results = {r.key: r for r in result.analysis.claims.results}
    expected = {"mnist1d_gated": {"sharp-gate-smooth-signal", "elu-fewer-dead-centred"},
                "mnist1d_resnet": {"relu-early-elu-deep", "elu-fewer-dead-centred"},
                "mnist1d_resnet_bn": {"relu-early-elu-deep", "elu-fewer-dead-centred",
                                      "elu-fades-with-norm"}}[name]
    # ELU's latency claim applies to each (relu and elu are uniform layouts of each); the
    # tests time nothing ($ACTSEARCH_LATENCY=off), so it is not run.
    assert {k for k, r in results.items() if r.verdict != "not applicable"} == \
        expected | {"elu-latency-small"}
    assert results["elu-latency-small"].verdict == "not run"
    report = next(f for f in result.report_files if f.suffix == ".md").read_text()
    answer = report.split("\n## ")[1]
    for r in results.values():
        assert f"Claim: {r.statement}: {r.verdict}" in answer
    if name == "mnist1d_resnet_bn":  # the arms without norm built the model without it
        norms = {arm["variant"]: arm["norm"] for arm in document["arms"].values()}
        assert norms == {"": "norm=batch", WITHOUT_NORM: "norm=none"}
        assert sorted(n for kinds in built.values() for n in kinds) == ["batch"] * 4 + \
            ["none"] * 2


def test_the_shipped_factory_spaces_state_their_default_run_time() -> None:
    # `actsearch spaces` shows the description: the time the default run was measured at.
    for name in _TINY:
        space = load_space(name)
        assert re.search(r"\(about \d+ min on a 2-core CPU\)$", space.description), name
        assert space.model.init == "auto"  # the init follows each site's activation
