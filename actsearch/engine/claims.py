"""The folklore's claims, tested by designed comparisons after the search.

A search says which layouts did well; it does not test a claim such as "ReLU near the input,
ELU deeper". Here each claim that applies to the space gets the few layouts (arms) it needs,
trained with the same fresh seeds in every arm, so that each comparison is paired by seed (the
seed's luck, its initial weights and data order, cancels in the difference). The arms' per-seed
results and the claims' definitions are stored in the study's ``claims`` user attribute;
``actsearch.analysis`` tests and judges them (paired t-test, Holm across all comparisons).

Terms (early and deep, sharp and smooth, gating path, without normalisation, costs
little): ``actsearch.engine.terms``, which the report prints too.

The claims and their arms:

- ReLU early, ELU deep: that layout against its reverse, uniform ReLU and uniform ELU.
- ELU's advantage fades with normalisation: the interaction (ELU - ReLU without norm) -
  (ELU - ReLU with norm), uniform layouts, > 0.
- ELU leaves fewer dead units and centres activations nearer zero: uniform ReLU against
  uniform ELU on the dead-unit fraction and |activation mean| (per hidden layer of a shipped
  family, per site of a factory model: ``training.probes.site_stats``), averaged.
- sharp gates, smooth signal: ReLU gates with ELU signal against the reverse, uniform ReLU and
  uniform ELU (gate and signal groups); ``sigmoid`` gates with ELU signal, the standard GLU,
  are trained beside them as a reference arm (no comparison of its own).
- ELU's exp() costs little latency: no arm is trained; per block pair, log(uniform ELU's
  latency / uniform ReLU's) - log(1 + margin), < 0 (``actsearch.analysis.analyze_claims``).

Every arm holds what it is not designed to vary at the uniform baselines' values
(``actsearch.models.layout.layout_params``): the space's smallest depth, its first norm (or
``none`` when searched), the middle of a searched lr range, each activation's default
parameter; a factory model's groups outside a claim's design use ReLU (else their first
choice). A claim needing an activation or a choice the space lacks is stored as not
applicable, with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from actsearch.engine.latency import BIG_BATCH, MARGIN
from actsearch.engine.record import CLAIMS_ATTR, study_seed
from actsearch.engine.terms import SHARP, SMOOTH
from actsearch.errors import ActsearchError
from actsearch.models.groups import SiteGroup
from actsearch.models.layout import candidate_from_params, layout_params, uniform_choices
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.population import train_seeds
from actsearch.training.probes import activation_stats, site_stats

__all__ = ["CLAIMS_ATTR", "SHARP", "SMOOTH", "WITHOUT_NORM", "Arm", "Claim", "Comparison",
           "design", "run_claims"]

WITHOUT_NORM = "without_norm"  # an arm's model variant: the space's claims.without_norm
_SEED_OFFSET = 1_000_003  # claim seeds differ from the search's and the finalists' seeds
_PROBE_SAMPLES = 512  # validation samples the dead-unit and centring probes look at


@dataclass(frozen=True)
class Arm:
    """One designed layout, trained with every claim seed."""

    name: str  # e.g. "relu early, elu deep"
    params: dict[str, Any]  # trial params (``candidate_from_params``)
    variant: str = ""  # "": the space's model; WITHOUT_NORM: a factory's claims.without_norm


@dataclass(frozen=True)
class Comparison:
    """A contrast of arms, per seed: sum of weight * metric(arm); the claim says its sign."""

    label: str
    metric: str  # "test_acc", "dead_frac" or "abs_mean" (an arm's stored per-seed lists)
    weights: dict[str, int]  # arm name -> +1 / -1
    sign: int = 1  # the claimed direction of the contrast


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    comparisons: list[Comparison] = field(default_factory=list)
    reason: str = ""  # why it does not apply (no comparisons)


_ORDER = ("ReLU early and ELU deep is more accurate than its reverse and than uniform ReLU "
          "or ELU")
_FADES = "ELU's advantage over ReLU fades with normalisation"
_DEAD = "ELU leaves fewer dead units and centres activations nearer zero than ReLU"
_GATE = "sharp units in gating paths, smooth ones in the main signal path"
_LATENCY = (f"ELU's exp() costs little latency: ELU at every site within {MARGIN:.0%} of "
            f"ReLU's, eager and compiled")


class _Arms:
    """The distinct arms the claims need: an arm two claims share (the same params and model)
    is trained once, under the name it was first given."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.arms: dict[str, Arm] = {}

    def __call__(self, name: str, activations: list[str], norm: str | None = None,
                 variant: str = "") -> str:
        params = layout_params(self.space, activations, norm)
        for arm in self.arms.values():
            if arm.params == params and arm.variant == variant:
                return arm.name
        self.arms.setdefault(name, Arm(name, params, variant))
        return name


def _versus(mixed: str, others: Sequence[str]) -> list[Comparison]:
    return [Comparison(f"{mixed} - {other}", "test_acc", {mixed: 1, other: -1})
            for other in others]


def _fades(label: str, elu: str, relu: str, elu_n: str, relu_n: str) -> Comparison:
    # (ELU - ReLU without norm) - (ELU - ReLU with norm) > 0: what "fades" means.
    return Comparison(label, "test_acc", {elu: 1, relu: -1, elu_n: -1, relu_n: 1})


def _dead(relu: str, elu: str) -> Claim:
    return Claim("elu-fewer-dead-centred", _DEAD, [
        Comparison("dead fraction: relu - elu", "dead_frac", {relu: 1, elu: -1}),
        Comparison("|activation mean|: relu - elu", "abs_mean", {relu: 1, elu: -1})])


def design(space: SearchSpace) -> tuple[list[Claim], list[Arm]]:
    """The claims of the folklore for this space, and the distinct arms the applicable ones
    need (an arm two claims share is trained once). A factory model's space needs its sites
    found first (``space.custom``: ``actsearch.models.custom.with_sites``)."""
    if space.model.factory is not None:
        if space.custom is None:  # a caller's slip, not a user's
            raise ActsearchError(f"space {space.name!r}: a factory model's claims need its "
                                 f"sites (actsearch.models.custom.with_sites)")
        claims, arms = _design_factory(space)
    else:
        claims, arms = _design_family(space)
    claims.append(_latency(space))
    if not space.metric.maximize:
        # "More accurate" is a lower test metric where the space minimises its own
        # (train.metric): every test_acc contrast's claimed sign follows.
        claims = [dataclasses.replace(c, comparisons=[
            dataclasses.replace(k, sign=-k.sign) if k.metric == "test_acc" else k
            for k in c.comparisons]) for c in claims]
    return claims, list(arms.arms.values())


def _latency(space: SearchSpace) -> Claim:
    """ELU's latency against ReLU's, measured after the claims' training
    (``actsearch.engine.latency``) per block pair: no arm is trained for it; the comparison
    names the latency document's label of the uniform ELU model."""
    common, _ = uniform_choices(space)
    if not {"relu", "elu"} <= set(common):
        return Claim("elu-latency-small", _LATENCY, reason="relu and elu are not both a "
                     "uniform layout of the space")
    return Claim("elu-latency-small", _LATENCY, [
        Comparison(f"elu / relu latency, {mode}, batch {batch}", f"latency:{mode}:{batch}",
                   {"uniform elu": 1}, sign=-1)
        for mode in ("eager", "compiled") for batch in (1, BIG_BATCH)])


def _design_family(space: SearchSpace) -> tuple[list[Claim], _Arms]:
    """A shipped family's claims: hidden layers are the units."""
    depth = space.depths[0]
    norms = list(space.model.norm)
    plain = "none" if "none" in norms else norms[0]
    has = {"relu", "elu"} <= set(space.choices)
    lacks = "the space does not offer both relu and elu"
    arms = _Arms(space)
    claims = []
    early = depth // 2
    if has and early >= 1:
        mixed = arms("relu early, elu deep", ["relu"] * early + ["elu"] * (depth - early), plain)
        reverse = arms("elu early, relu deep", ["elu"] * early + ["relu"] * (depth - early),
                       plain)
        relu = arms("uniform relu", ["relu"] * depth, plain)
        elu = arms("uniform elu", ["elu"] * depth, plain)
        claims.append(Claim("relu-early-elu-deep", _ORDER, _versus(mixed, (reverse, relu, elu))))
    else:
        claims.append(Claim("relu-early-elu-deep", _ORDER,
                            reason=lacks if not has else f"depth {depth}: no early and deep"))
    others = [n for n in norms if n != "none"]
    if has and "none" in norms and others:
        comparisons = []
        for norm in others:
            relu = arms("uniform relu", ["relu"] * depth, plain)
            elu = arms("uniform elu", ["elu"] * depth, plain)
            relu_n = arms(f"uniform relu, {norm} norm", ["relu"] * depth, norm)
            elu_n = arms(f"uniform elu, {norm} norm", ["elu"] * depth, norm)
            comparisons.append(_fades(f"(elu - relu) - (elu - relu with {norm} norm)",
                                      elu, relu, elu_n, relu_n))
        claims.append(Claim("elu-fades-with-norm", _FADES, comparisons))
    else:
        claims.append(Claim("elu-fades-with-norm", _FADES, reason=lacks if not has else
                            "the space does not search normalisation against none"))
    if has:
        claims.append(_dead(arms("uniform relu", ["relu"] * depth, plain),
                            arms("uniform elu", ["elu"] * depth, plain)))
    else:
        claims.append(Claim("elu-fewer-dead-centred", _DEAD, reason=lacks))
    claims.append(Claim("sharp-gate-smooth-signal", _GATE, reason=f"model.family "
                        f"{space.model.family}: no gating paths"))
    return claims, arms


def _interleaved(groups: Sequence[SiteGroup], order: Sequence[str]) -> tuple[str, str] | None:
    """Two groups whose sites interleave in execution order (a later group's site runs before
    an earlier group's last), or None when each group's sites all run before the next's."""
    position = {site: i for i, site in enumerate(order)}
    last, last_group = -1, ""
    for group in groups:
        where = [position.get(site, -1) for site in group.sites]
        if min(where) < last:
            return last_group, group.name
        if max(where) > last:
            last, last_group = max(where), group.name
    return None


def _design_factory(space: SearchSpace) -> tuple[list[Claim], _Arms]:
    """A factory model's claims: its groups (input side first) are the units."""
    groups: tuple[SiteGroup, ...] = space.custom.groups
    names = [g.name for g in groups]
    n = len(groups)
    roles = {name: g.role for name, g in space.groups.items() if g.role is not None}
    arms = _Arms(space)
    claims = []

    def offers(group: SiteGroup, *activations: str) -> bool:
        return set(activations) <= set(group.choices)

    lacking = next((g.name for g in groups if not offers(g, "relu", "elu")), None)
    lacks = f"group {lacking} cannot choose both relu and elu" if lacking else ""

    def uniform(name: str, variant: str = "") -> str:
        suffix = ", without norm" if variant else ""
        return arms(f"uniform {name}{suffix}", [name] * n, variant=variant)

    early = n // 2
    crossing = _interleaved(groups, space.custom.sites or [s for g in groups for s in g.sites])
    if lacks:
        claims.append(Claim("relu-early-elu-deep", _ORDER, reason=lacks))
    elif early < 1:
        claims.append(Claim("relu-early-elu-deep", _ORDER, reason=f"one group ({names[0]}): no "
                            f"early and deep"))
    elif crossing is not None:
        claims.append(Claim("relu-early-elu-deep", _ORDER, reason=f"groups {crossing[0]} and "
                            f"{crossing[1]} interleave in execution order: no group is early "
                            f"or deep"))
    else:
        mixed = arms("relu early, elu deep", ["relu"] * early + ["elu"] * (n - early))
        reverse = arms("elu early, relu deep", ["elu"] * early + ["relu"] * (n - early))
        claims.append(Claim("relu-early-elu-deep", _ORDER,
                            _versus(mixed, (reverse, uniform("relu"), uniform("elu")))))
    if lacks:
        claims.append(Claim("elu-fades-with-norm", _FADES, reason=lacks))
    elif space.claims.without_norm is None:
        claims.append(Claim("elu-fades-with-norm", _FADES, reason="no model without "
                            "normalisation to compare with (claims.without_norm names how to "
                            "build one)"))
    else:
        relu, elu = uniform("relu"), uniform("elu")
        relu_0, elu_0 = uniform("relu", WITHOUT_NORM), uniform("elu", WITHOUT_NORM)
        claims.append(Claim("elu-fades-with-norm", _FADES, [_fades(
            "(elu - relu without norm) - (elu - relu with norm)", elu_0, relu_0, elu, relu)]))
    if lacks:
        claims.append(Claim("elu-fewer-dead-centred", _DEAD, reason=lacks))
    else:
        claims.append(_dead(uniform("relu"), uniform("elu")))
    gates = [g for g in groups if roles.get(g.name) == "gate"]
    signals = [g for g in groups if roles.get(g.name) == "signal"]
    short = next((g.name for g in (*gates, *signals) if not offers(g, "relu", "elu")), None)
    if not gates or not signals:
        claims.append(Claim("sharp-gate-smooth-signal", _GATE, reason="no group has role "
                            f"{'gate' if not gates else 'signal'} (groups.<name>.role marks "
                            "gating paths and the signal they gate)"))
    elif short is not None:
        claims.append(Claim("sharp-gate-smooth-signal", _GATE, reason=f"group {short} cannot "
                            f"choose both relu and elu"))
    else:
        def held(group: SiteGroup) -> str:  # outside the design: ReLU where it may
            return "relu" if "relu" in group.choices else group.choices[0]

        def gated(name: str, gate: str, signal: str) -> str:
            return arms(name, [gate if g in gates else signal if g in signals else held(g)
                               for g in groups])

        mixed = gated("relu gate, elu signal", "relu", "elu")
        others = (gated("elu gate, relu signal", "elu", "relu"),
                  gated("relu gate, relu signal", "relu", "relu"),
                  gated("elu gate, elu signal", "elu", "elu"))
        if all(offers(g, "sigmoid") for g in gates):  # the standard GLU: a reference arm
            gated("sigmoid gate, elu signal (reference)", "sigmoid", "elu")
        claims.append(Claim("sharp-gate-smooth-signal", _GATE, _versus(mixed, others)))
    return claims, arms


def _arm_norm(space: SearchSpace, arm: Arm, norm: str) -> str:
    """What the arms table says of an arm's normalisation: a shipped family's norm; a factory
    model's, the keyword arguments ``claims.without_norm`` changes (``norm=batch`` in the
    model, ``norm=none`` without), else ``as built``."""
    if space.model.factory is None:
        return norm
    variant = space.claims.without_norm
    if variant is None:
        return "as built"
    kwargs = variant.kwargs if arm.variant else {k: space.model.kwargs.get(k, "default")
                                                 for k in variant.kwargs}
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _claim_document(claim: Claim) -> dict[str, Any]:
    return {"key": claim.key, "statement": claim.statement, "reason": claim.reason,
            "comparisons": [{"label": c.label, "metric": c.metric, "weights": c.weights,
                             "sign": c.sign} for c in claim.comparisons]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _unit_stats(model: Any, probe: Any, labels: Any, by_site: bool) -> tuple[float, float]:
    """The mean dead-unit fraction and mean |activation mean| over a shipped family's hidden
    layers or a factory model's sites (a site that holds no unit is left out)."""
    if by_site:
        stats = [s for s in site_stats(model, probe, labels) if not math.isnan(s.dead_fraction)]
    else:
        stats = activation_stats(model, probe)
    return _mean([s.dead_fraction for s in stats]), _mean([abs(s.mean) for s in stats])


def run_claims(study: optuna.Study, space: SearchSpace, data: DeviceData, seeds: int,
               variant: Callable[[SearchSpace, str], SearchSpace],
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the arms of the applicable claims with ``seeds`` fresh seeds (the same in every
    arm) and store them as the study's ``claims`` attribute, after each arm: a resumed run
    trains only the arms not yet stored with these seeds and params. ``variant(space, name)``
    is the space whose trials build an arm's model variant (``engine.pipeline.variant_space``:
    the model without its normalisation, its sites found again).

    Returns:
        The stored document: ``seeds``, ``claims`` (key, statement, reason when not
        applicable, comparisons) and ``arms`` (name -> params, model variant, layout, norm,
        per-seed ``test_acc``, ``dead_frac`` (mean over hidden layers, or a factory model's
        sites, of the dead units' share) and ``abs_mean`` (the same mean of |the activations'
        mean|), on ``_PROBE_SAMPLES`` validation samples; None for a failed seed).
    """
    if seeds < 2:
        raise ValueError(f"seeds: a paired comparison needs at least 2, got {seeds}")
    claims, arms = design(space)
    base = study_seed(study, space) + _SEED_OFFSET
    seed_list = [base + j for j in range(seeds)]
    stored = study.user_attrs.get(CLAIMS_ATTR) or {}
    done = stored.get("arms", {}) if stored.get("seeds") == seed_list else {}
    document: dict[str, Any] = {"seeds": seed_list,
                                "claims": [_claim_document(c) for c in claims], "arms": {}}
    probe, labels = data.x_val[:_PROBE_SAMPLES], data.y_val[:_PROBE_SAMPLES]
    variants: dict[str, SearchSpace] = {}
    trained = 0
    for a in arms:
        previous = done.get(a.name, {})
        if previous.get("params") == a.params and previous.get("variant", "") == a.variant:
            document["arms"][a.name] = previous  # trained before this resume
            continue
        if a.variant not in variants:  # the model without norm: its sites found once
            variants[a.variant] = variant(space, a.variant)
        arm_space = variants[a.variant]
        candidate = candidate_from_params(a.params, arm_space)
        runs = train_seeds(arm_space, data, candidate, seed_list)
        trained += 1
        entry: dict[str, Any] = {"params": a.params, "variant": a.variant,
                                 "layout": str(candidate.layout),
                                 "norm": _arm_norm(space, a, candidate.norm), "test_acc": [],
                                 "dead_frac": [], "abs_mean": []}
        for r in runs:
            if r.test_acc is None or r.model is None:
                for key in ("test_acc", "dead_frac", "abs_mean"):
                    entry[key].append(None)
                continue
            dead, centre = _unit_stats(r.model, probe, labels, space.custom is not None)
            entry["test_acc"].append(round(float(r.test_acc), 6))
            entry["dead_frac"].append(round(dead, 6))
            entry["abs_mean"].append(round(centre, 6))
        document["arms"][a.name] = entry
        study.set_user_attr(CLAIMS_ATTR, document)
        if progress is not None:
            accs = [v for v in entry["test_acc"] if v is not None]
            mean = f"{_mean(accs):.4f}" if accs else "-"
            norm = entry["norm"] if space.model.factory is not None else f"norm {entry['norm']}"
            progress(f"claim arm {a.name} ({entry['layout']}, {norm}): test accuracy {mean} "
                     f"over {len(accs)} seeds")
    if progress is not None and arms and trained == 0:
        progress("claims: unchanged (every arm already trained with these seeds)")
    study.set_user_attr(CLAIMS_ATTR, document)
    return document
