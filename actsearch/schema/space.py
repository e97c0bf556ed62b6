"""Search-space files: the schema, loading a YAML file, and validation.

Every mistake in a space file raises one ActsearchError whose message names the file, the field
(as a dotted path) and what was expected. The file is read with yaml.safe_load only.
This module does not import torch, so `actsearch spaces` starts fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from actsearch.errors import ActsearchError
from actsearch.models.activations import DEFAULT_CHOICES, activation_names, get_activation

__all__ = [
    "DATASETS",
    "FieldReader",
    "KNOWN_INPUT_SHAPES",
    "OBJECTIVES",
    "STUDY_NAME",
    "ConvLayer",
    "DataSpec",
    "FloatRange",
    "IntRange",
    "ModelSpec",
    "PrunerSpec",
    "SearchSpace",
    "TrainSpec",
    "conv_output_sizes",
    "conv_shape_problem",
    "list_shipped_spaces",
    "load_space",
    "parse_data_spec",
    "parse_model_spec",
    "parse_space",
    "parse_train_spec",
    "resolve_space_path",
    "space_to_document",
]

DATASETS = ("mnist1d", "digits", "synthetic", "npz", "csv")
FAMILIES = ("mlp", "cnn1d", "cnn2d")
NORMS = ("none", "batch", "layer")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
SAMPLERS = ("tpe", "random")
# The settings each pruner accepts, with the type each must have.
PRUNER_SETTINGS: dict[str, dict[str, type]] = {
    "median": {"n_startup_trials": int, "n_warmup_steps": int, "interval_steps": int,
               "n_min_trials": int},
    "percentile": {"percentile": float, "n_startup_trials": int, "n_warmup_steps": int,
                   "interval_steps": int, "n_min_trials": int},
    "successive_halving": {"min_resource": int, "reduction_factor": int,
                           "min_early_stopping_rate": int, "bootstrap_count": int},
    "hyperband": {"min_resource": int, "max_resource": int, "reduction_factor": int,
                  "bootstrap_count": int},
    "none": {},
}
DEFAULT_SPACE = "mnist1d_mlp"
# One sample's shape for the data sets whose shape never changes, so that a CNN shape that
# cannot fit is refused when the space is read, not trial by trial (tests/test_space.py
# checks these against training/data.py).
KNOWN_INPUT_SHAPES: dict[str, tuple[int, ...]] = {"mnist1d": (40,), "digits": (8, 8),
                                                  "synthetic": (20,)}
# A space's and a study's name become a folder under runs/: no path separators, no "..".
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Objective names a space may list, with their natural direction and exact meaning. The values
# come from a trial's user attributes (train.py and probes.py measure them; README defines).
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("max", "validation accuracy after the last epoch"),
    "latency": ("min", "batch-1 inference latency / a uniform-ReLU model's, timed in "
                       "alternating blocks (probe lat_b1_rel)"),
    "latency_big": ("min", "batch-4096 inference latency / a uniform-ReLU model's "
                           "(probe lat_big_rel)"),
    "throughput": ("max", "training samples per second"),
    "convergence": ("min", "first epoch reaching 95% of the final validation accuracy"),
    "instability": ("min", "noise sensitivity (1 - robust_noise_0.1) + largest per-layer dead "
                           "fraction + |log10 gradient ratio first/last layer| / 10"),
    "dead_units": ("min", "largest per-layer dead-unit fraction"),
}


@dataclass(frozen=True)
class FloatRange:
    """A searched float: Optuna's suggest_float(low, high, log=log)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    """A searched integer: Optuna's suggest_int(low, high)."""

    low: int
    high: int


@dataclass(frozen=True)
class DataSpec:
    name: str = "mnist1d"
    path: str | None = None  # npz/csv only; relative paths are relative to the space file
    label: str | None = None  # csv only: the name of the label column
    val_fraction: float = 0.2  # carved from the training part, seeded
    test_fraction: float = 0.2  # npz/csv/digits/synthetic: held out before anything else
    samples: int = 2000  # synthetic only


class ConvLayer(NamedTuple):
    """One conv layer's shape settings, ``same`` padding resolved to a number."""

    kernel_size: int
    stride: int
    padding: int


# A CNN setting: one value for every conv layer, or one per conv layer (input side first).
PerLayer = int | tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    family: str = "mlp"
    width: int = 100  # hidden units per layer (mlp) or channels per layer (cnn)
    depth: int | IntRange = 3  # number of hidden layers, each with its own activation
    norm: tuple[str, ...] = ("none",)  # one entry: fixed; several: searched
    dropout: float = 0.0
    # cnn only. A tuple has one entry per conv layer, as many as the (highest) depth; a
    # searched depth d uses the first d. "same" padding is kernel_size // 2.
    kernel_size: PerLayer = 5
    stride: PerLayer = 1
    padding: int | str | tuple[int | str, ...] = "same"

    def conv_layers(self, depth: int) -> list[ConvLayer]:
        """The first ``depth`` conv layers' kernel size, stride and padding, input side first."""
        values: dict[str, tuple[Any, ...]] = {}
        for key in ("kernel_size", "stride", "padding"):
            value = getattr(self, key)
            if not isinstance(value, tuple):
                values[key] = (value,) * depth
            elif len(value) >= depth:
                values[key] = value[:depth]
            else:
                raise ActsearchError(f"model.{key}: expected at least {depth} entries, one per "
                                     f"conv layer, got {len(value)}")
        return [ConvLayer(k, s, k // 2 if p == "same" else p)
                for k, s, p in zip(values["kernel_size"], values["stride"], values["padding"],
                                   strict=True)]

    def at_depth(self, depth: int) -> ModelSpec:
        """This spec with one depth: per-layer tuples cut to it, one value where they agree."""

        def cut(value: Any) -> Any:
            if not isinstance(value, tuple):
                return value
            # Resolve nothing: "same" stays "same" so that a config keeps the space's words.
            entries = value[:depth]
            return entries[0] if len(set(entries)) == 1 else entries

        return ModelSpec(family=self.family, width=self.width, depth=depth, norm=self.norm,
                         dropout=self.dropout, kernel_size=cut(self.kernel_size),
                         stride=cut(self.stride), padding=cut(self.padding))


def conv_output_sizes(spec: ModelSpec, depth: int,
                      spatial: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The spatial size after each of ``depth`` conv layers of an input of size ``spatial``."""
    sizes, size = [], spatial
    for layer in spec.conv_layers(depth):
        # torch's Conv output size (dilation 1); 0: the layer has nothing to output.
        size = tuple(max(0, (s + 2 * layer.padding - layer.kernel_size) // layer.stride + 1)
                     for s in size)
        sizes.append(size)
    return sizes


def conv_shape_problem(spec: ModelSpec, depth: int, input_shape: tuple[int, ...]) -> str | None:
    """Why a CNN of ``depth`` layers cannot take samples of ``input_shape``, or None.

    None also for an MLP, and for a shape of the wrong number of axes (the model builder says
    that). The message reads after the field ``model.kernel_size`` (``architecture.`` in a
    config).
    """
    dims = {"cnn1d": 1, "cnn2d": 2}.get(spec.family)
    if dims is None or len(input_shape) not in (dims, dims + 1):
        return None
    spatial = input_shape[-dims:]  # the leading axis, where there is one, holds channels
    sizes = [spatial, *conv_output_sizes(spec, depth, spatial)]
    for i, size in enumerate(sizes[1:], start=1):
        if min(size) < 1:
            shown = " -> ".join("x".join(map(str, s)) for s in sizes[:i + 1])
            return (f"conv layer {i} of {depth} has no output (sizes {shown}; kernel_size "
                    f"{_setting(spec.kernel_size)}, stride {_setting(spec.stride)}, padding "
                    f"{_setting(spec.padding)}); expected smaller kernels or strides, more "
                    f"padding, or fewer layers")
    return None


def _setting(value: Any) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) else str(value)


@dataclass(frozen=True)
class TrainSpec:
    optimizer: str = "adam"
    lr: float | FloatRange = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 100
    epochs: int = 20
    schedule: str = "constant"  # cosine anneals the lr to 0 over the epochs


@dataclass(frozen=True)
class PrunerSpec:
    name: str = "median"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: what to search, on which data, with which recipe."""

    name: str
    description: str
    source: str  # the file it came from (for messages)
    data: DataSpec
    model: ModelSpec
    choices: tuple[str, ...]  # the per-layer activation choices
    param_ranges: dict[str, FloatRange]  # per parametrised activation in choices
    train: TrainSpec
    pruner: PrunerSpec
    sampler: str = "tpe"
    seed: int = 0
    trials: int = 50
    timeout: float | None = None
    population: int | str = "auto"  # candidates trained at once: a number, or auto
    # (name, "max" | "min") pairs; the first is what single-objective tables rank by.
    objectives: tuple[tuple[str, str], ...] = (("accuracy", "max"),)

    @property
    def depths(self) -> list[int]:
        d = self.model.depth
        return list(range(d.low, d.high + 1)) if isinstance(d, IntRange) else [d]


class FieldReader:
    """Reads one mapping of a YAML document, naming file and field in every error.

    Space files use it, and so do exported configs (``actsearch.faces.export``), whose errors must
    read the same way.
    """

    def __init__(self, source: str, where: str, value: Any) -> None:
        self.source, self.where = source, where
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {_type_name(value)}")
        self.value: dict[str, Any] = value
        self.seen: set[str] = set()

    def fail(self, where: str, what: str) -> None:
        raise ActsearchError(f"{self.source}: {where or '<top level>'}: {what}")

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(key)
        if key not in self.value or self.value[key] is None and default is None:
            return default
        value = self.value[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            self.fail(self.path(key), f"expected {expected}, got {_type_name(value)}")
        return value

    def sub(self, key: str) -> FieldReader:
        self.seen.add(key)
        return FieldReader(self.source, self.path(key), self.value.get(key))

    def done(self, allowed: Iterable[str] = ()) -> None:
        """Fail on a key nobody read; ``allowed``: optional keys absent from this document."""
        unknown = sorted(set(self.value) - self.seen, key=str)
        if unknown:
            names = ", ".join(sorted(self.seen | set(allowed)))
            self.fail(self.path(str(unknown[0])), f"unknown key; expected one of: {names}")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)


def _one_of(f: FieldReader, key: str, options: tuple[str, ...], default: str) -> str:
    value = f.get(key, str, default)
    if value not in options:
        f.fail(f.path(key), f"unknown value {value!r}; expected one of: {', '.join(options)}")
    return value


def _positive(f: FieldReader, key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero) or not math.isfinite(value):
        f.fail(f.path(key), f"expected a {'non-negative' if allow_zero else 'positive'} "
               f"number, got {value}")


def _float_range(f: FieldReader, key: str, default_low: float, default_high: float,
                 default_log: bool) -> FloatRange:
    r = f.sub(key)
    low = r.get("low", float, default_low)
    high = r.get("high", float, default_high)
    log = r.get("log", bool, default_log)
    r.done()
    if not (low > 0 and math.isfinite(high)):
        r.fail(r.path("low"), f"expected a positive range, got low={low}, high={high}")
    if low > high:
        r.fail(r.path("low"), f"expected low <= high, got low={low} > high={high}")
    return FloatRange(low, high, log)


def parse_data_spec(f: FieldReader, base: Path | None) -> DataSpec:
    name = _one_of(f, "name", DATASETS, "mnist1d")
    path = f.get("path", str, None)
    label = f.get("label", str, None)
    spec = DataSpec(
        name=name,
        path=path,
        label=label,
        val_fraction=f.get("val_fraction", float, 0.2),
        test_fraction=f.get("test_fraction", float, 0.2),
        samples=f.get("samples", int, 2000),
    )
    f.done()
    for key in ("val_fraction", "test_fraction"):
        if not 0 < getattr(spec, key) < 1:
            f.fail(f.path(key), f"expected a fraction between 0 and 1, got {getattr(spec, key)}")
    if name in ("npz", "csv") and path is None:
        f.fail(f.path("path"), f"data set {name!r} needs a file path")
    if name == "csv" and label is None:
        f.fail(f.path("label"), "csv data needs the name of its label column")
    if spec.samples < 20:
        f.fail(f.path("samples"), f"expected at least 20 samples, got {spec.samples}")
    if path is not None and base is not None and not Path(path).is_absolute():
        spec = DataSpec(**{**spec.__dict__, "path": str(base / path)})
    return spec


def parse_model_spec(f: FieldReader) -> ModelSpec:
    family = _one_of(f, "family", FAMILIES, "mlp")
    width = f.get("width", int, 100)
    if width < 1:
        f.fail(f.path("width"), f"expected at least 1 unit, got {width}")
    raw_depth = f.get("depth", (int, dict), 3)
    if isinstance(raw_depth, dict):
        r = f.sub("depth")
        depth: int | IntRange = IntRange(r.get("low", int, 1), r.get("high", int, 3))
        r.done()
        if depth.low < 1:
            f.fail(f.path("depth.low"), f"expected depth >= 1, got {depth.low}")
        if depth.low > depth.high:
            f.fail(f.path("depth.low"), f"expected low <= high, got {depth.low} > {depth.high}")
    else:
        depth = raw_depth
        if depth < 1:
            f.fail(f.path("depth"), f"expected depth >= 1, got {depth}")
    raw_norm = f.get("norm", (str, list), "none")
    norms = tuple(raw_norm) if isinstance(raw_norm, list) else (raw_norm,)
    if not norms:
        f.fail(f.path("norm"), "expected at least one of: " + ", ".join(NORMS))
    for i, norm in enumerate(norms):
        if norm not in NORMS:
            f.fail(f.path(f"norm[{i}]") if isinstance(raw_norm, list) else f.path("norm"),
                   f"unknown value {norm!r}; expected one of: {', '.join(NORMS)}")
    spec = ModelSpec(family=family, width=width, depth=depth, norm=norms,
                     dropout=f.get("dropout", float, 0.0),
                     kernel_size=_per_layer(f, "kernel_size", 5, depth, minimum=1),
                     stride=_per_layer(f, "stride", 1, depth, minimum=1),
                     padding=_per_layer(f, "padding", "same", depth, minimum=0))
    f.done()
    if not 0 <= spec.dropout < 1:
        f.fail(f.path("dropout"), f"expected 0 <= dropout < 1, got {spec.dropout}")
    return spec


def _per_layer(f: FieldReader, key: str, default: int | str, depth: int | IntRange, *,
               minimum: int) -> Any:
    """A CNN setting: one value for every conv layer, or a list with one per conv layer.

    Padding (``minimum`` 0) also takes ``same``, alone or as a list entry.
    """
    same = minimum == 0
    kinds: tuple[type, ...] = (int, str, list) if same else (int, list)
    raw = f.get(key, kinds, default)
    expected = "an integer >= 0 or same" if same else f"an integer >= {minimum}"

    def check(value: Any, where: str) -> Any:
        if same and value == "same":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            got = repr(value) if isinstance(value, str) else _type_name(value)
            f.fail(where, f"expected {expected}, got {got}")
        if value < minimum:
            f.fail(where, f"expected {expected}, got {value}")
        return value

    if not isinstance(raw, list):
        return check(raw, f.path(key))
    layers = depth.high if isinstance(depth, IntRange) else depth
    if len(raw) != layers:
        which = (f"one per conv layer up to {f.path('depth.high')} (a depth d uses the first d)"
                 if isinstance(depth, IntRange) else f"one per conv layer ({f.path('depth')})")
        f.fail(f.path(key), f"expected {expected} or a list of {layers}, {which}; got a list "
               f"of {len(raw)}")
    return tuple(check(value, f.path(f"{key}[{i}]")) for i, value in enumerate(raw))


def _parse_activations(f: FieldReader) -> tuple[tuple[str, ...], dict[str, FloatRange]]:
    raw = f.get("choices", list, list(DEFAULT_CHOICES))
    if not raw:
        f.fail(f.path("choices"), "expected a non-empty list of activation names")
    choices: list[str] = []
    for i, name in enumerate(raw):
        try:
            get_activation(name)
        except ActsearchError as e:
            f.fail(f.path(f"choices[{i}]"), str(e))
        if name in choices:
            f.fail(f.path(f"choices[{i}]"), f"activation {name!r} is listed twice")
        choices.append(name)
    ranges: dict[str, FloatRange] = {}
    for name in choices:
        spec = get_activation(name)
        if spec.param is not None:
            # e.g. `elu_alpha: {low: 0.1, high: 2.0, log: false}`
            ranges[name] = _float_range(f, f"{name}_{spec.param}", spec.low, spec.high, spec.log)
    # A parameter range of an activation that is not a choice (e.g. elu_alpha without elu).
    param_keys = {f"{name}_{get_activation(name).param}": name for name in activation_names()
                  if get_activation(name).param is not None}
    for key in f.value:
        if key not in f.seen and key in param_keys:
            f.fail(f.path(key), f"{param_keys[key]} is not in activations.choices; add it "
                                f"there or remove {key}")
    f.done(allowed=[f"{name}_{get_activation(name).param}" for name in choices
                    if get_activation(name).param is not None])
    return tuple(choices), ranges


def parse_train_spec(f: FieldReader) -> TrainSpec:
    raw_lr = f.get("lr", (float, dict), 1e-3)
    lr: float | FloatRange
    if isinstance(raw_lr, dict):
        lr = _float_range(f, "lr", 1e-4, 1e-2, True)
    else:
        lr = raw_lr
        _positive(f, "lr", lr)
    spec = TrainSpec(
        optimizer=_one_of(f, "optimizer", OPTIMIZERS, "adam"),
        lr=lr,
        weight_decay=f.get("weight_decay", float, 0.0),
        batch_size=f.get("batch_size", int, 100),
        epochs=f.get("epochs", int, 20),
        schedule=_one_of(f, "schedule", SCHEDULES, "constant"),
    )
    f.done()
    _positive(f, "weight_decay", spec.weight_decay, allow_zero=True)
    for key in ("batch_size", "epochs"):
        if getattr(spec, key) < 1:
            f.fail(f.path(key), f"expected at least 1, got {getattr(spec, key)}")
    return spec


def _parse_pruner(f: FieldReader) -> PrunerSpec:
    name = _one_of(f, "name", tuple(PRUNER_SETTINGS), "median")
    settings: dict[str, Any] = {}
    for key, kind in PRUNER_SETTINGS[name].items():
        if key in f.value:
            settings[key] = f.get(key, kind, None)
            if settings[key] is None:
                f.fail(f.path(key), f"expected {kind.__name__}, got nothing")
            if settings[key] < 0:
                f.fail(f.path(key), f"expected a non-negative number, got {settings[key]}")
    f.done(allowed=PRUNER_SETTINGS[name])
    return PrunerSpec(name, settings)


def _parse_objectives(top: FieldReader) -> tuple[tuple[str, str], ...]:
    """``objectives: [accuracy: max, latency: min]`` (a bare name takes its usual direction)."""
    raw = top.get("objectives", list, [{"accuracy": "max"}])
    if not raw:
        top.fail("objectives", "expected at least one objective")
    names = ", ".join(OBJECTIVES)
    objectives: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        where = f"objectives[{i}]"
        if isinstance(item, str):
            item = {item: OBJECTIVES.get(item, ("max", ""))[0]}
        if not isinstance(item, dict) or len(item) != 1:
            top.fail(where, "expected 'name: max' or 'name: min'")
        (name, direction), = item.items()
        if name not in OBJECTIVES:
            top.fail(where, f"unknown objective {name!r}; expected one of: {names}")
        if direction not in ("max", "min"):
            top.fail(where, f"expected max or min for {name}, got {direction!r}")
        if any(name == seen for seen, _ in objectives):
            top.fail(where, f"objective {name!r} is listed twice")
        objectives.append((name, direction))
    if objectives[0] != ("accuracy", "max"):
        # Pruning and every table rank by validation accuracy: it leads, the rest follow.
        top.fail("objectives[0]", "expected 'accuracy: max' first (pruning and tables rank by "
                 f"it), got '{objectives[0][0]}: {objectives[0][1]}'")
    return tuple(objectives)


def parse_space(document: Any, source: str, base: Path | None = None) -> SearchSpace:
    """Validate a parsed space document; ``source`` names it in error messages."""
    top = FieldReader(source, "", document)
    name = top.get("name", str, Path(source).stem)
    if not STUDY_NAME.fullmatch(name):
        top.fail("name", f"expected letters, digits, '_', '-' or '.' (it names the run "
                 f"folder), got {name!r}")
    description = top.get("description", str, "")
    data = parse_data_spec(top.sub("data"), base)
    model = parse_model_spec(top.sub("model"))
    choices, ranges = _parse_activations(top.sub("activations"))
    train = parse_train_spec(top.sub("train"))
    pruner = _parse_pruner(top.sub("pruner"))
    sampler_f = top.sub("sampler")
    sampler = _one_of(sampler_f, "name", SAMPLERS, "tpe")
    seed = sampler_f.get("seed", int, 0)
    sampler_f.done()
    if seed < 0:
        sampler_f.fail(sampler_f.path("seed"), f"expected a seed >= 0, got {seed}")
    budget = top.sub("budget")
    trials = budget.get("trials", int, 50)
    timeout = budget.get("timeout", float, None)
    budget.done()
    population = top.get("population", (int, str), "auto")
    objectives = _parse_objectives(top)
    top.done()
    if population != "auto" and (isinstance(population, str) or population < 1):
        top.fail("population", f"expected a positive integer or auto, got {population!r}")
    if trials < 1:
        budget.fail(budget.path("trials"), f"expected at least 1 trial, got {trials}")
    if timeout is not None:
        _positive(budget, "timeout", timeout)
    if model.family == "cnn2d" and data.name == "mnist1d":
        top.fail("model.family", "cnn2d needs image data (digits, or npz with 4-D X)")
    if data.name in KNOWN_INPUT_SHAPES:
        # A layer that shrinks the input to nothing does so at every depth from it on:
        # checking the deepest candidate checks them all.
        depth = model.depth.high if isinstance(model.depth, IntRange) else model.depth
        problem = conv_shape_problem(model, depth, KNOWN_INPUT_SHAPES[data.name])
        if problem is not None:
            top.fail("model.kernel_size", problem)
    return SearchSpace(name=name, description=description, source=source, data=data,
                       model=model, choices=choices, param_ranges=ranges, train=train,
                       pruner=pruner, sampler=sampler, seed=seed, trials=trials, timeout=timeout,
                       population=population, objectives=objectives)


def _shipped_dir() -> Path:
    # A source checkout (or editable install) has search_spaces/ beside the package; an
    # installed wheel carries the same files as package data under actsearch/search_spaces.
    checkout = Path(__file__).resolve().parents[2] / "search_spaces"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("actsearch") / "search_spaces"))


def list_shipped_spaces() -> list[SearchSpace]:
    """The spaces that ship with actsearch, sorted by name."""
    return [load_space(p) for p in sorted(_shipped_dir().glob("*.yaml"))]


def resolve_space_path(name_or_path: str | None) -> Path:
    """A file path as given, or the shipped space of that name (the default when None)."""
    if name_or_path is None:
        name_or_path = DEFAULT_SPACE
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ActsearchError(f"{path}: space file not found")
        return path
    shipped = _shipped_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in sorted(_shipped_dir().glob("*.yaml")))
    raise ActsearchError(f"{name_or_path}: no such space file or shipped space; "
                         f"shipped spaces: {names}")


def load_space(name_or_path: str | Path | None = None) -> SearchSpace:
    """Load and validate a space file (or a shipped space by name)."""
    path = resolve_space_path(None if name_or_path is None else str(name_or_path))
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<document>"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ActsearchError(f"{path}: {where}: not valid YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ActsearchError(f"{path}: cannot read the space file ({e})") from None
    return parse_space(document, str(path), base=path.parent)


def _range_document(r: FloatRange) -> dict[str, Any]:
    return {"low": r.low, "high": r.high, "log": r.log}


def _list_or_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def space_to_document(space: SearchSpace) -> dict[str, Any]:
    """The space as a space-file document: ``parse_space`` of it gives the same space."""
    d, m, t = space.data, space.model, space.train
    data: dict[str, Any] = {"name": d.name, "val_fraction": d.val_fraction,
                            "test_fraction": d.test_fraction, "samples": d.samples}
    if d.path is not None:
        data["path"] = str(Path(d.path).resolve())
    if d.label is not None:
        data["label"] = d.label
    depth = m.depth if isinstance(m.depth, int) else {"low": m.depth.low, "high": m.depth.high}
    model: dict[str, Any] = {
        "family": m.family, "width": m.width, "depth": depth, "norm": list(m.norm),
        "dropout": m.dropout, "kernel_size": _list_or_value(m.kernel_size),
        "stride": _list_or_value(m.stride)}
    if m.padding != "same":
        # Written only when set: a study stores this document and compares it on resume, so
        # the document of a space from before padding existed must not change.
        model["padding"] = _list_or_value(m.padding)
    activations: dict[str, Any] = {"choices": list(space.choices)}
    for name, r in space.param_ranges.items():
        activations[f"{name}_{get_activation(name).param}"] = _range_document(r)
    return {
        "name": space.name,
        "description": space.description,
        "data": data,
        "model": model,
        "activations": activations,
        "train": {"optimizer": t.optimizer,
                  "lr": _range_document(t.lr) if isinstance(t.lr, FloatRange) else t.lr,
                  "weight_decay": t.weight_decay, "batch_size": t.batch_size,
                  "epochs": t.epochs, "schedule": t.schedule},
        "pruner": {"name": space.pruner.name, **space.pruner.settings},
        "sampler": {"name": space.sampler, "seed": space.seed},
        "budget": {"trials": space.trials, "timeout": space.timeout},
        "population": space.population,
        "objectives": [{name: direction} for name, direction in space.objectives],
    }
