"""Populations of any model (training/batched.py): each member follows its trajectory alone.

The equivalence helper (``assert_population_follows_alone``) takes any space with its data
and candidates, so further models (the zoo's) get the same check with one parametrisation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLES, with_train
from torch import nn

from actsearch.models.activations import create_activation, get_activation
from actsearch.models.custom import with_sites
from actsearch.models.layout import Candidate, Layer, Layout
from actsearch.schema.space import SearchSpace, load_space, parse_space
from actsearch.training.batched import (
    BatchedActivation,
    StackedPopulation,
    batchable,
    batched_step,
)
from actsearch.training.data import DeviceData, factory_data, to_device
from actsearch.training.fit import _optimizer as fit_optimizer
from actsearch.training.fit import epoch_lr, evaluate, recipe_for
from actsearch.training.population import (
    PopulationTrainer,
    auto_population,
    population_problem,
    train_candidates,
)
from actsearch.training.trainers import Job, start_model

RTOL = 1e-9


def example(name: str, train: dict | None = None, samples: int = 192) -> tuple[SearchSpace,
                                                                                DeviceData]:
    """An example's space with its sites, and a slice of its data on the CPU in float64."""
    space = with_train(EXAMPLES / name / "space.yaml", **(train or {}))
    full = to_device(factory_data(space.data), "cpu", torch.float64)
    data = DeviceData(full.x_train[:samples], full.y_train[:samples], full.x_val[:96],
                      full.y_val[:96], full.x_test[:96], full.y_test[:96], full.input_shape,
                      full.n_classes)
    return with_sites(space, data.x_train.float()), data


def factory_space(make, data: DeviceData, *, groups: dict | None = None,
                  choices: list[str] | None = None, train: dict | None = None,
                  kwargs: dict | None = None) -> SearchSpace:
    """A space for a model factory given in Python (a zoo model, a user's), its sites found on
    ``data``: what ``assert_population_follows_alone`` takes besides the data."""
    document = {"name": "factory", "model": {"factory": f"<python>:{make.__name__}",
                                             "kwargs": kwargs or {}},
                "data": {"factory": "<python>:data"}, "groups": groups or {},
                "train": train or {}}
    if choices is not None:
        document["activations"] = {"choices": choices}
    return with_sites(parse_space(document, "test"), data.x_train.float(), factory=make)


def layout(space: SearchSpace, *choices: str | tuple[str, float]) -> Layout:
    """A factory model's layout: one choice per group, in the groups' order."""
    layers = tuple(Layer(c[0], c[1]) if isinstance(c, tuple)
                   else Layer(c, get_activation(c).default) for c in choices)
    return Layout(layers, tuple(g.name for g in space.custom.groups))


def _alone(space: SearchSpace, data: DeviceData, candidate: Candidate, seed: int) -> dict:
    """The candidate trained alone as fit.Run trains it, each step's loss and gradient kept."""
    model = start_model(space, data, candidate, seed)
    recipe = recipe_for(space, candidate)
    optimizer = fit_optimizer(model, recipe)
    generator = torch.Generator().manual_seed(seed)
    x, y, bs = data.x_train, data.y_train, recipe.batch_size
    steps, history = [], []
    for epoch in range(recipe.epochs):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(recipe.lr, epoch, recipe)
        model.train()
        order = torch.randperm(len(x), generator=generator)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), bs):
            loss = F.cross_entropy(model(xs[i:i + bs]), ys[i:i + bs])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            steps.append((loss.item(), torch.cat([p.grad.reshape(-1)
                                                  for p in model.parameters()])))
            optimizer.step()
        history.append(evaluate(model, data.x_val, data.y_val))
    return {"steps": steps, "history": history, "model": model}


def _close(a: torch.Tensor | float, b: torch.Tensor | float) -> None:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    scale = b.abs().max().item()
    torch.testing.assert_close(a, b, rtol=RTOL, atol=RTOL * max(scale, 1e-300))


def assert_population_follows_alone(space: SearchSpace, data: DeviceData,
                                    jobs: list[tuple[Candidate, int]]) -> StackedPopulation:
    """Train ``jobs`` as one StackedPopulation: each member's per-step losses and gradients
    equal training it alone (relative 1e-9), its per-epoch validation is the same, and its
    standalone model (``to_model``) holds the same weights and buffers."""
    key = (jobs[0][0].layout.depth, jobs[0][0].norm)
    population = StackedPopulation(space, data, key)
    members = [population.add(c, seed) for c, seed in jobs]
    seen: dict[int, list] = {}

    def on_step(losses: torch.Tensor, grads: torch.Tensor) -> None:
        for row, member in enumerate(population.members):
            seen.setdefault(id(member), []).append((losses[row].item(), grads[row].clone()))

    for _ in range(space.train.epochs):
        population.train_epoch(on_step)
    for member, (candidate, seed) in zip(members, jobs, strict=True):
        alone = _alone(space, data, candidate, seed)
        mine = seen[id(member)]
        assert len(mine) == len(alone["steps"])
        for (loss, grad), (loss_alone, grad_alone) in zip(mine, alone["steps"], strict=True):
            _close(loss, loss_alone)
            _close(grad, grad_alone)
        assert len(member.result.history) == len(alone["history"])
        for stats, (val_loss, val_acc) in zip(member.result.history, alone["history"],
                                              strict=True):
            assert stats.val_acc == val_acc
            _close(stats.val_loss, val_loss)
        model = population.to_model(member)
        mine_state, alone_state = model.state_dict(), alone["model"].state_dict()
        assert mine_state.keys() == alone_state.keys()
        for name, tensor in alone_state.items():
            _close(mine_state[name].double(), tensor.double())
    return population


RESNET = {"epochs": 2, "optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine"}


def _resnet_jobs(space: SearchSpace) -> list[tuple[Candidate, int]]:
    # Every term mixed at one site: ReLU, ELU with two alphas, SELU, GELU; own seeds and lrs.
    return [(Candidate(layout(space, "relu", ("elu", 0.5), "selu"), "none", 2e-3), 3),
            (Candidate(layout(space, "gelu", "relu", ("elu", 1.3)), "none", 5e-3), 11),
            (Candidate(layout(space, "selu", "gelu", "relu"), "none", 1e-3), 7)]


def _gated_jobs(space: SearchSpace) -> list[tuple[Candidate, int]]:
    # groups: gates (sigmoid, relu, elu), signal, then the stem's own site.
    names = [g.name for g in space.custom.groups]
    choice = {"gates": [("elu", 0.7), "sigmoid", "relu"],
              "signal": ["selu", ("elu", 1.2), "relu"]}
    jobs = []
    for k, (seed, lr) in enumerate([(1, 3e-3), (2, 1e-3), (5, 2e-3)]):
        picked = [choice.get(n, ["relu", "selu", ("elu", 0.3)])[k] for n in names]
        jobs.append((Candidate(layout(space, *picked), "none", lr), seed))
    return jobs


def _functional_jobs(space: SearchSpace) -> list[tuple[Candidate, int]]:
    return [(Candidate(layout(space, "relu", "tanh", "elu"), "none", 3e-3), 4),
            (Candidate(layout(space, "selu", "relu", "tanh"), "none", 1e-3), 9)]


@pytest.mark.parametrize("name, train, jobs", [
    ("resnet_digits", RESNET, _resnet_jobs),  # batch norm, a shared ReLU called twice
    ("gated", {"epochs": 2, "batch_size": 48}, _gated_jobs),  # gates: sigmoid x signal
    ("functional_mlp", {"epochs": 2, "optimizer": "sgd", "batch_size": 40},
     _functional_jobs),  # F.relu / torch.tanh in forward: a traced graph
])
def test_a_member_follows_its_trajectory_alone(name, train, jobs) -> None:
    space, data = example(name, train)
    population = assert_population_follows_alone(space, data, jobs(space))
    # Batch norm's running statistics are per member: they differ between members.
    stats = {n: b for n, b in population._buffers.items() if n.endswith("running_mean")}
    for tensor in stats.values():
        assert not torch.equal(tensor[0], tensor[1])


class _Residual1d(nn.Module):
    """A user's residual 1-D CNN with batch norm: conv-bn-act twice, plus the input."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, channels, 3, padding=1)
        self.conv = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.act, self.out_act = nn.ReLU(), nn.SiLU()
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.unsqueeze(1))
        h = self.out_act(h + self.act(self.bn(self.conv(h))))
        return self.head(h.mean(2))


def test_a_factory_model_given_in_python_follows_its_trajectory_alone() -> None:
    # The same check for any factory and data (the zoo's models get it this way). Not CELU:
    # torch's own CELU backward rounds 1 / alpha to single precision (3e-8 apart).
    _, data = example("functional_mlp")
    space = factory_space(_Residual1d, data, choices=["relu", "silu", "elu", "leaky_relu"],
                          train={"epochs": 2, "batch_size": 64})
    jobs = [(Candidate(layout(space, ("elu", 0.7), "silu"), "none", 3e-3), 1),
            (Candidate(layout(space, ("leaky_relu", 0.05), "relu"), "none", 1e-3), 2)]
    assert_population_follows_alone(space, data, jobs)


def test_batched_activation_computes_each_registered_activation() -> None:
    x = torch.linspace(-30, 30, 601, dtype=torch.float64, requires_grad=True)
    for name, param in [("relu", None), ("elu", 0.4), ("selu", None), ("leaky_relu", 0.1),
                        ("celu", 0.6), ("gelu", None), ("silu", None), ("tanh", None),
                        ("sigmoid", None)]:
        reference = create_activation(name, param).double()
        batched = BatchedActivation(name, param, torch.float64, torch.device("cpu"))
        # All terms computed, as at a site where members chose everything: still exact.
        batched.terms = ("relu", "expm1", "negative", "gelu", "silu", "tanh", "sigmoid")
        out, want = batched(x), reference(x)
        _close(out, want)
        (grad,) = torch.autograd.grad(out.sum(), x)
        (grad_want,) = torch.autograd.grad(want.sum(), x)
        assert torch.isfinite(grad).all()
        if name == "celu":  # torch's CELU backward rounds its 1 / alpha to single precision
            torch.testing.assert_close(grad, grad_want, rtol=1e-6, atol=1e-7)
        else:
            _close(grad, grad_want)


def test_large_inputs_give_finite_gradients_in_a_mixed_population() -> None:
    # A member with ELU beside one with ReLU: exp of a large input must not reach either.
    model = batchable(nn.Sequential(nn.Linear(3, 4), nn.ELU(0.5))).double()
    relu = batchable(nn.Sequential(nn.Linear(3, 4), nn.ReLU())).double()
    coef = torch.stack([model[1].coef, relu[1].coef])
    site = model[1]
    site.terms = ("relu", "expm1")
    x = torch.full((2, 5, 4), 800.0, dtype=torch.float64, requires_grad=True)
    out = torch.func.vmap(lambda c, v: torch.func.functional_call(site, {"coef": c}, (v,)))(
        coef, x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adam", 0.05),
                                                     ("adamw", 0.05), ("sgd", 0.0),
                                                     ("sgd", 0.05)])
def test_batched_step_equals_torch_optim_per_member(optimizer, weight_decay) -> None:
    space = load_space(EXAMPLES / "gated" / "space.yaml")
    recipe = dataclasses.replace(space.train, optimizer=optimizer, weight_decay=weight_decay)
    torch.manual_seed(0)
    k, p = 3, 7
    lrs = [1e-3, 3e-2, 2e-1]
    flat = torch.randn(k, p, dtype=torch.float64)
    moment1, moment2 = torch.zeros_like(flat), torch.zeros_like(flat)
    steps = torch.zeros(k, dtype=torch.float64)
    alone = [nn.Parameter(row.clone()) for row in flat]
    optimizers = [fit_optimizer(nn.ParameterList([w]), dataclasses.replace(recipe, lr=lr))
                  for w, lr in zip(alone, lrs, strict=True)]
    for _ in range(5):
        grad = torch.randn(k, p, dtype=torch.float64)
        batched_step(flat, grad, moment1, moment2, steps, torch.tensor(lrs, dtype=torch.float64),
                     recipe)
        for w, g, opt in zip(alone, grad, optimizers, strict=True):
            w.grad = g.clone()
            opt.step()
        _close(flat, torch.stack([w.detach() for w in alone]))


def test_pruned_members_leave_and_new_ones_take_their_slots() -> None:
    space, data = example("resnet_digits", {"epochs": 3})
    jobs = _resnet_jobs(space)
    trainer = PopulationTrainer(space, data, 2)
    first = [trainer.add(_job(c, s)) for c, s in jobs[:2]]
    trainer.train_epoch()
    trainer.stop(first[0])  # pruned after its first epoch
    third = trainer.add(_job(*jobs[2]))
    while trainer.active:
        trainer.train_epoch()
    assert first[0].result.status == "stopped" and len(first[0].result.history) == 1
    for member, (candidate, seed) in [(first[1], jobs[1]), (third, jobs[2])]:
        alone = _alone(space, data, candidate, seed)
        assert member.result.status == "complete" and member.shared_with == 2
        for stats, (val_loss, val_acc) in zip(member.result.history, alone["history"],
                                              strict=True):
            assert stats.val_acc == val_acc
            _close(stats.val_loss, val_loss)
        assert member.test_acc == evaluate(alone["model"], data.x_test, data.y_test)[1]


def test_out_of_memory_splits_a_stacked_population_and_lowers_capacity(monkeypatch) -> None:
    space, data = example("resnet_digits", {"epochs": 2})
    jobs = _resnet_jobs(space) + [(Candidate(layout(space, "relu", "relu", "gelu"), "none",
                                             1e-3), 13)]
    real, raised = StackedPopulation._losses, []

    def losses(self, params, xb, yb):
        if len(self.members) > 2:
            raised.append(len(self.members))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, params, xb, yb)

    monkeypatch.setattr(StackedPopulation, "_losses", losses)
    trainer = PopulationTrainer(space, data, 4)
    members = [trainer.add(_job(c, s)) for c, s in jobs]
    while trainer.active:
        trainer.train_epoch()
    assert raised == [4] and trainer.capacity == 2
    for member, (candidate, seed) in zip(members, jobs, strict=True):
        assert member.result.status == "complete" and member.shared_with == 2
        alone = _alone(space, data, candidate, seed)
        assert [h.val_acc for h in member.result.history] == [a for _, a in alone["history"]]


def _job(candidate: Candidate, seed: int) -> Job:
    return Job(candidate, seed)


def test_an_exception_fails_only_the_member_behind_it(monkeypatch) -> None:
    space, data = example("resnet_digits", {"epochs": 2})
    jobs = _resnet_jobs(space)
    culprit: list = []
    raised: list[int] = []
    real = StackedPopulation._losses

    def losses(self, params, xb, yb):  # the culprit raises in its second epoch, anywhere
        if culprit[0] in self.members and culprit[0].epochs_done == 1:
            raised.append(len(self.members))
            raise ValueError("boom in the batched step")
        return real(self, params, xb, yb)

    monkeypatch.setattr(StackedPopulation, "_losses", losses)
    trainer = PopulationTrainer(space, data, 3)
    members = [trainer.add(_job(c, s)) for c, s in jobs]
    culprit.append(members[0])
    while trainer.active:
        trainer.train_epoch()
    assert raised == [3, 2, 1]  # split 3 -> 2 + 1, the culprit's 2 -> 1 + 1: alone, it fails
    assert members[0].result.status == "failed" and members[0].epochs_done == 1
    assert members[0].error == "ValueError: boom in the batched step"
    for member, (candidate, seed) in zip(members[1:], jobs[1:], strict=True):
        # From the epoch boundary (weights, moments, running statistics): as alone.
        alone = _alone(space, data, candidate, seed)
        assert member.result.status == "complete"
        for stats, (val_loss, val_acc) in zip(member.result.history, alone["history"],
                                              strict=True):
            assert stats.val_acc == val_acc
            _close(stats.val_loss, val_loss)


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act, self.head = nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        if h.sum() > 0:  # data-dependent control flow: vmap cannot batch it
            h = h * 2
        return self.head(h)


def test_a_model_vmap_cannot_batch_trains_one_at_a_time_and_says_why() -> None:
    space, data = example("functional_mlp", {"epochs": 1})
    bad = factory_space(_DataDependent, data)
    reason = population_problem(bad, data)
    assert reason.startswith("model: torch.vmap cannot batch it (RuntimeError:")
    assert "\n" not in reason
    assert population_problem(space, data) is None
    members = train_candidates(bad, data, [(Candidate(layout(bad, "relu"), "none", 1e-3), 1)],
                               2)
    assert members[0].result.status == "failed"  # forced into a population anyway
    choice = auto_population(bad, data)
    assert choice.size == 1 and choice.why == f"population auto: 1 ({reason})"


@pytest.mark.slow  # times real epochs
def test_auto_population_on_the_cpu_picks_one_unless_it_pays(monkeypatch) -> None:
    import actsearch.training.population as population

    space, data = example("resnet_digits", {"epochs": 1})
    choice = auto_population(space, data, trials=40)
    assert choice.size >= 1 and choice.why.startswith(f"population auto: {choice.size}")
    # A population that costs nothing per member pays; one that costs as much as sequential
    # training per member does not.
    times = {"sequential": 1.0, 2: 0.2, 8: 0.2}
    monkeypatch.setattr(population, "_epoch_seconds",
                        lambda trainer, space, k: times[k if k > 1 else "sequential"])
    assert auto_population(space, data, trials=40).size == 8  # capped: launch-bound, 40 // 4 = 10
    times.update({2: 2.0, 8: 8.0})
    paid = auto_population(space, data, trials=40)
    assert paid.size == 1 and "under the 3x that pays" in paid.why


class _Branchy(nn.Module):
    """An MLP whose forward branches on its data (vmap refuses it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act, self.head = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        return self.head(h if h.mean() > 0 else -h)


def test_a_search_says_in_one_line_why_its_model_trains_one_at_a_time(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    import actsearch

    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    out = io.StringIO()
    result = actsearch.search(model=_Branchy, data=((x[:40], y[:40]), (x[40:], y[40:])),
                              epochs=1, trials=2, population=2, finalists=0, claim_seeds=0,
                              runs_dir=tmp_path, progress="plain", report=False,
                              console=Console(file=out, width=300), device="cpu")
    lines = [line for line in out.getvalue().splitlines() if "one candidate at a time" in line]
    assert len(lines) == 1
    assert lines[0].startswith("one candidate at a time: model: torch.vmap cannot batch it "
                               "(RuntimeError:")
    assert result.finished == 2


@pytest.mark.parametrize("make, kwargs, picks", [
    # The shipped deep residual CNN with batch norm (stem + stages x blocks), tied by stage.
    ("resnet1d", {"width": 4, "blocks": 1, "stages": 2, "norm": "batch"},
     [[("elu", 0.7), "selu"], ["relu", "gelu"]]),
    # The shipped gated sequence model: a gate group and a signal group.
    ("gated_conv", {"channels": 4, "hidden": 6, "depth": 2},
     [["sigmoid", ("elu", 1.3)], ["relu", "selu"]]),
])
def test_a_zoo_model_follows_its_trajectory_alone(make, kwargs, picks) -> None:
    from actsearch.zoo import gated, resnet

    factory = {"resnet1d": resnet.resnet1d, "gated_conv": gated.gated_conv}[make]
    _, data = example("functional_mlp")  # any (n, 40) inputs with 10 classes
    data = dataclasses.replace(data, x_train=data.x_train[:, :40], x_val=data.x_val[:, :40],
                               x_test=data.x_test[:, :40], input_shape=(40,))

    def model(**_: object) -> nn.Module:
        return factory(**kwargs)

    model.__name__ = make
    groups = ({"early": ["stem.*", "stages.0.*"], "deep": ["stages.1.*"]} if make == "resnet1d"
              else {"gate": ["*.gate_act"], "signal": ["*.signal_act"]})
    space = factory_space(model, data, groups=groups,
                          choices=["relu", "elu", "selu", "gelu", "sigmoid"],
                          train={"epochs": 2, "batch_size": 64})
    jobs = [(Candidate(layout(space, *pick), "none", lr), seed)
            for pick, lr, seed in zip(picks, (3e-3, 1e-3), (1, 2), strict=True)]
    population = assert_population_follows_alone(space, data, jobs)
    if make == "resnet1d":  # batch norm's running statistics, per member
        means = [b for n, b in population._buffers.items() if n.endswith("running_mean")]
        assert means and all(not torch.equal(m[0], m[1]) for m in means)
