"""One trial: candidate -> model -> train -> report/prune -> metrics into the trial."""

from __future__ import annotations

from typing import Protocol

import optuna
import torch

from actsearch.data import DeviceData
from actsearch.layout import Candidate, suggest_candidate
from actsearch.models import build_model
from actsearch.space import SearchSpace
from actsearch.train import EpochStats, FitResult, Recipe, evaluate, fit

__all__ = ["Objective", "TrialListener", "recipe_for", "trial_seed"]


class TrialListener(Protocol):
    """Receives progress from inside trials (the live view implements it)."""

    def trial_started(self, number: int, layout: str) -> None: ...

    def epoch_done(self, number: int, stats: EpochStats) -> None: ...


def trial_seed(seed: int, number: int) -> int:
    """The weights-and-data-order seed of trial ``number`` in a study seeded with ``seed``."""
    return (seed * 1_000_003 + number) % 2**31


def recipe_for(space: SearchSpace, candidate: Candidate) -> Recipe:
    t = space.train
    return Recipe(t.optimizer, candidate.lr, t.weight_decay, t.batch_size, t.epochs, t.schedule)


def _round(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values]


class Objective:
    """Callable for ``study.optimize``: trains the sampled candidate, returns validation accuracy.

    Every trial stores in its user attributes what reports need: ``layout``, ``val_acc_curve``,
    ``val_loss_curve``, ``train_seconds``, ``samples_per_second``, ``epochs``, ``val_acc``,
    ``test_acc`` (complete trials only), ``seed`` and ``end`` (``complete``,
    ``pruned at epoch k`` or ``diverged at epoch k``).
    """

    def __init__(self, space: SearchSpace, data: DeviceData, device: torch.device, seed: int,
                 listener: TrialListener | None = None) -> None:
        self.space, self.data, self.device, self.seed = space, data, device, seed
        self.listener = listener

    def __call__(self, trial: optuna.Trial) -> float:
        candidate = suggest_candidate(trial, self.space)
        layout = str(candidate.layout)
        seed = trial_seed(self.seed, trial.number)
        trial.set_user_attr("layout", layout)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("uniform", candidate.layout.is_uniform)
        if self.listener is not None:
            self.listener.trial_started(trial.number, layout)

        torch.manual_seed(seed)
        model = build_model(self.space.model, candidate.layout, self.data.input_shape,
                            self.data.n_classes, candidate.norm).to(self.device)

        def on_epoch(stats: EpochStats) -> bool:
            if self.listener is not None:
                self.listener.epoch_done(trial.number, stats)
            trial.report(stats.val_acc, stats.epoch)
            return not trial.should_prune()

        result = fit(model, self.data, recipe_for(self.space, candidate), seed, on_epoch)
        self._record(trial, result)
        if result.status != "complete":
            # Diverged candidates are pruned too: the sampler learns they are bad, and the
            # study goes on. `end` tells the two apart.
            raise optuna.TrialPruned(trial.user_attrs.get("end", result.status))
        _, test_acc = evaluate(model, self.data.x_test, self.data.y_test)
        trial.set_user_attr("test_acc", round(test_acc, 6))
        return result.history[-1].val_acc

    def _record(self, trial: optuna.Trial, result: FitResult) -> None:
        history = result.history
        last = history[-1].epoch if history else 0
        end = {"complete": "complete", "stopped": f"pruned at epoch {last}",
               "diverged": f"diverged at epoch {last}"}[result.status]
        trial.set_user_attr("end", end)
        trial.set_user_attr("epochs", last)
        trial.set_user_attr("val_acc_curve", _round([h.val_acc for h in history]))
        trial.set_user_attr("val_loss_curve", _round([h.val_loss for h in history]))
        trial.set_user_attr("train_seconds", round(result.train_seconds, 4))
        trial.set_user_attr("samples_per_second", round(result.samples_per_second, 1))
        if history:
            trial.set_user_attr("val_acc", round(history[-1].val_acc, 6))
