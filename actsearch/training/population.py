"""Train a population of candidate layouts at once: stacked weights, batched matmuls.

K candidates of one MLP shape keep their weights as the rows of one ``(K, P)`` tensor; each
linear layer is a view of it and runs as one ``baddbmm`` over the K candidates, and each
candidate's activation is picked per layer by coefficient tensors (ReLU, ELU(alpha) and SELU
are all ``x > 0 ? pos * x : neg * expm1(x)``). A small model leaves a GPU nearly idle; a
population fills it with one launch per op instead of K.

Each member keeps what ``train.fit`` gives a candidate trained alone: its initial weights
(``torch.manual_seed(seed); build_model(...)``), its data order (its own generator, one
``randperm`` per epoch), its own Adam moments and step count, its own learning rate and cosine
phase, its own per-epoch validation. So a member follows the trajectory it would follow alone,
up to floating-point rounding (checked in float64 in tests/test_population.py), and a slot
freed by a pruned candidate can take a new one mid-run. Members join and leave only between
epochs; all of them share the step grid because the data set (hence the batch sizes) is shared.

Populations support MLPs without norm or dropout over ReLU/ELU/SELU (``population_support``
says why not otherwise); the search then runs one trial at a time, as ``study.run_search``
does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import SELU_ALPHA, SELU_SCALE
from actsearch.models.build import build_model
from actsearch.models.layout import Candidate, Layout
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.fit import (
    ADAM_BETAS,
    ADAM_EPS,
    SGD_MOMENTUM,
    EpochStats,
    FitResult,
    Recipe,
    epoch_loss,
    epoch_lr,
    evaluate,
    fit,
    recipe_for,
)

__all__ = [
    "Member",
    "Population",
    "SeedRun",
    "auto_population",
    "population_support",
    "resolve_population",
    "supports_population",
    "train_candidates",
    "train_seeds",
]

# Activations a population can mix: those of the form x > 0 ? pos * x : neg * expm1(x).
_ELU_FORM = ("relu", "elu", "selu")
_EVAL_BATCH = 4096  # as train.evaluate
# On a GPU the step of a small MLP is launch-bound, so K candidates cost about what one does
# until the GPU fills up. On the 2-core CPU this was written on, K=8 trained 24 unpruned
# candidates 2-3x faster than train.fit one by one (bench/population.py), but a 45 s search of
# mnist1d_mlp with its median pruner finished 100 trials at K=8 against 150 sequentially:
# sequential trials are pruned against every earlier result, sooner. Hence 1 on the CPU.
_CUDA_POPULATION = 64
_CPU_POPULATION = 1


def population_support(space: SearchSpace) -> str | None:
    """Why the space's candidates cannot train as a population, or None when they can."""
    model = space.model
    if model.family != "mlp":
        return f"model.family {model.family}: populations support mlp only"
    if any(norm != "none" for norm in model.norm):
        return "model.norm: populations support norm none only"
    if model.dropout > 0:
        return "model.dropout: populations support dropout 0 only"
    if len(space.objectives) > 1:
        return "objectives: populations serve single-objective studies only"
    other = [name for name in space.choices if name not in _ELU_FORM]
    if other:
        return f"activations.choices: populations support {', '.join(_ELU_FORM)}, not " \
               f"{', '.join(other)}"
    return None


def supports_population(space: SearchSpace) -> bool:
    """Whether the space's candidates can train as a population (see population_support)."""
    return population_support(space) is None


def auto_population(device: torch.device | str, trials: int | None = None) -> int:
    """The population size that pays on ``device``: 1 on the CPU, 64 on CUDA.

    On the CPU a search with pruning finished fewer trials in the same time with populations
    than one at a time (measured; see the comment above). With ``trials``, the size is capped
    at a quarter of the budget so that the sampler still sees several generations of results.
    """
    device = torch.device(device)
    size = _CUDA_POPULATION if device.type == "cuda" else _CPU_POPULATION
    if trials is not None:
        size = max(1, min(size, trials // 4))
    return size


def resolve_population(value: int | str, device: torch.device | str,
                       trials: int | None = None) -> int:
    """``auto`` or a positive integer (as given to ``--population``) -> the population size."""
    if value == "auto":
        return auto_population(device, trials)
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise ActsearchError(f"--population: expected a positive integer or auto, got {value!r}")
    return size


@dataclass(eq=False)
class Member:
    """One candidate in a population: its layout, seed, learning rate and progress.

    ``result`` is a ``train.FitResult`` whose status is ``running`` until the member completes,
    is stopped or diverges; ``train_seconds`` in it is the member's share of the population's
    training time (each epoch's time divided by the members that trained in it).
    """

    layout: Layout
    seed: int
    lr: float
    tag: Any = None  # the caller's handle, e.g. the Optuna trial
    result: FitResult = field(default_factory=lambda: FitResult("running"))
    test_loss: float | None = None
    test_acc: float | None = None
    shared_with: int = 1  # the most members that trained together with this one
    model: nn.Module | None = None  # complete members: a standalone copy, for the probes
    _generator: torch.Generator | None = field(default=None, repr=False)

    @property
    def epochs_done(self) -> int:
        return len(self.result.history)


class Population:
    """Members of one MLP shape (same depth and width) trained together, epoch by epoch.

    Args:
        space: The space (its model and training recipe; the learning rate is per member).
        data: Splits on the device; the population trains in their dtype.
        depth: The number of hidden layers every member has.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, depth: int) -> None:
        reason = population_support(space)
        if reason is not None:
            raise ActsearchError(reason)
        self.space, self.data, self.depth = space, data, depth
        t = space.train
        self.recipe = Recipe(t.optimizer, 0.0, t.weight_decay, t.batch_size, t.epochs,
                             t.schedule)
        self.device, self.dtype = data.x_train.device, data.x_train.dtype
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
        self.members: list[Member] = []  # one per row of the stacked tensors
        self._pending: list[tuple[Member, torch.Tensor]] = []
        self._flat = self._empty()
        self._moment1 = self._empty()  # Adam's exp_avg, or SGD's momentum buffer
        self._moment2 = self._empty()  # Adam's exp_avg_sq
        self._steps = torch.zeros(0, device=self.device, dtype=torch.float64)
        self._coefs = torch.zeros(2, depth, 0, 1, 1, device=self.device, dtype=self.dtype)
        self._params = self._views(self._flat)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(0, self.n_params, device=self.device, dtype=self.dtype)

    def __len__(self) -> int:
        return len(self.running)

    @property
    def running(self) -> list[Member]:
        """Members that will train in the next epoch (joined, not finished)."""
        joined = [m for m in self.members if m.result.status == "running"]
        return joined + [m for m, _ in self._pending if m.result.status == "running"]

    def add(self, layout: Layout, seed: int, lr: float | None = None,
            tag: Any = None) -> Member:
        """Add a candidate; it joins at the next epoch with the weights ``fit`` would start from.

        Args:
            layout: Its activations; the depth must be the population's.
            seed: Seeds its initial weights and its data order, as for ``train.fit``.
            lr: Its learning rate (default: the space's, when fixed).
            tag: Anything the caller wants back with the member.
        """
        if layout.depth != self.depth:
            raise ActsearchError(f"layout {layout}: depth {layout.depth}, but this population "
                                 f"has depth {self.depth}")
        for layer in layout.layers:
            if layer.activation not in _ELU_FORM:
                raise ActsearchError(f"layout {layout}: populations support "
                                     f"{', '.join(_ELU_FORM)}, not {layer.activation}")
        if lr is None:
            if not isinstance(self.space.train.lr, float):
                raise ActsearchError("the space searches lr: pass each member's lr")
            lr = self.space.train.lr
        # Exactly the standalone model's init: the same global seed, the same build.
        torch.manual_seed(seed)
        model = build_model(self.space.model, layout, self.data.input_shape,
                            self.data.n_classes, "none")
        row = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        generator = torch.Generator(device=self.device).manual_seed(seed)
        member = Member(layout, seed, float(lr), tag, _generator=generator)
        self._pending.append((member, row.to(self.device, self.dtype)))
        return member

    def stop(self, member: Member) -> None:
        """Stop a member (e.g. pruned); it leaves the population before the next epoch."""
        member.result.status = "stopped"

    def _sync(self) -> None:
        """Drop finished members and stack the pending ones; only ever between epochs."""
        keep = [i for i, m in enumerate(self.members) if m.result.status == "running"]
        new = [(m, row) for m, row in self._pending if m.result.status == "running"]
        self._pending = []
        if len(keep) == len(self.members) and not new:
            return
        index = torch.tensor(keep, device=self.device, dtype=torch.long)
        rows = [row for _, row in new]
        zeros = torch.zeros(len(new), self.n_params, device=self.device, dtype=self.dtype)
        self._flat = torch.cat([self._flat[index], *[r[None] for r in rows]])
        self._moment1 = torch.cat([self._moment1[index], zeros])
        self._moment2 = torch.cat([self._moment2[index], zeros])
        self._steps = torch.cat([self._steps[index], self._steps.new_zeros(len(new))])
        self.members = [self.members[i] for i in keep] + [m for m, _ in new]
        # Every activation as x > 0 ? pos * x : neg * expm1(x): ReLU has neg 0, ELU neg
        # alpha, SELU pos scale and neg alpha * scale (torch's own coefficients).
        coefs = []
        for m in self.members:
            pos_neg = []
            for layer in m.layout.layers:
                if layer.activation == "relu":
                    pos_neg.append((1.0, 0.0))
                elif layer.activation == "elu":
                    pos_neg.append((1.0, float(1.0 if layer.param is None else layer.param)))
                else:
                    pos_neg.append((SELU_SCALE, SELU_ALPHA * SELU_SCALE))
            coefs.append(pos_neg)
        self._coefs = torch.tensor(coefs, device=self.device, dtype=self.dtype).reshape(
            len(self.members), self.depth, 2).permute(2, 1, 0)[..., None, None].contiguous()
        for m in self.members:
            m.shared_with = max(m.shared_with, len(self.members))
        self._params = self._views(self._flat)

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's weight (K, out, in) and bias (K, out) as views of the stacked rows.

        As leaves of their own, their gradients come back per layer and are concatenated
        once; gradients through slices of one leaf would cost a zero-filled (K, P) each.
        """
        k, views = flat.shape[0], []
        for offset, fan_out, fan_in in self._linears:
            end = offset + fan_out * fan_in
            views.append(flat[:, offset:end].view(k, fan_out, fan_in))
            views.append(flat[:, end:end + fan_out])
        return views

    def _forward(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of flat inputs (K, B, features), or (B, features) shared."""
        k = params[0].shape[0]
        h = x if x.dim() == 3 else x.expand(k, *x.shape)
        for i in range(self.depth + 1):
            weight, bias = params[2 * i], params[2 * i + 1]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            if i < self.depth:
                pos, neg = self._coefs[0, i], self._coefs[1, i]
                # x > 0 ? pos * x : neg * expm1(x), exactly: relu(x) is x or 0 and elu(x) - relu(x)
                # is 0 or expm1(x). Unlike where(), whose CPU kernel is slow, it also stays
                # finite in the branch not taken.
                r = torch.relu(h)
                h = r * pos + (F.elu(h) - r) * neg
        return h

    def _losses(self, params: list[torch.Tensor], xb: torch.Tensor,
                yb: torch.Tensor) -> torch.Tensor:
        logits = self._forward(params, xb)
        k, b, c = logits.shape
        return F.cross_entropy(logits.reshape(k * b, c), yb.reshape(k * b),
                               reduction="none").view(k, b).mean(1)

    @torch.no_grad()
    def _update(self, grad: torch.Tensor, lrs: torch.Tensor) -> None:
        """One optimizer step per member, elementwise, as train.fit's optimizer does it."""
        p, wd, dt = self._flat, self.recipe.weight_decay, self.dtype
        name = self.recipe.optimizer
        if name == "sgd":
            if wd:
                grad = grad.add(p, alpha=wd)
            # The buffer starts at zero, so 0.9 * 0 + grad is torch's first-step clone exactly.
            self._moment1.mul_(SGD_MOMENTUM).add_(grad)
            grad = grad.add(self._moment1, alpha=SGD_MOMENTUM)
            p.sub_(grad * lrs.to(dt)[:, None])
            return
        beta1, beta2 = ADAM_BETAS
        self._steps += 1
        # Per-member bias corrections from per-member step counts, in float64 as torch does,
        # computed on the device so that a step never waits for the host.
        bias1 = 1 - torch.pow(beta1, self._steps)
        bias2_sqrt = (1 - torch.pow(beta2, self._steps)).sqrt()
        if wd:
            if name == "adamw":
                p.mul_((1 - lrs * wd).to(dt)[:, None])
            else:
                grad = grad.add(p, alpha=wd)
        self._moment1.lerp_(grad, 1 - beta1)
        self._moment2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self._moment2.sqrt() / bias2_sqrt.to(dt)[:, None]).add_(ADAM_EPS)
        p.add_(self._moment1.mul((-lrs / bias1).to(dt)[:, None]).div_(denom))

    def train_epoch(self, on_step: Callable[[torch.Tensor, torch.Tensor], None] | None = None
                    ) -> list[tuple[Member, EpochStats]]:
        """Train every running member for one of its epochs, then validate each.

        A member that reaches its last epoch becomes ``complete``, one whose losses are not
        finite ``diverged`` (as in ``fit``); either leaves before the next epoch, as does one
        the caller stops. ``on_step(losses, grads)`` (for tests and probes) gets each step's
        per-member losses ``(K,)`` and gradients ``(K, P)``.

        Returns:
            Each member that trained, with its epoch's stats.
        """
        self._sync()
        members = self.members
        if not members:
            return []
        x, y = self.data.x_train.flatten(1), self.data.y_train
        n, bs, recipe = len(x), self.recipe.batch_size, self.recipe
        lrs = [epoch_lr(m.lr, m.epochs_done, recipe) for m in members]  # each at its epoch
        lr_tensor = torch.tensor(lrs, device=self.device, dtype=torch.float64)
        started = time.perf_counter()
        # One randperm per member and epoch from its own generator: fit's data order.
        order = torch.stack([torch.randperm(n, device=self.device, generator=m._generator)
                             for m in members])
        params = [p.requires_grad_(True) for p in self._params]
        k = len(members)
        losses = []
        for i in range(0, n, bs):
            index = order[:, i:i + bs]
            with torch.enable_grad():
                step_losses = self._losses(params, x[index], y[index])
                grads = torch.autograd.grad(step_losses.sum(), params)
            grad = torch.cat([g.reshape(k, -1) for g in grads], 1)
            if on_step is not None:
                on_step(step_losses.detach(), grad)
            self._update(grad, lr_tensor)
            losses.append(step_losses.detach())
        train_losses = epoch_loss(torch.stack(losses), n, bs).tolist()  # (steps, K) -> K
        seconds = (time.perf_counter() - started) / len(members)
        val = self.evaluate(self.data.x_val, self.data.y_val)
        out = []
        for m, train_loss, (val_loss, val_acc) in zip(members, train_losses, val, strict=True):
            m.result.train_seconds += seconds
            m.result.samples_seen += n
            stats = EpochStats(m.epochs_done + 1, train_loss, val_loss, val_acc,
                               m.result.train_seconds)
            m.result.history.append(stats)
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                m.result.status = "diverged"
            elif stats.epoch >= recipe.epochs:
                m.result.status = "complete"
            out.append((m, stats))
        return out

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        """Mean cross-entropy and accuracy of every stacked member (as ``train.evaluate``)."""
        params, x = self._views(self._flat), x.flatten(1)
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
        """A standalone model (``build_model``'s) holding the member's current weights."""
        row = self._flat[self.members.index(member)].detach()
        model = build_model(self.space.model, member.layout, self.data.input_shape,
                            self.data.n_classes, "none").to(self.device, self.dtype)
        with torch.no_grad():
            offset = 0
            for p in model.parameters():
                p.copy_(row[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return model


@dataclass(frozen=True)
class _Job:
    """One candidate to train: its layout, seed and learning rate, and the caller's tag."""

    candidate: Candidate
    seed: int
    tag: Any = None


def _drive(space: SearchSpace, data: DeviceData, size: int,
           next_job: Callable[[], _Job | None],
           on_epochs: Callable[[list[tuple[Member, EpochStats]]], Iterable[Member]] | None,
           on_done: Callable[[Member], None]) -> None:
    """Keep up to ``size`` members training, refilling freed slots between epochs.

    Candidates of different depths train in separate populations (their weights cannot stack).
    After each population's epoch, ``on_epochs`` gets its running and complete members with
    their stats, all at once, and returns those to stop. ``on_done`` sees each finished member
    (complete ones with test metrics) once.
    """
    populations: dict[int, Population] = {}
    exhausted = False
    while True:
        active = sum(len(p) for p in populations.values())
        while not exhausted and active < size:
            job = next_job()
            if job is None:
                exhausted = True
                break
            depth = job.candidate.layout.depth
            if depth not in populations:
                populations[depth] = Population(space, data, depth)
            populations[depth].add(job.candidate.layout, job.seed, job.candidate.lr, job.tag)
            active += 1
        if active == 0:
            return
        for population in populations.values():
            trained = population.train_epoch()
            live = [(m, s) for m, s in trained if m.result.status in ("running", "complete")]
            if live and on_epochs is not None:
                for member in list(on_epochs(live)):
                    population.stop(member)
            done = [m for m, _ in trained if m.result.status == "complete"]
            if done:
                tests = population.evaluate(data.x_test, data.y_test)
                for member in done:
                    member.test_loss, member.test_acc = tests[population.members.index(member)]
                    # Per-candidate measurements run on the candidate's own standalone model.
                    member.model = population.to_model(member)
            for member, _ in trained:
                if member.result.status != "running":
                    on_done(member)


def train_candidates(space: SearchSpace, data: DeviceData,
                     jobs: Iterable[tuple[Candidate, int]], population: int,
                     on_epoch: Callable[[Member, EpochStats], bool] | None = None
                     ) -> list[Member]:
    """Train candidates with their seeds, ``population`` at a time; no Optuna involved.

    Returns the members in the order of ``jobs``, finished, with test metrics when complete.
    ``on_epoch(member, stats)`` returning False stops that member, as for ``train.fit``.
    """
    queue = [_Job(candidate, seed, i) for i, (candidate, seed) in enumerate(jobs)]
    done: list[Member] = []
    pending = iter(queue)
    on_epochs = None if on_epoch is None else \
        (lambda trained: [m for m, stats in trained if on_epoch(m, stats) is False])
    _drive(space, data, population, lambda: next(pending, None), on_epochs, done.append)
    return sorted(done, key=lambda m: m.tag)


@dataclass(frozen=True)
class SeedRun:
    """One seed's run of a candidate: its fit result and test metrics (when complete)."""

    seed: int
    result: FitResult
    test_loss: float | None
    test_acc: float | None


def train_seeds(space: SearchSpace, data: DeviceData, candidate: Candidate,
                seeds: Sequence[int]) -> list[SeedRun]:
    """Retrain one candidate with each seed (a finalist's repeats), as one population.

    Without pruning. Spaces a population cannot train run the seeds one by one with
    ``train.fit``; the results are the same either way up to floating-point rounding.
    """
    if supports_population(space):
        members = train_candidates(space, data, [(candidate, s) for s in seeds], len(seeds))
        return [SeedRun(m.seed, m.result, m.test_loss, m.test_acc) for m in members]
    runs = []
    device = data.x_train.device
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(space.model, candidate.layout, data.input_shape, data.n_classes,
                            candidate.norm).to(device, data.x_train.dtype)
        result = fit(model, data, recipe_for(space, candidate), seed)
        test = evaluate(model, data.x_test, data.y_test) if result.status == "complete" else None
        runs.append(SeedRun(seed, result, *(test or (None, None))))
    return runs
