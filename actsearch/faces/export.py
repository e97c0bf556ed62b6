"""Exported configs: write the best layouts of a study as files, load and retrain them.

A config is a plain YAML or JSON document (read with ``yaml.safe_load`` / ``json.loads`` only)
that says everything needed to rebuild and retrain one candidate: the architecture (a shipped
family's, schema 1; or a factory model's factory, kwargs and per-site activations, schema 2),
the training recipe, the data (with its fingerprint and split seed), the trial's metrics and
where it came from. Nothing in a shipped family's config is executed; a config that names a
factory (model or data) runs that code to build the model, so ``load_model`` and
``train_config`` refuse it unless told to trust it (``trust_code=True``).

Trials store no weights. When weights (or an ONNX model) are asked for, the candidate is
retrained with the trial's own seed exactly as the search trained it (``SequentialTrainer``);
training is deterministic on one device, so the retrained model is the trial's model, and the
export checks that by comparing validation accuracies. Weights go beside the config as a
state dict (``<name>.pt``, loadable with ``torch.load(..., weights_only=True)``) whose sha256
the config records, so a swapped or edited weights file is detected.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from actsearch.engine.driver import trial_seed
from actsearch.engine.record import FINALISTS_ATTR, TrialRecord
from actsearch.errors import ActsearchError
from actsearch.models.activations import get_activation
from actsearch.models.apply import apply_layout
from actsearch.models.build import build_candidate, build_model
from actsearch.models.custom import with_sites
from actsearch.models.factory import load_factory
from actsearch.models.groups import group_layout
from actsearch.models.layout import Candidate, Layer, Layout, candidate_from_params
from actsearch.schema.config import (
    FACTORY_SCHEMA,
    FAMILY_SCHEMA,
    SCHEMA_VERSION,
    FactoryConfigFile,
    LayerEntry,
    architecture_document,
    data_document,
    factory_model_document,
    model_spec,
    read_config_file,
    recipe_document,
)
from actsearch.schema.space import IN_PYTHON, DataSpec, ModelSpec, SearchSpace
from actsearch.training.data import DeviceData, study_data, to_device
from actsearch.training.fit import (
    Recipe,
    evaluate_split,
    fit,
    recipe_for,
    scoring_for,
    scoring_of,
    select_device,
)

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "ConfigRun",
    "ExportedConfig",
    "export_configs",
    "load_model",
    "read_config",
    "select_trials",
    "train_config",
]

FORMATS = ("yaml", "json", "onnx")
# The retrained model must reproduce the trial: val_acc is stored rounded to 6 decimals.
_VAL_ACC_TOLERANCE = 1e-6
# ONNX Runtime and PyTorch must agree on the logits of a probe batch to this (abs and rel).
_ONNX_TOLERANCE = 1e-5
_ONNX_EXTRA = "pip install 'actsearch[onnx]'"


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
                                 f"{factory}; pass trust_code=True (--trust-code) if you trust "
                                 f"it")

    def build(self, trust_code: bool = False) -> nn.Module:
        """The untrained network this config describes (a factory model's runs its factory:
        ``trust_code``)."""
        if self.sites is None:
            return build_model(self.arch, self.layout, self.input_shape, self.n_classes,
                               self.arch.norm[0])
        self.trust(trust_code)
        assert self.arch.factory is not None
        factory = load_factory(self.arch.factory, Path(self.source).parent)
        model = factory(**self.arch.kwargs)
        if not isinstance(model, nn.Module):
            raise ActsearchError(f"{self.source}: model.factory: {self.arch.factory!r} returned "
                                 f"{type(model).__name__}, expected a torch nn.Module")
        # Sites are found by running the model once: on zeros of the recorded sample shape
        # (a batch of two, as the search found them), which draw no random numbers.
        return apply_layout(model, self.sites,
                            example_input=torch.zeros((2, *self.input_shape)),
                            init=self.arch.init)


class ConfigRun(NamedTuple):
    """The outcome of ``train_config``; test accuracy first."""

    test_acc: float
    val_acc: float
    status: str  # complete or diverged
    epochs: int
    train_seconds: float
    seed: int
    model: nn.Module


# ----------------------------------------------------------------------------- selecting


def select_trials(study: optuna.Study, top: int = 1) -> list[FrozenTrial]:
    """The trials to export: the best ``top`` complete trials (Pareto front if multi-objective).

    A single-objective study is ranked by value in the study's direction (ties: lower trial
    number first); a multi-objective study's ``best_trials`` are ranked by their first value.
    """
    if top < 1:
        raise ActsearchError(f"top: expected at least 1, got {top}", parameter="top")
    if len(study.directions) > 1:
        trials = list(study.best_trials)
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        trials.sort(key=lambda t: (sign * t.values[0], t.number))
    else:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        trials.sort(key=lambda t: (sign * float(t.value), t.number))
    if not trials:
        raise ActsearchError(f"study {study.study_name!r}: no complete trials to export")
    return trials[:top]


# ----------------------------------------------------------------------------- exporting


def _versions() -> dict[str, str]:
    from actsearch import __version__

    return {"actsearch": str(__version__), "torch": str(torch.__version__),
            "optuna": str(optuna.__version__)}


def _trial_val_acc(record: TrialRecord) -> float:
    # Multi-objective trials have no single value; every trial also records val_acc.
    if len(record.values or ()) == 1:
        return float(record.values[0])
    return record.accuracy


def _file_name(study_name: str, number: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name).strip("._") or "study"
    return f"{safe}-trial{number}"


def _layer_document(layer: Layer) -> dict[str, Any]:
    spec = get_activation(layer.activation)
    if spec.param is None:
        return {"activation": layer.activation}
    return {"activation": layer.activation, spec.param: layer.param}


def config_document(study: optuna.Study, space: SearchSpace, trial: FrozenTrial,
                    input_shape: tuple[int, ...], n_classes: int,
                    fingerprint: str) -> dict[str, Any]:
    """The config of one trial as a plain document, its keys in a stable, readable order."""
    candidate = candidate_from_params(trial.params, space)
    recipe = recipe_for(space, candidate)
    m, record = space.model, TrialRecord.from_frozen(trial)
    metric = space.objectives[0][0]
    metrics: dict[str, Any] = {
        # A metric of the space's own (train.metric): val_acc and test_acc hold its values.
        **({"metric": metric} if metric != "accuracy" else {}),
        "val_acc": _trial_val_acc(record),
        "test_acc": record.test_acc,
        "epochs": record.epochs,
        "train_seconds": record.train_seconds,
    }
    # Finalist re-runs over fresh seeds (actsearch.engine.finalists stores them on the study),
    # where this trial was a finalist: the test accuracy's mean, spread and 95% interval.
    for entry in study.user_attrs.get(FINALISTS_ATTR, []):
        if entry.get("number") == trial.number:
            metrics.update({
                "finalist_seeds": entry["seeds"], "finalist_test_acc": entry["test_acc"],
                "finalist_test_acc_mean": entry["mean"], "finalist_test_acc_std": entry["std"],
                "finalist_test_acc_ci95": [entry["ci_low"], entry["ci_high"]]})
    study_seed = int(study.user_attrs.get("seed", space.seed))
    if space.custom is None:
        network = {
            "schema_version": FAMILY_SCHEMA,
            "architecture": architecture_document(m.at_depth(candidate.layout.depth),
                                                  candidate.norm, input_shape, n_classes),
            "layers": [_layer_document(layer) for layer in candidate.layout.layers],
        }
    else:
        groups = space.custom.groups
        chosen = dict(zip((g.name for g in groups), candidate.layout.layers, strict=True))
        network = {
            "schema_version": FACTORY_SCHEMA,
            "model": factory_model_document(m, input_shape, n_classes),
            "sites": {site: _layer_document(layer)
                      for site, layer in group_layout(groups, chosen).items()},
            "groups": {g.name: list(g.sites) for g in groups},
        }
    return {
        **network,
        "recipe": recipe_document(recipe),
        "data": data_document(space.data, study_seed, fingerprint),
        "metrics": metrics,
        "provenance": {
            "study": study.study_name,
            "trial": trial.number,
            "seed": int(record.seed if record.seed is not None
                        else trial_seed(study_seed, trial.number)),
            "layout": str(candidate.layout),
            **_versions(),
        },
    }


def _retrain(space: SearchSpace, candidate: Candidate, data: DeviceData, seed: int,
             device: torch.device) -> tuple[nn.Module, float]:
    # Exactly the steps of SequentialTrainer: same seed, same build, same fit.
    torch.manual_seed(seed)
    model = build_candidate(space, candidate.layout, data.input_shape, data.n_classes,
                            candidate.norm).to(device, data.x_train.dtype)
    result = fit(model, data, recipe_for(space, candidate), seed, scoring=scoring_of(space))
    val_acc = result.history[-1].val_acc if result.history else float("nan")
    return model, val_acc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Dumper(yaml.SafeDumper):
    """Block style, except one-line lists of numbers and one-line layers, for reading."""


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flat = all(not isinstance(v, (list, dict)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


def _represent_dict(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.Node:
    # Layers ({activation: elu, alpha: 0.73}) read best on one line each.
    flat = "activation" in value and all(not isinstance(v, (list, dict)) for v in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flat)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def _write_document(document: dict[str, Any], path: Path, fmt: str) -> None:
    if fmt == "json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=99)
    path.write_text(text, encoding="utf-8")


def export_configs(study: optuna.Study, space: SearchSpace | None = None, top: int = 1,
                   out_dir: str | Path = "exports", fmt: str = "yaml", weights: bool = False,
                   *, device: str | torch.device | None = None,
                   strict: bool = True) -> list[Path]:
    """Write one config file per selected trial; returns the config paths, best first.

    Args:
        study: The study (it is only read).
        space: Its search space (default: the one stored in the study).
        top: How many of the best complete trials (see ``select_trials``).
        out_dir: Where the files go (created).
        fmt: ``yaml``, ``json`` or ``onnx`` (a YAML config plus ``<name>.onnx`` beside it,
            checked against PyTorch with ONNX Runtime; needs the ``onnx`` extra).
        weights: Also save the trained weights as ``<name>.pt`` beside the config.
        device: Where to retrain for weights/ONNX (default: CUDA if available). Retraining
            reproduces a trial only on the kind of device the study ran on.
        strict: Raise when a retrained model does not reproduce its trial's validation
            accuracy; with False, warn and export the retrained model anyway.
    """
    if fmt not in FORMATS:
        raise ActsearchError(f"format: unknown format {fmt!r}; expected one of: "
                             f"{', '.join(FORMATS)}", parameter="format")
    if fmt == "onnx":
        _require_onnx()  # fail before any retraining
    if space is None:
        from actsearch.engine.storage import space_of_study

        space = space_of_study(study)
    for which, factory in (("model", space.model.factory), ("data", space.data.factory)):
        if factory is not None and factory.startswith(f"{IN_PYTHON}:"):
            raise ActsearchError(f"study {study.study_name}: {which}.factory {factory!r} was "
                                 f"given in Python (actsearch.search), so a config cannot name "
                                 f"it; export needs an importable factory: 'module:function' "
                                 f"in a space file", parameter="study")
    trials = select_trials(study, top)
    split_seed = int(study.user_attrs.get("seed", space.seed))
    dataset = study_data(space.data, split_seed, classes=space.train.class_targets)
    # A factory model's sites, found as the search found them (its groups name the params).
    space = with_sites(space, torch.as_tensor(dataset.x_train[:2]))
    retrain = weights or fmt == "onnx"
    # A plain config needs no device: only retraining (weights, ONNX) asks for one.
    torch_device = select_device(None if device is None else str(device)) if retrain else None
    data = to_device(dataset, torch_device) if retrain else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for trial in trials:
        document = config_document(study, space, trial, dataset.input_shape, dataset.n_classes,
                                   dataset.fingerprint)
        name = _file_name(study.study_name, trial.number)
        config_path = out / f"{name}.{'json' if fmt == 'json' else 'yaml'}"
        if retrain:
            assert data is not None
            candidate = candidate_from_params(trial.params, space)
            seed = document["provenance"]["seed"]
            model, val_acc = _retrain(space, candidate, data, seed, torch_device)
            expected = document["metrics"]["val_acc"]
            if not abs(val_acc - expected) <= _VAL_ACC_TOLERANCE:
                # A trial trained in a population rounds differently from a model trained
                # alone (batched products), so its retrain matches only up to that rounding.
                population = TrialRecord.from_frozen(trial).population or 1
                why = (f"it trained in a population of {population}, whose batched products "
                       f"round differently" if population > 1 else
                       "retrain on the device the study ran on, e.g. --device cuda")
                message = (f"trial {trial.number} of study {study.study_name!r}: retraining on "
                           f"{torch_device} gave val_acc {val_acc:.6f}, the trial had "
                           f"{expected:.6f}; the exported weights are not the trial's ({why})")
                if strict and population <= 1:
                    raise ActsearchError(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            model.eval()
            if weights:
                weights_path = out / f"{name}.pt"
                state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
                torch.save(state, weights_path)
                document["weights"] = {"file": weights_path.name,
                                       "sha256": _sha256(weights_path),
                                       "val_acc": round(val_acc, 6)}
            if fmt == "onnx":
                onnx_path = out / f"{name}.onnx"
                _export_onnx(model, data.x_val[:16], onnx_path)
                document["onnx"] = {"file": onnx_path.name, "sha256": _sha256(onnx_path)}
        _write_document(document, config_path, fmt)
        paths.append(config_path)
    return paths


# ----------------------------------------------------------------------------- ONNX


def _require_onnx() -> None:
    # The torch.export-based exporter (torch's default since 2.9) needs onnxscript; the
    # check needs onnxruntime.
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ActsearchError(f"format onnx: needs the 'onnx' extra (missing: "
                             f"{', '.join(missing)}); install it with: {_ONNX_EXTRA}",
                             parameter="format")


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Export with a dynamic batch axis, then check ONNX Runtime against PyTorch."""
    import onnxruntime as ort

    model = copy.deepcopy(model).cpu().eval()
    example = example.detach().cpu()
    if len(example) < 2:  # a batch of 1 would be specialised into the graph
        example = torch.cat([example, example])
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    try:
        # The exporter logs about optional torchvision ops and warns about its own internals.
        onnx_logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["x"],
                              output_names=["logits"], verbose=False, external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ActsearchError(f"{path}: ONNX export failed ({type(e).__name__}: {first})") from e
    finally:
        onnx_logger.setLevel(level)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a probe batch of a small model: threads only cost
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    for probe in (example, example[:1]):  # also a batch size other than the traced one
        got = session.run(None, {input_name: probe.numpy()})[0]
        with torch.inference_mode():
            want = model(probe).numpy()
        if got.shape != want.shape or not np.allclose(got, want, rtol=_ONNX_TOLERANCE,
                                                      atol=_ONNX_TOLERANCE):
            diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf
            raise ActsearchError(f"{path}: ONNX Runtime output differs from PyTorch's on a "
                                 f"probe batch of {len(probe)} (max abs difference {diff:.3g}, "
                                 f"expected <= {_ONNX_TOLERANCE})")


# ----------------------------------------------------------------------------- reading


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


def _load_weights(config: ExportedConfig, model: nn.Module) -> None:
    assert config.weights is not None
    where = f"{config.source}: weights.file"
    if not config.weights.is_file():
        raise ActsearchError(f"{where}: weights file {config.weights} not found")
    if _sha256(config.weights) != config.weights_sha256:
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
    the architecture's shapes); without one the network is freshly initialised. A factory
    model's config (schema 2) imports and calls the factory, so it is refused unless
    ``trust_code=True``; its model is the factory's with the config's activation at each site.
    """
    config = read_config(path)
    model = config.build(trust_code)
    if config.weights is not None:
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
            raise ActsearchError(f"{config.source}: provenance.seed: missing field; pass a seed "
                                 f"(--seed)")
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
    torch.manual_seed(seed)
    model = config.build(trust_code).to(torch_device, data.x_train.dtype)
    scoring = scoring_for(config.recipe)
    result = fit(model, data, config.recipe, seed, scoring=scoring)
    last = result.history[-1] if result.history else None
    _, test_acc = evaluate_split(model, data, "test", scoring)
    return ConfigRun(test_acc, last.val_acc if last else float("nan"), result.status,
                     last.epoch if last else 0, result.train_seconds, seed, model.eval())
