from __future__ import annotations

import math

import pytest
import torch

from actsearch.errors import ActsearchError
from actsearch.models.build import build_model
from actsearch.models.layout import parse_layout
from actsearch.schema.space import DataSpec, ModelSpec
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import Recipe, fit, select_device


@pytest.fixture(scope="module")
def data():
    return to_device(load_data(DataSpec("synthetic", samples=800), 0), "cpu")


def _model(data, layout: str = "relu | elu(0.8)", seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelSpec(width=32, depth=2), parse_layout(layout), data.input_shape,
                       data.n_classes)


def test_learns_and_reports_every_epoch(data) -> None:
    seen = []
    result = fit(_model(data), data, Recipe(lr=0.01, epochs=6, batch_size=64), 0,
                 lambda s: seen.append(s.epoch) or True)
    assert result.status == "complete" and seen == [1, 2, 3, 4, 5, 6]
    assert result.history[-1].val_acc > 0.6  # 4 classes: chance is about 0.25
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.samples_seen == 6 * len(data.x_train) and result.samples_per_second > 0


def test_same_seed_same_run(data) -> None:
    a = fit(_model(data), data, Recipe(epochs=2), 5)
    b = fit(_model(data), data, Recipe(epochs=2), 5)
    assert [h.val_loss for h in a.history] == [h.val_loss for h in b.history]


def test_callback_stops_training(data) -> None:
    result = fit(_model(data), data, Recipe(epochs=10), 0, lambda s: s.epoch < 3)
    assert result.status == "stopped" and len(result.history) == 3


def test_divergence_is_recorded_not_raised(data) -> None:
    result = fit(_model(data, "relu | relu"), data, Recipe(optimizer="sgd", lr=1e4, epochs=5), 0)
    assert result.status == "diverged"
    last = result.history[-1]
    assert not (math.isfinite(last.train_loss) and math.isfinite(last.val_loss))


def test_device_selection() -> None:
    assert select_device("cpu").type == "cpu"
    with pytest.raises(ActsearchError, match="^device: unknown device 'gpu7'"):
        select_device("gpu7")
    if not torch.cuda.is_available():
        assert select_device(None).type == "cpu"
        with pytest.raises(ActsearchError, match="CUDA is not available"):
            select_device("cuda")
