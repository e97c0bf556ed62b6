from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import (
    SELU_ALPHA,
    SELU_SCALE,
    activation_names,
    create_activation,
    get_activation,
    init_layer_for,
)
from actsearch.models.build import build_model, hidden_activations
from actsearch.models.layout import parse_layout
from actsearch.schema.space import ModelSpec


def test_default_three_and_open_registry() -> None:
    assert {"relu", "elu", "selu", "leaky_relu", "celu", "gelu", "silu", "tanh"} <= set(
        activation_names())
    assert isinstance(create_activation("elu", 0.5), nn.ELU)
    assert create_activation("elu", 0.5).alpha == 0.5
    assert create_activation("elu").alpha == 1.0
    assert create_activation("leaky_relu", 0.2).negative_slope == 0.2
    assert create_activation("celu", 0.3).alpha == 0.3


def test_selu_uses_the_exact_constants() -> None:
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    expected = SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x))
    assert torch.allclose(create_activation("selu")(x), expected, atol=1e-12)
    assert SELU_ALPHA == 1.6732632423543772 and SELU_SCALE == 1.0507009873554805


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ActsearchError, match="unknown activation 'rleu'.*relu, elu, selu"):
        get_activation("rleu")


def test_init_rules() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(400, 400)
    init_layer_for(layer, "selu")
    assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(400), rel=0.02)
    init_layer_for(layer, "relu")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert torch.count_nonzero(layer.bias) == 0


def test_deep_all_selu_self_normalises() -> None:
    torch.manual_seed(0)
    layout = parse_layout(" | ".join(["selu"] * 32))
    model = build_model(ModelSpec(width=256, depth=32), layout, (64,), 10)
    stats = []
    hooks = [m.register_forward_hook(lambda m, i, o: stats.append((o.mean(), o.var())))
             for m in hidden_activations(model)]
    with torch.no_grad():
        model(torch.randn(4096, 64))
    for h in hooks:
        h.remove()
    assert len(stats) == 32
    for mean, var in stats:
        assert abs(mean.item()) < 0.15
        assert 0.75 < var.item() < 1.25
    # The same net with Kaiming init (as for ReLU) does not keep unit variance: the init matters.
    torch.manual_seed(0)
    relu_init = build_model(ModelSpec(width=256, depth=32), layout, (64,), 10)
    for m in relu_init:
        if isinstance(m, nn.Linear):
            init_layer_for(m, "relu")
    out = []
    h = hidden_activations(relu_init)[-1].register_forward_hook(lambda m, i, o: out.append(o))
    with torch.no_grad():
        relu_init(torch.randn(4096, 64))
    h.remove()
    assert out[0].var().item() > 1.5
