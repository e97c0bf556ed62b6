from __future__ import annotations

import types
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from actsearch.errors import ActsearchError
from actsearch.models.build import build_model
from actsearch.models.layout import Candidate, candidate_from_params, parse_layout
from actsearch.schema.space import load_space
from actsearch.search.objective import trial_seed
from actsearch.search.record import FINISHED
from actsearch.search.study import open_study, space_of_study
from actsearch.training import fit as train
from actsearch.training import population as population_module
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import recipe_for
from actsearch.training.population import (
    Population,
    auto_population,
    population_support,
    resolve_population,
    run_population_search,
    supports_population,
    train_candidates,
    train_seeds,
)

RTOL = 1e-9
# Mixed layouts: ReLU, ELU with different alphas, SELU; each with its own seed.
JOBS = [("relu | elu(0.37)", 3), ("selu | elu(1.70)", 11), ("elu(0.80) | relu", 7),
        ("selu | selu", 5)]


@pytest.fixture
def space(write_space):
    return load_space(write_space())


@pytest.fixture
def data(space):
    return to_device(load_data(space.data, 0), "cpu", torch.float64)


def _alone(space, data, layout: str, seed: int, monkeypatch) -> dict:
    """train.fit on the candidate alone, recording each step's loss and gradients."""
    torch.manual_seed(seed)
    model = build_model(space.model, parse_layout(layout), data.input_shape,
                        data.n_classes).double()
    losses, grads = [], []
    real = train.F

    def cross_entropy(*args, **kwargs):
        out = real.cross_entropy(*args, **kwargs)
        if kwargs.get("reduction", "mean") == "mean":  # training steps, not evaluation
            losses.append(out.item())
        return out

    monkeypatch.setattr(train, "F", types.SimpleNamespace(cross_entropy=cross_entropy))
    params = list(model.parameters())
    for p in params:
        p.register_hook(lambda g: grads.append(g.detach().clone()))
    candidate = Candidate(parse_layout(layout), "none", space.train.lr)
    result = train.fit(model, data, recipe_for(space, candidate), seed)
    monkeypatch.setattr(train, "F", real)
    # Hooks fire output side first within a step; a step's flat gradient is in param order.
    n = len(params)
    steps = [torch.cat([g.reshape(-1) for g in reversed(grads[i:i + n])])
             for i in range(0, len(grads), n)]
    assert len(steps) == len(losses)
    weights = torch.cat([p.detach().reshape(-1) for p in params])
    return {"losses": losses, "grads": steps, "history": result.history, "weights": weights}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * abs(b)


def _assert_same_epochs(population_history, alone_history) -> None:
    assert len(population_history) == len(alone_history)
    for p, a in zip(population_history, alone_history, strict=True):
        assert p.epoch == a.epoch and p.val_acc == a.val_acc
        assert _close(p.val_loss, a.val_loss) and _close(p.train_loss, a.train_loss)


def _record_steps(population: Population, seen: dict) -> callable:
    def on_step(losses: torch.Tensor, grads: torch.Tensor) -> None:
        for member, loss, grad in zip(population.members, losses, grads, strict=True):
            seen.setdefault(member.seed, []).append((loss.item(), grad.clone()))

    return on_step


def test_population_follows_each_candidate_alone(space, data, monkeypatch) -> None:
    alone = {seed: _alone(space, data, layout, seed, monkeypatch) for layout, seed in JOBS}
    population = Population(space, data, depth=2)
    members = [population.add(parse_layout(layout), seed) for layout, seed in JOBS[:3]]
    seen: dict = {}
    on_step = _record_steps(population, seen)
    population.train_epoch(on_step)
    # A candidate joining mid-run starts its own epoch 1, lr schedule and Adam steps.
    members.append(population.add(parse_layout(JOBS[3][0]), JOBS[3][1]))
    while population.running:
        population.train_epoch(on_step)
    assert [m.result.status for m in members] == ["complete"] * 4
    for member in members:
        ref = alone[member.seed]
        steps = seen[member.seed]
        assert len(steps) == len(ref["losses"])
        for (loss, grad), ref_loss, ref_grad in zip(steps, ref["losses"], ref["grads"],
                                                    strict=True):
            assert _close(loss, ref_loss)
            torch.testing.assert_close(grad, ref_grad, rtol=RTOL,
                                       atol=RTOL * ref_grad.abs().max().item())
        _assert_same_epochs(member.result.history, ref["history"])
        assert member.shared_with >= 3


def test_pruned_member_leaves_and_the_others_go_on_unchanged(space, data, monkeypatch) -> None:
    alone = {seed: _alone(space, data, layout, seed, monkeypatch) for layout, seed in JOBS[:3]}
    population = Population(space, data, depth=2)
    members = [population.add(parse_layout(layout), seed) for layout, seed in JOBS[:3]]
    seen: dict = {}
    on_step = _record_steps(population, seen)
    population.train_epoch(on_step)
    population.stop(members[1])
    trained = population.train_epoch(on_step)
    assert [m for m, _ in trained] == [members[0], members[2]]
    assert len(population.members) == 2  # the stopped one's rows are gone
    while population.running:
        population.train_epoch(on_step)
    assert members[1].result.status == "stopped" and members[1].epochs_done == 1
    assert len(seen[members[1].seed]) == len(alone[members[1].seed]["losses"]) // 3
    for member in (members[0], members[2]):
        assert member.result.status == "complete"
        _assert_same_epochs(member.result.history, alone[member.seed]["history"])
        model = population.to_model(member)
        weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(weights, alone[member.seed]["weights"], rtol=RTOL,
                                   atol=RTOL)


def test_seed_repeats_match_fit(space, data, monkeypatch) -> None:
    candidate = Candidate(parse_layout("elu(0.50) | selu"), "none", space.train.lr)
    runs = train_seeds(space, data, candidate, [1, 2, 3])
    assert [r.seed for r in runs] == [1, 2, 3]
    for run in runs:
        ref = _alone(space, data, "elu(0.50) | selu", run.seed, monkeypatch)
        assert run.result.status == "complete" and 0 <= run.test_acc <= 1
        _assert_same_epochs(run.result.history, ref["history"])


def test_search_through_ask_and_tell(write_space, tmp_path: Path) -> None:
    path = write_space({"train.epochs": 4, "pruner.n_startup_trials": 3})
    space = load_space(path)
    study, space = open_study(space, "p", f"sqlite:///{tmp_path}/p.db")
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    told = []
    finished = run_population_search(space, study, data, "cpu", 11, population=4,
                                     callbacks=[lambda s, t: told.append(t.number)])
    trials = study.get_trials()
    assert finished == 11 and len(trials) == 11 and sorted(told) == list(range(11))
    assert all(t.state in FINISHED for t in trials)
    # The enqueued uniform baselines come out of ask() first.
    assert [t.user_attrs["layout"] for t in trials[:3]] == [
        "relu | relu", "elu(1.00) | elu(1.00)", "selu | selu"]
    assert any(t.state == TrialState.PRUNED for t in trials), "no trial was pruned"
    for t in trials:
        attrs = t.user_attrs
        layout = candidate_from_params(t.params, space_of_study(study)).layout
        assert str(layout) == attrs["layout"] and attrs["uniform"] == layout.is_uniform
        assert attrs["seed"] == trial_seed(study.user_attrs["seed"], t.number)
        assert attrs["train_seconds"] > 0 and attrs["samples_per_second"] > 0
        assert len(attrs["val_acc_curve"]) == len(attrs["val_loss_curve"]) == attrs["epochs"]
        assert list(t.intermediate_values) == list(range(1, attrs["epochs"] + 1))
        if t.state == TrialState.COMPLETE:
            assert attrs["end"] == "complete" and attrs["epochs"] == 4
            assert t.value == pytest.approx(attrs["val_acc"]) and 0 <= attrs["test_acc"] <= 1
            # Measured on the candidate's own standalone model, as a sequential trial is.
            probes = attrs["probes"]
            assert len(probes["dead_frac"]) == len(layout.layers) and probes["lat_b1_ms"] > 0
        else:
            assert attrs["end"].startswith(("pruned at epoch", "diverged at epoch"))
            assert "test_acc" not in attrs
    # The budget counts finished trials: a second call has nothing left to do.
    assert run_trials(study, space, data, trials=11, population=4) == 0


def test_support_and_sizes(write_space) -> None:
    assert supports_population(load_space(write_space()))
    cnn = load_space(write_space({"model.family": "cnn1d"}, name="cnn.yaml"))
    assert "mlp only" in population_support(cnn)
    norm = load_space(write_space({"model.norm": ["none", "batch"]}, name="norm.yaml"))
    assert "norm none only" in population_support(norm)
    gelu = load_space(write_space({"activations.choices": ["relu", "gelu"]}, name="g.yaml"))
    assert "not gelu" in population_support(gelu)
    with pytest.raises(ActsearchError, match="mlp only"):
        Population(cnn, None, 2)
    assert auto_population("cpu") == 1
    assert resolve_population("auto", "cpu") == 1 and resolve_population("8", "cpu") == 8
    assert auto_population("cuda") >= 32 and auto_population("cuda", trials=40) == 10
    with pytest.raises(ActsearchError, match="--population: expected a positive integer"):
        resolve_population("0", "cpu")


def test_searched_depth_and_lr_train_in_separate_populations(write_space, monkeypatch) -> None:
    space = load_space(write_space({"model.depth": {"low": 1, "high": 2},
                                    "train.lr": {"low": 1e-3, "high": 3e-2, "log": True}}))
    data = to_device(load_data(space.data, 0), "cpu", torch.float64)
    jobs = [(Candidate(parse_layout("elu(0.30)"), "none", 0.02), 4),
            (Candidate(parse_layout("selu | relu"), "none", 0.003), 9)]
    members = train_candidates(space, data, jobs, population=2)
    for (candidate, seed), member in zip(jobs, members, strict=True):
        torch.manual_seed(seed)
        model = build_model(space.model, candidate.layout, data.input_shape,
                            data.n_classes).double()
        ref = train.fit(model, data, recipe_for(space, candidate), seed)
        assert member.lr == candidate.lr and member.layout == candidate.layout
        _assert_same_epochs(member.result.history, ref.history)


def test_interrupt_fails_the_running_trials(write_space, tmp_path: Path, monkeypatch) -> None:
    import actsearch.search.pruning

    monkeypatch.setattr(actsearch.search.pruning, "FLUSH_SECONDS", 3600)  # reports wait to the end
    space = load_space(write_space())
    study, space = open_study(space, "i", f"sqlite:///{tmp_path}/i.db")
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    real, calls = Population.train_epoch, []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Population, "train_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, data, trials=6, population=2)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 2
    # Reports waiting in memory are written before the trials fail: each keeps its epochs.
    for trial in study.trials:
        assert list(trial.intermediate_values) == list(range(1, trial.last_step + 1))
    assert all(t.last_step for t in study.trials[2:])


@pytest.mark.parametrize(("optimizer", "weight_decay"), [("sgd", 1e-3), ("adamw", 0.05),
                                                         ("adam", 1e-3)])
def test_every_optimizer_matches_fit(write_space, optimizer: str, weight_decay: float) -> None:
    space = load_space(write_space({"train.optimizer": optimizer,
                                    "train.weight_decay": weight_decay}))
    data = to_device(load_data(space.data, 0), "cpu", torch.float64)
    jobs = [(Candidate(parse_layout(layout), "none", space.train.lr), seed)
            for layout, seed in JOBS[:2]]
    for (candidate, seed), member in zip(jobs, train_candidates(space, data, jobs, 2),
                                         strict=True):
        torch.manual_seed(seed)
        model = build_model(space.model, candidate.layout, data.input_shape,
                            data.n_classes).double()
        ref = train.fit(model, data, recipe_for(space, candidate), seed)
        _assert_same_epochs(member.result.history, ref.history)


# Trial attributes that measure time, and so differ between two runs of the same search.
_TIMED = ("train_seconds", "samples_per_second", "probes")  # timings vary run to run


def _one_by_one(study, trials, reports) -> list[bool]:
    reports.flush()  # each member's report in the storage, as trial.report leaves it
    return [trial.should_prune() for trial in trials]


def _search_counting(space, path: Path, decide, monkeypatch) -> tuple[list, int, int]:
    """A population search with ``decide`` as prune_decisions: its trials, the number of
    should_prune calls and of trial reads from the storage."""
    monkeypatch.setattr(population_module, "prune_decisions", decide)
    # The same study name in both runs: HyperbandPruner picks brackets from it.
    study, space = open_study(space, "s", f"sqlite:///{path}")
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    counts = {"should_prune": 0, "reads": 0}
    should_prune, storage = optuna.trial.Trial.should_prune, study._storage
    get_all_trials = storage.get_all_trials

    def counting_should_prune(self):
        counts["should_prune"] += 1
        return should_prune(self)

    def counting_reads(*args, **kwargs):
        counts["reads"] += 1
        return get_all_trials(*args, **kwargs)

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", counting_should_prune)
    monkeypatch.setattr(storage, "get_all_trials", counting_reads)
    assert run_trials(study, space, data, trials=12, population=4) == 12
    monkeypatch.undo()
    return study.get_trials(), counts["should_prune"], counts["reads"]


@pytest.mark.parametrize("pruner", [
    {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"name": "percentile", "percentile": 75.0, "n_startup_trials": 2},
    {"name": "successive_halving", "min_resource": 1, "reduction_factor": 2},
    {"name": "hyperband", "min_resource": 1, "reduction_factor": 2},
])
def test_batched_pruning_decides_as_should_prune(write_space, tmp_path: Path, monkeypatch,
                                                 pruner: dict) -> None:
    space = load_space(write_space({"train.epochs": 4, "pruner": pruner}))
    ref, ref_calls, ref_reads = _search_counting(space, tmp_path / "ref.db", _one_by_one,
                                                 monkeypatch)
    got, calls, reads = _search_counting(space, tmp_path / "got.db",
                                         population_module.prune_decisions, monkeypatch)
    assert any(t.state == TrialState.PRUNED for t in ref), "no trial was pruned"
    assert len(got) == len(ref) == 12
    for g, r in zip(got, ref, strict=True):
        assert (g.number, g.state, g.params, g.value) == (r.number, r.state, r.params, r.value)
        assert g.intermediate_values == r.intermediate_values
        assert g.system_attrs == r.system_attrs  # SuccessiveHalving's rung values included
        assert {k: v for k, v in g.user_attrs.items() if k not in _TIMED} == \
               {k: v for k, v in r.user_attrs.items() if k not in _TIMED}
    if pruner["name"] == "hyperband":  # bracket studies read the storage: one by one
        assert calls == ref_calls > 0
    else:  # one read per population epoch instead of one per member
        assert calls == 0 and ref_calls > 12
        assert reads < ref_reads - ref_calls // 2
