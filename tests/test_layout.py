from __future__ import annotations

import optuna
import pytest

from actsearch.engine.suggest import suggest_candidate
from actsearch.errors import ActsearchError
from actsearch.models.layout import (
    Layer,
    Layout,
    candidate_from_params,
    parse_layout,
    uniform_candidates,
)
from actsearch.schema.space import load_space


def test_layout_string_and_parse() -> None:
    layout = Layout((Layer("relu"), Layer("elu", 0.73), Layer("selu")))
    assert str(layout) == "relu | elu(0.73) | selu"
    assert parse_layout("relu | elu(0.73) | selu") == layout
    assert parse_layout("elu").layers[0].param == 1.0
    with pytest.raises(ActsearchError, match="unknown activation"):
        parse_layout("relu | swish2")


def test_small_parameters_print_their_significant_digits() -> None:
    # A leaky_relu slope under 0.005 once printed as leaky_relu(0.00).
    assert str(Layer("leaky_relu", 0.0031)) == "leaky_relu(0.0031)"
    assert str(Layer("leaky_relu", 0.05)) == "leaky_relu(0.05)"
    assert str(Layer("elu", 1.0)) == "elu(1.00)"
    assert parse_layout("leaky_relu(0.0031)").layers[0].param == 0.0031


@pytest.mark.parametrize("space_name", ["mnist1d_mlp", "digits_mlp", "mnist1d_mlp_norm"])
def test_params_round_trip(space_name: str) -> None:
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        candidate = suggest_candidate(trial, space)
        assert candidate_from_params(trial.params, space) == candidate
        assert candidate.layout.to_params().items() <= trial.params.items()
        study.tell(trial, 0.0)


def test_uniform_baselines() -> None:
    space = load_space("digits_mlp")
    baselines = [candidate_from_params(p, space) for p in uniform_candidates(space)]
    assert [str(c.layout) for c in baselines] == [
        "relu | relu", "elu(1.00) | elu(1.00)", "selu | selu"]
    assert all(c.layout.is_uniform for c in baselines)
    assert not parse_layout("relu | selu").is_uniform
    assert not parse_layout("elu(0.5) | elu(1.0)").is_uniform


def test_missing_param_is_a_clear_error() -> None:
    space = load_space("mnist1d_mlp")
    with pytest.raises(ActsearchError, match="lack 'act_2'"):
        candidate_from_params({"act_0": "relu", "act_1": "relu"}, space)
