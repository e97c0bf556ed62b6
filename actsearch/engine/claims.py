"""The folklore's claims, tested by designed comparisons after the search.

A search says which layouts did well; it does not test a claim such as "ReLU near the input,
ELU deeper". Here each claim that applies to the space gets the few layouts (arms) it needs,
trained with the same fresh seeds in every arm, so that each comparison is paired by seed (the
seed's luck, its initial weights and data order, cancels in the difference). The arms' per-seed
results and the claims' definitions are stored in the study's ``claims`` user attribute;
``actsearch.analysis`` tests and judges them (paired t-test, Holm across all comparisons).

Terms (the README defines them the same way):

- early: the first floor(d/2) of a network's d hidden layers in execution order (input side
  first); deep: the rest, so the middle layer of an odd depth counts as deep. A layer is
  today's only kind of searched site.
- sharp: ReLU-like units (``SHARP``); smooth: ``SMOOTH``.
- costs little: the latency of the network with ELU at every site is within ``MARGIN`` (10%)
  of the same network with ReLU, eager and under ``torch.compile``, at batch 1 and at a large
  batch (timed by ``actsearch.engine.latency`` after the arms are trained; an equivalence
  claim: supported when the ratio is significantly below 1 + margin).

Every arm holds what it is not designed to vary at the uniform baselines' values
(``actsearch.models.layout.layout_params``): the space's smallest depth, its first norm (or
``none`` when searched), the middle of a searched lr range, each activation's default
parameter. A claim needing an activation or a choice the space lacks is stored as not
applicable, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from actsearch.engine.latency import BIG_BATCH, MARGIN
from actsearch.engine.record import CLAIMS_ATTR
from actsearch.models.layout import candidate_from_params, layout_params
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.population import train_seeds
from actsearch.training.probes import activation_stats

__all__ = ["CLAIMS_ATTR", "SHARP", "SMOOTH", "Arm", "Claim", "Comparison", "design",
           "run_claims"]

SHARP = ("relu", "leaky_relu")  # ReLU-like: piecewise linear, a kink at zero
SMOOTH = ("elu", "selu", "celu", "gelu", "silu")
_SEED_OFFSET = 1_000_003  # claim seeds differ from the search's and the finalists' seeds
_PROBE_SAMPLES = 512  # validation samples the dead-unit and centring probes look at


@dataclass(frozen=True)
class Arm:
    """One designed layout, trained with every claim seed."""

    name: str  # e.g. "relu early, elu deep"
    params: dict[str, Any]  # trial params (``candidate_from_params``)


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


def _uniform(name: str, depth: int) -> list[str]:
    return [name] * depth


def design(space: SearchSpace) -> tuple[list[Claim], list[Arm]]:
    """The claims of the folklore for this space, and the distinct arms the applicable ones
    need (an arm two claims share is trained once)."""
    depth = space.depths[0]
    norms = list(space.model.norm)
    plain = "none" if "none" in norms else norms[0]
    has = {"relu", "elu"} <= set(space.choices)
    lacks = "the space does not offer both relu and elu"
    arms: dict[str, Arm] = {}

    def arm(name: str, activations: list[str], norm: str = plain) -> str:
        arms.setdefault(name, Arm(name, layout_params(space, activations, norm)))
        return name

    claims = []
    # "More accurate" is a higher test metric, or a lower one where the space minimises its
    # own (train.metric): the claimed sign of every test_acc contrast follows.
    better = 1 if space.objectives[0][1] == "max" else -1
    early = depth // 2
    if has and early >= 1:
        mixed = arm("relu early, elu deep", ["relu"] * early + ["elu"] * (depth - early))
        reverse = arm("elu early, relu deep", ["elu"] * early + ["relu"] * (depth - early))
        relu, elu = arm("uniform relu", _uniform("relu", depth)), arm("uniform elu",
                                                                      _uniform("elu", depth))
        claims.append(Claim("relu-early-elu-deep", _ORDER, [
                                Comparison(f"{mixed} - {other}", "test_acc",
                                           {mixed: 1, other: -1}, better)
                                for other in (reverse, relu, elu)]))
    else:
        claims.append(Claim("relu-early-elu-deep", _ORDER,
                            reason=lacks if not has else f"depth {depth}: no early and deep"))
    others = [n for n in norms if n != "none"]
    statement = "ELU's advantage over ReLU fades with normalisation"
    if has and "none" in norms and others:
        comparisons = []
        for norm in others:
            relu, elu = arm("uniform relu", _uniform("relu", depth)), arm("uniform elu",
                                                                          _uniform("elu", depth))
            relu_n = arm(f"uniform relu, {norm} norm", _uniform("relu", depth), norm)
            elu_n = arm(f"uniform elu, {norm} norm", _uniform("elu", depth), norm)
            # (ELU - ReLU without norm) - (ELU - ReLU with norm) > 0: what "fades" means.
            comparisons.append(Comparison(f"(elu - relu) - (elu - relu with {norm} norm)",
                                          "test_acc", {elu: 1, relu: -1, elu_n: -1, relu_n: 1},
                                          better))
        claims.append(Claim("elu-fades-with-norm", statement, comparisons))
    else:
        claims.append(Claim("elu-fades-with-norm", statement, reason=lacks if not has else
                            "the space does not search normalisation against none"))
    statement = "ELU leaves fewer dead units and centres activations nearer zero than ReLU"
    if has:
        relu, elu = arm("uniform relu", _uniform("relu", depth)), arm("uniform elu",
                                                                      _uniform("elu", depth))
        claims.append(Claim("elu-fewer-dead-centred", statement, [
            Comparison("dead fraction: relu - elu", "dead_frac", {relu: 1, elu: -1}),
            Comparison("|activation mean|: relu - elu", "abs_mean", {relu: 1, elu: -1})]))
    else:
        claims.append(Claim("elu-fewer-dead-centred", statement, reason=lacks))
    claims.append(Claim("sharp-gate-smooth-signal", "sharp units in gating paths, smooth ones "
                        "in the main signal path", reason=f"model.family {space.model.family}: "
                        "no gating paths"))
    statement = (f"ELU's exp() costs little latency: ELU at every site within "
                 f"{MARGIN:.0%} of ReLU's, eager and compiled")
    if has:
        # Measured after the claims' training (``actsearch.engine.latency``), per block pair:
        # the arm's name is the latency document's label of the uniform ELU model.
        claims.append(Claim("elu-latency-small", statement, [
            Comparison(f"elu / relu latency, {mode}, batch {batch}", f"latency:{mode}:{batch}",
                       {"uniform elu": 1}, sign=-1)
            for mode in ("eager", "compiled") for batch in (1, BIG_BATCH)]))
    else:
        claims.append(Claim("elu-latency-small", statement, reason=lacks))
    return claims, list(arms.values())


def _claim_document(claim: Claim) -> dict[str, Any]:
    return {"key": claim.key, "statement": claim.statement, "reason": claim.reason,
            "comparisons": [{"label": c.label, "metric": c.metric, "weights": c.weights,
                             "sign": c.sign} for c in claim.comparisons]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def run_claims(study: optuna.Study, space: SearchSpace, data: DeviceData, seeds: int = 3,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the arms of the applicable claims with ``seeds`` fresh seeds (the same in every
    arm) and store them as the study's ``claims`` attribute, after each arm: a resumed run
    trains only the arms not yet stored with these seeds and params.

    Returns:
        The stored document: ``seeds``, ``claims`` (key, statement, reason when not
        applicable, comparisons) and ``arms`` (name -> params, layout, per-seed ``test_acc``,
        ``dead_frac`` (mean over hidden layers of the dead units' share) and ``abs_mean``
        (mean over hidden layers of |the activations' mean|), on ``_PROBE_SAMPLES`` validation
        samples; None for a failed seed).
    """
    if seeds < 2:
        raise ValueError(f"seeds: a paired comparison needs at least 2, got {seeds}")
    claims, arms = design(space)
    base = int(study.user_attrs.get("seed", space.seed)) + _SEED_OFFSET
    seed_list = [base + j for j in range(seeds)]
    stored = study.user_attrs.get(CLAIMS_ATTR) or {}
    done = stored.get("arms", {}) if stored.get("seeds") == seed_list else {}
    document: dict[str, Any] = {"seeds": seed_list,
                                "claims": [_claim_document(c) for c in claims], "arms": {}}
    probe = data.x_val[:_PROBE_SAMPLES]
    trained = 0
    for a in arms:
        if a.name in done and done[a.name].get("params") == a.params:
            document["arms"][a.name] = done[a.name]  # trained before this resume
            continue
        candidate = candidate_from_params(a.params, space)
        runs = train_seeds(space, data, candidate, seed_list)
        trained += 1
        entry: dict[str, Any] = {"params": a.params, "layout": str(candidate.layout),
                                 "norm": candidate.norm, "test_acc": [], "dead_frac": [],
                                 "abs_mean": []}
        for r in runs:
            if r.test_acc is None or r.model is None:
                for key in ("test_acc", "dead_frac", "abs_mean"):
                    entry[key].append(None)
                continue
            layers = activation_stats(r.model, probe)
            entry["test_acc"].append(round(float(r.test_acc), 6))
            entry["dead_frac"].append(round(_mean([s.dead_fraction for s in layers]), 6))
            entry["abs_mean"].append(round(_mean([abs(s.mean) for s in layers]), 6))
        document["arms"][a.name] = entry
        study.set_user_attr(CLAIMS_ATTR, document)
        if progress is not None:
            accs = [v for v in entry["test_acc"] if v is not None]
            mean = f"{_mean(accs):.4f}" if accs else "-"
            progress(f"claim arm {a.name} ({entry['layout']}, norm {entry['norm']}): test "
                     f"accuracy {mean} over {len(accs)} seeds")
    if progress is not None and arms and trained == 0:
        progress("claims: unchanged (every arm already trained with these seeds)")
    study.set_user_attr(CLAIMS_ATTR, document)
    return document
