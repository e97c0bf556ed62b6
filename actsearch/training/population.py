"""Train a population of candidate layouts at once: stacked weights, batched matmuls.

K candidates of one MLP shape keep their weights as the rows of one ``(K, P)`` tensor; each
linear layer is a view of it and runs as one ``baddbmm`` over the K candidates, and each
candidate's activation is picked per layer by coefficient tensors (ReLU, ELU(alpha) and SELU
are all ``x > 0 ? pos * x : neg * expm1(x)``). A small model leaves a GPU nearly idle; a
population fills it with one launch per op instead of K.

Each member keeps what ``fit`` gives a candidate trained alone: its initial weights
(``trainers.start_model``: the global generator seeded, then ``build_candidate``), its data
order (its own generator, one ``randperm`` per epoch), its own Adam moments and step count, its
own learning rate and cosine phase, its own per-epoch validation. So a member follows the
trajectory it would follow alone, up to floating-point rounding (checked in float64 in
tests/test_population.py), and a slot freed by a pruned candidate can take a new one mid-run.
Members join and leave only between epochs; all of them share the step grid because the data
set (hence the batch sizes) is shared.

``Population`` is one stack of one depth; its bookkeeping and training loop are those of
``batched.MemberStacks``, as ``StackedPopulation``'s are. ``PopulationTrainer`` is the
``trainers.Trainer`` the search drives: it keeps a population per depth, and finds the member
behind a fault of a batched step by splitting (see its docstring). The hand-written
``Population`` serves MLPs without norm or dropout over ReLU/ELU/SELU (``handwritten``); every
other model (CNNs, norm, dropout, other activations, factory models) trains as a
``batched.StackedPopulation`` (``torch.func`` under ``vmap``) through the same trainer, unless
``population_problem`` says why not (then ``trainers.SequentialTrainer``). ``auto_population``
picks K from a measurement.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import SELU_ALPHA, SELU_SCALE
from actsearch.models.layout import Candidate, Layout
from actsearch.schema.space import SearchSpace
from actsearch.training.batched import (
    MemberStacks,
    Slot,
    Snapshot,
    StackedPopulation,
    batching_problem,
    missing_forms,
)
from actsearch.training.data import DeviceData
from actsearch.training.fit import EpochStats, FitResult, evaluate
from actsearch.training.trainers import (
    Job,
    Member,
    SequentialTrainer,
    Trainer,
    free_memory,
    is_out_of_memory,
    start_model,
)

__all__ = [
    "Population",
    "PopulationChoice",
    "PopulationTrainer",
    "SeedRun",
    "auto_measures",
    "auto_population",
    "handwritten",
    "population_problem",
    "population_support",
    "resolve_population",
    "supports_population",
    "train_candidates",
    "train_seeds",
]

# Activations the hand-written MLP population mixes: x > 0 ? pos * x : neg * expm1(x).
_ELU_FORM = ("relu", "elu", "selu")
_EVAL_BATCH = 4096  # as train.evaluate


def _without_norm(candidate: Candidate) -> Candidate:
    # The hand-written stack has no norm layers: its members are built without one.
    return dataclasses.replace(candidate, norm="none")


def handwritten(space: SearchSpace) -> bool:
    """Whether the space's candidates train as the hand-written MLP ``Population``: a plain
    MLP (no factory, norm or dropout) over ReLU/ELU/SELU. Other models stack with
    ``torch.func`` (``batched.StackedPopulation``)."""
    model = space.model
    return (model.factory is None and model.family == "mlp" and model.dropout == 0
            and all(norm == "none" for norm in model.norm)
            and all(name in _ELU_FORM for name in space.choices))


def population_support(space: SearchSpace) -> str | None:
    """Why the space's candidates cannot train as a population, from the space alone (one
    line), or None when they may (``population_problem`` also tries the model)."""
    if len(space.objectives) > 1:
        return "objectives: populations serve single-objective studies only"
    if not space.train.classification or space.scoring is not None:
        return "train.loss/train.metric: populations train with cross-entropy and accuracy only"
    names = [*space.choices, *(c for g in space.groups.values() for c in g.choices or ())]
    missing = missing_forms(names)
    if missing:
        return f"activations.choices: {missing[0]} has no batched form " \
               f"(ActivationSpec.batched), so candidates train one at a time"
    return None


def supports_population(space: SearchSpace) -> bool:
    """Whether the space's candidates may train as a population (see population_support)."""
    return population_support(space) is None


def population_problem(space: SearchSpace, data: DeviceData) -> str | None:
    """Why the space's candidates cannot train as a population (one line), or None: the
    space's reasons, then, for a model stacked with ``torch.func``, a tried batched step
    (``batching_problem``: vmap refuses data-dependent control flow and ``.item()``)."""
    reason = population_support(space)
    if reason is None and data.loaders is not None:
        reason = "data.factory: DataLoaders are iterated as given, one model at a time"
    if reason is None and not handwritten(space):
        reason = batching_problem(space, data)
    return reason


class Population(MemberStacks):
    """Members of one MLP shape (same depth and width) trained together, epoch by epoch.

    Args:
        space: The space (its model and training recipe; the learning rate is per member).
        data: Splits on the device; the population trains in their dtype.
        depth: The number of hidden layers every member has.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, depth: int) -> None:
        if not handwritten(space):
            raise ActsearchError(population_support(space) or "model: the hand-written "
                                 "population serves plain MLPs over relu, elu and selu only")
        self.depth = depth
        features = math.prod(data.input_shape)
        width = space.model.width
        sizes = [features] + [width] * depth + [data.n_classes]
        # (offset, out, in) of each linear layer's weight in a member's flat parameter row;
        # its bias follows the weight. The order is that of model.parameters().
        self._linears: list[tuple[int, int, int]] = []
        offset = 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            self._linears.append((offset, fan_out, fan_in))
            offset += fan_out * fan_in + fan_out
        self.n_params = offset
        # Each member's activations as x > 0 ? pos * x : neg * expm1(x), per layer.
        super().__init__(space, data, offset, {"pos": (depth,), "neg": (depth,)})

    @property
    def key(self) -> int:
        """What its members share (``PopulationTrainer`` groups by it): the depth."""
        return self.depth

    def add(self, layout: Layout, seed: int, lr: float | None = None,
            tag: Any = None) -> Member:
        """Add a candidate; it joins at the next epoch with the weights ``fit`` would start from.

        Args:
            layout: Its activations; the depth must be the population's.
            seed: Seeds its initial weights and its data order, as for ``fit``.
            lr: Its learning rate (default: the space's, when fixed).
            tag: Anything the caller wants back with the member.
        """
        if lr is None:
            if not isinstance(self.space.train.lr, float):
                raise ActsearchError("lr: the space searches lr, so pass each member's lr")
            lr = self.space.train.lr
        member = Member(Job(Candidate(layout, "none", float(lr)), seed, tag))
        self._join(member)
        return member

    def _join(self, member: Member) -> None:
        """Queue a new member; its weights are built when it joins (``_sync``)."""
        layout = member.candidate.layout
        if layout.depth != self.depth:
            raise ActsearchError(f"layout {layout}: depth {layout.depth}, but this population "
                                 f"has depth {self.depth}")
        for layer in layout.layers:
            if layer.activation not in _ELU_FORM:
                raise ActsearchError(f"layout {layout}: populations support "
                                     f"{', '.join(_ELU_FORM)}, not {layer.activation}")
        self._pending.append((member, None))

    def _start(self, member: Member) -> Slot:
        """A new member's state: exactly the standalone model's init (the same global seed,
        the same build) and fit.Run's generator."""
        model = start_model(self.space, self.data, _without_norm(member.candidate), member.seed)
        row = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        generator = torch.Generator(device=self.device).manual_seed(member.seed)
        # Every activation as x > 0 ? pos * x : neg * expm1(x): ReLU has neg 0, ELU neg
        # alpha, SELU pos scale and neg alpha * scale (torch's own coefficients).
        pos_neg = []
        for layer in member.candidate.layout.layers:
            if layer.activation == "relu":
                pos_neg.append((1.0, 0.0))
            elif layer.activation == "elu":
                pos_neg.append((1.0, float(1.0 if layer.param is None else layer.param)))
            else:
                pos_neg.append((SELU_SCALE, SELU_ALPHA * SELU_SCALE))
        coefs = torch.tensor(pos_neg, device=self.device, dtype=self.dtype)  # (depth, 2)
        return Slot(row.to(self.device, self.dtype), None, None, None, generator,
                    {"pos": coefs[:, 0], "neg": coefs[:, 1]})

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Linear layer i's weight (K, out, in) and bias (K, out), ``{i}.weight`` and
        ``{i}.bias``, as views of the stacked rows.

        As leaves of their own, their gradients come back per layer and are concatenated
        once; gradients through slices of one leaf would cost a zero-filled (K, P) each.
        """
        k, views = flat.shape[0], {}
        for i, (offset, fan_out, fan_in) in enumerate(self._linears):
            end = offset + fan_out * fan_in
            views[f"{i}.weight"] = flat[:, offset:end].view(k, fan_out, fan_in)
            views[f"{i}.bias"] = flat[:, end:end + fan_out]
        return views

    def _forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of flat inputs (K, B, features), or (B, features) shared."""
        k = params["0.weight"].shape[0]
        h = x if x.dim() == 3 else x.expand(k, *x.shape)
        for i in range(self.depth + 1):
            weight, bias = params[f"{i}.weight"], params[f"{i}.bias"]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            if i < self.depth:
                pos = self._buffers["pos"][:, i, None, None]
                neg = self._buffers["neg"][:, i, None, None]
                # x > 0 ? pos * x : neg * expm1(x), exactly: relu(x) is x or 0 and elu(x) - relu(x)
                # is 0 or expm1(x). Unlike where(), whose CPU kernel is slow, it also stays
                # finite in the branch not taken.
                r = torch.relu(h)
                h = r * pos + (F.elu(h) - r) * neg
        return h

    def _losses(self, params: dict[str, torch.Tensor], xb: torch.Tensor,
                yb: torch.Tensor) -> torch.Tensor:
        logits = self._forward(params, xb)
        k, b, c = logits.shape
        return F.cross_entropy(logits.reshape(k * b, c), yb.reshape(k * b),
                               reduction="none").view(k, b).mean(1)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        """Mean cross-entropy and accuracy of every stacked member (as ``train.evaluate``)."""
        params, x = self._views(self._flat), self._inputs(x)
        k = self._flat.shape[0]
        loss = torch.zeros(k, device=x.device, dtype=torch.float64)
        correct = torch.zeros(k, device=x.device, dtype=torch.int64)
        for i in range(0, len(x), _EVAL_BATCH):
            out = self._forward(params, x[i:i + _EVAL_BATCH])
            yb = y[i:i + _EVAL_BATCH]
            b, c = out.shape[1], out.shape[2]
            per = F.cross_entropy(out.reshape(k * b, c), yb.repeat(k), reduction="none")
            loss += per.view(k, b).sum(1).double()
            correct += (out.argmax(2) == yb).sum(1)
        n = max(len(x), 1)
        return [(lo / n, c / n) for lo, c in zip(loss.tolist(), correct.tolist(), strict=True)]

    def to_model(self, member: Member) -> nn.Sequential:
        """A standalone model (the one ``start_model`` gives) holding the member's current
        weights; the global generator is left as it was."""
        row = self._flat[self.members.index(member)].detach()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model = start_model(self.space, self.data, _without_norm(member.candidate),
                                member.seed)
        with torch.no_grad():
            offset = 0
            for p in model.parameters():
                p.copy_(row[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return model


class PopulationTrainer:
    """The ``trainers.Trainer`` that trains up to ``capacity`` candidates as populations.

    Candidates of one depth stack into one ``Population`` (the hand-written MLP's) or
    ``batched.StackedPopulation`` (any other model; one per depth and norm: weights of
    different shapes cannot stack); members join and leave only between epochs. A member
    that completes gets its test metrics and ``model``, a standalone copy for the probes,
    measured on that copy as a candidate trained alone is.

    Faults follow ``trainers``' policy: an exception while training a member fails that
    member and the others go on. An exception from a batched step names no member, so every
    epoch starts from a snapshot of the population (weights, optimizer moments and step
    counts, generator states, results); on an exception the population goes back to it and
    trains the epoch again in two halves, each split again while it fails, until the member
    behind it trains alone and fails. The others' epoch is then the one they would have had
    without it (each member's arithmetic is its own), and the halves stack again afterwards.
    Running out of memory splits the same way, and also lowers ``capacity`` to the larger
    half, so that populations (and refills) stay at a size that fits; only a member that
    runs out of memory alone fails (``out of memory: ...``). KeyboardInterrupt is never
    caught.

    Args:
        space: The space (model and recipe); it must be one a population can train
            (``population_problem``).
        data: Splits on the device; populations train in their dtype.
        capacity: The most members that train at once.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, capacity: int) -> None:
        reason = population_support(space)
        if reason is not None:
            raise ActsearchError(reason)
        if capacity < 1:
            raise ActsearchError(f"capacity: expected a positive integer, got {capacity!r}")
        self.space, self.data, self.capacity = space, data, capacity
        self._handwritten = handwritten(space)
        # One per key (depth, and norm for stacked models), more after running out.
        self._populations: list[Population | StackedPopulation] = []

    def _key(self, candidate: Candidate) -> Any:
        """What members must share to stack together."""
        depth = candidate.layout.depth
        return depth if self._handwritten else (depth, candidate.norm)

    def _population(self, key: Any) -> Population | StackedPopulation:
        if self._handwritten:
            return Population(self.space, self.data, key)
        return StackedPopulation(self.space, self.data, key)

    @property
    def active(self) -> int:
        """Members that will train in the next epoch."""
        return sum(len(p) for p in self._populations)

    def add(self, job: Job) -> Member:
        """Add a candidate; it joins a population of its depth at the next epoch."""
        if self.active >= self.capacity:
            raise RuntimeError(f"PopulationTrainer is full ({self.capacity} members)")
        key = self._key(job.candidate)
        member = Member(job)
        population = next((p for p in self._populations
                           if p.key == key and len(p) < self.capacity), None)
        if population is None:
            population = self._population(key)
            population._join(member)  # raises on a layout no population can train
            self._populations.append(population)
        else:
            population._join(member)
        return member

    def stop(self, member: Member) -> None:
        """Stop a member (pruned): its status becomes ``stopped``; it leaves before the next
        epoch."""
        member.result.status = "stopped"

    def train_epoch(self) -> list[Member]:
        """Train every running member one epoch; returns each member that trained or failed.

        A failed member's history ends at its last whole epoch (the one that failed is not
        in it); a complete one has ``test_loss``, ``test_acc`` and ``model``.
        """
        out: list[Member] = []
        kept: list[Population | StackedPopulation] = []
        for population in self._populations:
            done, parts = self._train(population)
            out += done
            kept += parts
        self._populations = self._regroup(kept)
        return out

    def _train(self, population: Population | StackedPopulation
               ) -> tuple[list[Member], list[Population | StackedPopulation]]:
        """One epoch of ``population``, split on a fault; returns the members that trained or
        failed, and the populations that go on (itself, or its parts after a split)."""
        snapshot: Snapshot | None = None
        failed: list[Member] = []
        out_of_memory = False
        try:
            population._sync()
            if population.members:
                snapshot = population._snapshot()
            trained = population.train_epoch()
        except ActsearchError:  # a user mistake: every member would fail the same way
            raise
        except Exception as e:  # the fault policy; KeyboardInterrupt passes
            out_of_memory = is_out_of_memory(e)
            if snapshot is not None:  # back to the epoch boundary, results included
                population._restore(snapshot)
            running = population.running
            if len(running) == 1:
                running[0].fail(e)
                failed = running
        else:
            return self._complete(population, [m for m, _ in trained]), [population]
        # Out of the except block the failed step's tensors are unreferenced: freed here,
        # before the halves train.
        del snapshot
        free_memory()
        if failed or not population.running:
            return failed, []
        slots = population._release()
        half = (len(slots) + 1) // 2
        if out_of_memory:
            self.capacity = max(1, min(self.capacity, half))
        out: list[Member] = []
        parts: list[Population | StackedPopulation] = []
        for chunk in (slots[:half], slots[half:]):
            part = self._population(population.key)
            part._admit(chunk)
            done, more = self._train(part)
            out += done
            parts += more
        return out, parts

    def _complete(self, population: Population | StackedPopulation,
                  trained: list[Member]) -> list[Member]:
        """Test metrics and a standalone model for each member that completed."""
        faults = False
        for member in trained:
            if member.result.status != "complete":
                continue
            try:
                # Per-candidate measurements run on the candidate's own standalone model.
                model = population.to_model(member)
                member.test_loss, member.test_acc = evaluate(model, self.data.x_test,
                                                             self.data.y_test)
                member.model = model
            except ActsearchError:
                raise
            except Exception as e:  # the fault policy: this member fails, the others go on
                member.fail(e)
                faults = True
        if faults:
            free_memory()
        return trained

    def _regroup(self, populations: list[Population | StackedPopulation]
                 ) -> list[Population | StackedPopulation]:
        """Stack populations of one depth together while they fit in ``capacity``: the parts
        of a split join again once the fault is gone (or, after running out of memory, once
        enough members have left)."""
        out: list[Population | StackedPopulation] = []
        for population in populations:
            size = len(population)
            if size == 0:
                continue
            host = next((p for p in out if p.key == population.key
                         and len(p) + size <= self.capacity), None)
            if host is None:
                out.append(population)
            else:
                host._admit(population._release())
        return out


def _train_jobs(trainer: Trainer, jobs: Iterable[Job],
                on_epoch: Callable[[Member, EpochStats], bool] | None = None) -> list[Member]:
    """Train ``jobs`` with ``trainer``, refilling its free places between epochs; returns
    the members in the order of ``jobs``, finished."""
    members: list[Member] = []
    pending = iter(jobs)
    exhausted = False
    while True:
        while not exhausted and trainer.active < trainer.capacity:
            job = next(pending, None)
            if job is None:
                exhausted = True
            else:
                members.append(trainer.add(job))
        if not trainer.active:
            return members
        for member in trainer.train_epoch():
            if on_epoch is None or member.result.status not in ("running", "complete"):
                continue
            if on_epoch(member, member.result.history[-1]) is False:
                # As in fit, a callback may stop a run even at its last epoch.
                if member.result.status == "complete":
                    member.test_loss = member.test_acc = member.model = None
                trainer.stop(member)


def train_candidates(space: SearchSpace, data: DeviceData,
                     jobs: Iterable[tuple[Candidate, int]], population: int,
                     on_epoch: Callable[[Member, EpochStats], bool] | None = None
                     ) -> list[Member]:
    """Train candidates with their seeds, ``population`` at a time (``PopulationTrainer``).

    Returns the members in the order of ``jobs``, finished (``complete`` ones with test
    metrics and ``model``; ``failed`` ones with ``error``). ``on_epoch(member, stats)``
    returning False stops that member, as for ``fit``.
    """
    trainer = PopulationTrainer(space, data, population)
    return _train_jobs(trainer, (Job(c, seed, i) for i, (c, seed) in enumerate(jobs)),
                       on_epoch)


@dataclass(frozen=True)
class SeedRun:
    """One seed's run of a candidate: its fit result and test metrics (when complete)."""

    seed: int
    result: FitResult
    test_loss: float | None
    test_acc: float | None
    error: str | None = None  # why it failed, when it did
    model: nn.Module | None = None  # the trained network (complete runs), for probes


def train_seeds(space: SearchSpace, data: DeviceData, candidate: Candidate,
                seeds: Sequence[int]) -> list[SeedRun]:
    """Retrain one candidate with each seed (a finalist's repeats), as one population.

    Without pruning. Spaces a population cannot train run the seeds one by one
    (``SequentialTrainer``); the results are the same either way up to floating-point
    rounding (but dropout's masks). A seed whose training raises is a ``failed`` run; the
    others go on. Models stacked with ``torch.func`` train their seeds as a population on a
    GPU only: on a CPU such a stack is slower than one at a time (0.6-0.8x for
    examples/resnet_digits in bench/population.py), where the hand-written MLP stack is not.
    """
    trainer: Trainer
    stacks = handwritten(space) or (len(seeds) > 1 and data.x_train.device.type != "cpu")
    if stacks and population_problem(space, data) is None:
        trainer = PopulationTrainer(space, data, max(1, len(seeds)))
    else:
        trainer = SequentialTrainer(space, data)
    members = _train_jobs(trainer, [Job(candidate, seed) for seed in seeds])
    return [SeedRun(m.seed, m.result, m.test_loss, m.test_acc, m.error, m.model)
            for m in members]


# A population must train a candidate-epoch this many times faster than one at a time before
# auto picks it. On the 2-core CPU the hand-written MLP population was written on, K=8 trained
# 24 unpruned candidates 2-3x faster than train.fit one by one, yet a 45 s search of
# mnist1d_mlp with its median pruner finished 100 trials at K=8 against 150 one at a time:
# sequential trials are pruned against every earlier result, sooner. Below 3x it does not pay.
_PAYS = 3.0
_LARGEST = 512  # auto's ceiling, whatever the fit says
_MEASURED_STEPS = 4  # training steps per measured epoch


@dataclass(frozen=True)
class PopulationChoice:
    """The population size ``auto`` picked, and why (one line)."""

    size: int
    why: str


def _epoch_seconds(trainer: Trainer, space: SearchSpace, k: int) -> float:
    """Seconds of an epoch of ``k`` members: the faster of the second and third (the first
    builds them; the faster of two is less at the mercy of other processes)."""
    lr = space.train.lr if isinstance(space.train.lr, float) else 1e-3
    candidates = _uniform(space, lr)
    for i in range(k):
        trainer.add(Job(candidates[i % len(candidates)], i))
    trainer.train_epoch()
    device = trainer.data.x_train.device  # type: ignore[attr-defined]
    best = math.inf
    for _ in range(2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        trainer.train_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def _uniform(space: SearchSpace, lr: float) -> list[Candidate]:
    """The measurement's members: the k-th choice of every group (its first where it has
    fewer), so that several activations mix at each site as in a search."""
    from actsearch.models.activations import get_activation
    from actsearch.models.layout import Layer

    if space.custom is not None:
        groups = [g.choices for g in space.custom.groups]
        names = tuple(g.name for g in space.custom.groups)
    else:
        groups, names = [space.choices] * space.depths[0], None
    out = []
    for k in range(max(len(choices) for choices in groups)):
        picked = [choices[k] if k < len(choices) else choices[0] for choices in groups]
        layout = Layout(tuple(Layer(n, get_activation(n).default) for n in picked), names)
        out.append(Candidate(layout, space.model.norm[0], lr))
    return out


def auto_population(space: SearchSpace, data: DeviceData,
                    trials: int | None = None) -> PopulationChoice:
    """The population size that pays for this model on this device, from a short measurement.

    Times an epoch of ``_MEASURED_STEPS`` steps one at a time (``SequentialTrainer``) and as
    populations of two sizes (CPU: 2 and 8; CUDA: 8 and 64), fits a population's epoch as
    ``a + b K`` (a: what K members share, launches; b: each member's own work) and takes
    the smallest K within 10% of the best time per candidate (``10 a / b``), capped by half
    the free GPU memory over the measured memory per member, ``_LARGEST`` and a quarter of
    ``trials`` (the sampler should see several generations of results). It picks 1 when the
    space cannot train as a population, or when K members do not train a candidate-epoch
    ``_PAYS`` times faster than one at a time.
    """
    if not auto_measures(trials):  # nothing to measure
        return PopulationChoice(1, f"population auto: 1 (a quarter of {trials} trials)")
    reason = population_problem(space, data)
    if reason is not None:
        return PopulationChoice(1, f"population auto: 1 ({reason})")
    device = data.x_train.device
    cuda = device.type == "cuda"
    bs = space.train.batch_size
    take = min(len(data.x_train), bs * _MEASURED_STEPS)
    short = DeviceData(data.x_train[:take], data.y_train[:take], data.x_val[:bs],
                       data.y_val[:bs], data.x_test[:bs], data.y_test[:bs], data.input_shape,
                       data.n_classes)
    measured = dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=100))
    small, large = (8, 64) if cuda else (2, 8)
    with torch.random.fork_rng(devices=[device] if cuda else []):
        alone = _epoch_seconds(SequentialTrainer(measured, short), measured, 1)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        t_small = _epoch_seconds(PopulationTrainer(measured, short, small), measured, small)
        peak_small = torch.cuda.max_memory_allocated(device) - base if cuda else 0
        if cuda:
            free_memory()
            torch.cuda.reset_peak_memory_stats(device)
        trainer = PopulationTrainer(measured, short, large)
        t_large = _epoch_seconds(trainer, measured, large)
        peak_large = torch.cuda.max_memory_allocated(device) - base if cuda else 0
    free_memory()
    fitted = trainer.capacity  # lowered when the large population ran out of memory
    per_member = (t_large - t_small) / (large - small)
    shared = max(t_small - per_member * small, 0.0)
    if per_member <= 0:  # launch-bound at both sizes: the larger one is the best measured
        size = large
    else:
        size = max(2, math.ceil(10 * shared / per_member))
    caps = [f"at most {_LARGEST}"]
    size = min(size, _LARGEST)
    if fitted < large:
        caps.append(f"out of memory above {fitted} members")
        size = min(size, fitted)
    if cuda and peak_large > peak_small:
        bytes_per_member = (peak_large - peak_small) / (large - small)
        fits = int(0.5 * torch.cuda.mem_get_info(device)[0] / bytes_per_member)
        caps.append(f"{bytes_per_member / 2**20:.1f} MiB per member")
        size = min(size, max(1, fits))
    if trials is not None:
        size = max(1, min(size, trials // 4))
        caps.append(f"a quarter of {trials} trials")
    if size < 2:
        return PopulationChoice(1, f"population auto: 1 (capped by {', '.join(caps)})")
    predicted = shared / size + max(per_member, 0.0)
    gain = alone / predicted if predicted > 0 else float("inf")
    timing = (f"an epoch of {_MEASURED_STEPS} steps takes {alone * 1e3:.1f} ms alone, "
              f"{t_small * 1e3:.1f} ms for {small} members, {t_large * 1e3:.1f} ms for {large}")
    if gain < _PAYS:
        return PopulationChoice(1, f"population auto: 1 ({timing}: the best size, {size}, "
                                   f"would train {gain:.1f}x as fast, under the {_PAYS:.0f}x "
                                   f"that pays)")
    return PopulationChoice(size, f"population auto: {size} ({timing}: {gain:.1f}x as fast per "
                                  f"candidate; {', '.join(caps)})")


def auto_measures(trials: int | None) -> bool:
    """Whether ``auto`` measures populations for a budget of ``trials``: a quarter of it (the
    largest population ``auto`` takes) must hold at least two members."""
    return trials is None or trials // 4 >= 2


def resolve_population(value: int | str, space: SearchSpace | None = None,
                       data: DeviceData | None = None,
                       trials: int | None = None) -> PopulationChoice:
    """``auto`` or a positive integer (the ``population`` setting) -> the population size.

    ``auto`` needs the space and its data on the training device (``auto_population``).
    """
    if value == "auto":
        if space is None or data is None:
            raise ActsearchError("population: auto needs the space and its data",
                                 parameter="population")
        return auto_population(space, data, trials)
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise ActsearchError(f"population: expected a positive integer or auto, got {value!r}",
                             parameter="population")
    return PopulationChoice(size, f"population {size}: as asked")
