"""Data sets by name, all made or read locally: splits, standardisation, tensors on a device.

Splits: a data set's own test part (MNIST-1D's) or a fixed held-out fraction (seeded with 0, so
it never moves with the search seed) is the test split, untouched until final evaluation; the
validation split is carved from the training part with the search seed. Standardisation is
fitted on the training split alone.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from actsearch.errors import ActsearchError
from actsearch.schema.space import DataSpec, held_out

if TYPE_CHECKING:
    import torch

__all__ = ["Arrays", "Dataset", "DeviceData", "cache_dir", "factory_data", "load_data",
           "read_data", "study_data", "to_device"]

_TEST_SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """Splits as float32 features and int64 labels (float32 targets for a loss and metric of
    the user's own), on the host."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]  # one sample's shape, e.g. (40,) or (8, 8)
    n_classes: int
    fingerprint: str  # of the raw data, so an exported config can detect a different data set
    # False when a data factory returned no test split: the validation split stands in.
    has_test: bool = True
    # A data factory's DataLoaders (train, val, test), used as given; the arrays above then
    # hold each split's first batch (the sample the sites and probes look at).
    loaders: tuple[Any, Any, Any] | None = None


@dataclass(frozen=True)
class DeviceData:
    """The same splits as tensors that stay on the training device for a whole trial."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    n_classes: int  # 0 for targets that are not class labels (a user's loss and metric)
    # As ``Dataset.loaders``: training and evaluation iterate them, moving each batch here;
    # the tensors above hold each split's first batch.
    loaders: tuple[Any, Any, Any] | None = None
    source: str = "data"  # the data factory, for messages about a loader's batches

    def batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """A loader split's batches (``train``, ``val`` or ``test``) on the device, in the
        training dtype; a batch whose samples differ in shape from the first batch's stops
        the search with one line."""
        assert self.loaders is not None
        loader = self.loaders[("train", "val", "test").index(split)]
        device, dtype = self.x_train.device, self.x_train.dtype
        for i, batch in enumerate(loader):
            x, y = _pair(batch, f"{self.source}: {split}: batch {i}")
            if tuple(x.shape[1:]) != self.input_shape or len(y) != len(x):
                raise ActsearchError(f"{self.source}: {split}: batch {i}: expected (x, y) with "
                                     f"samples of shape {self.input_shape} and one target "
                                     f"each, got x {tuple(x.shape)}, y {tuple(y.shape)}")
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            yield (x.to(dtype) if x.is_floating_point() else x,
                   y.to(dtype) if y.is_floating_point() else y)


def _pair(batch: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader's batch as (x, y) tensors, or one line saying what it was."""
    import torch

    if (not isinstance(batch, tuple | list) or len(batch) != 2
            or not all(isinstance(t, torch.Tensor) for t in batch)):
        kind = (f"{len(batch)} items" if isinstance(batch, tuple | list)
                else type(batch).__name__)
        raise ActsearchError(f"{where}: expected (x, y) tensors, got {kind}")
    return batch[0], batch[1]


def cache_dir() -> Path:
    """Where generated data sets are kept: $ACTSEARCH_CACHE, else the user's cache folder."""
    if "ACTSEARCH_CACHE" in os.environ:
        return Path(os.environ["ACTSEARCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "actsearch"


def _mnist1d() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    path = cache_dir() / "mnist1d-default-v1.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        # make_dataset reseeds numpy's and Python's global generators: put them back after.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            d = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # atomic for concurrent workers
        np.savez(tmp, x=d["x"], y=d["y"], x_test=d["x_test"], y_test=d["y_test"])
        os.replace(tmp, path)
    with np.load(path) as f:
        return f["x"], f["y"], f["x_test"], f["y_test"]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    d = load_digits()
    return d.images.astype(np.float64), d.target


def _synthetic(samples: int) -> tuple[np.ndarray, np.ndarray]:
    # A random two-layer teacher on Gaussian inputs: learnable, nonlinear, and the same
    # data set for every search seed.
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((samples, 20))
    w1 = rng.standard_normal((20, 32)) / np.sqrt(20)
    w2 = rng.standard_normal((32, 4)) / np.sqrt(32)
    return x, np.argmax(np.tanh(x @ w1 * 2.0) @ w2, axis=1)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            xkey = "X" if "X" in keys else "x" if "x" in keys else None
            if xkey is None or "y" not in keys:
                raise ActsearchError(f"{path}: data.path: expected arrays 'X' and 'y' in the "
                                     f".npz file, found: {', '.join(sorted(keys)) or 'none'}")
            x, y = f[xkey], f["y"]
    except (OSError, ValueError) as e:
        raise ActsearchError(f"{path}: data.path: cannot read as .npz ({e})") from None
    return x, y


def _csv(path: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise ActsearchError(f"{path}: data.path: cannot read as CSV ({e})") from None
    if len(rows) < 2:
        raise ActsearchError(f"{path}: data.path: expected a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise ActsearchError(f"{path}: data.label: no column {label!r}; columns: "
                             f"{', '.join(header)}")
    li = header.index(label)
    x_rows, y = [], []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ActsearchError(f"{path}: line {n}: expected {len(header)} columns, "
                                 f"got {len(row)}")
        try:
            x_rows.append([float(v) for i, v in enumerate(row) if i != li])
        except ValueError:
            raise ActsearchError(f"{path}: line {n}: expected numbers in the feature "
                                 f"columns") from None
        y.append(row[li].strip())
    return np.asarray(x_rows), np.asarray(y)


def _check_arrays(x: np.ndarray, y: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise ActsearchError(f"{source}: X: expected a numeric array of shape (samples, ...), "
                             f"got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ActsearchError(f"{source}: y: expected {len(x)} labels in a 1-D array, "
                             f"got shape {y.shape}")
    if not np.isfinite(x).all():
        raise ActsearchError(f"{source}: X: expected finite numbers, found NaN or inf")
    classes, y = np.unique(y, return_inverse=True)  # any label values -> 0..C-1
    if len(classes) < 2:
        raise ActsearchError(f"{source}: y: expected at least 2 classes, got {len(classes)}")
    return x, y


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = n - held_out(n, fraction)
    return order[:cut], order[cut:]


def _fingerprint(name: str, *arrays: np.ndarray) -> str:
    h = hashlib.sha256(name.encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


def read_data(spec: DataSpec) -> Arrays:
    """The data set's arrays before any split: X, y and, where the set has its own test
    split (MNIST-1D), X_test and y_test, else None. User files are checked here: a missing
    file, missing arrays or columns, or bad values raise a one-line ActsearchError."""
    if spec.name == "mnist1d":
        return _mnist1d()
    if spec.name == "digits":
        return (*_digits(), None, None)
    if spec.name == "synthetic":
        return (*_synthetic(spec.samples), None, None)
    path = Path(spec.path or "")
    if not path.is_file():
        raise ActsearchError(f"{path}: data.path: file not found")
    x, y = _npz(path) if spec.name == "npz" else _csv(path, spec.label or "")
    return (*_check_arrays(x, y, str(path)), None, None)


def load_data(spec: DataSpec, seed: int, arrays: Arrays | None = None) -> Dataset:
    """Make or read the data set and split it; the same spec and seed give identical arrays.

    ``arrays``: what ``read_data(spec)`` returned, when the caller read it already.
    """
    x, y, x_test, y_test = read_data(spec) if arrays is None else arrays
    fingerprint = _fingerprint(spec.name, x, y, *(() if x_test is None else (x_test, y_test)))
    if x_test is None:
        keep, test = _split(len(x), spec.test_fraction, _TEST_SPLIT_SEED)
        x, y, x_test, y_test = x[keep], y[keep], x[test], y[test]
    train, val = _split(len(x), spec.val_fraction, seed)
    if len(train) < 2 or len(np.unique(y[train])) < 2:
        raise ActsearchError(f"{spec.path or spec.name}: data: {len(y) + len(y_test)} samples "
                             f"leave {len(train)} for training; expected enough for two "
                             f"classes in every split")
    x_train, x_val = x[train], x[val]
    # Standardise per feature with statistics of the training split only.
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0

    def prep(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    return Dataset(
        name=spec.name,
        x_train=prep(x_train), y_train=y[train].astype(np.int64),
        x_val=prep(x_val), y_val=y[val].astype(np.int64),
        x_test=prep(x_test), y_test=np.asarray(y_test).astype(np.int64),
        input_shape=tuple(x.shape[1:]),
        n_classes=int(max(y.max(), np.max(y_test)) + 1),
        fingerprint=fingerprint,
    )


def study_data(spec: DataSpec, seed: int, arrays: Arrays | None = None,
               classes: bool = True) -> Dataset:
    """A study's splits: a data factory's (``factory_data``; ``classes`` as there), or the
    named data set split with the study's seed (``load_data``)."""
    if spec.factory is not None:
        return factory_data(spec, classes=classes)
    return load_data(spec, seed, arrays)


def factory_data(spec: DataSpec, factory: Callable[[], Any] | None = None,
                 classes: bool = True) -> Dataset:
    """The splits a data factory returns: ``(train, val)`` or ``(train, val, test)``, each
    ``(x, y)`` tensors (or arrays), a ``TensorDataset``, or a ``DataLoader``, used as given
    (no standardisation).

    Tensors become tensors that stay on the training device for a whole trial
    (``to_device``), as the shipped data sets do. DataLoaders (every split one) are iterated
    as given, their batch size, order and workers their own (``Dataset.loaders``); their first
    batches are checked here. Without a test split the validation split stands in
    (``has_test`` False). ``factory``: the function itself (the Python API); else
    ``spec.factory`` is imported. ``classes``: the targets must be class indices (the
    recipe's cross-entropy or accuracy uses them); else any numbers, one target per sample
    (a user's loss and metric). An error the factory raises propagates with its traceback.
    """
    from torch.utils.data import DataLoader

    from actsearch.models.factory import load_factory

    name = spec.factory or getattr(factory, "__name__", repr(factory))
    where = f"data.factory: {name!r}"
    splits = (factory or load_factory(name))()
    if not isinstance(splits, tuple | list) or len(splits) not in (2, 3):
        raise ActsearchError(f"{where} returned {type(splits).__name__}; expected (train, val) "
                             f"or (train, val, test)")
    which = ("train", "val", "test")
    loaders = [isinstance(split, DataLoader) for split in splits]
    if any(loaders) and not all(loaders):
        given = ", ".join(w for w, b in zip(which, loaders, strict=False) if b)
        raise ActsearchError(f"{where}: expected DataLoaders for every split or for none, got "
                             f"one for {given} only")
    arrays = [_split_arrays(_first_batch(split, f"{where}: {w}") if loaders[0] else split,
                            f"{where}: {w}", classes)
              for w, split in zip(which, splits, strict=False)]
    shapes = {x.shape[1:] for x, _ in arrays}
    if len(shapes) > 1:
        raise ActsearchError(f"{where}: expected one sample shape in every split, got "
                             f"{', '.join(map(str, sorted(shapes)))}")
    (x_train, y_train), (x_val, y_val) = arrays[:2]
    x_test, y_test = arrays[2] if len(arrays) == 3 else arrays[1]
    n_classes = int(max(y.max() for _, y in arrays)) + 1 if classes else 0
    if classes and n_classes < 2 and not loaders[0]:
        raise ActsearchError(f"{where}: expected at least 2 classes in the labels")
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                   x_test=x_test, y_test=y_test, input_shape=tuple(x_train.shape[1:]),
                   n_classes=n_classes,
                   fingerprint=_fingerprint(name, *(a for pair in arrays for a in pair)),
                   has_test=len(arrays) == 3,
                   loaders=(splits[0], splits[1], splits[-1]) if loaders[0] else None)


def _first_batch(loader: Any, where: str) -> tuple[Any, Any]:
    """A DataLoader's first batch, checked to be (x, y) tensors. Drawing it iterates the
    loader once (its sampler too); torch's global generator is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        batch = next(iter(loader), None)
    if batch is None:
        raise ActsearchError(f"{where}: the DataLoader yields no batch")
    return _pair(batch, f"{where}: first batch")


def _split_arrays(split: Any, where: str, classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One split as float32 features and int64 labels (float32 targets unless ``classes``)
    on the host."""
    import torch
    from torch.utils.data import TensorDataset

    if isinstance(split, TensorDataset):
        split = split.tensors
    if not isinstance(split, tuple | list) or len(split) != 2:
        raise ActsearchError(f"{where}: expected (x, y) tensors, a TensorDataset or a "
                             f"DataLoader, got {type(split).__name__}")
    x, y = (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
            for t in split)
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number) or len(x) == 0:
        raise ActsearchError(f"{where}: x: expected numbers of shape (samples, ...), got "
                             f"{x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise ActsearchError(f"{where}: x: expected finite numbers, found NaN or inf")
    if not classes:
        if len(y) != len(x) or not np.issubdtype(y.dtype, np.number):
            raise ActsearchError(f"{where}: y: expected {len(x)} numeric targets (one per "
                                 f"sample), got {y.dtype} {y.shape}")
        return x.astype(np.float32), (y.astype(np.int64) if np.issubdtype(y.dtype, np.integer)
                                      else y.astype(np.float32))
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ActsearchError(f"{where}: y: expected {len(x)} class indices (integers >= 0) in "
                             f"a 1-D array, got {y.dtype} {y.shape} (a train.loss and "
                             f"train.metric of your own take other targets)")
    return x.astype(np.float32), y.astype(np.int64)


def to_device(data: Dataset, device: str | torch.device,
              dtype: torch.dtype | None = None) -> DeviceData:
    """Copy all splits to the device once; training then slices them there."""
    import torch

    def t(a: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(a).to(device)
        return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor

    return DeviceData(t(data.x_train), t(data.y_train), t(data.x_val), t(data.y_val),
                      t(data.x_test), t(data.y_test), data.input_shape, data.n_classes,
                      data.loaders, f"data.factory: {data.name!r}")
