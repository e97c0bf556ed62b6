"""The report says when the comparison rests on a recipe that had not converged, or overfit."""

from __future__ import annotations

from pathlib import Path

import pytest

import actsearch
from actsearch.analysis import NOISE_FLOOR, convergence
from actsearch.engine.record import TrialRecord
from actsearch.faces.dashboard import summary_note


def _finalist(number: int, acc: list[list[float]], loss: list[list[float]]) -> dict:
    return {"number": number, "layout": f"layout {number}", "val_acc_curves": acc,
            "val_loss_curves": loss}


RISING = [[0.1 + 0.05 * e for e in range(10)], [0.12 + 0.05 * e for e in range(10)]]
FLAT = [[0.70, 0.71, 0.70, 0.71, 0.70, 0.71, 0.70, 0.71, 0.70, 0.71],
        [0.69, 0.70, 0.69, 0.70, 0.69, 0.70, 0.69, 0.70, 0.69, 0.70]]
FLAT_LOSS = [[1.0] * 10, [1.0] * 10]
RISING_LOSS = [[1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15]] * 2


def test_still_rising_curves_are_not_converged() -> None:
    result = convergence([], [_finalist(3, RISING, FLAT_LOSS)])
    (check,) = result.checks
    # The last fifth (2 epochs) against the fifth before: +0.10 on both seeds.
    assert check.window == 2 and check.gain == pytest.approx(0.10)
    assert check.noise == pytest.approx(0.0, abs=1e-9) and check.noise_measured
    assert check.improving and not check.overfitting
    (line,) = result.lines
    assert line.startswith("Not converged: validation accuracy was still rising")
    assert "layout 3: +0.1000 over the last 2 epochs" in line
    assert "the comparison is about a recipe that had not converged" in line


def test_loss_rising_while_accuracy_plateaus_is_overfitting() -> None:
    result = convergence([], [_finalist(4, FLAT, RISING_LOSS)])
    (check,) = result.checks
    assert not check.improving and check.overfitting
    assert (check.best_loss_epoch, check.best_loss, check.last_loss) == (3, 0.8, 1.15)
    (line,) = result.lines
    assert line.startswith("Overfitting:") and "lowest 0.8000 at epoch 3" in line


def test_converged_curves_say_nothing_and_single_runs_use_the_finalists_spread() -> None:
    baseline = TrialRecord(number=0, layout="relu | relu", epochs=10, val_acc_curve=RISING[0],
                           val_loss_curve=FLAT_LOSS[0])
    result = convergence([baseline], [_finalist(4, FLAT, FLAT_LOSS)])
    assert [c.number for c in result.checks] == [4, 0]
    assert not result.checks[0].improving
    # A single run: the finalists' spread of gains, but at least the noise floor.
    assert result.checks[1].noise == max(result.checks[0].noise, NOISE_FLOOR)
    assert [line.split(":")[0] for line in result.lines] == ["Not converged"]
    # Without any finalist, a single run is judged against the noise floor.
    alone = convergence([baseline], [])
    assert alone.checks[0].noise == NOISE_FLOOR and not alone.checks[0].noise_measured
    # Pruned trials (fewer epochs than their curves promise) and short curves are not judged.
    pruned = TrialRecord(number=1, layout="elu", epochs=3, val_acc_curve=[0.1, 0.2, 0.3, 0.4],
                         val_loss_curve=[1.0] * 4)
    assert convergence([pruned], []).checks == []
    assert convergence([], []).lines == []


@pytest.mark.slow  # end to end, up to 25 epochs
@pytest.mark.parametrize(("recipe", "stated"), [
    ({"epochs": 10, "lr": 0.001, "schedule": "constant"}, True),  # far from converged
    ({"epochs": 25, "lr": 0.01, "schedule": "cosine"}, False),
])
def test_the_report_states_it_for_a_short_recipe_only(write_space, tmp_path: Path,
                                                      recipe: dict, stated: bool) -> None:
    space = write_space({**{f"train.{k}": v for k, v in recipe.items()},
                         "pruner": {"name": "none"}, "data.samples": 1200})
    result = actsearch.search(space, trials=4, finalists=1, seeds=3, runs_dir=tmp_path,
                              progress=False, report=True)
    lines = result.analysis.convergence.lines
    assert any(line.startswith("Not converged") for line in lines) == stated, lines
    md = result.report_files[1].read_text()
    assert ("Not converged: validation accuracy was still rising" in md) == stated
    # The dashboard's note says the same, beside the verdict.
    assert ("**Not converged:** validation accuracy" in summary_note(result.analysis)) == stated
