from __future__ import annotations

from pathlib import Path

import pytest

from actsearch.errors import ActsearchError
from actsearch.schema.space import (
    FloatRange,
    IntRange,
    list_shipped_spaces,
    load_space,
    parse_space,
    space_to_document,
)


def test_shipped_spaces_are_valid() -> None:
    names = {s.name for s in list_shipped_spaces()}
    assert {"mnist1d_mlp", "mnist1d_cnn", "digits_mlp", "mnist1d_mlp_norm"} <= names
    assert any(len(s.model.norm) > 1 for s in list_shipped_spaces())
    default = load_space(None)
    assert default.name == "mnist1d_mlp" and default.choices == ("relu", "elu", "selu")
    assert default.param_ranges["elu"] == FloatRange(0.1, 2.0, False)


def test_defaults_and_ranges(write_space) -> None:
    space = load_space(write_space({"model.depth": {"low": 2, "high": 4},
                                    "train.lr": {"low": 1e-4, "high": 1e-1, "log": True}}))
    assert space.model.depth == IntRange(2, 4) and space.depths == [2, 3, 4]
    assert space.train.lr == FloatRange(1e-4, 1e-1, True)
    assert space.objectives == (("accuracy", "max"),)
    space = load_space(write_space({"train.lr": 1, "objectives": ["accuracy", "latency"]}))
    assert space.train.lr == 1.0  # an integer where a float is expected is fine
    assert space.objectives == (("accuracy", "max"), ("latency", "min"))


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"activations.choices": ["relu", "rleu"]}, "activations.choices[1]",
         "unknown activation 'rleu'"),
        ({"activations.choices": []}, "activations.choices", "non-empty list"),
        ({"activations.elu_alpha": {"low": -1.0, "high": 2.0}}, "activations.elu_alpha.low",
         "positive range"),
        ({"activations.elu_alpha": {"low": 2.0, "high": 0.5}}, "activations.elu_alpha.low",
         "low <= high"),
        ({"model.depth": 0}, "model.depth", "depth >= 1"),
        ({"model.depth": {"low": 0, "high": 3}}, "model.depth.low", "depth >= 1"),
        ({"data.name": "imagenet"}, "data.name", "unknown value 'imagenet'"),
        ({"model.colour": "red"}, "model.colour", "unknown key"),
        ({"extra": 1}, "extra", "unknown key"),
        ({"train.epochs": "ten"}, "train.epochs", "expected int, got a string"),
        ({"train.batch_size": 1.5}, "train.batch_size", "expected int, got float"),
        ({"model.norm": ["none", "group"]}, "model.norm[1]", "unknown value 'group'"),
        ({"pruner.name": "magic"}, "pruner.name", "unknown value 'magic'"),
        ({"pruner.n_warmup_steps": -1}, "pruner.n_warmup_steps", "non-negative"),
        ({"pruner.foo": 3}, "pruner.foo",
         "unknown key; expected one of: interval_steps, n_min_trials, n_startup_trials, "
         "n_warmup_steps, name"),
        ({"activations.choices": ["relu", "selu"], "activations.elu_alpha": {"low": 0.5}},
         "activations.elu_alpha", "elu is not in activations.choices"),
        ({"data.name": "csv", "data.path": "x.csv"}, "data.label", "label column"),
        ({"budget.trials": 0}, "budget.trials", "at least 1"),
        ({"model": [1, 2]}, "model", "expected a mapping"),
        ({"train.lr": -0.1}, "train.lr", "positive"),
        ({"pruner.n_startup_trials": None}, "pruner.n_startup_trials", "expected int"),
        ({"sampler.seed": -1}, "sampler.seed", "expected a seed >= 0"),
        ({"name": "../elsewhere"}, "name", "names the run folder"),
        ({"objectives": [{"latency": "min"}]}, "objectives[0]", "'accuracy: max' first"),
        ({"objectives": [{"accuracy": "max"}, {"speed": "max"}]}, "objectives[1]",
         "unknown objective 'speed'"),
        ({"objectives": [{"accuracy": "up"}]}, "objectives[0]", "expected max or min"),
    ],
)
def test_malformed_space_names_file_and_field(write_space, changes, field, expected) -> None:
    path = write_space(changes)
    with pytest.raises(ActsearchError) as info:
        load_space(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert expected in message
    assert "\n" not in message


def test_not_yaml_and_python_tags_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ActsearchError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_space(bad)
    evil = tmp_path / "evil.yaml"
    evil.write_text("data: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ActsearchError, match="not valid YAML"):
        load_space(evil)


def test_missing_file_and_unknown_shipped_name() -> None:
    with pytest.raises(ActsearchError, match="nope.yaml: space file not found"):
        load_space("nope.yaml")
    with pytest.raises(ActsearchError, match="shipped spaces: .*mnist1d_mlp"):
        load_space("no_such_space")


def test_document_round_trip() -> None:
    for space in list_shipped_spaces():
        again = parse_space(space_to_document(space), space.source)
        assert again == space
