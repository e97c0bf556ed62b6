"""Activation sites (find_sites), apply_layout and its init, on the examples and small models."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLES, REPO
from torch import fx, nn

import actsearch
from actsearch.errors import ActsearchError
from actsearch.models.activations import activation_of, create_activation
from actsearch.models.apply import InitReport, apply_layout, site_layers
from actsearch.models.factory import load_factory
from actsearch.models.sites import CallOrder, find_sites, functional_calls, trace


def example(name: str, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return load_factory(f"{name}/model.py:make_model", EXAMPLES)(**kwargs)


def untraceable() -> nn.Module:
    torch.manual_seed(0)
    return load_factory("untraceable.py:make_model", REPO / "tests" / "fixtures")()


def digits_batch() -> torch.Tensor:
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def features_batch(n: int = 40) -> torch.Tensor:
    return torch.randn(4, n, generator=torch.Generator().manual_seed(1))


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- discovery ---------------------------------------------------------------------------


def test_a_shared_relu_is_one_site_per_call_or_one_tied_site() -> None:
    model = example("resnet_digits")
    split = find_sites(model, digits_batch())
    assert split.names == ["stem.2", "layers.0.relu#0", "layers.0.relu#1", "layers.1.relu#0",
                           "layers.1.relu#1"]
    assert [s.kind for s in split] == ["module"] + ["shared-call"] * 4
    assert [s.call for s in split][1:] == [0, 1, 0, 1]
    assert all(s.shape == (4, 16, 8, 8) and s.activation == "relu" for s in split)
    assert split.shared == {"layers.0.relu": 2, "layers.1.relu": 2}
    tied = find_sites(model, digits_batch(), split_shared=False)
    assert tied.names == ["stem.2", "layers.0.relu", "layers.1.relu"]
    assert [s.calls for s in tied] == [1, 2, 2] and {s.kind for s in tied} == {"module"}


def test_functional_sites_are_found_with_their_parameters() -> None:
    report = find_sites(example("functional_mlp"), features_batch())
    assert report.names == ["relu()#0", "relu()#1", "tanh()"]
    assert {s.kind for s in report} == {"functional"}
    assert [s.activation for s in report] == ["relu", "relu", "tanh"]
    assert report.unsearchable == () and report.trace_error is None

    class Params(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(F.elu(self.fc(x), 0.3), negative_slope=0.2) + x.sigmoid()

    found = find_sites(Params(), torch.randn(2, 4))
    assert [(s.name, s.current) for s in found] == [
        ("elu()", "elu(0.30)"), ("leaky_relu()", "leaky_relu(0.20)"), ("sigmoid()", "sigmoid")]


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class _ReusedBlock(nn.Module):
    """One block (with a functional relu) called twice, and a GELU module inside nn.Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.block = _Block()
        self.tail = nn.Sequential(nn.Linear(6, 6), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.block(self.block(x)))


def test_functional_names_match_the_traced_graph() -> None:
    model = _ReusedBlock()
    report = find_sites(model, torch.randn(2, 6))
    assert report.names == ["block.relu()#0", "block.relu()#1", "tail.1"]
    graph_module, error = trace(model)
    assert error is None
    assert [c.name for c in functional_calls(graph_module)] == report.names[:2]


def test_an_untraceable_model_keeps_its_module_sites_and_says_why_not_the_rest() -> None:
    model = untraceable()
    report = find_sites(model, torch.randn(2, 8))
    assert report.names == ["act"] and report["act"].current == "elu(0.50)"
    assert "control flow" in report.trace_error
    assert len(report.unsearchable) == 1
    line = report.unsearchable[0]
    assert line.startswith("relu(): ") and report.trace_error in line and "\n" not in line
    # The module site is still replaced; the functional one is refused with the reason.
    applied = apply_layout(model, {"act": "selu"}, example_input=torch.randn(2, 8))
    assert isinstance(applied.act, nn.SELU)
    with pytest.raises(ActsearchError, match=r"^layout: site relu\(\): .*control flow"):
        apply_layout(model, {"relu()": "selu"}, example_input=torch.randn(2, 8))


class _Clamp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad  # a straight-through estimator: not what relu's own backward is


class _Tiny(nn.Module):
    """A Linear and an activation module, used as the forward a test gives says."""

    def __init__(self, act: nn.Module, forward: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = act
        self.run = forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(self, x)


def test_an_activation_inside_a_custom_autograd_function_is_not_searched() -> None:
    model = _Tiny(nn.Tanh(), lambda m, x: m.act(_Clamp.apply(m.fc(x))))
    report = find_sites(model, torch.randn(2, 4))
    assert report.names == ["act"]
    assert len(report.unsearchable) == 1
    assert report.unsearchable[0].startswith("relu(): relu runs inside a custom autograd")


def test_gated_sites_and_their_feeding_layers() -> None:
    model = example("gated", depth=2)
    x = features_batch()
    report = find_sites(model, x)
    assert report.names == ["stem_act", "blocks.0.act", "blocks.0.gate_act", "blocks.1.act",
                            "blocks.1.gate_act"]
    assert [s.activation for s in report] == ["selu", "elu", "sigmoid", "elu", "sigmoid"]
    init = InitReport()
    apply_layout(model, {"blocks.1.gate_act": "relu", "blocks.1.act": "selu"},
                 example_input=x, init="auto", report=init)
    assert init.initialised == {"blocks.1.gate_act": ["blocks.1.gate"],
                                "blocks.1.act": ["blocks.1.linear"]}


def test_an_activation_inside_a_torch_module_is_said_not_skipped() -> None:
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                          nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True,
                                                     activation=nn.GELU()))
    report = find_sites(model, torch.randn(2, 3, 8))
    assert report.names == ["1.activation"]  # a module passed in is a site
    assert report.unsearchable == ("0: relu runs inside TransformerEncoderLayer, a torch.nn "
                                   "module kept whole (pass it an activation module, if it "
                                   "takes one, to make it a site)",)


def test_finding_sites_leaves_the_model_as_it_was() -> None:
    model = example("resnet_digits")
    model.train()
    before = state(model)
    find_sites(model, digits_batch())
    assert same_state(before, state(model))  # no batch-norm statistics updated
    assert all(m.training for m in model.modules())


def test_a_model_that_is_not_a_module_is_refused() -> None:
    with pytest.raises(ActsearchError, match="^model: expected a torch nn.Module, got list"):
        find_sites([nn.ReLU()], torch.randn(2, 3))  # type: ignore[arg-type]


# --- apply_layout ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "batch"), [
    ("resnet_digits", digits_batch), ("functional_mlp", features_batch),
    ("gated", features_batch)])
def test_applying_the_models_own_activations_changes_nothing(name, batch) -> None:
    model = example(name)
    x = batch()
    before, expected = state(model), outputs(model, x)
    found = find_sites(model, x)
    applied = apply_layout(model, site_layers(found), example_input=x)
    assert applied is not model
    assert torch.equal(outputs(applied, x), expected)
    assert same_state(state(applied), before)
    assert same_state(state(model), before) and torch.equal(outputs(model, x), expected)
    assert [s.current for s in find_sites(applied, x)] == [s.current for s in found]


def test_swapping_one_call_of_a_shared_relu_changes_only_that_call() -> None:
    model = example("resnet_digits")
    x = digits_batch()
    before = state(model)
    applied = apply_layout(model, {"layers.1.relu#1": "selu"}, example_input=x)
    assert isinstance(model.layers[1].relu, nn.ReLU)  # the user's model untouched
    assert isinstance(applied.layers[1].relu, CallOrder)
    assert same_state(state(applied), before)
    after = find_sites(applied, x)
    assert after.names == find_sites(model, x).names  # the names survive the split
    assert [s.activation for s in after] == ["relu"] * 4 + ["selu"]
    assert not torch.equal(outputs(applied, x), outputs(model, x))
    # Upstream of the swapped call, every output is the same.
    with torch.no_grad():
        assert torch.equal(applied.layers[0](applied.stem(x)), model.layers[0](model.stem(x)))
    # Each forward restarts the call order: a call made outside one does not shift the next.
    expected = outputs(applied, x)
    with torch.no_grad():
        applied.layers[1].relu(torch.randn(2, 16, 8, 8))
    assert torch.equal(outputs(applied, x), expected)
    # Applied again, a split stays one CallOrder of activations.
    again = apply_layout(applied, {"layers.1.relu#0": "elu(0.5)"}, example_input=x)
    assert [s.current for s in find_sites(again, x)][-2:] == ["elu(0.50)", "selu"]
    assert all(not isinstance(m, CallOrder) for m in again.layers[1].relu.calls)


def test_a_tied_shared_module_is_replaced_for_all_its_calls() -> None:
    model = example("resnet_digits")
    x = digits_batch()
    applied = apply_layout(model, {"layers.0.relu": "elu"}, example_input=x)
    assert isinstance(applied.layers[0].relu, nn.ELU)
    assert [s.activation for s in find_sites(applied, x)][1:3] == ["elu", "elu"]
    with pytest.raises(ActsearchError, match="'layers.0.relu' .* and 'layers.0.relu#1'"):
        apply_layout(model, {"layers.0.relu": "elu", "layers.0.relu#1": "selu"},
                     example_input=x)


def test_swapping_a_functional_call_rewrites_only_that_call() -> None:
    model = example("functional_mlp")
    x = features_batch()
    applied = apply_layout(model, {"relu()#1": "selu", "tanh()": ("elu", 0.5)}, example_input=x)
    assert isinstance(applied, fx.GraphModule)
    assert same_state(state(applied), state(model))
    after = find_sites(applied, x)
    assert after.names == ["relu()#0", "relu()#1", "tanh()"]
    assert [s.current for s in after] == ["relu", "selu", "elu(0.50)"]
    with torch.no_grad():
        hidden = F.relu(model.fc2(F.relu(model.fc1(x))))
        selu = F.selu(model.fc2(F.relu(model.fc1(x))))
        expected = model.head(F.elu(model.fc3(selu), 0.5))
    assert torch.allclose(outputs(applied, x), expected)
    assert not torch.allclose(selu, hidden)


def test_one_call_of_a_reused_block_with_a_functional_relu() -> None:
    model = _ReusedBlock()
    x = torch.randn(3, 6)
    applied = apply_layout(model, {"block.relu()#1": "tanh"}, example_input=x)
    with torch.no_grad():
        first = torch.relu(model.block.fc(x))
        expected = model.tail(torch.tanh(model.block.fc(first)))
    assert torch.allclose(outputs(applied, x), expected)
    after = find_sites(applied, x)
    assert [s.activation for s in after] == ["relu", "tanh", "gelu"]
    # The traced forward no longer says which module calls relu: the names are kept anyway.
    assert after.names == ["block.relu()#0", "block.relu()#1", "tail.1"]
    again = apply_layout(applied, {"block.relu()#0": "selu"}, example_input=x)
    assert [s.current for s in find_sites(again, x)] == ["selu", "tanh", "gelu"]


def test_a_split_module_and_a_functional_call_together() -> None:
    model = _Tiny(nn.ReLU(), lambda m, x: F.relu(m.act(m.act(m.fc(x))) + 1))
    x = torch.randn(3, 4)
    applied = apply_layout(model, {"act#1": "selu", "relu()": "tanh"}, example_input=x)
    after = find_sites(applied, x)
    assert after.names == ["act#0", "act#1", "relu()"]
    assert [s.current for s in after] == ["relu", "selu", "tanh"]
    with torch.no_grad():
        expected = torch.tanh(F.selu(torch.relu(model.fc(x))) + 1)
    assert torch.allclose(outputs(applied, x), expected)


def test_layout_mistakes_are_one_line() -> None:
    model = example("resnet_digits")
    x = digits_batch()
    with pytest.raises(ActsearchError, match=r"no site 'layers.0.relu#2'.*did you mean "
                                             r"layers.0.relu#\d"):
        apply_layout(model, {"layers.0.relu#2": "elu"}, example_input=x)
    with pytest.raises(ActsearchError, match=r"layout\['stem.2'\]: .*unknown activation 'rleu'"):
        apply_layout(model, {"stem.2": "rleu"}, example_input=x)
    with pytest.raises(ActsearchError, match="relu takes no parameter"):
        apply_layout(model, {"stem.2": ("relu", 0.3)}, example_input=x)
    with pytest.raises(ActsearchError, match="^init: expected keep or auto, got 'lecun'"):
        apply_layout(model, {"stem.2": "elu"}, example_input=x, init="lecun")


# --- init ---------------------------------------------------------------------------------


def selu_mlp(depth: int = 32, width: int = 256) -> nn.Sequential:
    """A factory's MLP: Linear + SELU blocks with PyTorch's default init."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.SELU()]
    return nn.Sequential(*layers)


def last_activation_stats(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    out = outputs(model, x)
    return out.mean().item(), out.var().item()


def test_auto_init_makes_a_deep_selu_mlp_self_normalise() -> None:
    torch.manual_seed(0)
    model = selu_mlp()
    x = torch.randn(4096, 256)
    layout = {site.name: "selu" for site in find_sites(model, x[:2])}
    assert len(layout) == 32
    report = InitReport()
    torch.manual_seed(1)
    auto = apply_layout(model, layout, example_input=x[:2], init="auto", report=report)
    kept = apply_layout(model, layout, example_input=x[:2])  # init: keep
    mean, var = last_activation_stats(auto, x)
    assert abs(mean) < 0.15 and 0.75 < var < 1.25
    _, kept_var = last_activation_stats(kept, x)
    assert kept_var < 0.1  # PyTorch's default init lets the signal fade: the init matters
    assert report.initialised["1"] == ["0"] and not report.no_feeding_layer
    assert auto[0].weight.std().item() == pytest.approx(1 / math.sqrt(256), rel=0.02)


def test_auto_init_goes_through_norms_and_says_where_no_layer_feeds_a_site() -> None:
    model = example("resnet_digits")
    x = digits_batch()
    report = InitReport()
    torch.manual_seed(2)
    applied = apply_layout(model, {"layers.0.relu#0": "selu", "layers.0.relu#1": "selu"},
                           example_input=x, init="auto", report=report)
    assert report.initialised == {"layers.0.relu#0": ["layers.0.conv1"]}  # through bn1
    assert "residual add" in report.no_feeding_layer["layers.0.relu#1"]
    fan_in = 16 * 3 * 3
    assert applied.layers[0].conv1.weight.std().item() == pytest.approx(
        1 / math.sqrt(fan_in), rel=0.1)
    assert torch.equal(applied.layers[0].conv2.weight, model.layers[0].conv2.weight)
    assert any("no feeding layer (its input is a residual add" in line
               for line in report.lines())


def test_auto_init_reaches_a_functional_site() -> None:
    model = example("functional_mlp")
    report = InitReport()
    applied = apply_layout(model, {"tanh()": "selu"}, example_input=features_batch(),
                           init="auto", report=report)
    assert report.initialised == {"tanh()": ["fc3"]}
    assert not torch.equal(applied.fc3.weight, model.fc3.weight)
    assert torch.equal(applied.fc2.weight, model.fc2.weight)


# --- the registry and the public names -------------------------------------------------------


def test_every_registered_activation_is_recognised() -> None:
    for name in actsearch.activation_names():
        module = create_activation(name)
        assert activation_of(module)[0] == name
    assert activation_of(create_activation("elu", 0.3)) == ("elu", 0.3)
    assert activation_of(nn.Linear(2, 2)) is None
    assert isinstance(create_activation("sigmoid"), nn.Sigmoid)


def test_public_names() -> None:
    report = actsearch.sites(lambda: selu_mlp(3, 8), input_shape=(8,))
    assert report.names == ["1", "3", "5"]
    assert actsearch.apply_layout is apply_layout
    shipped = actsearch.sites("digits_cnn")
    assert [s.shape for s in shipped] == [(2, 16, 8, 8)] * 2
    with pytest.raises(ActsearchError, match="^input_shape: needed"):
        actsearch.sites(lambda: selu_mlp(3, 8))
    with pytest.raises(ActsearchError, match="returned 'int', expected a torch nn.Module"):
        actsearch.sites(lambda: 3, input_shape=(8,))
