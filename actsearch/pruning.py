"""Pruning for multi-objective studies, which Optuna's pruners cannot serve.

Optuna refuses ``trial.report`` when a study has several objectives, so its pruners never see
a learning curve there. actsearch prunes such studies itself on the primary metric, the
validation accuracy, median-style: at epoch k a running trial whose best accuracy so far is
below the median of the complete trials' accuracies at epoch k stops. Complete trials carry
their curve in the ``val_acc_curve`` user attribute, so no intermediate values are needed.
"""

from __future__ import annotations

import statistics

import optuna
from optuna.trial import TrialState

from actsearch.space import SearchSpace

__all__ = ["CurveMedianPruner"]


class CurveMedianPruner:
    """Median pruning on stored validation curves (the MedianPruner's rule).

    Args:
        n_startup_trials: No pruning until this many trials are complete.
        n_warmup_steps: No pruning before this epoch (1-based epochs, as reported).
        enabled: False never prunes (the space's pruner is ``none``).
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 enabled: bool = True) -> None:
        if n_startup_trials < 0 or n_warmup_steps < 0:
            raise ValueError("n_startup_trials and n_warmup_steps must be >= 0")
        self.n_startup_trials, self.n_warmup_steps = n_startup_trials, n_warmup_steps
        self.enabled = enabled
        self._curves: dict[int, list[float]] = {}  # complete trials never change: cached

    @classmethod
    def for_space(cls, space: SearchSpace) -> CurveMedianPruner:
        """The space's median/percentile settings; other pruners use the median defaults."""
        settings = space.pruner.settings
        return cls(settings.get("n_startup_trials", 5), settings.get("n_warmup_steps", 0),
                   enabled=space.pruner.name != "none")

    def should_prune(self, study: optuna.Study, epoch: int, best_so_far: float) -> bool:
        """Whether a trial whose best validation accuracy up to ``epoch`` is ``best_so_far``
        should stop."""
        if not self.enabled or epoch < self.n_warmup_steps:
            return False
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number not in self._curves:
                self._curves[trial.number] = list(trial.user_attrs.get("val_acc_curve", []))
        if len(self._curves) < max(self.n_startup_trials, 1):
            return False
        at_epoch = [c[epoch - 1] for c in self._curves.values() if len(c) >= epoch]
        if not at_epoch:
            return False
        return best_so_far < statistics.median(at_epoch)
