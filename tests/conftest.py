from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution

if TYPE_CHECKING:
    from actsearch.schema.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"  # the searchable examples: a model and data factory each

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


def pytest_configure(config: pytest.Config) -> None:
    # The property tests explore 400 generated documents each in the full run, 100 in the
    # fast loop (-m "not slow"), which must stay under two minutes.
    from hypothesis import settings

    settings.register_profile("full", max_examples=400)
    settings.register_profile("fast", max_examples=100)
    settings.load_profile("fast" if config.option.markexpr == "not slow" else "full")


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # One generated MNIST-1D per test session, outside the user's cache.
    mp = pytest.MonkeyPatch()
    mp.setenv("ACTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    # No latency timing after a search (seconds of torch.compile per model): tests that
    # measure latency ask for it (tests/test_latency.py).
    mp.setenv("ACTSEARCH_LATENCY", "off")
    yield
    mp.undo()


DELETE = object()  # as a value in ``space_document``'s changes: drop the key


def space_document(changes: dict | None = None) -> dict:
    """The tiny space as a document, updated by ``changes`` (dotted keys -> values)."""
    document = yaml.safe_load(yaml.safe_dump(TINY_SPACE))
    for dotted, value in (changes or {}).items():
        *parents, key = dotted.split(".")
        node = document
        for p in parents:
            node = node.setdefault(p, {})
        if value is DELETE:
            node.pop(key, None)
        else:
            node[key] = value
    return document


def search(space_path: Path, storage: str, trials: int, name: str = "s",
           seed: int | None = None) -> optuna.Study:
    """Open (or resume) study ``name`` of a space file and run it to ``trials`` on the CPU."""
    from actsearch.engine.driver import run_trials
    from actsearch.engine.study import open_study
    from actsearch.schema.space import load_space
    from actsearch.training.data import load_data, to_device

    study, space = open_study(load_space(space_path), name, storage, seed=seed)
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    run_trials(study, space, data, trials=trials)
    return study


def with_train(space: SearchSpace | str | Path, **changes: Any) -> SearchSpace:
    """A space (a ``SearchSpace``, a space file or a shipped space's name) with its train
    recipe changed, e.g. ``epochs=1``: an example or a shipped space on a test's budget."""
    from actsearch.schema.space import SearchSpace, load_space

    if not isinstance(space, SearchSpace):
        space = load_space(space)
    return dataclasses.replace(space, train=dataclasses.replace(space.train, **changes))


def layout_trial(value: float, layout: str, uniform: bool,
                 **user_attrs: Any) -> optuna.trial.FrozenTrial:
    """A finished trial of ``layout`` ("relu | selu": its act_<i> params), as a search records
    it: one epoch, ``value`` its validation accuracy; ``user_attrs`` add or replace attrs."""
    acts = [a.strip() for a in layout.split("|")]
    dist = {f"act_{i}": CategoricalDistribution(["relu", "selu"]) for i in range(len(acts))}
    return optuna.trial.create_trial(
        value=value, params={f"act_{i}": a for i, a in enumerate(acts)}, distributions=dist,
        user_attrs={"layout": layout, "uniform": uniform, "val_acc": value,
                    "train_seconds": 1.0, "val_acc_curve": [value], "val_loss_curve": [1.0],
                    "epochs": 1, "end": "complete", **user_attrs})


def edit_yaml(path: Path, change: Callable[[dict], object]) -> Path:
    """Apply ``change`` to the YAML document in ``path`` (a config, a space) and write it
    back in its own key order."""
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def copy_export(config: Path, folder: Path) -> Path:
    """A private copy in ``folder`` of an exported config and the files beside it (weights,
    ONNX), free to be spoiled; a module's export is shared by its tests."""
    for f in config.parent.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder / config.name


# The study the graph and dashboard tests look at: ten trials, four before pruning starts.
GRAPHS_SPACE = space_document({"pruner.n_startup_trials": 4, "budget.trials": 10,
                               "train.schedule": DELETE, "description": DELETE})


def run_tiny_study(folder: Path, trials: int = 10, name: str = "tiny") -> tuple[str, str]:
    """A finished study of GRAPHS_SPACE in ``folder/<name>/study.db``; returns (storage, name)."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump({**GRAPHS_SPACE, "name": name}))
    storage = f"sqlite:///{folder / name / 'study.db'}"
    search(path, storage, trials, name)
    return storage, name


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Small models train fastest, and timings are steadiest, on one thread; other work
    # shares this machine.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_space(tmp_path: Path):
    """Write a space document (the tiny one, updated by ``changes``) and return its path."""

    def write(changes: dict | None = None, name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(space_document(changes)))
        return path

    return write


@pytest.fixture
def delete() -> object:
    return DELETE


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL URL: $ACTSEARCH_TEST_POSTGRES_URL, else a throwaway server from
    .ci/postgres.sh (one per test session); skips, saying why, where none can be started."""
    if os.environ.get("ACTSEARCH_TEST_POSTGRES_URL"):
        yield os.environ["ACTSEARCH_TEST_POSTGRES_URL"]
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            pytest.skip("no PostgreSQL driver: pip install 'actsearch[postgres]'")
    if shutil.which("bash") is None:
        pytest.skip("no bash to run .ci/postgres.sh")
    # Not under pytest's tmp folder: that is private to us, and the server runs as the
    # postgres user when we are root.
    folder = Path(tempfile.mkdtemp(prefix="actsearch-pg-"))
    os.chmod(folder, 0o755)
    start = subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh"), "start",
                            str(folder / "pg")], capture_output=True, text=True, timeout=300)
    if start.returncode != 0:
        pytest.skip(f"cannot start a PostgreSQL server: {start.stderr.strip()[-300:]}")
    try:
        yield start.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh"), "stop", str(folder / "pg")],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def space(write_space):
    """The tiny space, validated."""
    from actsearch.schema.space import load_space

    return load_space(write_space())


@pytest.fixture
def data(space):
    """The tiny space's splits in float64 on the CPU, where populations follow fit exactly."""
    import torch

    from actsearch.training.data import load_data, to_device

    return to_device(load_data(space.data, 0), "cpu", torch.float64)
