"""Reading exported configs: ``read_config``, ``load_model`` (a config's model, its weights
loaded) and ``train_config`` (retrained from scratch).

A config's model is built as every candidate is, by ``build_candidate``: the config reads
as the space of its one candidate (``ExportedConfig.space``), and retraining starts it with
``trainers.start_model``, the search's own seeded start.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.models.activations import get_activation
from actsearch.models.build import build_candidate
from actsearch.models.custom import CustomModel
from actsearch.models.factory import load_factory
from actsearch.models.groups import SiteGroup
from actsearch.models.layout import Candidate, Layer, Layout
from actsearch.schema.config import (
    FactoryConfigFile,
    LayerEntry,
    model_spec,
    read_config_file,
)
from actsearch.schema.space import DataSpec, ModelSpec, PrunerSpec, SearchSpace
from actsearch.training.data import study_data, to_device
from actsearch.training.fit import Recipe, evaluate_split, fit, scoring_for, select_device
from actsearch.training.trainers import start_model

__all__ = ["ConfigRun", "ExportedConfig", "load_model", "read_config", "sha256",
           "train_config"]


@dataclass(frozen=True)
class ExportedConfig:
    """A validated exported config (``read_config``)."""

    source: str  # the file, for messages
    arch: ModelSpec  # depth is an int and norm has one entry; a factory model's: factory etc.
    layout: Layout  # a factory model's: one entry per group (or per site), for people
    input_shape: tuple[int, ...]
    n_classes: int
    recipe: Recipe
    data: DataSpec
    split_seed: int  # the study seed: it carves the validation split
    fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    weights_sha256: str | None = None
    onnx: Path | None = None
    sites: dict[str, Layer] | None = None  # a factory model's: site -> activation

    def trust(self, trust_code: bool, data: bool = False) -> None:
        """Refuse a config whose model (or, when training, ``data``) is made by a factory, the
        user's code, unless told to trust it."""
        factories = [("model.factory", self.arch.factory)]
        if data:  # training runs the data factory, and the recipe's own loss and metric
            metric = self.recipe.metric
            factories += [("data.factory", self.data.factory), ("recipe.loss", self.recipe.loss),
                          ("recipe.metric.factory", None if metric is None else metric.factory)]
        field_name, factory = next(((f, v) for f, v in factories if v is not None), ("", None))
        if factory is not None and not trust_code:
            raise ActsearchError(f"{self.source}: {field_name}: this config runs the code of "
                                 f"{factory}; pass `trust_code` if you trust it",
                                 parameter="trust_code")

    @property
    def candidate(self) -> Candidate:
        """The one candidate this config describes, as it is built: a factory model's layout
        has one entry per site (in the config's order, the order the search applied them)."""
        layout = self.layout
        if self.sites is not None:
            layout = Layout(tuple(self.sites.values()), tuple(self.sites))
        return Candidate(layout, self.arch.norm[0], float(self.recipe.lr))

    def space(self, trust_code: bool = False) -> SearchSpace:
        """The config as the space of its one candidate: what ``build_candidate`` and
        ``trainers.start_model`` take. A factory model's imports its factory (the user's
        code): refused unless ``trust_code``."""
        custom = None
        if self.sites is not None:
            self.trust(trust_code)
            assert self.arch.factory is not None
            factory = load_factory(self.arch.factory, Path(self.source).parent)
            # One group per site: the config says each site's activation. Sites are found
            # by running the model once on zeros of the recorded sample shape (a batch of
            # two, as the search found them), which draw no random numbers.
            groups = tuple(SiteGroup(site, (site,), (layer.activation,), {})
                           for site, layer in self.sites.items())
            custom = CustomModel(factory, dict(self.arch.kwargs), self.arch.factory,
                                 self.arch.init, groups, torch.zeros((2, *self.input_shape)),
                                 tuple(self.sites))
        choices = tuple(dict.fromkeys(layer.activation for layer in self.candidate.layout.layers))
        return SearchSpace(
            name=Path(self.source).stem, description="", source=self.source, data=self.data,
            model=self.arch, choices=choices, param_ranges={}, train=self.recipe,
            pruner=PrunerSpec("none", {}), sampler="random", seed=self.split_seed, trials=1,
            timeout=None, population=1, objectives=(self.recipe.objective,), custom=custom)

    def build(self, trust_code: bool = False) -> nn.Module:
        """The untrained network this config describes (a factory model's runs its factory:
        ``trust_code``), drawn from the global generator as it stands."""
        space, candidate = self.space(trust_code), self.candidate
        with self.named():
            return build_candidate(space, candidate.layout, self.input_shape, self.n_classes,
                                   candidate.norm)

    @contextmanager
    def named(self) -> Iterator[None]:
        """Errors a user can fix while the model is built (a factory that returns no module,
        a site the model lacks) name this config: it is what the user will edit."""
        try:
            yield
        except ActsearchError as e:
            if str(e).startswith(self.source):
                raise
            raise ActsearchError(f"{self.source}: {e}") from None


class ConfigRun(NamedTuple):
    """The outcome of ``train_config``; test accuracy first."""

    test_acc: float
    val_acc: float
    status: str  # complete or diverged
    epochs: int
    train_seconds: float
    seed: int
    model: nn.Module


def sha256(path: Path) -> str:
    """The file's sha256, as a config records it for its weights and ONNX files."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(path: str | Path) -> ExportedConfig:
    """Read and validate an exported config (YAML or JSON); nothing in it is executed."""
    path = Path(path)
    c = read_config_file(path)
    sites = None
    if isinstance(c, FactoryConfigFile):
        m = c.model
        sites = {site: _layer(entry) for site, entry in c.sites.items()}
        arch, input_shape, n_classes = (ModelSpec(factory=m.factory, kwargs=dict(m.kwargs),
                                                  init=m.init), m.input_shape, m.n_classes)
        # For people: one entry per group where the groups cover the sites, else per site.
        named = {g: sites[members[0]] for g, members in c.groups.items()
                 if members and members[0] in sites}
        if not named or sum(map(len, c.groups.values())) != len(sites):
            named = sites
        layout = Layout(tuple(named.values()), tuple(named))
    else:
        a = c.architecture
        arch, input_shape, n_classes = model_spec(a), a.input_shape, a.n_classes
        layout = Layout(tuple(_layer(entry) for entry in c.layers))
    r = c.recipe
    recipe = Recipe(r.optimizer, r.lr, r.weight_decay, r.batch_size, r.epochs, r.schedule,
                    r.loss, r.metric)
    return ExportedConfig(str(path), arch, layout, input_shape, n_classes, recipe,
                          c.data.spec(path.parent), c.data.split_seed, c.data.fingerprint,
                          dict(c.metrics), dict(c.provenance),
                          None if c.weights is None else path.parent / c.weights.file,
                          None if c.weights is None else c.weights.sha256,
                          None if c.onnx is None else path.parent / c.onnx.file, sites)


def _layer(entry: LayerEntry) -> Layer:
    return Layer(get_activation(entry.activation).name, next(iter(entry.param.values()), None))


def _missing_weights(config: ExportedConfig) -> str | None:
    """Why ``load_model`` can only give an untrained model where the config promises a trained
    one (it names weights that are gone, or records a test metric without weights), in one
    line naming the missing file; None when nothing is missing."""
    test = config.metrics.get("test_acc")
    metric = config.metrics.get("metric", "accuracy")
    recorded = isinstance(test, int | float) and not isinstance(test, bool)
    records = f" (the config records the trained one's: test {metric} {test:.4f})" \
        if recorded else ""
    if config.weights is not None:
        if config.weights.is_file():
            return None
        return (f"{config.source}: weights.file: {config.weights} not found; the model is "
                f"untrained{records}")
    if not recorded:  # a config that never promised a trained model
        return None
    beside = Path(config.source).with_suffix(".pt")
    why = "is not named by it" if beside.is_file() else "not found"
    return (f"{config.source}: no weights: {beside} {why}; the model is untrained{records}; "
            f"export it with its weights to load them")


def _load_weights(config: ExportedConfig, model: nn.Module) -> None:
    assert config.weights is not None
    where = f"{config.source}: weights.file"
    if sha256(config.weights) != config.weights_sha256:
        raise ActsearchError(f"{where}: {config.weights.name} does not match weights.sha256 "
                             f"(a different or modified weights file)")
    try:
        state = torch.load(config.weights, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or one that holds more than tensors
        raise ActsearchError(f"{where}: cannot load {config.weights.name} as a state dict "
                             f"({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ActsearchError(f"{where}: expected a state dict of tensors in "
                             f"{config.weights.name}")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ActsearchError(f"{where}: {config.weights.name} does not fit the architecture "
                             f"(missing: {', '.join(missing) or 'none'}; unexpected: "
                             f"{', '.join(unexpected) or 'none'})")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ActsearchError(f"{where}: {config.weights.name}: {key} has shape "
                                 f"{tuple(state[key].shape)}, the architecture expects "
                                 f"{tuple(tensor.shape)}")
    model.load_state_dict(state)


def load_model(path: str | Path, trust_code: bool = False) -> nn.Module:
    """Rebuild the plain ``nn.Module`` of an exported config, in eval mode.

    Loads the weights when the config names a weights file (checked against its sha256 and
    the architecture's shapes). Without them the network is freshly initialised, and where
    the config promises a trained model (it names a weights file that is gone, or records a
    test metric but no weights) an ``ActsearchWarning`` says so in one line, naming the
    missing file. A factory model's config (schema 2) imports and calls the factory, so it is
    refused unless ``trust_code=True``; its model is the factory's with the config's
    activation at each site.
    """
    config = read_config(path)
    model = config.build(trust_code)
    missing = _missing_weights(config)
    if missing is not None:
        warnings.warn(missing, ActsearchWarning, stacklevel=2)
    elif config.weights is not None:
        _load_weights(config, model)
    return model.eval()


def train_config(path: str | Path, seed: int | None = None,
                 device: str | torch.device | None = None, trust_code: bool = False) -> ConfigRun:
    """Retrain an exported config from scratch and evaluate it once on the test split.

    ``seed`` defaults to the trial's own seed: on the device the study ran on, that
    reproduces the trial's model and accuracies exactly. A config naming a factory runs its
    code: refused unless ``trust_code=True``.
    """
    config = read_config(path)
    config.trust(trust_code, data=True)
    if seed is None:
        if "seed" not in config.provenance:
            raise ActsearchError(f"{config.source}: provenance.seed: missing field; pass a "
                                 f"`seed`", parameter="seed")
        seed = int(config.provenance["seed"])
    dataset = study_data(config.data, config.split_seed,
                         classes=config.recipe.class_targets)
    if dataset.fingerprint != config.fingerprint:
        raise ActsearchError(f"{config.source}: data.fingerprint: the data set differs from the "
                             f"one the config was exported with (expected "
                             f"{config.fingerprint}, got {dataset.fingerprint})")
    if dataset.input_shape != config.input_shape or dataset.n_classes != config.n_classes:
        section = "architecture" if config.sites is None else "model"
        raise ActsearchError(f"{config.source}: {section}.input_shape: the data has samples "
                             f"of shape {dataset.input_shape} and {dataset.n_classes} classes")
    torch_device = select_device(None if device is None else str(device))
    data = to_device(dataset, torch_device)
    # The search's own start: the same seed, the same build, on the data's device and dtype.
    space = config.space(trust_code)
    with config.named():
        model = start_model(space, data, config.candidate, seed)
    scoring = scoring_for(config.recipe)
    result = fit(model, data, config.recipe, seed, scoring=scoring)
    last = result.history[-1] if result.history else None
    _, test_acc = evaluate_split(model, data, "test", scoring)
    return ConfigRun(test_acc, last.val_acc if last else float("nan"), result.status,
                     last.epoch if last else 0, result.train_seconds, seed, model.eval())
