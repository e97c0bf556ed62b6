"""The training loop: knows nothing of Optuna; calls back once per epoch.

Small data sets stay on the device for the whole run; an epoch shuffles with one gather and
then slices views, so the loop has no DataLoader, no per-batch copies and no per-step host
synchronisation (losses are kept on the device and read once per epoch).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.layout import Candidate
from actsearch.schema.space import SearchSpace, TrainSpec
from actsearch.training.data import DeviceData

__all__ = [
    "CLASSIFICATION",
    "EpochStats",
    "FitResult",
    "Recipe",
    "Run",
    "Scoring",
    "configure_threads",
    "evaluate",
    "evaluate_batches",
    "evaluate_split",
    "fit",
    "recipe_for",
    "scoring_for",
    "scoring_of",
    "select_device",
]


# How to train one candidate: a space's train section with one learning rate. Its fields and
# defaults are declared once, in the space file's schema.
Recipe = TrainSpec


@dataclass(frozen=True)
class Scoring:
    """What a run trains on and is measured by: ``loss(outputs, targets)`` of a batch (its
    mean), ``metric(outputs, targets)`` of a whole split (a number). None: cross-entropy on
    class labels, and accuracy (the fraction of argmax predictions equal to the label)."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    metric: Callable[[torch.Tensor, torch.Tensor], object] | None = None

    @property
    def classification(self) -> bool:
        return self.loss is None and self.metric is None

    @property
    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return F.cross_entropy if self.loss is None else self.loss


CLASSIFICATION = Scoring()


def scoring_of(space: SearchSpace) -> Scoring:
    """The space's loss and metric: those given in Python (``space.scoring``), else the
    recipe's (``scoring_for``)."""
    return space.scoring if space.scoring is not None else scoring_for(space.train)


def scoring_for(recipe: Recipe) -> Scoring:
    """``train.loss`` and ``train.metric`` imported (their code runs), else classification's."""
    if recipe.classification:
        return CLASSIFICATION
    from actsearch.models.factory import load_factory

    metric = recipe.metric
    return Scoring(None if recipe.loss is None else load_factory(recipe.loss),
                   None if metric is None else load_factory(str(metric.factory)))


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_acc: float  # the validation metric: accuracy, or train.metric's value
    train_seconds: float  # cumulative, training steps only (no evaluation)


@dataclass
class FitResult:
    """How a run ended: ``complete``, ``stopped`` (by the callback) or ``diverged``."""

    status: str
    history: list[EpochStats] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_seen: int = 0

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.train_seconds if self.train_seconds > 0 else 0.0


def recipe_for(space: SearchSpace, candidate: Candidate) -> Recipe:
    """How the space trains a candidate (its learning rate may be searched)."""
    return dataclasses.replace(space.train, lr=candidate.lr)


def select_device(requested: str | None = None) -> torch.device:
    """CUDA when available unless a device is requested; an unusable request is a user error."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ActsearchError(f"device: unknown device {requested!r}; expected cpu, cuda, "
                             f"cuda:N or auto", parameter="device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ActsearchError(f"device: {requested!r} requested but CUDA is not available",
                             parameter="device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ActsearchError(f"device: {requested!r} requested but this machine has "
                             f"{torch.cuda.device_count()} GPU(s)", parameter="device")
    return device


def configure_threads(device: torch.device, threads: int | None = None) -> int:
    """Set torch's CPU threads; small models train fastest on one thread (docs/benchmarks.md)."""
    if threads is None:
        # Models of this size are dominated by per-op overhead: a second thread adds
        # synchronisation and, when any other process is busy, stalls (measured in bench/).
        threads = 1
    if threads < 1:
        raise ActsearchError(f"threads: expected at least 1, got {threads}", parameter="threads")
    torch.set_num_threads(threads)
    return threads


# The optimisers' settings besides the recipe's; actsearch.training.population applies the same.
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
SGD_MOMENTUM = 0.9  # with Nesterov


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if recipe.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
        # The fused kernel updates all tensors in one op: about 20% off a step of a small
        # MLP on the CPU (bench/overhead.py), with the same update rule.
        return cls(params, lr=recipe.lr, betas=ADAM_BETAS, eps=ADAM_EPS,
                   weight_decay=recipe.weight_decay, fused=True)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=SGD_MOMENTUM, nesterov=True,
                               weight_decay=recipe.weight_decay)
    raise ActsearchError(f"train.optimizer: unknown optimizer {recipe.optimizer!r}")


def epoch_lr(lr: float, epoch: int, recipe: Recipe) -> float:
    """The learning rate of ``epoch`` (0-based) under the recipe's schedule."""
    if recipe.schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / recipe.epochs))
    return lr


def epoch_loss(batch_losses: torch.Tensor, n: int, batch_size: int) -> torch.Tensor:
    """An epoch's mean per-sample loss from its batch means (batches along dim 0; the last
    batch may be smaller)."""
    steps = batch_losses.shape[0]
    sizes = torch.full((steps,), float(batch_size), dtype=batch_losses.dtype,
                       device=batch_losses.device)
    sizes[-1] = n - batch_size * (steps - 1)
    return (batch_losses * sizes.reshape(steps, *[1] * (batch_losses.dim() - 1))).sum(0) / n


EVAL_BATCH = 4096  # samples per forward pass when evaluating tensors


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = EVAL_BATCH,
             scoring: Scoring = CLASSIFICATION) -> tuple[float, float]:
    """Mean loss and the metric (cross-entropy and accuracy by default) in eval mode."""
    return evaluate_batches(model, ((x[i:i + batch_size], y[i:i + batch_size])
                                    for i in range(0, len(x), batch_size)), scoring)


@torch.inference_mode()
def evaluate_batches(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     scoring: Scoring = CLASSIFICATION) -> tuple[float, float]:
    """``evaluate`` over a split given batch by batch (a DataLoader's, on the device).

    Classification sums per batch; a user's loss or metric is called once on the whole
    split's outputs and targets (exact for any metric, not only for means of batches).
    """
    model.eval()
    if scoring.classification:
        loss: torch.Tensor | None = None
        correct: torch.Tensor | None = None
        n = 0
        for xb, yb in batches:
            out = model(xb)
            if loss is None:
                loss = torch.zeros((), device=xb.device, dtype=torch.float64)
                correct = torch.zeros((), device=xb.device, dtype=torch.int64)
            loss += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
            n += len(xb)
        if loss is None or correct is None:
            return 0.0, 0.0
        return loss.item() / n, correct.item() / n
    outs, targets = [], []
    for xb, yb in batches:
        outs.append(model(xb))
        targets.append(yb)
    if not outs:
        return math.nan, math.nan
    out, y = torch.cat(outs), torch.cat(targets)
    loss_value = float(scoring.loss_fn(out, y))
    metric = (float((out.argmax(1) == y).double().mean()) if scoring.metric is None
              else _number(scoring.metric(out, y)))
    return loss_value, metric


def _number(value: object) -> float:
    """A metric function's value as a float (a Python number or a one-element tensor)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        raise ActsearchError(f"train.metric: expected the metric function to return a number, "
                             f"got {type(value).__name__}") from None


class Run:
    """One model's training, an epoch at a time (``fit`` is a loop over it).

    Args:
        model: The network, already on the data's device.
        data: Splits on the device.
        recipe: Optimiser, learning rate, batch size, epochs, schedule.
        seed: Seeds the data order (the caller seeds the weights when building the model).
    """

    def __init__(self, model: nn.Module, data: DeviceData, recipe: Recipe, seed: int,
                 scoring: Scoring = CLASSIFICATION) -> None:
        self.model, self.data, self.recipe, self.scoring = model, data, recipe, scoring
        self.generator = torch.Generator(device=data.x_train.device).manual_seed(seed)
        self.optimizer = _optimizer(model, recipe)
        self.result = FitResult("running")

    @property
    def epochs_done(self) -> int:
        return len(self.result.history)

    def epoch(self) -> EpochStats:
        """Train one epoch and validate; the result's status becomes ``complete`` after the
        recipe's last epoch, ``diverged`` when a loss is not finite."""
        model, recipe, result = self.model, self.recipe, self.result
        x, y = self.data.x_train, self.data.y_train
        n, bs = len(x), recipe.batch_size
        if recipe.schedule == "cosine":
            for group in self.optimizer.param_groups:
                group["lr"] = epoch_lr(recipe.lr, self.epochs_done, recipe)
        criterion, optimizer = self.scoring.loss_fn, self.optimizer
        started = time.perf_counter()
        model.train()
        losses = []

        def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
            loss = criterion(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())

        if self.data.loaders is not None:
            # The user's loader as given: its batches, its order, its workers.
            sizes = []
            for xb, yb in self.data.batches("train"):
                step(xb, yb)
                sizes.append(len(xb))
            n = sum(sizes)
            weights = torch.tensor(sizes, dtype=torch.float64, device=x.device)
            train_loss = (float((torch.stack(losses).double() * weights).sum() / n) if n
                          else math.nan)
        else:
            order = torch.randperm(n, device=x.device, generator=self.generator)
            xs, ys = x[order], y[order]
            for i in range(0, n, bs):
                step(xs[i:i + bs], ys[i:i + bs])
            # One host read per epoch; it also waits for the device, so the time is honest.
            train_loss = float(epoch_loss(torch.stack(losses), n, bs))
        result.train_seconds += time.perf_counter() - started
        result.samples_seen += n
        val_loss, val_acc = evaluate_split(model, self.data, "val", self.scoring)
        stats = EpochStats(self.epochs_done + 1, train_loss, val_loss, val_acc,
                           result.train_seconds)
        result.history.append(stats)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            result.status = "diverged"
        elif stats.epoch >= recipe.epochs:
            result.status = "complete"
        return stats


def evaluate_split(model: nn.Module, data: DeviceData, split: str,
                   scoring: Scoring = CLASSIFICATION) -> tuple[float, float]:
    """Mean loss and the metric on the ``val`` or ``test`` split (its DataLoader's batches,
    or its tensors on the device)."""
    if data.loaders is not None:
        return evaluate_batches(model, data.batches(split), scoring)
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    return evaluate(model, x, y, scoring=scoring)


def fit(model: nn.Module, data: DeviceData, recipe: Recipe, seed: int,
        on_epoch: Callable[[EpochStats], bool] | None = None,
        scoring: Scoring = CLASSIFICATION) -> FitResult:
    """Train ``model`` in place on ``data``'s training split; validate after every epoch.

    Args:
        model: The network, already on the data's device.
        data: Splits on the device.
        recipe: Optimiser, learning rate, batch size, epochs, schedule.
        seed: Seeds the data order (the caller seeds the weights when building the model).
        on_epoch: Called after each epoch; returning False stops training (status
            ``stopped``), e.g. when a pruner gives up on the candidate.
    """
    run = Run(model, data, recipe, seed, scoring)
    result = run.result
    while result.status == "running":
        stats = run.epoch()
        if result.status == "diverged":
            break
        if on_epoch is not None and on_epoch(stats) is False:
            result.status = "stopped"
    if result.status == "running":  # a recipe of zero epochs
        result.status = "complete"
    return result
