from __future__ import annotations

import pytest
import torch
from torch import nn

from actsearch.models.build import build_model, hidden_activations
from actsearch.models.layout import parse_layout
from actsearch.schema.space import ModelSpec


def test_mlp_structure_follows_layout() -> None:
    model = build_model(ModelSpec(width=32), parse_layout("relu | elu(0.5) | selu"), (40,), 10)
    acts = hidden_activations(model)
    assert [type(a) for a in acts] == [nn.ReLU, nn.ELU, nn.SELU]
    assert acts[1].alpha == 0.5
    assert model(torch.randn(7, 40)).shape == (7, 10)


@pytest.mark.parametrize(("family", "shape"), [("cnn1d", (40,)), ("cnn2d", (8, 8)),
                                                 ("mlp", (8, 8))])
def test_families(family: str, shape: tuple[int, ...]) -> None:
    arch = ModelSpec(family=family, width=8, depth=2, kernel_size=3, stride=2)
    model = build_model(arch, parse_layout("relu | selu"), shape, 10)
    assert model(torch.randn(3, *shape)).shape == (3, 10)


@pytest.mark.parametrize(("norm", "cls"), [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_norm_layers(norm: str, cls: type) -> None:
    model = build_model(ModelSpec(width=8, depth=2), parse_layout("relu | relu"), (4,), 3, norm)
    assert sum(isinstance(m, cls) for m in model) == 2
