from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from actsearch.errors import ActsearchError
from actsearch.schema.space import DataSpec
from actsearch.training.data import load_data, to_device


def test_mnist1d_shapes_splits_and_global_rng_untouched() -> None:
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    ds = load_data(DataSpec("mnist1d"), seed=0)
    assert (np.random.random(), random.random()) == (expected_np, expected_py)
    assert ds.x_train.shape == (3200, 40) and ds.x_val.shape == (800, 40)
    assert ds.x_test.shape == (1000, 40) and ds.n_classes == 10
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


def test_same_seed_same_tensors_other_seed_other_split() -> None:
    a, b = load_data(DataSpec("mnist1d"), 0), load_data(DataSpec("mnist1d"), 0)
    c = load_data(DataSpec("mnist1d"), 1)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.y_val, c.y_val)
    # The test split never moves with the seed, and train/val stay disjoint.
    assert np.array_equal(a.y_test, c.y_test)
    assert a.fingerprint == c.fingerprint


def test_standardised_on_training_split_only() -> None:
    ds = load_data(DataSpec("digits"), 0)
    feature_std = ds.x_train.std(axis=0)
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(feature_std[feature_std > 0], 1, atol=1e-4)
    assert abs(ds.x_val.mean()) > 1e-4  # not re-fitted on validation data
    assert ds.input_shape == (8, 8) and ds.n_classes == 10
    assert len(ds.x_test) == round(1797 * 0.2)


def test_npz_and_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 5))
    y = np.array(["cat", "dog"] * 50)
    np.savez(tmp_path / "d.npz", X=x, y=y)
    ds = load_data(DataSpec("npz", path=str(tmp_path / "d.npz")), 0)
    assert ds.n_classes == 2 and ds.input_shape == (5,)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 100
    lines = ["a,b,label"] + [f"{i},{i * 2},{i % 3}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(lines))
    ds = load_data(DataSpec("csv", path=str(tmp_path / "d.csv"), label="label"), 0)
    assert ds.n_classes == 3 and ds.input_shape == (2,)


@pytest.mark.parametrize(
    ("setup", "spec", "expected"),
    [
        (None, DataSpec("npz", path="missing.npz"), "missing.npz: data.path: file not found"),
        (lambda p: np.savez(p / "d.npz", features=np.zeros((4, 2))),
         DataSpec("npz", path="d.npz"), "expected arrays 'X' and 'y'"),
        (lambda p: np.savez(p / "d.npz", X=np.zeros((4, 2)), y=np.zeros(3)),
         DataSpec("npz", path="d.npz"), "y: expected 4 labels"),
        (lambda p: (p / "d.csv").write_text("a,b\n1,2\n"), DataSpec("csv", path="d.csv",
         label="label"), "data.label: no column 'label'"),
        (lambda p: (p / "d.csv").write_text("a,label\nx,1\n2,0\n"),
         DataSpec("csv", path="d.csv", label="label"), "line 2: expected numbers"),
        (lambda p: (p / "d.npz").write_text("not a zip"), DataSpec("npz", path="d.npz"),
         "cannot read as .npz"),
    ],
)
def test_bad_user_files(tmp_path: Path, monkeypatch, setup, spec, expected) -> None:
    monkeypatch.chdir(tmp_path)
    if setup is not None:
        setup(tmp_path)
    with pytest.raises(ActsearchError, match=expected.replace(".", r"\.")):
        load_data(spec, 0)


def test_to_device_keeps_everything_as_tensors() -> None:
    d = to_device(load_data(DataSpec("synthetic", samples=200), 0), "cpu", torch.float64)
    assert d.x_train.dtype == torch.float64 and d.y_train.dtype == torch.int64
    assert d.n_classes == 4
