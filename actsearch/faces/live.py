"""The terminal view of a running search: rich Live on a terminal, plain lines elsewhere.

It keeps its own tally from the callbacks it receives, so drawing never queries the storage,
and it redraws at most a few times a second so that it never slows training measurably.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from actsearch.engine.record import TrialRecord

if TYPE_CHECKING:  # only a type here: the live view itself needs no torch
    from actsearch.training.fit import EpochStats

__all__ = ["LiveView", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_REDRAW_SECONDS = 0.25


def sparkline(values: list[float]) -> str:
    """A one-line chart of a curve, e.g. a validation-accuracy curve."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BARS[int((v - low) / span * (len(_BARS) - 1))] for v in values)


@dataclass
class _Finished:
    number: int
    layout: str
    value: float
    epochs: int
    seconds: float


@dataclass
class _Tally:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    best: list[_Finished] = field(default_factory=list)
    sign: int = 1  # -1: the study minimises its metric (the best is the lowest)

    def add(self, trial: TrialRecord) -> None:
        if trial.state == TrialState.COMPLETE:
            self.complete += 1
            self.best.append(_Finished(trial.number, trial.layout or "?", trial.accuracy,
                                       trial.epochs or 0, trial.train_seconds or 0.0))
            self.best.sort(key=lambda f: -self.sign * f.value)
            del self.best[5:]
        elif trial.state == TrialState.PRUNED:
            self.pruned += 1
        elif trial.state == TrialState.FAIL:
            self.failed += 1


class LiveView:
    """Shows trials done / pruned / failed, the best layouts, the running trial's curve,
    elapsed and remaining time. Use as a context manager around the search."""

    def __init__(self, trials: int, timeout: float | None, console: Console | None = None,
                 live: bool | None = None, previous: list[TrialRecord] | None = None,
                 sign: int = 1) -> None:
        self.console = console or Console()
        self.live = self.console.is_terminal if live is None else live
        self.trials, self.timeout = trials, timeout
        self.tally = _Tally(sign=sign)
        for trial in previous or []:
            self.tally.add(trial)
        self.done_before = self.tally.complete + self.tally.pruned
        # Trials now training: one, or several in a population. number -> (layout, curve)
        self.running: dict[int, tuple[str, list[float]]] = {}
        self.started = time.monotonic()
        self.last_draw = 0.0
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        self.started = time.monotonic()
        if self.live:
            self._live = Live(self._render(), console=self.console, auto_refresh=False,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(None, None, None)
            self._live = None

    # TrialListener
    def trial_started(self, number: int, layout: str) -> None:
        self.running[number] = (layout, [])
        self._draw()

    def epoch_done(self, number: int, stats: EpochStats) -> None:
        if number in self.running:
            self.running[number][1].append(stats.val_acc)
        self._draw()

    # actsearch.engine.driver.Callback
    def __call__(self, study: optuna.Study, trial: TrialRecord) -> None:
        self.tally.add(trial)
        self.running.pop(trial.number, None)
        if self._live is None:
            self.console.print(self._line(trial), highlight=False, soft_wrap=True)
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._live is None or (not force and now - self.last_draw < _REDRAW_SECONDS):
            return
        self.last_draw = now
        self._live.update(self._render(), refresh=True)

    def _counts(self) -> str:
        t = self.tally
        return (f"{t.complete + t.pruned}/{self.trials} done: {t.complete} complete, "
                f"{t.pruned} pruned, {t.failed} failed")

    def _times(self) -> str:
        elapsed = time.monotonic() - self.started
        done_now = self.tally.complete + self.tally.pruned - self.done_before
        left = self.trials - self.tally.complete - self.tally.pruned
        estimates = [0.0] if left <= 0 else []
        if done_now > 0 and left > 0:
            estimates.append(elapsed / done_now * left)
        if self.timeout is not None:
            estimates.append(max(self.timeout - elapsed, 0.0))
        remaining = f", ~{min(estimates):.0f}s left" if estimates else ""
        return f"{elapsed:.0f}s elapsed{remaining}"

    def _line(self, trial: TrialRecord) -> str:
        end = trial.end or trial.state.name.lower()
        if trial.state == TrialState.FAIL:
            end = "failed: " + (trial.error or "see the trial's log")
        acc = trial.val_acc
        acc_text = f"val {acc:.4f}" if acc is not None else "val -"
        best = self.tally.best[0] if self.tally.best else None
        best_text = f"best {best.value:.4f} (trial {best.number})" if best else "best -"
        return (f"trial {trial.number:>4} {end:<20} {acc_text}  "
                f"{trial.layout or '?':<32} | {best_text} | {self._counts()} "
                f"| {self._times()}")

    def _render(self) -> Group:
        header = Text.assemble(("actsearch ", "bold"), self._counts(), "  ", self._times())
        table = Table(title="best so far", title_justify="left", expand=False)
        for col, justify in (("trial", "right"), ("layout", "left"), ("val acc", "right"),
                             ("epochs", "right"), ("train s", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for f in self.tally.best:
            table.add_row(str(f.number), f.layout, f"{f.value:.4f}", str(f.epochs),
                          f"{f.seconds:.1f}")
        parts: list[object] = [header, table]
        if self.running:
            number = max(self.running)  # the newest; a population shows how many train
            layout, curve = self.running[number]
            last = f"{curve[-1]:.4f}" if curve else "-"
            others = f" (+{len(self.running) - 1} more running)" if len(self.running) > 1 else ""
            parts.append(Text(f"running trial {number}: {layout}  epoch {len(curve)}  "
                              f"val {last}  {sparkline(curve)}{others}"))
        return Group(*parts)  # type: ignore[arg-type]
