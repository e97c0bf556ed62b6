"""Exported configs, declared once on top of the space file's sections.

Schema version 1 is a shipped family's network (``architecture`` and one entry per layer);
version 2 a factory model's (``model``: the user's factory and its kwargs, and the activation
chosen at each of its sites). A shipped family's config is still written as version 1, so the
configs of earlier versions and today's are the same bytes.

A config says everything needed to rebuild and retrain one candidate, so unlike a space file
no field may be left to a default (a default that changed between versions would silently
train a different model): every field of the architecture, recipe and data sections is
required, except ``padding`` (absent means ``same``, as written before it existed). No torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from actsearch.errors import ActsearchError
from actsearch.models.activations import get_activation
from actsearch.schema.documents import fail, found, read_document, validate
from actsearch.schema.space import (
    _CONFIG,
    _FACTORY_KEYS,
    DATASETS,
    DataSpec,
    FactoryName,
    ModelSpec,
    Positive,
    TrainSpec,
    _Section,
    conv_shape_problem,
)

__all__ = [
    "FACTORY_SCHEMA",
    "FAMILY_SCHEMA",
    "SCHEMA_VERSION",
    "ConfigFile",
    "FactoryConfigFile",
    "architecture_document",
    "data_document",
    "factory_model_document",
    "model_spec",
    "read_config_file",
    "recipe_document",
    "split_keys",
]

FAMILY_SCHEMA = 1  # a shipped family's config
FACTORY_SCHEMA = 2  # a factory model's config
SCHEMA_VERSION = FACTORY_SCHEMA  # the newest this version reads


class _Required:
    """A section whose every field must be given, but those named in ``OPTIONAL``."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _required(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        return tuple(k for k in cls.__pydantic_fields__ if k not in cls.OPTIONAL)

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        for key in cls._required(value):
            if value.get(key) is None:
                raise fail("missing field", key)
        return value


@dataclass(frozen=True, config=_CONFIG, kw_only=True)
class Architecture(_Required, ModelSpec):
    """The trial's network: the space's model at the trial's depth and norm."""

    # A factory model's config is schema 2 (FactoryModel): here its fields are unknown keys.
    OPTIONAL: ClassVar[tuple[str, ...]] = ("padding", *_FACTORY_KEYS)
    depth: StrictInt = Field(ge=1, description="the trial's depth")
    norm: Literal["none", "batch", "layer"] = Field(description="the norm the trial used")
    input_shape: tuple[Positive, ...] = Field(min_length=1, description="one sample's shape")
    n_classes: StrictInt = Field(ge=2, description="the classifier's outputs")

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        return tuple(k for k in super()._keys(value) if k not in _FACTORY_KEYS)

    @field_validator("norm")
    @classmethod
    def _one_norm(cls, value: Any) -> Any:  # one norm, not the space's list of choices
        return value

    @model_validator(mode="after")
    def _fits_the_input(self) -> Architecture:
        problem = conv_shape_problem(self, self.depth, self.input_shape)
        if problem is not None:
            raise fail(problem, "kernel_size")
        return self


@dataclass(frozen=True, config=_CONFIG, kw_only=True)
class ConfigRecipe(_Required, TrainSpec):
    """The recipe the trial trained with: one learning rate, not a searched range."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("loss", "metric")  # written only when set
    lr: Annotated[StrictFloat, Field(gt=0)] = Field(description="the trial's learning rate")


def split_keys(name: str) -> tuple[str, ...]:
    """The data settings that shape a data set's splits, the ones a config records."""
    keys = ["val_fraction"]
    if name != "mnist1d":  # MNIST-1D comes with its own test split
        keys.append("test_fraction")
    if name == "synthetic":  # the only generated set whose size is chosen
        keys.append("samples")
    return tuple(keys)


@dataclass(frozen=True, config=_CONFIG, kw_only=True)
class ConfigData(_Required, DataSpec):
    """The data set, the seed that carved its validation split, and its fingerprint."""

    split_seed: StrictInt = Field(ge=0, description="the study's seed: it carves the split")
    fingerprint: StrictStr = Field(description="the data's hash when exported")

    _FACTORY_KEYS: ClassVar[tuple[str, ...]] = ("factory", "split_seed", "fingerprint")

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        # The factory made the splits: no other data setting applies (as in a space file).
        return cls._FACTORY_KEYS if "factory" in value else super()._keys(value)

    @classmethod
    def _required(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        if "factory" in value:
            return cls._FACTORY_KEYS
        name = value.get("name")
        return ("name", *(split_keys(name) if name in DATASETS else ()), "split_seed",
                "fingerprint")

    def spec(self, base: Path) -> DataSpec:
        """The data spec, a relative file path taken relative to ``base``."""
        path = self.path
        if path is not None and not Path(path).is_absolute():
            path = str(base / path)
        if self.factory is not None:
            return DataSpec(factory=self.factory)
        return DataSpec(name=self.name, val_fraction=self.val_fraction,
                        test_fraction=self.test_fraction, samples=self.samples, path=path,
                        label=self.label)


@dataclass(frozen=True, config=_CONFIG)
class LayerEntry(_Section):
    """One hidden layer's activation, with its parameter where it takes one."""

    activation: StrictStr = Field(description="a registered activation")
    # The activation's own parameter under its own key (e.g. alpha: 0.7).
    param: dict[str, Annotated[StrictFloat, Field(gt=0)]] = Field(default_factory=dict)

    @classmethod
    def _keys(cls, value: dict[Any, Any]) -> tuple[str, ...]:
        name = value.get("activation")
        if not isinstance(name, str):
            return ("activation",)
        try:
            spec = get_activation(name)
        except ActsearchError as e:
            raise fail(str(e), "activation") from None
        return ("activation",) if spec.param is None else ("activation", spec.param)

    @classmethod
    def _prepare(cls, value: dict[Any, Any]) -> dict[Any, Any]:
        if not isinstance(value.get("activation"), str):
            return value  # the activation's own error
        param = get_activation(value["activation"]).param
        if param is None:
            return value
        if value.get(param) is None:
            raise fail("missing field", param)
        return {"activation": value["activation"], "param": {param: value[param]}}


@dataclass(frozen=True, config=_CONFIG)
class FileRef(_Section):
    """A file beside the config, and its hash."""

    file: StrictStr = Field(description="a file name beside the config")
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="64 lowercase hex digits")

    @field_validator("file")
    @classmethod
    def _beside(cls, name: str) -> str:
        if Path(name).name != name or name in ("", ".", ".."):
            raise fail(f"expected a file name beside the config, got {name!r}")
        return name


@dataclass(frozen=True, config=_CONFIG)
class WeightsRef(FileRef):
    val_acc: StrictFloat | None = Field(None, description="the retrained model's")


class _ForPeople:
    """The sections both schemas keep for people: only their shape is checked (and
    provenance.seed, which train_config uses)."""

    @field_validator("metrics", "provenance", mode="before")
    @classmethod
    def _nothing_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("provenance")
    @classmethod
    def _seed(cls, provenance: dict[Any, Any]) -> dict[Any, Any]:
        seed = provenance.get("seed")
        if "seed" in provenance and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise fail(f"expected int, got {found(seed)}", "seed")
        return provenance


@dataclass(frozen=True, config=_CONFIG)
class ConfigFile(_ForPeople, _Required, _Section):
    """An exported config, schema version 1."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("metrics", "provenance", "weights", "onnx")
    schema_version: Literal[1] = Field(description="1")
    architecture: Architecture = Field(description="the network")
    layers: tuple[LayerEntry, ...] = Field(description="input side first")
    recipe: ConfigRecipe = Field(description="how the trial trained")
    data: ConfigData = Field(description="the data and its split")
    metrics: dict[Any, Any] = Field(default_factory=dict)  # _ForPeople
    provenance: dict[Any, Any] = Field(default_factory=dict)
    weights: WeightsRef | None = None
    onnx: FileRef | None = None

    @model_validator(mode="after")
    def _one_layer_each(self) -> ConfigFile:
        depth = self.architecture.depth
        if len(self.layers) != depth:
            raise fail(f"expected {depth} layers (architecture.depth), got {len(self.layers)}",
                       "layers")
        return self


@dataclass(frozen=True, config=_CONFIG, kw_only=True)
class FactoryModel(_Required, _Section):
    """A factory model: the user's function, how it was called, and the samples it takes."""

    factory: FactoryName = Field(description="'module:function' or '/abs/path/file.py:function'")
    kwargs: dict[StrictStr, Any] = Field(description="the factory's keyword arguments")
    init: Literal["keep", "auto"] = Field(description="the search's model.init")
    input_shape: tuple[Positive, ...] = Field(min_length=1, description="one sample's shape")
    # 0 where the targets are no class labels (a recipe's own loss and metric: a regression).
    n_classes: StrictInt = Field(ge=0, description="the data's classes (0: other targets)")

    @field_validator("kwargs", mode="before")
    @classmethod
    def _no_kwargs(cls, value: Any) -> Any:
        return {} if value is None else value


@dataclass(frozen=True, config=_CONFIG)
class FactoryConfigFile(_ForPeople, _Required, _Section):
    """An exported config of a factory model, schema version 2."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("groups", "metrics", "provenance", "weights", "onnx")
    schema_version: Literal[2] = Field(description="2")
    model: FactoryModel = Field(description="the user's model")
    sites: dict[StrictStr, LayerEntry] = Field(min_length=1, description="site -> activation")
    recipe: ConfigRecipe = Field(description="how the trial trained")
    data: ConfigData = Field(description="the data and its split")
    # For people (which sites shared a choice in the search): not used to build the model.
    groups: dict[StrictStr, tuple[StrictStr, ...]] = Field(default_factory=dict)
    metrics: dict[Any, Any] = Field(default_factory=dict)
    provenance: dict[Any, Any] = Field(default_factory=dict)
    weights: WeightsRef | None = None
    onnx: FileRef | None = None

    @field_validator("groups", mode="before")
    @classmethod
    def _no_groups(cls, value: Any) -> Any:
        return {} if value is None else value


_CONFIG_FILES = {FAMILY_SCHEMA: TypeAdapter(ConfigFile),
                 FACTORY_SCHEMA: TypeAdapter(FactoryConfigFile)}


def _version(document: Any, source: str) -> None:
    # Checked first: a newer config is refused for its version, not for its new fields.
    if not isinstance(document, dict) or "schema_version" not in document:
        return
    version = document["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ActsearchError(f"{source}: schema_version: written by a newer actsearch (schema "
                             f"{version}); this version reads schema {SCHEMA_VERSION}: upgrade "
                             f"actsearch")


def read_config_file(path: Path) -> ConfigFile | FactoryConfigFile:
    """Read and validate a config file (YAML or JSON); nothing in it is executed."""
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise ActsearchError(f"{path}: expected a .yaml, .yml or .json config")
    document = read_document(path, "config", json_too=True)
    _version(document, str(path))
    version = document.get("schema_version") if isinstance(document, dict) else None
    # Another or no version is refused by schema 1's declaration, as before schema 2.
    adapter = _CONFIG_FILES.get(version if type(version) is int else FAMILY_SCHEMA,
                                _CONFIG_FILES[FAMILY_SCHEMA])
    return validate(adapter.validate_python, document, str(path))


def model_spec(arch: Architecture) -> ModelSpec:
    """The architecture as the model builder takes it (a norm is a one-entry tuple)."""
    return ModelSpec(family=arch.family, width=arch.width, depth=arch.depth, norm=(arch.norm,),
                     dropout=arch.dropout, kernel_size=arch.kernel_size, stride=arch.stride,
                     padding=arch.padding)


# ----------------------------------------------------------------------------- writing


def _dump(section: Any) -> dict[str, Any]:
    return TypeAdapter(type(section)).dump_python(section, mode="json")


def architecture_document(model: ModelSpec, norm: str, input_shape: tuple[int, ...],
                          n_classes: int) -> dict[str, Any]:
    """The ``architecture`` section of a trial's model (``model`` at the trial's depth:
    ``ModelSpec.at_depth``)."""
    fields = {key: getattr(model, key) for key in ModelSpec.__pydantic_fields__}
    return _dump(Architecture(**{**fields, "norm": norm, "input_shape": tuple(input_shape),
                                 "n_classes": n_classes}))


def factory_model_document(model: ModelSpec, input_shape: tuple[int, ...],
                           n_classes: int) -> dict[str, Any]:
    """The ``model`` section of a factory model (schema 2)."""
    return _dump(FactoryModel(factory=model.factory, kwargs=dict(model.kwargs), init=model.init,
                              input_shape=tuple(input_shape), n_classes=n_classes))


def recipe_document(recipe: TrainSpec) -> dict[str, Any]:
    """The ``recipe`` section of a recipe with one learning rate."""
    fields = {key: getattr(recipe, key) for key in TrainSpec.__pydantic_fields__}
    return _dump(ConfigRecipe(**fields))


def data_document(spec: DataSpec, split_seed: int, fingerprint: str) -> dict[str, Any]:
    """The ``data`` section: the settings that shape this data set's splits (no others, so a
    config says only what applies), its file, split seed and fingerprint."""
    fields = {key: getattr(spec, key) for key in DataSpec.__pydantic_fields__}
    document = _dump(ConfigData(**fields, split_seed=split_seed, fingerprint=fingerprint))
    keep = (("factory",) if spec.factory is not None else
            ("name", "path", "label", *split_keys(spec.name))) + ("split_seed", "fingerprint")
    return {key: document[key] for key in keep if key in document}
