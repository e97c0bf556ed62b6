"""Populations of any model: K members' parameters and buffers stacked, run under ``torch.vmap``.

A member is built alone, exactly as it would start training alone (``start_model``: its
seed, its factory call, its layout, its init), then each activation module in it becomes a
``BatchedActivation``: the activation registry's batched form (``ActivationSpec.batched``), a
sum of finite terms with the member's coefficients in a buffer. Members that chose different
activations then have the same module tree, so their parameters stack into the rows of one
``(K, P)`` tensor (views per parameter, as ``torch.func.stack_module_state`` would give) and
their buffers (batch norm's running statistics, the activation coefficients) into ``(K, ...)``
tensors, and one ``functional_call`` of a template model under ``vmap`` runs all of them:
convolutions become grouped ones, batch norm updates each member's running statistics in
place, dropout draws per member (``randomness="different"``). At a site the population
computes only the terms some member uses (all members ReLU: just the ReLU).

Each member keeps its own init, data order (its own generator, one ``randperm`` per epoch,
as ``fit.Run``), optimizer state (``batched_step``: Adam, AdamW or SGD per member, each
member's learning rate and cosine phase), validation and results; so it follows the
trajectory it would follow alone, up to rounding (tests/test_batched.py, float64), except
with dropout, whose masks come from another generator. Members join and leave between
epochs; ``PopulationTrainer`` (training/population.py) drives a ``StackedPopulation`` as it
drives the hand-written MLP ``Population``, with the same fault policy.

A model ``vmap`` cannot run (data-dependent control flow, ``.item()`` in forward) or an
activation without a batched form trains one candidate at a time: ``batching_problem`` says
why in one line.

``MemberStacks`` is what this population and the hand-written MLP one have in common: the
members, their generators, the stacks (flat parameters, optimizer state, buffers: here the
models' buffers, there each layer's activation coefficients), members joining and leaving
between epochs, handed over whole to another population (``Slot``), a snapshot to go back
to after a fault (``Snapshot``), and the epoch's training loop. A population says how a
member starts and how its stacks run (``_start``, ``_views``, ``_losses``, ``evaluate``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from actsearch.errors import ActsearchError
from actsearch.models.activations import BATCHED_TERMS, activation_of, get_activation
from actsearch.models.layout import Candidate, Layer, Layout
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.fit import (
    ADAM_BETAS,
    ADAM_EPS,
    SGD_MOMENTUM,
    EpochStats,
    Recipe,
    epoch_loss,
    epoch_lr,
)
from actsearch.training.trainers import Job, Member, describe_error, start_model

__all__ = [
    "BatchedActivation",
    "MemberStacks",
    "Slot",
    "Snapshot",
    "StackedPopulation",
    "batchable",
    "batched_step",
    "batching_problem",
    "missing_forms",
    "record_epoch",
]

_EVAL_BATCH = 4096  # samples per evaluation batch, as fit.evaluate, shared by the K members
_TERM = {name: i for i, name in enumerate(BATCHED_TERMS)}
_SCALE = _TERM["expm1_scale"]
# The terms that add to the output (expm1_scale only scales the expm1 term's input).
_OUTPUT_TERMS = tuple(t for t in BATCHED_TERMS if t != "expm1_scale")
_SMOOTH = {"gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


class BatchedActivation(nn.Module):
    """A registered activation in its batched form: coefficients (a buffer, one row per member
    once stacked) over ``BATCHED_TERMS``; ``terms`` are the ones the population computes.

    Alone it computes its activation (up to rounding); stacked, each member's coefficients
    pick its own. Every term is finite everywhere, so a member's zero coefficients add exact
    zeros with zero gradients.
    """

    def __init__(self, name: str, param: float | None, dtype: torch.dtype,
                 device: torch.device) -> None:
        super().__init__()
        spec = get_activation(name)
        if spec.batched is None:
            raise ValueError(f"activation {name} has no batched form")
        self.activation = name
        row = torch.zeros(len(BATCHED_TERMS), dtype=dtype, device=device)
        for term, value in spec.batched(param).items():
            row[_TERM[term]] = value
        self.register_buffer("coef", row, persistent=False)
        self.terms: tuple[str, ...] = tuple(t for t in _OUTPUT_TERMS if row[_TERM[t]] != 0)
        # What the population's members allow leaving out (``StackedPopulation`` sets them):
        # every member's expm1 scale is 1; one term whose coefficient is 1 for every member.
        self.unscaled, self.plain = False, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.coef
        out: torch.Tensor | None = None
        for term in self.terms:
            if term == "relu":
                value = torch.relu(x)
            elif term == "expm1":  # finite: its input is at most 0
                inner = torch.clamp(x, max=0)
                value = torch.expm1(inner if self.unscaled else inner * c[_SCALE])
            elif term == "negative":
                value = torch.clamp(x, max=0)
            else:
                value = _SMOOTH[term](x)
            if self.plain:
                return value
            value = value * c[_TERM[term]]
            out = value if out is None else out + value
        return x * 0 if out is None else out

    def extra_repr(self) -> str:
        return f"{self.activation}, terms={','.join(self.terms)}"


def missing_forms(names: Iterable[str]) -> list[str]:
    """The activations among ``names`` that have no batched form."""
    return [n for n in dict.fromkeys(names) if get_activation(n).batched is None]


def batchable(model: nn.Module) -> nn.Module:
    """``model`` with each registered activation module replaced, in place, by its
    ``BatchedActivation`` (a module reached by two paths gets one replacement)."""
    replaced: dict[int, BatchedActivation] = {}
    anchor = next(iter(model.parameters()), None)
    dtype = anchor.dtype if anchor is not None else torch.get_default_dtype()
    device = anchor.device if anchor is not None else torch.device("cpu")
    for path, module in list(model.named_modules(remove_duplicate=False)):
        found = activation_of(module) if path else None
        if found is None:
            continue
        if id(module) not in replaced:
            if get_activation(found[0]).batched is None:
                raise ActsearchError(f"activations: {found[0]} (at {path}) has no batched form "
                                     f"(ActivationSpec.batched)")
            replaced[id(module)] = BatchedActivation(*found, dtype, device)
        model.set_submodule(path, replaced[id(module)])
    return model


def batched_step(flat: torch.Tensor, grad: torch.Tensor, moment1: torch.Tensor,
                 moment2: torch.Tensor, steps: torch.Tensor, lrs: torch.Tensor,
                 recipe: Recipe) -> None:
    """One optimizer step per member (rows of ``flat``), in place, as ``fit``'s optimizer.

    torch's optimizers take one learning rate per parameter group, not one per row of a
    stacked tensor, hence this. ``moment1`` is Adam's exp_avg or SGD's momentum buffer,
    ``moment2`` Adam's exp_avg_sq, ``steps`` Adam's step counts (float64); ``lrs`` (K,) float64.
    """
    with torch.no_grad():
        p, wd, dt = flat, recipe.weight_decay, flat.dtype
        name = recipe.optimizer
        if name == "sgd":
            if wd:
                grad = grad.add(p, alpha=wd)
            # The buffer starts at zero, so 0.9 * 0 + grad is torch's first-step clone exactly.
            moment1.mul_(SGD_MOMENTUM).add_(grad)
            grad = grad.add(moment1, alpha=SGD_MOMENTUM)
            p.sub_(grad * lrs.to(dt)[:, None])
            return
        beta1, beta2 = ADAM_BETAS
        steps += 1
        # Per-member bias corrections from per-member step counts, in float64 as torch does,
        # computed on the device so that a step never waits for the host.
        bias1 = 1 - torch.pow(beta1, steps)
        bias2_sqrt = (1 - torch.pow(beta2, steps)).sqrt()
        if wd:
            if name == "adamw":
                p.mul_((1 - lrs * wd).to(dt)[:, None])
            else:
                grad = grad.add(p, alpha=wd)
        moment1.lerp_(grad, 1 - beta1)
        moment2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (moment2.sqrt() / bias2_sqrt.to(dt)[:, None]).add_(ADAM_EPS)
        p.add_(moment1.mul((-lrs / bias1).to(dt)[:, None]).div_(denom))


def record_epoch(members: list[Member], train_losses: list[float],
                 val: list[tuple[float, float]], seconds: float, samples: int,
                 recipe: Recipe) -> list[tuple[Member, EpochStats]]:
    """Each member's epoch in its result, as ``fit.Run.epoch`` records it; ``seconds`` is the
    population's training time, shared equally."""
    share, out = seconds / len(members), []
    for m, train_loss, (val_loss, val_acc) in zip(members, train_losses, val, strict=True):
        m.result.train_seconds += share
        m.result.samples_seen += samples
        stats = EpochStats(m.epochs_done + 1, train_loss, val_loss, val_acc,
                           m.result.train_seconds)
        m.result.history.append(stats)
        m.shared_with = max(m.shared_with, len(members))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            m.result.status = "diverged"
        elif stats.epoch >= recipe.epochs:
            m.result.status = "complete"
        out.append((m, stats))
    return out


@dataclass(eq=False)
class Slot:
    """A member's state outside a population's stacks (on its way from one to another)."""

    weights: torch.Tensor  # (P,): its trained parameters, flat
    moment1: torch.Tensor | None  # None: zeros, a member that has not trained yet
    moment2: torch.Tensor | None
    steps: torch.Tensor | None  # Adam's step count (0-dim, float64); None: 0
    generator: torch.Generator  # its data order
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # stacked, never trained
    model: nn.Module | None = None  # a new member's model (StackedPopulation's template)


@dataclass(eq=False)
class Snapshot:
    """A population at an epoch boundary: what ``_restore`` puts back after a fault."""

    members: list[Member]
    flat: torch.Tensor
    moment1: torch.Tensor
    moment2: torch.Tensor
    steps: torch.Tensor
    buffers: dict[str, torch.Tensor]
    generators: list[torch.Tensor]  # each member's generator state
    results: list[tuple[str, int, float, int, int]]  # status, epochs, seconds, samples, shared


class MemberStacks:
    """Members whose state is stacked row by row; they join and leave only between epochs.

    Args:
        space: The space (its training recipe; the learning rate is per member).
        data: Splits on the device; the stacks are in their dtype.
        width: Trained parameters per member (P), when known before the first joins.
        buffers: Each buffer's shape per member, when known before the first joins.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, width: int = 0,
                 buffers: dict[str, tuple[int, ...]] | None = None) -> None:
        self.space, self.data = space, data
        # Its learning rate is unused: each member trains with its candidate's own.
        self.recipe: Recipe = space.train
        self.device, self.dtype = data.x_train.device, data.x_train.dtype
        self.members: list[Member] = []  # one per row of the stacks
        # Members on their way in, with their state when they come from another population
        # of their kind (None: a new member, started when it joins).
        self._pending: list[tuple[Member, Slot | None]] = []
        # Each member's data order: its own generator, as fit.Run has.
        self._generators: dict[Member, torch.Generator] = {}
        self._flat = torch.zeros(0, width, device=self.device, dtype=self.dtype)
        # Adam's exp_avg (or SGD's momentum buffer) and exp_avg_sq; replaced when members join.
        self._moment1 = self._moment2 = self._flat
        self._steps = torch.zeros(0, device=self.device, dtype=torch.float64)
        self._buffers = {name: torch.zeros(0, *shape, device=self.device, dtype=self.dtype)
                         for name, shape in (buffers or {}).items()}

    def __len__(self) -> int:
        return len(self.running)

    @property
    def running(self) -> list[Member]:
        """Members that will train in the next epoch (joined, not finished)."""
        joined = [m for m in self.members if m.running]
        return joined + [m for m, _ in self._pending if m.running]

    def stop(self, member: Member) -> None:
        """Stop a member (e.g. pruned); it leaves the population before the next epoch."""
        member.result.status = "stopped"

    def _start(self, member: Member) -> Slot:
        """A new member's state, as it would start training alone."""
        raise NotImplementedError

    def _before_stacking(self, new: list[tuple[Member, Slot]]) -> None:
        """What must exist before ``new`` members stack (nothing, unless a population says)."""

    def _restacked(self) -> None:
        """What follows from the members once they changed (nothing, unless a population
        says)."""

    def _sync(self) -> None:
        """Drop finished members and stack the pending ones; only ever between epochs.

        All or nothing: the new tensors are assigned only once all of them exist, so a
        failure here (out of memory, say) leaves the population as it was.
        """
        keep = [i for i, m in enumerate(self.members) if m.running]
        new = [(m, self._start(m) if slot is None else slot)
               for m, slot in self._pending if m.running]
        if len(keep) == len(self.members) and not new:
            self._pending = []
            return
        self._before_stacking(new)
        index = torch.tensor(keep, device=self.device, dtype=torch.long)

        def stacked(current: torch.Tensor, rows: list[torch.Tensor | None]) -> torch.Tensor:
            zero = current.new_zeros(current.shape[1:])
            return torch.cat([current[index], *[(zero if r is None else r)[None] for r in rows]])

        flat = stacked(self._flat, [s.weights for _, s in new])
        moment1 = stacked(self._moment1, [s.moment1 for _, s in new])
        moment2 = stacked(self._moment2, [s.moment2 for _, s in new])
        steps = stacked(self._steps, [s.steps for _, s in new])
        buffers = {name: torch.cat([current[index], *[s.buffers[name][None] for _, s in new]])
                   for name, current in self._buffers.items()}
        members = [self.members[i] for i in keep] + [m for m, _ in new]
        self._flat, self._moment1, self._moment2, self._steps = flat, moment1, moment2, steps
        self._buffers, self.members, self._pending = buffers, members, []
        generators = {m: self._generators[m] for m in members if m in self._generators}
        self._generators = generators | {m: s.generator for m, s in new}
        self._restacked()

    def _release(self) -> list[tuple[Member, Slot | None]]:
        """Take every running member out, with its state, for other populations of its kind.

        The rows are views (no allocation, so this works when memory has run out); they are
        copied when a population stacks them.
        """
        out: list[tuple[Member, Slot | None]] = []
        for i, m in enumerate(self.members):
            if m.running:
                out.append((m, Slot(self._flat[i], self._moment1[i], self._moment2[i],
                                    self._steps[i], self._generators[m],
                                    {n: b[i] for n, b in self._buffers.items()})))
        out += [(m, slot) for m, slot in self._pending if m.running]
        self.members, self._pending, self._generators = [], [], {}
        self._flat = self._moment1 = self._moment2 = self._flat[:0]
        self._steps = self._steps[:0]
        self._buffers = {n: b[:0] for n, b in self._buffers.items()}
        return out

    def _admit(self, slots: Iterable[tuple[Member, Slot | None]]) -> None:
        """Queue members released by another population; they join at the next epoch."""
        self._pending.extend(slots)

    def _snapshot(self) -> Snapshot:
        """Everything an epoch changes, as it is at the epoch boundary (after ``_sync``)."""
        # SGD never writes the second moment: the tensor itself is its snapshot.
        moment2 = self._moment2 if self.recipe.optimizer == "sgd" else self._moment2.clone()
        return Snapshot(
            list(self.members), self._flat.clone(), self._moment1.clone(), moment2,
            self._steps.clone(), {n: b.clone() for n, b in self._buffers.items()},
            [self._generators[m].get_state() for m in self.members],
            [(m.result.status, len(m.result.history), m.result.train_seconds,
              m.result.samples_seen, m.shared_with) for m in self.members])

    def _restore(self, snapshot: Snapshot) -> None:
        """Back to the boundary ``snapshot`` was taken at: the members' weights, buffers,
        optimizer state, data order and results as they were."""
        self.members = snapshot.members
        self._flat, self._moment1 = snapshot.flat, snapshot.moment1
        self._moment2, self._steps = snapshot.moment2, snapshot.steps
        self._buffers = snapshot.buffers
        for m, state, (status, epochs, seconds, samples, shared) in zip(
                snapshot.members, snapshot.generators, snapshot.results, strict=True):
            self._generators[m].set_state(state)
            del m.result.history[epochs:]
            m.result.status, m.result.train_seconds = status, seconds
            m.result.samples_seen, m.shared_with = samples, shared

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Samples as the population's model takes them."""
        return x

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each trained parameter, stacked (K, ...), as a view of the rows of ``flat``."""
        raise NotImplementedError

    def _losses(self, params: dict[str, torch.Tensor], xb: torch.Tensor,
                yb: torch.Tensor) -> torch.Tensor:
        """Each member's mean cross-entropy (K,) on its own batch (K, B, ...)."""
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        """Mean cross-entropy and accuracy of every stacked member (as ``fit.evaluate``)."""
        raise NotImplementedError

    def _update(self, grad: torch.Tensor, lrs: torch.Tensor) -> None:
        """One optimizer step per member, as ``fit``'s optimizer does it."""
        batched_step(self._flat, grad, self._moment1, self._moment2, self._steps, lrs,
                     self.recipe)

    def train_epoch(self, on_step: Callable[[torch.Tensor, torch.Tensor], None] | None = None
                    ) -> list[tuple[Member, EpochStats]]:
        """Train every running member for one of its epochs, then validate each.

        A member that reaches its last epoch becomes ``complete``, one whose losses are not
        finite ``diverged`` (as in ``fit``); either leaves before the next epoch, as does one
        the caller stops. ``on_step(losses, grads)`` (for tests and probes) gets each step's
        per-member losses ``(K,)`` and gradients ``(K, P)`` (the parameters in ``_views``
        order).

        Returns:
            Each member that trained, with its epoch's stats.
        """
        self._sync()
        members = self.members
        if not members:
            return []
        x, y = self._inputs(self.data.x_train), self.data.y_train
        n, bs, recipe = len(x), self.recipe.batch_size, self.recipe
        # Each member's learning rate at its own epoch.
        lrs = [epoch_lr(m.candidate.lr, m.epochs_done, recipe) for m in members]
        lr_tensor = torch.tensor(lrs, device=self.device, dtype=torch.float64)
        started = time.perf_counter()
        # One randperm per member and epoch from its own generator: fit's data order.
        order = torch.stack([torch.randperm(n, device=self.device, generator=self._generators[m])
                             for m in members])
        params = {name: v.requires_grad_(True) for name, v in self._views(self._flat).items()}
        k = len(members)
        losses = []
        for i in range(0, n, bs):
            index = order[:, i:i + bs]
            with torch.enable_grad():
                step_losses = self._losses(params, x[index], y[index])
                grads = torch.autograd.grad(step_losses.sum(), list(params.values()))
            grad = torch.cat([g.reshape(k, -1) for g in grads], 1)
            if on_step is not None:
                on_step(step_losses.detach(), grad)
            self._update(grad, lr_tensor)
            losses.append(step_losses.detach())
        train_losses = epoch_loss(torch.stack(losses), n, bs).tolist()  # (steps, K) -> K
        seconds = time.perf_counter() - started
        val = self.evaluate(self.data.x_val, self.data.y_val)
        return record_epoch(members, train_losses, val, seconds, n, recipe)


class StackedPopulation(MemberStacks):
    """Members of one model structure trained together, epoch by epoch, under ``vmap``.

    Args:
        space: The space (its model, or factory model, and training recipe; the learning
            rate is per member).
        data: Splits on the device; members train in their dtype.
        key: What the members share (the trainer's grouping: depth and norm); members whose
            models differ in structure anyway fail when they join.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, key: Any) -> None:
        super().__init__(space, data)
        self.key = key
        # Set by the first member: the module the stacks are called through, and the
        # (name, shape) of each trained parameter in a row of the flat stack.
        self._template: nn.Module | None = None
        self._shapes: list[tuple[str, torch.Size]] = []
        self._sites: dict[str, BatchedActivation] = {}

    def add(self, candidate: Candidate, seed: int, tag: Any = None) -> Member:
        """Add a candidate (with its learning rate); it joins at the next epoch."""
        member = Member(Job(candidate, seed, tag))
        self._join(member)
        return member

    def _join(self, member: Member) -> None:
        """Queue a new member; its model is built when it joins (``_sync``)."""
        missing = missing_forms(layer.activation for layer in member.candidate.layout.layers)
        if missing:
            raise ActsearchError(f"layout {member.candidate.layout}: {missing[0]} has no "
                                 f"batched form, so it cannot train in a population")
        self._pending.append((member, None))

    def _start(self, member: Member) -> Slot:
        """A new member's state: the model it would start from alone, made batchable (the
        first one's is the population's template)."""
        model = batchable(start_model(self.space, self.data, member.candidate, member.seed))
        trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
        shapes = [(n, p.shape) for n, p in trained.items()]
        if self._template is not None and shapes != self._shapes:
            raise RuntimeError(f"the model of {member.candidate.layout} differs in structure "
                               f"from the population's")
        # Frozen parameters travel with the buffers: stacked, never updated.
        state = {n: t for n, t in [*model.named_parameters(), *model.named_buffers()]
                 if n not in trained}
        weights = torch.cat([p.detach().reshape(-1) for p in trained.values()]) if trained \
            else torch.zeros(0, device=self.device, dtype=self.dtype)
        generator = torch.Generator(device=self.device).manual_seed(member.seed)
        slot = Slot(weights, None, None, None, generator,
                    {n: t.detach().clone() for n, t in state.items()}, model)
        if self._template is None:
            self._adopt(slot)
        return slot

    def _adopt(self, slot: Slot) -> None:
        """Take the first member's model as the template the stacks are called through."""
        assert slot.model is not None
        # In training mode from here on (``evaluate`` puts it back after its eval mode).
        self._template = copy.deepcopy(slot.model).train()
        self._shapes = [(n, p.shape) for n, p in self._template.named_parameters()
                        if p.requires_grad]
        self._sites = {n: m for n, m in self._template.named_modules()
                       if isinstance(m, BatchedActivation)}
        n_params = sum(s.numel() for _, s in self._shapes)
        self._flat = self._moment1 = self._moment2 = torch.zeros(
            0, n_params, device=self.device, dtype=self.dtype)
        self._buffers = {n: t.new_zeros(0, *t.shape) for n, t in slot.buffers.items()}

    def _before_stacking(self, new: list[tuple[Member, Slot]]) -> None:
        """Members released by another population bring no model: build one for the
        template."""
        if self._template is None:
            self._start(new[0][0])

    def _restacked(self) -> None:
        """At each site, compute only the terms some member's activation uses (one host
        read)."""
        if not self._sites or not self.members:
            return
        coefs = torch.stack([self._buffers[f"{path}.coef"] for path in self._sites])  # (S, K, T)
        used = coefs.ne(0).any(1).tolist()
        ones = coefs.eq(1).all(1).tolist()
        for site, row, one in zip(self._sites.values(), used, ones, strict=True):
            site.terms = tuple(t for t in _OUTPUT_TERMS if row[_TERM[t]])
            site.unscaled = one[_SCALE]
            site.plain = len(site.terms) == 1 and one[_TERM[site.terms[0]]]

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each trained parameter (K, *shape) as a view of the stacked rows.

        As leaves of their own, their gradients come back per parameter and are concatenated
        once; gradients through slices of one leaf would cost a zero-filled (K, P) each.
        """
        k, views, offset = flat.shape[0], {}, 0
        for name, shape in self._shapes:
            end = offset + shape.numel()
            views[name] = flat[:, offset:end].view(k, *shape)
            offset = end
        return views

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._template, (params, buffers), (x,))

    def _losses(self, params: dict[str, torch.Tensor], xb: torch.Tensor,
                yb: torch.Tensor) -> torch.Tensor:
        """Each member's mean cross-entropy (K,) on its own batch; updates its buffers."""
        def loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(self._call(p, b, x), y)

        return vmap(loss, randomness="different")(params, self._buffers, xb, yb)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        """Mean cross-entropy and accuracy of every stacked member in eval mode (as
        ``fit.evaluate``)."""
        assert self._template is not None
        params, k = self._views(self._flat), self._flat.shape[0]
        # K members see one batch each: at most a training step's worth of samples in all.
        chunk = max(self.recipe.batch_size, _EVAL_BATCH // k)
        run = vmap(self._call, in_dims=(0, 0, None), randomness="different")
        loss = torch.zeros(k, device=x.device, dtype=torch.float64)
        correct = torch.zeros(k, device=x.device, dtype=torch.int64)
        self._template.eval()
        try:
            for i in range(0, len(x), chunk):
                out = run(params, self._buffers, x[i:i + chunk])  # (K, B, C)
                yb = y[i:i + chunk]
                b, c = out.shape[1], out.shape[2]
                per = F.cross_entropy(out.reshape(k * b, c), yb.repeat(k), reduction="none")
                loss += per.view(k, b).sum(1).double()
                correct += (out.argmax(2) == yb).sum(1)
        finally:
            self._template.train()
        n = max(len(x), 1)
        return [(lo / n, c / n) for lo, c in zip(loss.tolist(), correct.tolist(), strict=True)]

    def to_model(self, member: Member) -> nn.Module:
        """A standalone model (the one ``start_model`` gives) with the member's current
        parameters and buffers; the global generator is left as it was."""
        row = self.members.index(member)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model = start_model(self.space, self.data, member.candidate, member.seed)
        state = {n: v[row] for n, v in self._views(self._flat.detach()).items()}
        state |= {n: b[row] for n, b in self._buffers.items()}
        with torch.no_grad():
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                if name in state:
                    tensor.copy_(state[name])
        return model


def batching_problem(space: SearchSpace, data: DeviceData) -> str | None:
    """Why the space's model cannot train as a population (one line), or None when it can.

    Tries it: two members (the first choice of every group, seeds 0 and 1) train one step
    on two samples and are validated, under ``vmap``; what it raises is the reason
    (data-dependent control flow and ``.item()`` in forward do). The global generator is left
    as it was.
    """
    if space.custom is not None:
        layers = [Layer(g.choices[0], get_activation(g.choices[0]).default)
                  for g in space.custom.groups]
    else:
        first = space.choices[0]
        layers = [Layer(first, get_activation(first).default)] * space.depths[0]
    lr = space.train.lr if isinstance(space.train.lr, float) else 1e-3  # any will do
    candidate = Candidate(Layout(tuple(layers)), space.model.norm[0], lr)
    two = DeviceData(data.x_train[:2], data.y_train[:2], data.x_train[:2], data.y_train[:2],
                     data.x_train[:2], data.y_train[:2], data.input_shape, data.n_classes)
    probe = dataclasses.replace(space, train=dataclasses.replace(space.train, batch_size=2,
                                                                 epochs=2))
    population = StackedPopulation(probe, two, "probe")
    devices = [data.x_train.device] if data.x_train.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            for seed in (0, 1):
                population.add(candidate, seed)
            population.train_epoch()
    except ActsearchError as e:
        return str(e)
    except Exception as e:  # whatever vmap or the model raises is the reason
        return f"model: torch.vmap cannot batch it ({describe_error(e)})"
    return None
