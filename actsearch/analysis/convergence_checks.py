"""Convergence checks: did the uniform baselines and the finalists stop improving by the end
of training, or overfit? Read off their validation curves (the finalists' one per seed).

This is the only sense of "convergence" in actsearch; how fast a run got there is a probe of
its own (``actsearch.training.probes.convergence_speed``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actsearch.engine.record import TrialRecord

__all__ = ["LOSS_RISE", "MIN_GAIN", "NOISE_FLOOR", "Convergence", "ConvergenceCheck",
           "convergence"]

NOISE_FLOOR = 0.01  # the gain's noise assumed when no seed-to-seed spread was measured
MIN_GAIN = 0.005  # a gain of less than half a point over the last fifth is no longer learning
LOSS_RISE = 0.05  # validation loss this much (5%) above its lowest point: it rose


@dataclass(frozen=True)
class ConvergenceCheck:
    """How one layout's training ended, read off its validation curves (one per seed).

    ``gain``: the mean validation accuracy of the last fifth of the epochs minus that of the
    fifth before, averaged over seeds; the layout was still improving when the gain exceeds
    ``noise``, the seed-to-seed spread (std) of that gain, and ``MIN_GAIN``. ``overfitting``:
    the mean validation loss was lowest before the last fifth and ended ``LOSS_RISE`` or more
    above that, while the accuracy no longer improved.
    """

    number: int  # the search trial
    layout: str
    runs: int  # curves read: the finalist's seeds, or 1 (the search trial)
    epochs: int
    window: int  # epochs in the last fifth
    gain: float
    noise: float
    noise_measured: bool  # False: no seed spread was measured, NOISE_FLOOR stands in
    best_loss_epoch: int
    best_loss: float
    last_loss: float

    @property
    def improving(self) -> bool:
        return self.gain > max(self.noise, MIN_GAIN)

    @property
    def overfitting(self) -> bool:
        return (not self.improving and self.best_loss_epoch <= self.epochs - self.window
                and self.last_loss > self.best_loss * (1 + LOSS_RISE))


@dataclass(frozen=True)
class Convergence:
    """The convergence checks of the uniform baselines and the finalists, and what they say."""

    checks: list[ConvergenceCheck]
    metric: str = "accuracy"  # the validation metric's name; a gain is its improvement

    @property
    def not_converged(self) -> list[ConvergenceCheck]:
        return [c for c in self.checks if c.improving]

    @property
    def overfitting(self) -> list[ConvergenceCheck]:
        return [c for c in self.checks if c.overfitting]

    @property
    def lines(self) -> list[str]:
        """Plain sentences for every face (none when training converged without overfitting)."""
        lines, n = [], len(self.checks)
        if self.not_converged:
            c = max(self.not_converged, key=lambda c: c.gain - c.noise)
            lines.append(
                f"Not converged: validation {self.metric} was still "
                f"{'rising' if self.metric == 'accuracy' else 'improving'} at the end of training "
                f"for {len(self.not_converged)} of {n} layouts checked (e.g. {c.layout}: "
                f"{c.gain:+.4f} over the last {c.window} epochs, "
                f"{_noise_words(c)} {c.noise:.4f}); the comparison is about a recipe that had "
                f"not converged.")
        if self.overfitting:
            c = max(self.overfitting, key=lambda c: c.last_loss / c.best_loss)
            lines.append(
                f"Overfitting: validation loss rose while {self.metric} plateaued for "
                f"{len(self.overfitting)} of {n} layouts checked (e.g. {c.layout}: lowest "
                f"{c.best_loss:.4f} at epoch {c.best_loss_epoch}, {c.last_loss:.4f} after "
                f"epoch {c.epochs}); the comparison is about models past their best "
                f"validation loss.")
        return lines


def _noise_words(check: ConvergenceCheck) -> str:
    if check.runs > 1:
        return f"{check.runs} seeds, against the spread of that gain over them,"
    if check.noise_measured:
        return "one run, against the finalists' spread of that gain (at least the floor),"
    return "one run, against the noise floor"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _check(number: int, layout: str, acc_curves: Sequence[Sequence[float]],
           loss_curves: Sequence[Sequence[float]], noise: float | None, sign: int = 1
           ) -> ConvergenceCheck | None:
    """The check of one layout's curves, one per seed; ``noise`` stands in for the gains'
    spread when there is one curve; ``sign`` -1 for a minimised metric (its gain is a fall).
    None when too short to judge."""
    epochs = min(len(c) for c in (*acc_curves, *loss_curves))
    window = max(1, round(epochs / 5))
    if epochs < 2 * window or epochs < 3:
        return None
    gains = [sign * (_mean(c[epochs - window:epochs])
                     - _mean(c[epochs - 2 * window:epochs - window])) for c in acc_curves]
    noise = _std(gains) if len(gains) > 1 else noise
    loss = [_mean([c[e] for c in loss_curves]) for e in range(epochs)]
    best = min(range(epochs), key=lambda e: loss[e])
    return ConvergenceCheck(number, layout, len(acc_curves), epochs, window, _mean(gains),
                            NOISE_FLOOR if noise is None else noise, noise is not None,
                            best + 1, loss[best], loss[-1])


def convergence(trials: Sequence[TrialRecord], finalists: Sequence[dict[str, Any]],
                sign: int = 1, metric: str = "accuracy") -> Convergence:
    """Convergence checks of the finalists and of search trials (the uniform baselines').

    A finalist is judged on its fresh seeds' curves against the spread of their gains; a
    search trial (one run; a finalist stored without curves too) against the median spread
    of the finalists' gains (the same recipe's seed noise) but at least ``NOISE_FLOOR``. Only
    trials that trained every epoch are judged.
    """
    checks: list[ConvergenceCheck] = []
    spreads = []
    judged: set[int] = set()
    for f in finalists:
        acc, loss = f.get("val_acc_curves") or [], f.get("val_loss_curves") or []
        if not acc or len(acc) != len(loss):
            continue  # stored by a version that kept no curves: its search trial stands in
        check = _check(f["number"], f["layout"], acc, loss, None, sign)
        if check is not None:
            checks.append(check)
            judged.add(f["number"])
            if check.noise_measured:
                spreads.append(check.noise)
    # One curve fluctuates more than a mean over seeds: a single run's noise is at least the
    # floor.
    noise = max(sorted(spreads)[len(spreads) // 2], NOISE_FLOOR) if spreads else None
    for r in trials:
        if r.number in judged or not r.val_acc_curve or len(r.val_acc_curve) != r.epochs:
            continue
        check = _check(r.number, r.layout or "?", [r.val_acc_curve], [r.val_loss_curve], noise,
                       sign)
        if check is not None:
            checks.append(check)
    return Convergence(checks, metric)
