from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY_SPACE = {
    "name": "tiny",
    "description": "tiny synthetic space for tests",
    "data": {"name": "synthetic", "samples": 600},
    "model": {"family": "mlp", "width": 16, "depth": 2},
    "activations": {"choices": ["relu", "elu", "selu"]},
    "train": {"lr": 0.01, "batch_size": 64, "epochs": 3, "schedule": "cosine"},
    "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    "sampler": {"name": "tpe", "seed": 0},
    "budget": {"trials": 6},
}


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # One generated MNIST-1D per test session, outside the user's cache.
    mp = pytest.MonkeyPatch()
    mp.setenv("ACTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture
def write_space(tmp_path: Path):
    """Write a space document (the tiny one, updated by ``changes``) and return its path."""

    def write(changes: dict | None = None, name: str = "space.yaml") -> Path:
        document = yaml.safe_load(yaml.safe_dump(TINY_SPACE))
        for dotted, value in (changes or {}).items():
            *parents, key = dotted.split(".")
            node = document
            for p in parents:
                node = node.setdefault(p, {})
            if value is _DELETE:
                node.pop(key, None)
            else:
                node[key] = value
        path = tmp_path / name
        path.write_text(yaml.safe_dump(document))
        return path

    return write


_DELETE = object()


@pytest.fixture
def delete() -> object:
    return _DELETE
