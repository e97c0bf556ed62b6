"""The trainer interface the search drives, and the one-at-a-time trainer.

A trainer trains candidates epoch by epoch: the caller adds candidates (each a ``Job``),
calls ``train_epoch`` to train every running member one epoch, stops the ones its pruner
gives up on, and reads each finished member's result. Two implementations:
``SequentialTrainer`` (one candidate at a time, ``fit.Run``) and
``population.PopulationTrainer`` (K candidates as one batched computation).

The fault policy is the trainers' to keep: an exception while training a member fails that
member (``status == "failed"``, with ``error`` and ``traceback``) and the others go on; a
user mistake (``ActsearchError``) and an interrupt propagate. A
population finds the member behind an exception of a batched step by splitting (see
``population.PopulationTrainer``). No Optuna here: the search driver owns trials.
"""

from __future__ import annotations

import gc
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.build import build_candidate
from actsearch.models.layout import Candidate
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.fit import FitResult, Run, evaluate_split, recipe_for, scoring_of

__all__ = [
    "Job",
    "Member",
    "SequentialTrainer",
    "Trainer",
    "start_model",
    "describe_error",
    "free_memory",
    "is_out_of_memory",
]


@dataclass(frozen=True)
class Job:
    """One candidate to train: what it is, its seed (weights and data order), and a handle
    the caller gets back with its member (the search passes the Optuna trial)."""

    candidate: Candidate
    seed: int
    tag: Any = None


@dataclass(eq=False)
class Member:
    """A candidate being trained, and how its training went.

    ``result.status`` is ``running`` until the member completes, is stopped, diverges, or
    fails (an exception while training it: ``error`` says why, ``traceback`` where).
    Complete members carry their test metrics and ``model``, a standalone copy of the trained
    network for the probes (the caller drops it once measured).
    """

    job: Job
    result: FitResult = field(default_factory=lambda: FitResult("running"))
    test_loss: float | None = None
    test_acc: float | None = None  # the test metric: accuracy, or train.metric's value
    shared_with: int = 1  # the most members that trained together with this one
    model: nn.Module | None = None
    error: str | None = None
    traceback: str | None = None
    state: Any = field(default=None, repr=False)  # the trainer's own (a Run, a generator)

    @property
    def candidate(self) -> Candidate:
        return self.job.candidate

    @property
    def seed(self) -> int:
        return self.job.seed

    @property
    def tag(self) -> Any:
        return self.job.tag

    @property
    def epochs_done(self) -> int:
        return len(self.result.history)

    @property
    def running(self) -> bool:
        return self.result.status == "running"

    def fail(self, error: BaseException) -> None:
        """Record an exception as this member's end (its traceback included)."""
        self.result.status = "failed"
        self.error = describe_error(error)
        self.traceback = "".join(traceback.format_exception(error))


class Trainer(Protocol):
    """What the search driver needs of a trainer."""

    capacity: int  # how many members train at once

    @property
    def active(self) -> int:
        """Members that will train in the next epoch."""
        ...

    def add(self, job: Job) -> Member:
        """Add a candidate; it trains from the next epoch on."""
        ...

    def train_epoch(self) -> list[Member]:
        """Train every running member one epoch; returns each member that trained (its
        ``result.history[-1]`` is the new epoch) or failed in this call."""
        ...

    def stop(self, member: Member) -> None:
        """Stop a member (pruned): its status becomes ``stopped``."""
        ...


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    # The CPU allocator raises a plain RuntimeError.
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def describe_error(error: BaseException) -> str:
    """One line: ``out of memory: <first line>`` or ``<ExceptionType>: <first line>``."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if is_out_of_memory(error):
        return f"out of memory: {first}"
    return f"{type(error).__name__}: {first}"


def free_memory() -> None:
    """Collect a failed step's tensors (they hang off the exception's frames) and give cached
    blocks back, so the next model does not run out of memory in turn."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def start_model(space: SearchSpace, data: DeviceData, candidate: Candidate,
                seed: int) -> nn.Module:
    """A candidate's model as it starts training alone: the global generator seeded with
    ``seed``, then ``build_candidate``, on the data's device and dtype.

    The one seeded start: populations build each member this way too, so it starts where it
    would alone, and so do the driver's reference model, latency timing and export (a
    trial's retraining, ``train_config``), so that they train the trial's own model."""
    torch.manual_seed(seed)
    model = build_candidate(space, candidate.layout, data.input_shape, data.n_classes,
                            candidate.norm)
    return model.to(data.x_train.device, data.x_train.dtype)


class SequentialTrainer:
    """One candidate at a time: ``start_model`` (``build_candidate`` seeded with the job's
    seed), then ``fit.Run``.

    Args:
        space: The space (model and recipe).
        data: Splits on the device; models are built in their dtype.
    """

    capacity = 1

    def __init__(self, space: SearchSpace, data: DeviceData) -> None:
        self.space, self.data = space, data
        self._member: Member | None = None

    @property
    def active(self) -> int:
        return int(self._member is not None and self._member.running)

    def add(self, job: Job) -> Member:
        if self.active:
            raise RuntimeError("SequentialTrainer trains one candidate at a time")
        self._member = Member(job)
        return self._member

    def stop(self, member: Member) -> None:
        member.result.status = "stopped"

    def train_epoch(self) -> list[Member]:
        member = self._member
        if member is None or not member.running:
            return []
        try:
            if member.state is None:
                member.state = self._start(member)
            run: Run = member.state
            run.epoch()
            if member.result.status == "complete":
                member.test_loss, member.test_acc = evaluate_split(run.model, self.data, "test",
                                                                   run.scoring)
                member.model = run.model
        except ActsearchError:  # a user mistake: every candidate would fail the same way
            raise
        except Exception as e:  # the fault policy: this member fails, the search goes on
            member.fail(e)
            member.state = None
        if member.result.status == "failed":
            # Out of the except block: while it runs, the exception (and through its
            # traceback the failed step's tensors) is still referenced.
            free_memory()
        if not member.running:
            self._member = None
        return [member]

    def _start(self, member: Member) -> Run:
        model = start_model(self.space, self.data, member.candidate, member.seed)
        run = Run(model, self.data, recipe_for(self.space, member.candidate), member.seed,
                  scoring_of(self.space))
        run.result = member.result  # one result object: the member's
        return run
