from __future__ import annotations

from pathlib import Path

import optuna

from actsearch.engine.driver import run_trials
from actsearch.engine.finalists import run_finalists, select_finalists
from actsearch.engine.study import open_study
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device


def _trial(acc: float, layout: str, uniform: bool) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(value=acc, user_attrs={
        "val_acc": acc, "layout": layout, "uniform": uniform})


def test_select_top_distinct_layouts_and_the_best_uniform() -> None:
    study = optuna.create_study(direction="maximize")
    for acc, layout, uniform in [(0.60, "relu | relu", True), (0.64, "selu | selu", True),
                                 (0.70, "relu | selu", False), (0.70, "relu | selu", False),
                                 (0.68, "selu | relu", False), (0.50, "elu | relu", False)]:
        study.add_trial(_trial(acc, layout, uniform))
    chosen = [t.layout for t in select_finalists(study, 2)]
    assert chosen == ["relu | selu", "selu | relu", "selu | selu"]


def test_finalists_are_retrained_with_fresh_seeds(write_space, tmp_path: Path) -> None:
    space = load_space(write_space())
    study, space = open_study(space, "f", f"sqlite:///{tmp_path}/f.db")
    data = to_device(load_data(space.data, 0), "cpu")
    run_trials(study, space, data, trials=5)
    lines: list[str] = []
    results = run_finalists(study, space, data, k=2, seeds=3, progress=lines.append)
    assert study.user_attrs["finalists"] == results and len(lines) == len(results)
    trial_seeds = {t.user_attrs["seed"] for t in study.trials}
    for r in results:
        assert len(r["test_acc"]) == 3 and not set(r["seeds"]) & trial_seeds
        assert r["ci_low"] <= r["mean"] <= r["ci_high"] and r["std"] >= 0
        assert r["stability"] >= r["std"]  # the seed spread is part of the score
    assert sum(r["uniform"] for r in results) >= 1
