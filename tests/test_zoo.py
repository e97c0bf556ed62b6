"""The shipped families as zoo factories: exactly the networks build_model made before the zoo
(same modules, same state_dict for a seed, same outputs), and sites found per hidden layer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.build import FAMILY_FACTORIES, build_model, hidden_activations
from actsearch.models.groups import resolve_groups
from actsearch.models.layout import Layout, parse_layout
from actsearch.models.sites import find_sites
from actsearch.schema.space import IntRange, ModelSpec
from actsearch.zoo.cnn import cnn1d, cnn2d
from actsearch.zoo.layers import layer_groups
from actsearch.zoo.mlp import mlp

# Computed with build_model before the zoo existed (the file says how).
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "zoo_families.json").read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}


def _spec(case: dict[str, Any]) -> ModelSpec:
    d = dict(case["spec"])
    if isinstance(d.get("depth"), dict):
        d["depth"] = IntRange(**d["depth"])
    for key in ("kernel_size", "stride", "padding", "norm"):
        if isinstance(d.get(key), list):
            d[key] = tuple(d[key])
    return ModelSpec(**d)


def _zoo_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    """The case as a user would call the zoo factory: plain keyword arguments."""
    spec = case["spec"]
    kwargs = {"input_shape": case["shape"], "n_classes": case["classes"], "width": spec["width"],
              "layout": case["layout"], "dropout": spec.get("dropout", 0.0),
              "norm": case["norm"] or spec.get("norm", ["none"])[0]}
    if spec.get("family", "mlp") != "mlp":
        kwargs.update({k: spec[k] for k in ("kernel_size", "stride", "padding") if k in spec})
    return kwargs


def _assert_as_before(model: nn.Module, case: dict[str, Any]) -> None:
    assert [[n, repr(m)] for n, m in model.named_modules() if n] == case["modules"]
    state = {k: [list(v.shape), str(v.dtype),
                 hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest()]
             for k, v in model.state_dict().items()}
    assert state == case["state_dict"]
    x = torch.randn((3, *case["shape"]), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model.eval()(x)
    assert torch.allclose(out, torch.tensor(case["output"]), atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_model_builds_what_it_built_before_the_zoo(name: str) -> None:
    case = CASES[name]
    torch.manual_seed(case["seed"])
    model = build_model(_spec(case), parse_layout(case["layout"]), tuple(case["shape"]),
                        case["classes"], case["norm"])
    _assert_as_before(model, case)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_zoo_factory_called_directly_builds_the_same(name: str) -> None:
    case = CASES[name]
    factory = FAMILY_FACTORIES[case["spec"].get("family", "mlp")]
    torch.manual_seed(case["seed"])
    _assert_as_before(factory(**_zoo_kwargs(case)), case)


def test_a_different_seed_draws_different_weights() -> None:
    # The fixture's hashes pin the weights, not only the shapes.
    case = CASES["mlp"]
    torch.manual_seed(case["seed"] + 1)
    model = mlp(**_zoo_kwargs(case))
    with pytest.raises(AssertionError):
        _assert_as_before(model, case)


@pytest.mark.parametrize(("factory", "kwargs"), [
    (mlp, {"input_shape": (8, 8), "norm": "batch", "dropout": 0.1}),
    (cnn1d, {"input_shape": (40,), "stride": 2, "norm": "layer"}),
    (cnn2d, {"input_shape": (1, 8, 8), "kernel_size": [3, 1, 5], "padding": ["same", 0, 2]}),
])
def test_zoo_sites_are_found_one_group_per_hidden_layer(factory: Any,
                                                         kwargs: dict[str, Any]) -> None:
    layout = parse_layout("relu | elu(0.5) | selu")
    model = factory(n_classes=10, width=6, layout=layout, **kwargs)
    x = torch.randn((2, *kwargs["input_shape"]))
    report = find_sites(model, x)
    paths = {id(m): name for name, m in model.named_modules()}
    # Every hidden activation is a site, named by its module path, input side first.
    assert [s.name for s in report] == [paths[id(m)] for m in hidden_activations(model)]
    assert [s.current for s in report] == [str(layer) for layer in layout.layers]
    assert {s.kind for s in report} == {"module"} and not report.unsearchable
    groups = resolve_groups(report, layer_groups(report))
    assert [(g.name, g.sites) for g in groups] == [
        (f"act_{i}", (s.name,)) for i, s in enumerate(report)]


def test_without_a_layout_a_zoo_factory_builds_relu_at_each_layer() -> None:
    # How a space that names the factory as its own model gets the model its sites are
    # found on: kwargs from the file, no layout.
    model = cnn1d(input_shape=[40], n_classes=10, width=4, depth=2)
    assert [type(m) for m in hidden_activations(model)] == [nn.ReLU, nn.ReLU]
    assert model(torch.randn(2, 40)).shape == (2, 10)
    layout = Layout((parse_layout("selu").layers[0],))
    assert [type(m) for m in hidden_activations(mlp(input_shape=[4], n_classes=2,
                                                    layout=layout))] == [nn.SELU]


@pytest.mark.parametrize(("call", "expected"), [
    (lambda: mlp(input_shape=[4], n_classes=2, norm="group"),
     "actsearch.zoo.mlp:mlp: norm: unknown value 'group'; expected one of: none, batch, layer"),
    (lambda: mlp(input_shape=[4], n_classes=2, norm=["batch", "layer"]),
     "actsearch.zoo.mlp:mlp: norm: expected one norm, got ['batch', 'layer']"),
    (lambda: mlp(input_shape=[4], n_classes=2, width=0),
     "actsearch.zoo.mlp:mlp: width: expected an integer >= 1, got 0"),
    (lambda: mlp(input_shape=[4], n_classes=2, depth=0),
     "actsearch.zoo.mlp:mlp: depth: expected an integer >= 1, got 0"),
    (lambda: mlp(input_shape="40", n_classes=2),
     "actsearch.zoo.mlp:mlp: input_shape: expected one sample's shape, e.g. [40], got '40'"),
    (lambda: cnn1d(input_shape=[40], n_classes=2, layout="relu | relu", kernel_size=[5]),
     "actsearch.zoo.cnn:cnn1d: kernel_size:"),
    (lambda: cnn2d(input_shape=[8, 8], n_classes=2, layout=3),
     "actsearch.zoo.cnn:cnn2d: layout: expected a Layout or a form like"),
])
def test_bad_zoo_arguments_say_which_in_one_line(call: Any, expected: str) -> None:
    with pytest.raises(ActsearchError) as info:
        call()
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_a_space_may_name_a_zoo_factory_as_its_own_model(tmp_path: Path) -> None:
    from actsearch.models.build import build_candidate
    from actsearch.models.custom import with_sites
    from actsearch.models.factory import load_factory
    from actsearch.schema.space import load_space

    # From any folder: the package's own function, not a second import of actsearch.
    assert load_factory("actsearch.zoo.cnn:cnn2d", tmp_path) is cnn2d
    (tmp_path / "space.yaml").write_text(
        "name: zoo_mlp\ndata: {name: digits}\nmodel:\n  factory: actsearch.zoo.mlp:mlp\n"
        "  kwargs: {input_shape: [8, 8], n_classes: 10, width: 8, depth: 2}\n  init: auto\n")
    space = with_sites(load_space(tmp_path / "space.yaml"), torch.randn(2, 8, 8))
    assert [(g.name, g.sites) for g in space.custom.groups] == [("2", ("2",)), ("4", ("4",))]
    model = build_candidate(space, parse_layout("selu | elu(0.5)"), (8, 8), 10)
    assert [str(s.current) for s in find_sites(model, torch.randn(2, 8, 8))] == [
        "selu", "elu(0.50)"]
