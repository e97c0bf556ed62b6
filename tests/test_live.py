from __future__ import annotations

import io

import optuna
from optuna.trial import TrialState
from rich.console import Console

from actsearch.engine.record import TrialRecord
from actsearch.faces.live import LiveView, sparkline
from actsearch.training.fit import EpochStats


def _trial(number: int, state: TrialState, **attrs) -> TrialRecord:
    trial = optuna.trial.create_trial(
        state=state, value=attrs.get("val_acc") if state == TrialState.COMPLETE else None,
        user_attrs={"layout": "relu | selu", **attrs})
    trial.number = number
    return TrialRecord.from_frozen(trial)


def _feed(view: LiveView) -> None:
    view.trial_started(0, "relu | selu")
    view.epoch_done(0, EpochStats(1, 1.0, 1.0, 0.5, 0.1))
    view(None, _trial(0, TrialState.COMPLETE, val_acc=0.61, end="complete", epochs=3))
    view(None, _trial(1, TrialState.PRUNED, val_acc=0.40, end="pruned at epoch 2"))
    view(None, _trial(2, TrialState.FAIL, error="out of memory: CUDA out of memory"))


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert not console.is_terminal
    with LiveView(10, None, console) as view:
        _feed(view)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # one plain line per finished trial, no live redraws
    assert "trial    1 pruned at epoch 2" in lines[1]
    assert "failed: out of memory" in lines[2]
    assert "s elapsed, ~" in lines[2]  # elapsed and estimated remaining time
    assert "2/10 done: 1 complete, 1 pruned, 1 failed" in lines[2]
    assert "best 0.6100 (trial 0)" in lines[2]


def test_live_view_on_a_terminal_shows_counts_and_the_running_curve() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True)
    with LiveView(10, 60.0, console) as view:
        _feed(view)
        view.trial_started(3, "selu | selu")
        view.epoch_done(3, EpochStats(1, 1.0, 1.0, 0.3, 0.1))
        view.epoch_done(3, EpochStats(2, 1.0, 1.0, 0.6, 0.2))
        rendered = io.StringIO()
        Console(file=rendered, width=160).print(view._render())
    text = rendered.getvalue()
    assert "2/10 done: 1 complete, 1 pruned, 1 failed" in text
    assert "running trial 3: selu | selu  epoch 2  val 0.6000" in text
    assert "relu | selu" in text and "0.6100" in text  # the best-so-far table


def test_sparkline() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▄█"
    assert sparkline([]) == "" and sparkline([0.3, 0.3]) == "▁▁"
