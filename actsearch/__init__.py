"""actsearch: search per-layer activation layouts (ReLU, ELU with alpha, SELU) with Optuna.

The public API is re-exported here; everything else is an implementation detail. torch is
imported lazily, so ``import actsearch`` and the space tools start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actsearch.errors import ActsearchError
from actsearch.models.activations import (
    ActivationSpec,
    activation_names,
    create_activation,
    get_activation,
    register_activation,
)
from actsearch.models.layout import Candidate, Layer, Layout, candidate_from_params, parse_layout
from actsearch.schema.space import SearchSpace, list_shipped_spaces, load_space

if TYPE_CHECKING:
    from actsearch.faces.export import export_configs, load_model, train_config
    from actsearch.models.build import build_model

__version__ = "0.1.0"

__all__ = [
    "ActivationSpec",
    "ActsearchError",
    "Candidate",
    "Layer",
    "Layout",
    "SearchSpace",
    "activation_names",
    "build_model",
    "candidate_from_params",
    "create_activation",
    "export_configs",
    "get_activation",
    "list_shipped_spaces",
    "load_model",
    "load_space",
    "parse_layout",
    "register_activation",
    "train_config",
]


def __getattr__(name: str) -> Any:
    # Names that need torch are imported on first use.
    if name == "build_model":
        from actsearch.models.build import build_model

        return build_model
    if name in ("export_configs", "load_model", "train_config"):
        from actsearch.faces import export

        return getattr(export, name)
    raise AttributeError(f"module 'actsearch' has no attribute {name!r}")
