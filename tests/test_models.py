from __future__ import annotations

import pytest
import torch
from torch import nn

from actsearch.errors import ActsearchError
from actsearch.models.build import build_model, hidden_activations
from actsearch.models.layout import parse_layout
from actsearch.schema.space import IntRange, ModelSpec


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


def _convs(model: nn.Sequential) -> list[nn.Module]:
    return [m for m in model if isinstance(m, (nn.Conv1d, nn.Conv2d))]


def test_conv_base_of_the_mnist1d_authors() -> None:
    # ConvBase: 3 conv layers of 25 channels, kernels 5/3/3, padding 1, stride 2.
    arch = ModelSpec(family="cnn1d", width=25, depth=3, kernel_size=(5, 3, 3), stride=2,
                     padding=1)
    for shape in [(40,), (1, 40)]:  # MNIST-1D: 40 features, one channel (axis or not)
        model = build_model(arch, parse_layout("relu | elu(0.5) | selu"), shape, 10)
        convs = _convs(model)
        assert [c.kernel_size for c in convs] == [(5,), (3,), (3,)]
        assert [c.padding for c in convs] == [(1,), (1,), (1,)]
        assert [c.stride for c in convs] == [(2,), (2,), (2,)]
        assert [c.in_channels for c in convs] == [1, 25, 25]
        # 40 -> 19 -> 10 -> 5 positions of 25 channels.
        assert model[-1].in_features == 25 * 5
        assert model(torch.randn(4, *shape)).shape == (4, 10)


def test_per_layer_kernels_strides_and_padding_reach_the_model() -> None:
    # Padding larger than "same" grows the maps; the head must still fit what comes out.
    arch = ModelSpec(family="cnn2d", width=4, depth=3, kernel_size=(3, 1, 5),
                     stride=(1, 2, 1), padding=("same", 3, 0))
    model = build_model(arch, parse_layout("relu | relu | relu"), (8, 8), 3)
    convs = _convs(model)
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1), (5, 5)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (1, 1)]
    assert [c.padding for c in convs] == [(1, 1), (3, 3), (0, 0)]
    # 8 -> 8 -> 7 -> 3: the flattened size the head was built for is the one that arrives.
    features = nn.Sequential(*list(model)[:-1])(torch.randn(2, 8, 8))
    assert features.shape == (2, 4 * 3 * 3) and model[-1].in_features == 4 * 3 * 3
    assert model(torch.randn(2, 8, 8)).shape == (2, 3)


def test_default_padding_is_same_as_before() -> None:
    model = build_model(ModelSpec(family="cnn1d", width=4, depth=2, kernel_size=5),
                        parse_layout("relu | relu"), (40,), 10)
    assert [c.padding for c in _convs(model)] == [(2,), (2,)]
    assert model[-1].in_features == 4 * 40


def test_a_searched_depth_uses_the_first_entries() -> None:
    arch = ModelSpec(family="cnn1d", width=4, depth=IntRange(1, 3), kernel_size=(7, 5, 3),
                     padding=(0, 1, 2), stride=(2, 1, 1))
    model = build_model(arch, parse_layout("relu | relu"), (40,), 10)
    assert [(c.kernel_size, c.padding, c.stride) for c in _convs(model)] == [
        ((7,), (0,), (2,)), ((5,), (1,), (1,))]
    assert model(torch.randn(2, 40)).shape == (2, 10)


def test_a_shape_that_shrinks_to_nothing_names_the_field() -> None:
    arch = ModelSpec(family="cnn1d", width=4, depth=2, kernel_size=(5, 7), padding=0,
                     stride=2)
    with pytest.raises(ActsearchError) as info:  # 12 -> 4 -> nothing
        build_model(arch, parse_layout("relu | relu"), (12,), 10)
    message = str(info.value)
    assert message.startswith("model.kernel_size: conv layer 2 of 2 has no output")
    assert "sizes 12 -> 4 -> 0; kernel_size [5, 7], stride 2, padding 0)" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["digits_mlp", "mnist1d_cnn", "mnist1d_resnet"])
def test_base_model_is_a_spaces_model_before_any_layout(name: str) -> None:
    # A family's at its first depth with every layer the first choice; a factory model's as
    # its factory builds it (mnist1d_resnet names actsearch.zoo.resnet:resnet1d).
    from actsearch.models.build import base_model
    from actsearch.models.factory import load_factory
    from actsearch.schema.space import load_space

    space = load_space(name)
    shape = (64,) if name == "digits_mlp" else (40,)
    torch.manual_seed(0)
    got = base_model(space, shape)
    torch.manual_seed(0)
    if space.model.factory is None:
        layout = parse_layout(" | ".join([space.choices[0]] * space.depths[0]))
        want = build_model(space.model, layout, shape, 2)
    else:
        want = load_factory(space.model.factory)(**space.model.kwargs)
    assert type(got) is type(want)
    state = want.state_dict()
    assert list(got.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in got.state_dict().items())
