from __future__ import annotations

import types

import pytest
import torch

from actsearch.errors import ActsearchError
from actsearch.models.activations import _REGISTRY, ActivationSpec, register_activation
from actsearch.models.build import build_model
from actsearch.models.layout import Candidate, parse_layout
from actsearch.schema.space import load_space
from actsearch.training import fit as train
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import recipe_for
from actsearch.training.population import (
    Population,
    PopulationTrainer,
    handwritten,
    population_support,
    resolve_population,
    supports_population,
    train_candidates,
    train_seeds,
)
from actsearch.training.trainers import Job, Member

RTOL = 1e-9
# Mixed layouts: ReLU, ELU with different alphas, SELU; each with its own seed.
JOBS = [("relu | elu(0.37)", 3), ("selu | elu(1.70)", 11), ("elu(0.80) | relu", 7),
        ("selu | selu", 5)]




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


def test_support_and_sizes(write_space) -> None:
    assert supports_population(load_space(write_space()))
    assert handwritten(load_space(write_space()))
    # CNNs, norm and other activations stack with torch.func instead of the hand-written MLP.
    cnn = load_space(write_space({"model.family": "cnn1d"}, name="cnn.yaml"))
    norm = load_space(write_space({"model.norm": ["none", "batch"]}, name="norm.yaml"))
    gelu = load_space(write_space({"activations.choices": ["relu", "gelu"]}, name="g.yaml"))
    for space in (cnn, norm, gelu):
        assert supports_population(space) and not handwritten(space)
    with pytest.raises(ActsearchError, match="hand-written population serves plain MLPs"):
        Population(cnn, None, 2)
    register_activation(ActivationSpec("hardtanh_test", "Hardtanh"))  # no batched form
    try:
        own = load_space(write_space({"activations.choices": ["relu", "hardtanh_test"]},
                                     name="own.yaml"))
        assert population_support(own).startswith(
            "activations.choices: hardtanh_test has no batched form")
    finally:
        _REGISTRY.pop("hardtanh_test")
    assert resolve_population("8").size == 8
    with pytest.raises(ActsearchError, match="population: expected a positive integer"):
        resolve_population("0")


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
        assert member.candidate == candidate
        _assert_same_epochs(member.result.history, ref.history)


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


def _jobs(space, layouts_seeds) -> list[tuple[Candidate, int]]:
    return [(Candidate(parse_layout(layout), "none", space.train.lr), seed)
            for layout, seed in layouts_seeds]


def _train(trainer: PopulationTrainer, jobs, epochs: list | None = None) -> list[Member]:
    """Drive ``trainer`` over ``jobs`` as the search does, refilling between epochs; each
    ``train_epoch``'s answer goes to ``epochs``."""
    members, pending = [], [Job(c, seed, i) for i, (c, seed) in enumerate(jobs)]
    while True:
        while pending and trainer.active < trainer.capacity:
            members.append(trainer.add(pending.pop(0)))
        if not trainer.active:
            return members
        trained = trainer.train_epoch()
        if epochs is not None:
            epochs.append(trained)


def _fault(monkeypatch, error: BaseException, when) -> list[int]:
    """Make the batched step raise ``error`` after its update (the population's state has
    changed by then) whenever ``when(population)``; returns the sizes of the populations it
    raised in."""
    real, raised = Population._update, []

    def update(self, grad, lrs):
        real(self, grad, lrs)
        if when(self):
            raised.append(len(self.members))
            raise error

    monkeypatch.setattr(Population, "_update", update)
    return raised


def test_an_exception_fails_only_the_member_behind_it(space, data, monkeypatch) -> None:
    jobs = _jobs(space, JOBS + [("relu | relu", 13)])
    culprit_index = 1
    alone = train_candidates(space, data, jobs[:culprit_index] + jobs[culprit_index + 1:], 5)
    trainer = PopulationTrainer(space, data, 5)
    culprit: list[Member] = []
    # The culprit raises in its second epoch, in whichever population it trains.
    raised = _fault(monkeypatch, ValueError("boom in the batched step"),
                    lambda p: culprit[0] in p.members and culprit[0].epochs_done == 1)
    members = [trainer.add(Job(c, seed, i)) for i, (c, seed) in enumerate(jobs)]
    culprit.append(members[culprit_index])
    epochs = [trainer.train_epoch() for _ in range(2)]
    # The parts stack again once the culprit is out.
    assert [len(population) for population in trainer._populations] == [4]
    epochs.append(trainer.train_epoch())
    # Split 5 -> 3 + 2, the culprit's 3 -> 2 + 1, its 2 -> 1 + 1: alone, it fails.
    assert raised == [5, 3, 2, 1]
    assert culprit[0] in epochs[1] and culprit[0] not in epochs[2]
    assert culprit[0].result.status == "failed" and culprit[0].epochs_done == 1
    assert culprit[0].error == "ValueError: boom in the batched step"
    assert "boom in the batched step" in culprit[0].traceback
    assert culprit[0].model is None and culprit[0].test_acc is None
    others = [m for m in members if m is not culprit[0]]
    assert all(m in epochs[1] for m in others)
    # Each went on from the epoch boundary: the curves it has when trained without it.
    for member, ref in zip(others, alone, strict=True):
        assert member.result.status == "complete" and member.model is not None
        _assert_same_epochs(member.result.history, ref.result.history)
        assert _close(member.test_loss, ref.test_loss) and member.test_acc == ref.test_acc
    assert trainer.capacity == 5 and trainer.active == 0
    assert all(m.shared_with == 5 for m in members)


def test_out_of_memory_splits_the_population_and_lowers_capacity(space, data,
                                                                 monkeypatch) -> None:
    jobs = _jobs(space, JOBS + [("relu | relu", 13), ("elu(1.20) | selu", 17)])
    unsplit = train_candidates(space, data, jobs, 4)
    trainer = PopulationTrainer(space, data, 4)
    raised = _fault(monkeypatch, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to "
                                                            "allocate 2.00 GiB"),
                    lambda p: len(p.members) > 2)
    epochs: list = []
    members = _train(trainer, jobs, epochs)
    assert raised == [4]  # once: the halves fit, and refills stay within them
    assert trainer.capacity == 2
    assert len(members) == 6 and all(m.result.status == "complete" for m in members)
    for member, ref in zip(members, unsplit, strict=True):
        _assert_same_epochs(member.result.history, ref.result.history)
        assert _close(member.test_loss, ref.test_loss) and member.test_acc == ref.test_acc
        assert member.shared_with == 2  # no epoch ever trained 4 at once
    # The two added after the split trained together, after the first four.
    assert epochs[3] == members[4:]


def test_a_member_out_of_memory_alone_fails(space, data, monkeypatch) -> None:
    jobs = _jobs(space, JOBS[:2])
    trainer = PopulationTrainer(space, data, 2)
    culprit: list[Member] = []
    _fault(monkeypatch, torch.cuda.OutOfMemoryError("CUDA out of memory."),
           lambda p: culprit[0] in p.members)
    members = [trainer.add(Job(c, seed)) for c, seed in jobs]
    culprit.append(members[1])
    assert trainer.train_epoch() == [members[0], members[1]]
    assert members[1].result.status == "failed" and members[1].epochs_done == 0
    assert members[1].error == "out of memory: CUDA out of memory."
    assert trainer.capacity == 1
    while trainer.active:
        trainer.train_epoch()
    assert members[0].result.status == "complete"


def test_keyboard_interrupt_is_not_caught(space, data, monkeypatch) -> None:
    trainer = PopulationTrainer(space, data, 2)
    for c, seed in _jobs(space, JOBS[:2]):
        trainer.add(Job(c, seed))
    _fault(monkeypatch, KeyboardInterrupt(), lambda p: True)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_epoch()


def test_trainer_takes_stops_and_refuses(space, data) -> None:
    trainer = PopulationTrainer(space, data, 2)
    members = [trainer.add(Job(c, seed)) for c, seed in _jobs(space, JOBS[:2])]
    with pytest.raises(RuntimeError, match="full"):
        trainer.add(Job(*_jobs(space, JOBS[2:3])[0]))
    assert trainer.train_epoch() == members and all(m.epochs_done == 1 for m in members)
    trainer.stop(members[0])
    assert trainer.active == 1
    assert trainer.train_epoch() == [members[1]]
    assert members[0].result.status == "stopped" and members[0].epochs_done == 1
    with pytest.raises(ActsearchError, match="capacity: expected a positive integer"):
        PopulationTrainer(space, data, 0)


def test_seed_repeats_of_a_batch_norm_mlp_follow_fit(write_space) -> None:
    # One at a time on a CPU (a torch.func stack does not pay there); tests/test_batched.py
    # holds stacks to the same trajectories.
    space = load_space(write_space({"model.norm": ["batch"]}))
    data = to_device(load_data(space.data, 0), "cpu", torch.float64)
    candidate = Candidate(parse_layout("relu | elu(0.50)"), "batch", space.train.lr)
    runs = train_seeds(space, data, candidate, [1, 2])
    for run in runs:
        torch.manual_seed(run.seed)
        model = build_model(space.model, candidate.layout, data.input_shape, data.n_classes,
                            "batch").double()
        ref = train.fit(model, data, recipe_for(space, candidate), run.seed)
        assert run.result.status == "complete" and run.error is None
        assert run.model is not None and type(run.model) is type(model)
        _assert_same_epochs(run.result.history, ref.history)
        test_loss, test_acc = train.evaluate(model, data.x_test, data.y_test)
        assert _close(run.test_loss, test_loss) and run.test_acc == test_acc
