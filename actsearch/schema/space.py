"""Search-space files, declared once: each field's type, default, bounds and description.

The pydantic dataclasses below are the declaration. Everything else derives from it: reading
and validating a file (``load_space``; every mistake is one ``ActsearchError`` line naming the
file, the field as a dotted path, the value found and what was expected), the defaults the
rest of actsearch uses (``ModelSpec``, ``TrainSpec`` -- also the training recipe -- and
``DataSpec`` are these same classes), the document a study stores (``space_to_document``), the
JSON Schema editors check files against (``space_json_schema``) and the docs' field table
(``field_table``). This module does not import torch, so `actsearch spaces` starts fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.models.activations import DEFAULT_CHOICES, activation_names, get_activation
from actsearch.schema.documents import expect, fail, read_document, validate

__all__ = [
    "DATASETS",
    "IN_PYTHON",
    "KNOWN_INPUT_SHAPES",
    "KNOWN_SAMPLES",
    "MAX_PARAMETERS",
    "NOT_MEASURED",
    "OBJECTIVES",
    "SCHEMA_FILE",
    "STUDY_NAME",
    "ClaimsSection",
    "ConvLayer",
    "DataSpec",
    "FloatRange",
    "GroupSection",
    "IntRange",
    "MetricSection",
    "ModelSpec",
    "ModelVariant",
    "PrunerSpec",
    "SearchSpace",
    "SpaceFile",
    "TrainSpec",
    "conv_output_sizes",
    "based_factory",
    "conv_shape_problem",
    "field_table",
    "held_out",
    "list_shipped_spaces",
    "load_space",
    "parse_space",
    "resolve_space_path",
    "space_json_schema",
    "space_to_document",
]

DATASETS = ("mnist1d", "digits", "synthetic", "npz", "csv")
Dataset = Literal["mnist1d", "digits", "synthetic", "npz", "csv"]
Family = Literal["mlp", "cnn1d", "cnn2d"]
Norm = Literal["none", "batch", "layer"]
Role = Literal["gate", "signal"]
Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["constant", "cosine"]
Sampler = Literal["tpe", "random"]
PrunerName = Literal["median", "percentile", "successive_halving", "hyperband", "none"]
# The settings each pruner accepts (PrunerSection declares their types and bounds).
PRUNER_SETTINGS: dict[str, tuple[str, ...]] = {
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps",
                   "n_min_trials"),
    "successive_halving": ("min_resource", "reduction_factor", "min_early_stopping_rate",
                           "bootstrap_count"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    "none": (),
}
DEFAULT_SPACE = "mnist1d_mlp"
# One sample's shape for the data sets whose shape never changes, so that a CNN shape that
# cannot fit is refused when the space is read, not trial by trial (tests/test_space.py
# checks these against training/data.py).
KNOWN_INPUT_SHAPES: dict[str, tuple[int, ...]] = {"mnist1d": (40,), "digits": (8, 8),
                                                  "synthetic": (20,)}
# The samples the fixed data sets have before the validation split (MNIST-1D's test split is
# its own; digits' is carved with test_fraction): a batch larger than the training split is
# flagged when the space is read. Checked against training/data.py like the shapes.
KNOWN_SAMPLES: dict[str, int] = {"mnist1d": 4000, "digits": 1797}
# A model whose hidden layers hold more parameters than this cannot train on any one machine:
# 1e11 float32 weights are 400 GB, and training with Adam keeps four times that (weights,
# gradients, two moments). Refused when the space is read, before anything is allocated.
MAX_PARAMETERS = 10**11
# A space's and a study's name become a folder under runs/: no path separators, no "..".
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Objective names a space may list, with their natural direction and exact meaning. The values
# come from a trial's user attributes (train.py and probes.py measure them; the docs' space-file
# page lists them from here).
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
# The probes' key (actsearch.training.probes), present only where some probes were not
# measured, saying why in words (a train.metric: those that measure accuracy).
NOT_MEASURED = "not_measured"
# Where the JSON Schema of space files ships (generated by ``space_json_schema``; a test
# keeps the two equal). Shipped spaces name it relative to themselves in their first line.
SCHEMA_FILE = Path(__file__).resolve().parent / "space.schema.json"

# Every section refuses unknown keys and non-finite numbers; integers stay integers (no bool,
# no "3"), and an integer is taken where a float is expected, as YAML writes 1 for 1.0.
_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


def held_out(n: int, fraction: float) -> int:
    """How many of ``n`` samples a split of ``fraction`` holds out (at least one)."""
    return max(1, round(n * fraction))


@dataclass(frozen=True, config=_CONFIG)
class _Section:
    """A mapping of a document: empty when given as nothing; an unknown key is named, with the
    keys that are allowed there."""

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        return tuple(cls.__pydantic_fields__)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if value is None:  # `data:` with nothing under it: every default
            return {}
        if isinstance(value, dict):
            allowed = cls._keys(value)
            for key in value:
                if key not in allowed:
                    names = ", ".join(sorted(allowed))
                    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][\w-]*", key):
                        raise fail(f"unknown key; expected one of: {names}", key)
                    # A key no field could have is shown quoted, after the mapping's path.
                    raise fail(f"unknown key {key!r}; expected one of: {names}")
            return cls._prepare(value)
        return value

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        """A document's mapping, its keys checked, as the fields take it."""
        return value


def _ranges_schema(schema: dict[str, Any]) -> None:
    # A range's low and high default to the setting's own range (an activation's in the
    # registry, the learning rate's LR_RANGE), so a file may give either alone.
    schema.pop("required", None)


@dataclass(frozen=True, config={**_CONFIG, "json_schema_extra": _ranges_schema})
class FloatRange(_Section):
    """A searched float: Optuna's suggest_float(low, high, log=log)."""

    low: StrictFloat = Field(gt=0, description="the smallest value tried")
    high: StrictFloat = Field(gt=0, description="the largest value tried")
    log: StrictBool = Field(False, description="sample on a log scale")

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise fail(f"expected low <= high, got low={self.low} > high={self.high}", "low")
        return self


@dataclass(frozen=True, config=_CONFIG)
class IntRange(_Section):
    """A searched integer: Optuna's suggest_int(low, high)."""

    low: StrictInt = Field(1, ge=1, description="the smallest value tried")
    high: StrictInt = Field(3, ge=1, description="the largest value tried")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise fail(f"expected low <= high, got {self.low} > {self.high}", "low")
        return self


# The learning rate's range where `lr: {...}` leaves low, high or log out.
LR_RANGE = FloatRange(1e-4, 1e-2, True)


def _one_or(kinds: tuple[type, ...], tag: str, expected: str,
            one: tuple[type, ...] = (int, float)) -> Discriminator:
    """A union of one value (of a kind in ``one``) or ``tag`` (a list or a range), told apart by
    the value's kind; any other kind is refused as ``expected <expected>``."""

    def pick(value: Any) -> str | None:
        if isinstance(value, kinds):
            return tag
        if isinstance(value, one) and not isinstance(value, bool):
            return "one"
        return None

    return Discriminator(pick, custom_error_type="wrong_type", custom_error_message=expected,
                         custom_error_context={"expected": expected})


Positive = Annotated[StrictInt, Field(ge=1), expect("an integer >= 1")]
Padding = Annotated[Annotated[StrictInt, Field(ge=0)] | Literal["same"],
                    expect("an integer >= 0 or same")]
# A CNN setting: one value for every conv layer, or one per conv layer (input side first).
PerLayer = Annotated[Annotated[Positive, Tag("one")]
                     | Annotated[tuple[Positive, ...], Tag("list")],
                     _one_or((list, tuple), "list", "int or list")]
PerLayerPadding = Annotated[Annotated[Padding, Tag("one")]
                            | Annotated[tuple[Padding, ...], Tag("list")],
                            _one_or((list, tuple), "list", "an integer >= 0, same or a list",
                                    (int, float, str))]
Depth = Annotated[Annotated[StrictInt, Field(ge=1), Tag("one")]
                  | Annotated[IntRange, Tag("range")],
                  _one_or((dict, IntRange), "range", "int or a mapping {low, high}")]
NormChoice = Annotated[Annotated[Norm, Tag("one")]
                       | Annotated[tuple[Norm, ...], Field(min_length=1), Tag("list")],
                       _one_or((list, tuple), "list", "a norm or a list", (str,))]
LearningRate = Annotated[Annotated[StrictFloat, Field(gt=0), Tag("one")]
                         | Annotated[FloatRange, Tag("range")],
                         _one_or((dict, FloatRange), "range",
                                 "float or a mapping {low, high, log}")]


_FACTORY_KEYS = ("factory", "kwargs", "init")
# The module of a factory given in Python (``actsearch.search(model=...)``): a study records
# with it that the factory cannot be imported again (``models.factory.load_factory`` says so).
IN_PYTHON = "<python>"
_FACTORY = re.compile(r".+:[A-Za-z_]\w*")


def _factory_form(value: str | None) -> str | None:
    if value is not None and not _FACTORY.fullmatch(value):
        raise fail(f"expected 'module:function' or 'path/to/file.py:function', got {value!r}")
    return value


def _absolute_factory(factory: str | None) -> str | None:
    # A stored or exported document must find a factory's file from any working directory.
    if factory is None:
        return None
    module, _, function = factory.rpartition(":")
    return f"{Path(module).resolve()}:{function}" if module.endswith(".py") else factory


# A factory's name: checked when read, written with its file's absolute path.
FactoryName = Annotated[StrictStr | None, AfterValidator(_factory_form),
                        PlainSerializer(_absolute_factory, return_type=str | None)]


def based_factory(factory: str, base: Path) -> str:
    """A factory's name with its module found from ``base`` (the space file's folder): a
    ``file.py`` relative to it, or a ``pkg.module`` that is a file there, becomes that file's
    path, so that the stored study finds it again from anywhere; other modules are imported
    as they are (installed ones)."""
    module, _, function = factory.rpartition(":")
    if module.endswith(".py"):
        return factory if Path(module).is_absolute() else f"{base / module}:{function}"
    file = base / (module.replace(".", "/") + ".py")
    return f"{file}:{function}" if file.is_file() else factory


@dataclass(frozen=True, config=_CONFIG)
class DataSpec(_Section):
    """The data set and its splits."""

    name: Dataset = Field("mnist1d", description="the data set")
    val_fraction: StrictFloat = Field(0.2, gt=0, lt=1, description="carved from the training "
                                      "part with the seed")
    test_fraction: StrictFloat = Field(0.2, gt=0, lt=1, description="held out (seed 0) when a "
                                       "data set has no test split of its own")
    samples: StrictInt = Field(2000, ge=20, description="synthetic only: how many samples")
    path: StrictStr | None = Field(None, exclude_if=lambda v: v is None,
                                   description="npz (arrays X, y) or csv; relative to the "
                                   "space file")
    label: StrictStr | None = Field(None, exclude_if=lambda v: v is None,
                                    description="csv only: the label column")
    # Written to documents only when set, so that older spaces' documents stay the same.
    factory: FactoryName = Field(None, exclude_if=lambda v: v is None,
                                 description="your own data: 'module:function' or "
                                 "'file.py:function' returning (train, val) or (train, val, "
                                 "test), each (x, y) tensors or a TensorDataset (kept on the "
                                 "device), or each a DataLoader (iterated as given: its own "
                                 "batch size, not train.batch_size); imported from the space "
                                 "file's folder (runs your code)")

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        if "factory" in value:  # the factory makes the splits: nothing else applies
            for key in value:
                if key != "factory":
                    raise fail("data.factory makes the splits itself; give no other data "
                               "setting", key)
        return value

    @field_serializer("path")
    def _absolute(self, path: str | None) -> str | None:
        # A stored or exported document must find the file from any working directory.
        return None if path is None else str(Path(path).resolve())

    @model_validator(mode="after")
    def _file_named(self) -> DataSpec:
        if self.name in ("npz", "csv") and self.path is None:
            raise fail(f"data set {self.name!r} needs a file path", "path")
        if self.name == "csv" and self.label is None:
            raise fail("csv data needs the name of its label column", "label")
        return self


class ConvLayer(NamedTuple):
    """One conv layer's shape settings, ``same`` padding resolved to a number."""

    kernel_size: int
    stride: int
    padding: int


@dataclass(frozen=True, config=_CONFIG)
class ModelSpec(_Section):
    """The network: a constant-width MLP or CNN; one activation per hidden layer."""

    family: Family = Field("mlp", description="mlp, or a CNN over 1-D or 2-D samples")
    width: StrictInt = Field(100, ge=1, description="units (mlp) or channels (cnn) per hidden "
                             "layer")
    depth: Depth = Field(3, description="hidden layers, each with its own activation; "
                         "{low, high} searches it")
    norm: NormChoice = Field(("none",), description="one: fixed; a list: searched")
    dropout: StrictFloat = Field(0.0, ge=0, lt=1, description="AlphaDropout after SELU, Dropout "
                                 "elsewhere")
    # cnn only. A tuple has one entry per conv layer, as many as the (highest) depth; a
    # searched depth d uses the first d.
    kernel_size: PerLayer = Field(5, description="cnn only: one for every conv layer, or a list "
                                  "with one per layer")
    stride: PerLayer = Field(1, description="cnn only: the same")
    # Written to documents only when set: a study stores its space's document and compares it
    # on resume, so the document of a space from before padding existed must not change.
    padding: PerLayerPadding = Field("same", exclude_if=lambda v: v == "same",
                                     description="cnn only: same (kernel_size // 2), a number, "
                                     "or a list")
    # Your own model instead of a family. Written to documents only when set, like padding.
    factory: FactoryName = Field(None, exclude_if=lambda v: v is None,
                                 description="your own model: 'module:function' or "
                                 "'file.py:function', imported from the space file's folder "
                                 "(runs your code); then no family, width, depth...")
    kwargs: dict[StrictStr, Any] = Field(default_factory=dict, exclude_if=lambda v: not v,
                                         json_schema_extra={"default": {}},
                                         description="factory only: its keyword arguments")
    init: Literal["keep", "auto"] = Field("keep", exclude_if=lambda v: v == "keep",
                                          description="factory only: keep its weights, or auto: "
                                          "re-initialise the layer feeding each replaced site")

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        for key in value:
            if "factory" in value and key not in _FACTORY_KEYS:
                raise fail("a factory model takes no family/width/depth/norm/dropout/conv "
                           "setting (the factory builds the network); give factory, kwargs, "
                           "init", key)
            if "factory" not in value and key in _FACTORY_KEYS:
                raise fail("only for a factory model (model.factory)", key)
        return value

    @field_validator("norm")
    @classmethod
    def _one_norm(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        layers = self.depth.high if isinstance(self.depth, IntRange) else self.depth
        for key, expected in (("kernel_size", "an integer >= 1"), ("stride", "an integer >= 1"),
                              ("padding", "an integer >= 0 or same")):
            value = getattr(self, key)
            if isinstance(value, tuple) and len(value) != layers:
                which = (f"one per conv layer up to the highest depth, {layers} (a depth d uses "
                         f"the first d)" if isinstance(self.depth, IntRange)
                         else f"one per conv layer (depth {layers})")
                raise fail(f"expected {expected} or a list of {layers}, {which}; got a list of "
                           f"{len(value)}", key)
        per_layer = self.width * self.width
        if self.family != "mlp":
            kernel = max(self.kernel_size) if isinstance(self.kernel_size, tuple) \
                else self.kernel_size
            per_layer *= kernel ** (2 if self.family == "cnn2d" else 1)
        if per_layer * layers > MAX_PARAMETERS:
            raise fail(f"{layers} hidden layers of width {self.width} hold about "
                       f"{per_layer * layers:.1e} parameters; expected at most "
                       f"{MAX_PARAMETERS:.0e}, more than any one machine can train", "width")
        return self

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

        return dataclasses.replace(self, depth=depth, kernel_size=cut(self.kernel_size),
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


_METRIC_NAME = re.compile(r"[A-Za-z_]\w*")
# The objective a space ranks by when it names no metric of its own.
ACCURACY = ("accuracy", "max")


@dataclasses.dataclass(frozen=True)
class Metric:
    """An objective's name and direction, in the one encoding the rest of actsearch reads.

    Space files write a direction as ``max``/``min`` (objectives) or ``maximize``/``minimize``
    (``train.metric``), Optuna as ``maximize``/``minimize``: those words are translated here,
    and everything else asks ``maximize`` or ``sign``.
    """

    name: str
    maximize: bool = True

    @classmethod
    def of(cls, objective: tuple[str, str]) -> Metric:
        """From a space's objective, ``(name, "max" | "min")``."""
        name, direction = objective
        if direction not in ("max", "min"):
            raise ValueError(f"objective {name}: direction {direction!r}, expected max or min")
        return cls(name, direction == "max")

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is: ``sign * value`` is better higher."""
        return 1 if self.maximize else -1

    @property
    def objective(self) -> tuple[str, str]:
        """As a space's objective: ``(name, "max" | "min")``."""
        return self.name, "max" if self.maximize else "min"

    @property
    def optuna_direction(self) -> str:
        """Optuna's word for it (``create_study(directions=...)``)."""
        return "maximize" if self.maximize else "minimize"


@dataclass(frozen=True, config=_CONFIG)
class MetricSection(_Section):
    """Your own validation metric (``train.metric``): what trials are ranked, pruned and
    compared by instead of accuracy."""

    factory: FactoryName = Field(description="'module:function' or 'file.py:function' taking "
                                 "(outputs, targets) of a whole split and returning a number; "
                                 "imported from the space file's folder (runs your code)")
    direction: Literal["maximize", "minimize"] = Field(description="whether a higher or a "
                                                       "lower value is better")
    name: StrictStr | None = Field(None, exclude_if=lambda v: v is None,
                                   description="its name in tables, reports and objectives "
                                   "(default: the function's name)")

    @field_validator("factory")
    @classmethod
    def _given(cls, value: str | None) -> str | None:
        if value is None:
            raise fail("expected 'module:function' or 'path/to/file.py:function'")
        return value

    @model_validator(mode="after")
    def _a_name(self) -> MetricSection:
        if not _METRIC_NAME.fullmatch(self.label) or self.label in OBJECTIVES:
            raise fail(f"expected a name of letters, digits and '_' that is not one of the "
                       f"built-in objectives ({', '.join(OBJECTIVES)}), got {self.label!r}",
                       "name")
        return self

    @property
    def label(self) -> str:
        """The metric's name: as given, or its function's."""
        return self.name if self.name is not None else str(self.factory).rpartition(":")[2]

    @property
    def objective(self) -> tuple[str, str]:
        """The metric as a space's first objective: ``(name, "max" | "min")``."""
        return self.label, "max" if self.direction == "maximize" else "min"


@dataclass(frozen=True, config=_CONFIG)
class TrainSpec(_Section):
    """How to train one candidate (``training.fit.Recipe`` is this, with one learning rate)."""

    optimizer: Optimizer = Field("adam", description="sgd: Nesterov momentum 0.9")
    lr: LearningRate = Field(1e-3, description="the learning rate; {low, high, log} searches it "
                             f"(default range {LR_RANGE.low:g}..{LR_RANGE.high:g}, log)")
    weight_decay: StrictFloat = Field(0.0, ge=0, description="the optimizer's weight decay")
    batch_size: StrictInt = Field(100, ge=1, description="samples per training step")
    epochs: StrictInt = Field(20, ge=1, description="passes over the training split")
    schedule: Schedule = Field("constant", description="cosine anneals the lr to 0 over the "
                               "epochs")
    # Your own loss and metric. Written to documents only when set, so that older spaces'
    # documents stay the same.
    loss: FactoryName = Field(None, exclude_if=lambda v: v is None,
                              description="your own loss: 'module:function' or "
                              "'file.py:function' taking (outputs, targets) of a batch and "
                              "returning its mean loss (default: cross-entropy); imported from "
                              "the space file's folder (runs your code)")
    metric: MetricSection | None = Field(None, exclude_if=lambda v: v is None,
                                         description="your own validation metric {factory, "
                                         "direction, name} (default: accuracy, maximised); "
                                         "the robustness probes are then not measured")

    @property
    def objective(self) -> tuple[str, str]:
        """What trials are ranked by: ``("accuracy", "max")`` or the metric's
        ``(name, "max" | "min")``; always a space's first objective."""
        return ACCURACY if self.metric is None else self.metric.objective

    @property
    def classification(self) -> bool:
        """Cross-entropy on class labels and accuracy, the recipe's own: measurements that
        assume them (robustness, convergence to 95% accuracy) apply."""
        return self.loss is None and self.metric is None

    @property
    def class_targets(self) -> bool:
        """Whether targets must be class indices: cross-entropy or accuracy uses them."""
        return self.loss is None or self.metric is None

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_range(cls, value: Any) -> Any:
        if isinstance(value, dict):  # what the range leaves out, LR_RANGE says
            return {"low": LR_RANGE.low, "high": LR_RANGE.high, "log": LR_RANGE.log, **value}
        return value


_Count = Annotated[StrictInt, Field(ge=0)]


@dataclass(frozen=True, config=_CONFIG)
class PrunerSection(_Section):
    """Optuna's pruner and its own settings, as Optuna names them; a setting left out takes
    Optuna's default."""

    name: PrunerName = Field("median", description="none: never prune")
    # None: not given (an explicit null is refused: the types admit no None).
    n_startup_trials: _Count = Field(None, description="median/percentile: trials before "
                                     "pruning starts")
    n_warmup_steps: _Count = Field(None, description="median/percentile: epochs before a trial "
                                   "can be pruned")
    interval_steps: _Count = Field(None, description="median/percentile: epochs between checks")
    n_min_trials: _Count = Field(None, description="median/percentile: trials reporting an "
                                 "epoch before it is judged")
    percentile: Annotated[StrictFloat, Field(ge=0, le=100)] = Field(
        None, description="percentile: the percentile a trial must beat")
    min_resource: _Count = Field(None, description="successive_halving/hyperband: epochs of "
                                 "the first rung")
    max_resource: _Count = Field(None, description="hyperband: epochs of the last rung")
    reduction_factor: _Count = Field(None, description="successive_halving/hyperband: 1/keep "
                                     "fraction per rung")
    min_early_stopping_rate: _Count = Field(None, description="successive_halving: rungs "
                                            "skipped")
    bootstrap_count: _Count = Field(None, description="successive_halving/hyperband: trials a "
                                    "rung waits for")

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        name = value.get("name", cls.__pydantic_fields__["name"].default)
        if isinstance(name, str) and name in PRUNER_SETTINGS:
            return ("name", *PRUNER_SETTINGS[name])
        return tuple(cls.__pydantic_fields__)  # the name's own error comes first

    def settings(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in PRUNER_SETTINGS[self.name]
                if getattr(self, key) is not None}


@dataclass(frozen=True)
class PrunerSpec:
    """The validated pruner: its name and the settings the file gave."""

    name: str
    settings: dict[str, Any]


@dataclass(frozen=True, config=_CONFIG)
class SamplerSection(_Section):
    name: Sampler = Field("tpe", description="tpe (multivariate, grouped; constant liar with "
                          "populations and workers) or random")
    seed: StrictInt = Field(0, ge=0, description="seeds the sampler and every trial's training")


@dataclass(frozen=True, config=_CONFIG)
class BudgetSection(_Section):
    trials: StrictInt = Field(50, ge=1, description="finished trials the study should hold")
    timeout: Annotated[StrictFloat, Field(gt=0)] | None = Field(
        None, description="seconds; stop starting trials after it")


def _param_keys(choices: Any) -> dict[str, str]:
    """``{<name>_<param>: name}`` of the parametrised activations among ``choices``."""
    return {f"{name}_{get_activation(name).param}": name for name in choices
            if name in activation_names() and get_activation(name).param is not None}


# The registry's activations when this module is imported, before any user's registration.
_BUILTIN_ACTIVATIONS = tuple(activation_names())


@dataclass(frozen=True, config=_CONFIG)
class ActivationsSection(_Section):
    """What each hidden layer may use, and the ranges of their parameters."""

    choices: tuple[StrictStr, ...] = Field(DEFAULT_CHOICES, description="activation names, one "
                                           "picked per layer; also: " + ", ".join(
                                               n for n in _BUILTIN_ACTIVATIONS
                                               if n not in DEFAULT_CHOICES))
    # Filled from the file's <name>_<param> keys (e.g. elu_alpha), one per parametrised choice.
    ranges: dict[str, FloatRange] = Field(default_factory=dict)

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        choices = value.get("choices", DEFAULT_CHOICES)
        if not (isinstance(choices, (list, tuple)) and all(isinstance(c, str) for c in choices)):
            return ("choices",)  # the choices' own error comes first
        for key, name in _param_keys(activation_names()).items():
            if key in value and name not in choices:  # better said than "unknown key"
                raise fail(f"{name} is not in activations.choices; add it there or remove "
                           f"{key}", key)
        return ("choices", *_param_keys(choices))

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        choices = value.get("choices", DEFAULT_CHOICES)
        if not (isinstance(choices, (list, tuple)) and all(isinstance(c, str) for c in choices)):
            return value
        ranges = {}
        for key, name in _param_keys(choices).items():
            # What the file's range leaves out, the registry's range for the activation says.
            spec, given = get_activation(name), value.get(key)
            if given is not None:
                ranges[key] = ({"low": spec.low, "high": spec.high, "log": spec.log, **given}
                               if isinstance(given, dict) else given)
        return {"choices": choices, "ranges": ranges}

    @model_validator(mode="after")
    def _every_range(self) -> ActivationsSection:
        # A parametrised choice whose range the file leaves out searches the registry's.
        ranges = {}
        for key, name in _param_keys(self.choices).items():
            spec = get_activation(name)
            ranges[key] = self.ranges.get(key) or FloatRange(spec.low, spec.high, spec.log)
        object.__setattr__(self, "ranges", ranges)  # still being built: frozen only after
        return self

    @field_validator("choices", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):  # not a set: the order names the layers' params
            raise PydanticCustomError("wrong_type", "expected a list", {"expected": "a list"})
        return value

    @field_validator("choices")
    @classmethod
    def _registered(cls, choices: tuple[str, ...]) -> tuple[str, ...]:
        return _registered(choices)


def _registered(choices: tuple[str, ...]) -> tuple[str, ...]:
    """Activation choices: registered names, none twice."""
    if not choices:
        raise fail("expected a non-empty list of activation names")
    for i, name in enumerate(choices):
        try:
            get_activation(name)
        except ActsearchError as e:
            raise fail(str(e), f"[{i}]") from None
        if name in choices[:i]:
            raise fail(f"activation {name!r} is listed twice", f"[{i}]")
    return choices


@dataclass(frozen=True, config=_CONFIG)
class GroupSection(_Section):
    """Sites that share one choice (a factory model's): ``gates: ["*.gate_act"]``, or a mapping
    with the group's own choices and parameter ranges."""

    sites: tuple[StrictStr, ...] = Field(min_length=1, description="glob patterns over site "
                                         "names (actsearch sites lists them)")
    choices: tuple[StrictStr, ...] | None = Field(None, exclude_if=lambda v: v is None,
                                                  description="the group's activation choices "
                                                  "(default: activations.choices)")
    # Activation name -> range, from the file's <name>_<param> keys (e.g. elu_alpha); an
    # activation without one searches activations' range.
    ranges: dict[str, FloatRange] = Field(default_factory=dict)
    # Written to documents only when set, so that older spaces' documents stay the same.
    role: Role | None = Field(None, exclude_if=lambda v: v is None,
                              description="gate or signal: the group's sites gate a signal "
                              "(a GLU's gate activation) or are the signal it gates; the "
                              "claim about gating paths compares them")

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        return ("sites", "choices", "role", *_param_keys(activation_names()))

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        ranges = {}
        for key, name in _param_keys(activation_names()).items():
            given = value.get(key)
            if given is not None:  # what it leaves out, the registry's range says
                spec = get_activation(name)
                ranges[name] = ({"low": spec.low, "high": spec.high, "log": spec.log, **given}
                                if isinstance(given, dict) else given)
        return {k: v for k, v in value.items() if k in ("sites", "choices", "role")} | {
            "ranges": ranges}

    @field_validator("sites", "choices", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (list, tuple)):
            raise PydanticCustomError("wrong_type", "expected a list", {"expected": "a list"})
        return value

    @field_validator("choices")
    @classmethod
    def _registered(cls, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if choices is None else _registered(choices)

    def document(self) -> dict[str, Any]:
        """The group as a space file gives it (the ranges under their own keys)."""
        document: dict[str, Any] = {"sites": list(self.sites)}
        if self.choices is not None:
            document["choices"] = list(self.choices)
        for name, r in self.ranges.items():
            document[f"{name}_{get_activation(name).param}"] = _dump(r)
        if self.role is not None:
            document["role"] = self.role
        return document


@dataclass(frozen=True, config=_CONFIG)
class ModelVariant(_Section):
    """The factory model built another way, for a claim: keyword arguments over
    ``model.kwargs``."""

    kwargs: dict[StrictStr, Any] = Field(min_length=1, description="keyword arguments that "
                                         "replace or add to model.kwargs (e.g. {norm: none})")


@dataclass(frozen=True, config=_CONFIG)
class ClaimsSection(_Section):
    """What the claims' designed comparisons need to know of a factory model that its sites do
    not say (``actsearch.engine.claims``)."""

    without_norm: ModelVariant | None = Field(
        None, exclude_if=lambda v: v is None, description="factory models: the model without "
        "its normalisation, for the claim that ELU's advantage fades with it (the model as "
        "model.kwargs build it is the normalised one)")


def _objectives(raw: Any) -> tuple[tuple[str, str], ...]:
    """``objectives: [accuracy: max, latency: min]`` (a bare name takes its usual direction)."""
    if not isinstance(raw, (list, tuple)):
        raise PydanticCustomError("wrong_type", "expected a list", {"expected": "a list"})
    if not raw:
        raise fail("expected at least one objective")
    names = ", ".join(OBJECTIVES)
    objectives: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        where = f"[{i}]"
        if isinstance(item, str):
            item = {item: OBJECTIVES.get(item, ("max", ""))[0]}
        if not isinstance(item, dict) or len(item) != 1:
            raise fail("expected 'name: max' or 'name: min'", where)
        (name, direction), = item.items()
        # The first is the space's metric (train.metric may name its own): SpaceFile checks.
        if name not in OBJECTIVES and not (i == 0 and isinstance(name, str)):
            raise fail(f"unknown objective {name!r}; expected one of: {names}", where)
        if direction not in ("max", "min"):
            raise fail(f"expected max or min for {name}, got {direction!r}", where)
        if any(name == seen for seen, _ in objectives):
            raise fail(f"objective {name!r} is listed twice", where)
        objectives.append((name, direction))
    return tuple(objectives)


ObjectiveName = Literal["accuracy", "latency", "latency_big", "throughput", "convergence",
                        "instability", "dead_units"]
Objectives = Annotated[
    tuple[tuple[str, str], ...],
    PlainValidator(_objectives, json_schema_input_type=list[
        ObjectiveName | dict[ObjectiveName, Literal["max", "min"]]])]
Population = Annotated[Annotated[StrictInt, Field(ge=1)] | Literal["auto"],
                       expect("a positive integer or auto")]


@dataclass(frozen=True, config=_CONFIG)
class SpaceFile(_Section):
    """A search-space file: what to search, on which data, with which recipe."""

    # None: the file's name without .yaml.
    name: StrictStr | None = Field(None, description="the study's default name (default: the "
                                   "file's name)")
    description: StrictStr = Field("", description="one line for `actsearch spaces`")
    data: DataSpec = Field(default_factory=DataSpec, description="the data set")
    model: ModelSpec = Field(default_factory=ModelSpec, description="the network")
    activations: ActivationsSection = Field(default_factory=ActivationsSection,
                                            description="the per-layer choices")
    train: TrainSpec = Field(default_factory=TrainSpec, description="the training recipe")
    pruner: PrunerSection = Field(default_factory=PrunerSection, description="Optuna's pruner")
    sampler: SamplerSection = Field(default_factory=SamplerSection, description="Optuna's "
                                    "sampler")
    budget: BudgetSection = Field(default_factory=BudgetSection, description="when to stop")
    population: Population = Field("auto", description="candidates trained at once: a number, "
                                   "or auto (measured per model and device: 1 unless a "
                                   "population pays 3x)")
    groups: dict[StrictStr, GroupSection] = Field(
        default_factory=dict, description="factory models: group name -> site patterns (or "
        "{sites, choices, <name>_<param>}); the sites of a group share one choice, every other "
        "site is searched on its own")
    claims: ClaimsSection = Field(default_factory=ClaimsSection, description="what the "
                                  "claims' comparisons need to know of a factory model")
    objectives: Objectives = Field((("accuracy", "max"),),
                                   json_schema_extra={"default": [{"accuracy": "max"}]},
                                   description="accuracy: max first (or train.metric's "
                                   "name and direction: then the default), then others: "
                                   + ", ".join(OBJECTIVES))

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        # A space with its own metric ranks by it: without objectives, it is the only one.
        train = value.get("train")
        metric = train.get("metric") if isinstance(train, dict) else None
        if "objectives" not in value and isinstance(metric, dict):
            factory, direction = metric.get("factory"), metric.get("direction")
            name = metric.get("name") or (factory.rpartition(":")[2]
                                          if isinstance(factory, str) else None)
            if isinstance(name, str) and direction in ("maximize", "minimize"):
                value = {**value, "objectives": [{name: direction[:3]}]}
        return value

    @model_validator(mode="after")
    def _metric_first(self) -> SpaceFile:
        # Pruning and every table rank by the validation metric: it leads, the rest follow.
        name, direction = self.train.objective
        if self.objectives[0] != (name, direction):
            why = "" if self.train.metric is None else "train.metric; "
            raise fail(f"expected '{name}: {direction}' first ({why}pruning and tables rank by "
                       f"it), got '{self.objectives[0][0]}: {self.objectives[0][1]}'",
                       "objectives[0]")
        if self.train.metric is not None:
            assumes = [n for n, _ in self.objectives if n in ("convergence", "instability")]
            if assumes:
                raise fail(f"{assumes[0]} measures accuracy (convergence to 95%, robustness), "
                           f"not train.metric {name}", "objectives")
        return self

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str | None) -> str | None:
        if name is not None and not STUDY_NAME.fullmatch(name):
            raise fail(f"expected letters, digits, '_', '-' or '.' (it names the run folder), "
                       f"got {name!r}")
        return name

    @field_validator("groups", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        if isinstance(value, dict):  # `gates: ["*.gate_act"]` is short for {sites: [...]}
            return {k: {"sites": v} if isinstance(v, (list, tuple, str)) else v
                    for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _factory_model(self) -> SpaceFile:
        if self.groups and self.model.factory is None:
            raise fail("groups tie a factory model's sites (model.factory); the shipped "
                       "families search one choice per layer", "groups")
        if self.claims.without_norm is not None and self.model.factory is None:
            raise fail("only for a factory model (model.factory); a shipped family searches "
                       "model.norm itself", "claims.without_norm")
        for group, spec in self.groups.items():
            choices = spec.choices or self.activations.choices
            for name in spec.ranges:
                if name not in choices:
                    raise fail(f"{name} is not among the group's choices "
                               f"({', '.join(choices)})",
                               f"groups.{group}.{name}_{get_activation(name).param}")
        return self

    @model_validator(mode="after")
    def _fits_the_data(self) -> SpaceFile:
        model, data = self.model, self.data
        if model.factory is not None or data.factory is not None:
            return self  # shapes are the factories' own, known once they run
        if model.family == "cnn2d" and data.name == "mnist1d":
            raise fail("cnn2d needs image data (digits, or npz with 4-D X)", "model.family")
        if data.name in KNOWN_INPUT_SHAPES:
            # A layer that shrinks the input to nothing does so at every depth from it on:
            # checking the deepest candidate checks them all.
            depth = model.depth.high if isinstance(model.depth, IntRange) else model.depth
            problem = conv_shape_problem(model, depth, KNOWN_INPUT_SHAPES[data.name])
            if problem is not None:
                raise fail(problem, "model.kernel_size")
        return self


_SPACE_FILE = TypeAdapter(SpaceFile)


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
    sampler: str
    seed: int
    trials: int
    timeout: float | None
    population: int | str  # candidates trained at once: a number, or auto
    # (name, "max" | "min") pairs; the first is what single-objective tables rank by.
    objectives: tuple[tuple[str, str], ...]
    # A factory model's groups as declared (group name -> patterns, choices, ranges).
    groups: dict[str, GroupSection] = dataclasses.field(default_factory=dict)
    # What the claims need to know of a factory model (its model without normalisation).
    claims: ClaimsSection = dataclasses.field(default_factory=ClaimsSection)
    # A factory model once its sites are found (``actsearch.models.custom.CustomModel``):
    # set by whoever runs trials, never stored; the document says all the rest.
    custom: Any = dataclasses.field(default=None, compare=False, repr=False)
    # The loss and metric functions given in Python (``actsearch.training.fit.Scoring``);
    # None: ``train.loss`` and ``train.metric`` are imported where they are needed.
    scoring: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def metric(self) -> Metric:
        """What trials are ranked, pruned and compared by: the first objective."""
        return Metric.of(self.objectives[0])

    @property
    def depths(self) -> list[int]:
        d = self.model.depth
        return list(range(d.low, d.high + 1)) if isinstance(d, IntRange) else [d]


def training_samples(data: DataSpec) -> int | None:
    """The training split's size where it is known before the data is read."""
    if data.factory is not None:
        return None
    n = data.samples if data.name == "synthetic" else KNOWN_SAMPLES.get(data.name)
    if n is None:
        return None
    if data.name != "mnist1d":  # the others carve their test split first
        n -= held_out(n, data.test_fraction)
    return n - held_out(n, data.val_fraction)


def parse_space(document: Any, source: str, base: Path | None = None) -> SearchSpace:
    """Validate a parsed space document; ``source`` names it in error messages.

    ``base``: the folder a data file's relative path is relative to. A batch larger than the
    training split works (one step per epoch) but is surely a mistake: an ``ActsearchWarning``.
    """
    f: SpaceFile = validate(_SPACE_FILE.validate_python, document, source)
    data = f.data
    if data.path is not None and base is not None and not Path(data.path).is_absolute():
        data = dataclasses.replace(data, path=str(base / data.path))
    model = f.model
    if base is not None:  # a factory's module is found from the space file's folder
        if data.factory is not None:
            data = dataclasses.replace(data, factory=based_factory(data.factory, base))
        if model.factory is not None:
            model = dataclasses.replace(model, factory=based_factory(model.factory, base))
    train = f.train
    if base is not None and (train.loss is not None or train.metric is not None):
        train = dataclasses.replace(
            train, loss=None if train.loss is None else based_factory(train.loss, base),
            metric=None if train.metric is None else dataclasses.replace(
                train.metric, factory=based_factory(str(train.metric.factory), base)))
    n = training_samples(data)
    if n is not None and f.train.batch_size > n:
        warnings.warn(ActsearchWarning(
            f"{source}: train.batch_size: {f.train.batch_size} is more than the {n} samples of "
            f"the training split; each epoch is one step on all of them"), stacklevel=2)
    return SearchSpace(
        name=f.name if f.name is not None else Path(source).stem, description=f.description,
        source=source, data=data, model=model, choices=f.activations.choices,
        param_ranges={name: f.activations.ranges[key]
                      for key, name in _param_keys(f.activations.choices).items()},
        train=train, pruner=PrunerSpec(f.pruner.name, f.pruner.settings()),
        sampler=f.sampler.name, seed=f.sampler.seed, trials=f.budget.trials,
        timeout=f.budget.timeout, population=f.population, objectives=f.objectives,
        groups=dict(f.groups), claims=f.claims)


def _shipped_dir() -> Path:
    # Package data: the same folder in a source checkout, an editable install and a wheel.
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
    return parse_space(read_document(path, "space file"), str(path), base=path.parent)


def _dump(section: Any) -> Any:
    # The declaration's own serialisation: fields in declaration order, tuples as lists,
    # fields marked exclude_if left out where they hold their "not set" value.
    return TypeAdapter(type(section)).dump_python(section, mode="json")


def _factory_only(document: dict[str, Any], factory: str | None) -> dict[str, Any]:
    # A factory's section holds the factory's keys alone, as its file does.
    if factory is None:
        return document
    return {k: v for k, v in document.items() if k in _FACTORY_KEYS}


def space_to_document(space: SearchSpace) -> dict[str, Any]:
    """The space as a space-file document: ``parse_space`` of it gives the same space."""
    activations: dict[str, Any] = {"choices": list(space.choices)}
    for name, r in space.param_ranges.items():
        activations[f"{name}_{get_activation(name).param}"] = _dump(r)
    return {
        "name": space.name,
        "description": space.description,
        "data": _factory_only(_dump(space.data), space.data.factory),
        "model": _factory_only(_dump(space.model), space.model.factory),
        "activations": activations,
        "train": _dump(space.train),
        "pruner": {"name": space.pruner.name, **space.pruner.settings},
        "sampler": _dump(SamplerSection(space.sampler, space.seed)),
        "budget": _dump(BudgetSection(space.trials, space.timeout)),
        "population": space.population,
        "objectives": [{name: direction} for name, direction in space.objectives],
        # Only when given: older spaces' documents stay as they were.
        **({"groups": {name: g.document() for name, g in space.groups.items()}}
           if space.groups else {}),
        **({"claims": _dump(space.claims)} if space.claims != ClaimsSection() else {}),
    }


def space_json_schema() -> dict[str, Any]:
    """The JSON Schema of space files, generated from the declaration (``SCHEMA_FILE`` ships
    it)."""
    schema = _SPACE_FILE.json_schema()
    # The file gives each range under its own key (elu_alpha), not under `ranges`; the
    # registry's parametrised activations are listed, so an editor completes them (a user's
    # own are unknown here, and an editor flags them: actsearch itself reads them).
    activations = schema["$defs"]["ActivationsSection"]["properties"]
    activations.pop("ranges")
    activations["choices"]["items"] = {"anyOf": [{"enum": list(_BUILTIN_ACTIVATIONS)},
                                                 {"type": "string"}]}
    for key, name in _param_keys(_BUILTIN_ACTIVATIONS).items():
        spec = get_activation(name)
        activations[key] = {"$ref": "#/$defs/FloatRange",
                            "description": f"{name}'s {spec.param}, searched when {name} is a "
                            f"choice (default range {spec.low:g}..{spec.high:g}"
                            f"{', log' if spec.log else ''})"}
    group = schema["$defs"]["GroupSection"]["properties"]
    group.pop("ranges")
    for key, name in _param_keys(_BUILTIN_ACTIVATIONS).items():
        group[key] = {"$ref": "#/$defs/FloatRange",
                      "description": f"{name}'s {get_activation(name).param} in this group "
                      f"(default: activations.{key})"}
    schema["properties"]["groups"]["additionalProperties"] = {
        "anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                  {"$ref": "#/$defs/GroupSection"}]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": "generated by actsearch (actsearch.api.space_schema); do not edit",
            **schema}


def _kind(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON Schema property's type in a few words, for the docs' table."""
    if "$ref" in prop:
        return "mapping"
    if "enum" in prop:
        return " \\| ".join(map(str, prop["enum"]))
    if "const" in prop:
        return str(prop["const"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            kinds = [_kind(p, defs) for p in prop[key] if p.get("type") != "null"]
            return " or ".join(dict.fromkeys(kinds))
    if prop.get("type") == "array":
        return "list"
    words = {"integer": "int", "number": "float", "string": "str", "boolean": "bool",
             "object": "mapping"}
    return words.get(prop.get("type", ""), prop.get("type", "any"))


def _bounds(prop: dict[str, Any]) -> str:
    words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    return ", ".join(f"{sign} {prop[key]:g}" for key, sign in words.items() if key in prop)


def field_table() -> str:
    """The docs' table of every space-file field, rendered from the JSON Schema."""
    schema = space_json_schema()
    defs = schema["$defs"]
    rows = ["| field | type | default | description |", "| --- | --- | --- | --- |"]

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for key, prop in properties.items():
            ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("allOf", [])
                                            if "$ref" in p), None)
            target = defs[ref.rsplit("/", 1)[1]] if ref else prop
            default = prop.get("default")
            default = "" if default is None else default if isinstance(default, str) \
                else json.dumps(default)
            kind = "mapping" if ref and "properties" in target else _kind(target, defs)
            bounds = _bounds(target)
            if any(p.get("type") == "number" for p in target.get("anyOf", [])):
                bounds = _bounds(next(p for p in target["anyOf"] if p.get("type") == "number"))
            description = prop.get("description", target.get("description", ""))
            rows.append(f"| `{prefix}{key}` | {kind}{f' ({bounds})' if bounds else ''} | "
                        f"{f'`{default}`' if default != '' else ''} | {description} |")
            if not prefix and ref and "properties" in target:  # the sections, one level down
                walk(target["properties"], f"{prefix}{key}.")

    walk(schema["properties"], "")
    return "\n".join(rows)
