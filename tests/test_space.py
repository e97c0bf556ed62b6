from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from actsearch.errors import ActsearchError
from actsearch.schema.space import (
    KNOWN_INPUT_SHAPES,
    DataSpec,
    FloatRange,
    IntRange,
    ModelSpec,
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
         "expected a number > 0, got -1.0"),
        ({"activations.elu_alpha": {"low": 2.0, "high": 0.5}}, "activations.elu_alpha.low",
         "low <= high"),
        ({"model.depth": 0}, "model.depth", "expected an integer >= 1, got 0"),
        ({"model.depth": {"low": 0, "high": 3}}, "model.depth.low",
         "expected an integer >= 1, got 0"),
        ({"data.name": "imagenet"}, "data.name", "unknown value 'imagenet'"),
        ({"model.colour": "red"}, "model.colour", "unknown key"),
        ({"extra": 1}, "extra", "unknown key"),
        ({"train.epochs": "ten"}, "train.epochs", "expected int, got a string"),
        ({"train.batch_size": 1.5}, "train.batch_size", "expected int, got float"),
        ({"model.norm": ["none", "group"]}, "model.norm[1]", "unknown value 'group'"),
        ({"pruner.name": "magic"}, "pruner.name", "unknown value 'magic'"),
        ({"pruner.n_warmup_steps": -1}, "pruner.n_warmup_steps",
         "expected an integer >= 0, got -1"),
        ({"pruner.foo": 3}, "pruner.foo",
         "unknown key; expected one of: interval_steps, n_min_trials, n_startup_trials, "
         "n_warmup_steps, name"),
        ({"activations.choices": ["relu", "selu"], "activations.elu_alpha": {"low": 0.5}},
         "activations.elu_alpha", "elu is not in activations.choices"),
        ({"data.name": "csv", "data.path": "x.csv"}, "data.label", "label column"),
        ({"budget.trials": 0}, "budget.trials", "expected an integer >= 1, got 0"),
        ({"model": [1, 2]}, "model", "expected a mapping"),
        ({"train.lr": -0.1}, "train.lr", "expected a number > 0, got -0.1"),
        ({"pruner.n_startup_trials": None}, "pruner.n_startup_trials", "expected int"),
        ({"sampler.seed": -1}, "sampler.seed", "expected an integer >= 0, got -1"),
        ({"name": "../elsewhere"}, "name", "names the run folder"),
        ({"objectives": [{"latency": "min"}]}, "objectives[0]", "'accuracy: max' first"),
        ({"objectives": [{"accuracy": "max"}, {"speed": "max"}]}, "objectives[1]",
         "unknown objective 'speed'"),
        ({"objectives": [{"accuracy": "up"}]}, "objectives[0]", "expected max or min"),
        ({"model.kernel_size": [5, 3, 3]}, "model.kernel_size",
         "a list of 2, one per conv layer (depth 2); got a list of 3"),
        ({"model.depth": {"low": 1, "high": 3}, "model.stride": [1, 2]}, "model.stride",
         "a list of 3, one per conv layer up to the highest depth, 3 (a depth d uses the "
         "first d)"),
        ({"model.kernel_size": [3, 0]}, "model.kernel_size[1]", "expected an integer >= 1, got 0"),
        ({"model.kernel_size": 0}, "model.kernel_size", "expected an integer >= 1, got 0"),
        ({"model.kernel_size": [3, True]}, "model.kernel_size[1]", "got a boolean"),
        ({"model.stride": 0}, "model.stride", "expected an integer >= 1, got 0"),
        ({"model.stride": [2, -1]}, "model.stride[1]", "expected an integer >= 1, got -1"),
        ({"model.padding": -1}, "model.padding", "expected an integer >= 0 or same, got -1"),
        ({"model.padding": "valid"}, "model.padding", "or same, got a string 'valid'"),
        ({"model.padding": [0, 1.5]}, "model.padding[1]", "or same, got float"),
        ({"model.kernel_size": "5"}, "model.kernel_size", "expected int or list, got a string"),
        # synthetic samples have 20 features: 20 -> 3 -> nothing.
        ({"model.family": "cnn1d", "model.kernel_size": 9, "model.stride": 4,
          "model.padding": 0}, "model.kernel_size",
         "conv layer 2 of 2 has no output (sizes 20 -> 3 -> 0; kernel_size 9, stride 4, "
         "padding 0); expected smaller kernels or strides, more padding, or fewer layers"),
        # A searched depth is checked at its deepest: 20 -> 10 -> 5 -> 2 -> 1 -> 0.
        ({"model.family": "cnn1d", "model.depth": {"low": 1, "high": 5}, "model.stride": 2,
          "model.kernel_size": [3, 3, 3, 3, 3], "model.padding": [1, 1, 1, 1, 0]},
         "model.kernel_size", "conv layer 5 of 5 has no output"),
        ({"data.name": "digits", "model.family": "cnn2d", "model.kernel_size": [5, 5],
          "model.padding": 0}, "model.kernel_size", "sizes 8x8 -> 4x4 -> 0x0"),
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


CONV_BASE = {"family": "cnn1d", "width": 25, "depth": 3, "kernel_size": [5, 3, 3],
             "padding": 1, "stride": 2}


def test_conv_base_space(write_space) -> None:
    space = load_space(write_space({"data": {"name": "mnist1d"}, "model": CONV_BASE}))
    assert space.model == ModelSpec(family="cnn1d", width=25, depth=3, kernel_size=(5, 3, 3),
                                    stride=2, padding=1)
    assert space.model.conv_layers(3) == [(5, 2, 1), (3, 2, 1), (3, 2, 1)]
    assert space_to_document(space)["model"] == {**CONV_BASE, "norm": ["none"], "dropout": 0.0}


@pytest.mark.parametrize("model", [
    CONV_BASE,
    {"family": "cnn1d", "depth": {"low": 1, "high": 3}, "kernel_size": [7, 5, 3],
     "stride": [2, 1, 1], "padding": ["same", 0, 2]},
    {"family": "cnn1d", "depth": 2, "kernel_size": [3, 3], "padding": "same"},
])
def test_per_layer_settings_round_trip(write_space, model: dict) -> None:
    space = load_space(write_space({"model": model}))
    document = space_to_document(space)
    # Studies store the document as JSON: it survives that, and reads back as the same space.
    assert parse_space(json.loads(json.dumps(document)), space.source) == space
    assert space_to_document(parse_space(document, space.source)) == document


# space_to_document(mnist1d_cnn) as written before per-layer settings and padding existed.
MNIST1D_CNN_DOCUMENT = {
    "name": "mnist1d_cnn",
    "description": "MNIST-1D, 1-D CNN with 3 conv layers (25 channels), per-layer "
                   "ReLU/ELU/SELU",
    "data": {"name": "mnist1d", "val_fraction": 0.2, "test_fraction": 0.2, "samples": 2000},
    "model": {"family": "cnn1d", "width": 25, "depth": 3, "norm": ["none"], "dropout": 0.0,
              "kernel_size": 5, "stride": 2},
    "activations": {"choices": ["relu", "elu", "selu"],
                    "elu_alpha": {"low": 0.1, "high": 2.0, "log": False}},
    "train": {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "batch_size": 100,
              "epochs": 20, "schedule": "cosine"},
    "pruner": {"name": "median", "n_startup_trials": 8, "n_warmup_steps": 4},
    "sampler": {"name": "tpe", "seed": 0},
    "budget": {"trials": 60, "timeout": 300.0},
    "population": "auto",
    "objectives": [{"accuracy": "max"}],
}


def test_an_unchanged_space_file_gives_an_unchanged_document() -> None:
    # Resuming compares the stored document with the file's: a document that changed for an
    # unchanged file would refuse every old study (mnist1d_cnn as shipped before issue 12).
    fixtures = Path(__file__).resolve().parent / "fixtures"
    document = space_to_document(load_space(fixtures / "space-documents" / "mnist1d_cnn.yaml"))
    assert json.dumps(document) == json.dumps(MNIST1D_CNN_DOCUMENT)  # key order too
    assert "padding" not in document["model"]
    # A study's document, stored by v0.1, reads and writes back identically.
    fixture = fixtures / "v0.1-tiny" / "study.db"
    stored = optuna.load_study(study_name="old", storage=f"sqlite:///{fixture}"
                               ).user_attrs["actsearch_space"]
    assert json.dumps(space_to_document(parse_space(stored, "old"))) == json.dumps(stored)


def test_known_input_shapes_are_the_data_sets_shapes() -> None:
    from actsearch.training.data import load_data

    for name, shape in KNOWN_INPUT_SHAPES.items():
        assert load_data(DataSpec(name=name), 0).input_shape == shape, name


def test_at_depth_cuts_per_layer_settings_to_one_depth() -> None:
    spec = ModelSpec(family="cnn1d", depth=IntRange(1, 3), kernel_size=(5, 3, 3),
                     stride=(2, 2, 1), padding=(1, 1, "same"))
    assert spec.at_depth(1) == ModelSpec(family="cnn1d", depth=1, kernel_size=5, stride=2,
                                         padding=1)
    assert spec.at_depth(2) == ModelSpec(family="cnn1d", depth=2, kernel_size=(5, 3), stride=2,
                                         padding=1)
    assert spec.at_depth(3).padding == (1, 1, "same")
    assert spec.at_depth(3).conv_layers(3) == spec.conv_layers(3) == [(5, 2, 1), (3, 2, 1),
                                                                      (3, 1, 1)]
    assert ModelSpec(kernel_size=3).at_depth(2) == ModelSpec(depth=2, kernel_size=3)
