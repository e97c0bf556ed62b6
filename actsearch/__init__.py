"""actsearch: search per-layer activation layouts (ReLU, ELU with alpha, SELU) with Optuna.

The public API is re-exported here; everything else is an implementation detail. torch and
Optuna are imported on first use, so ``import actsearch`` and the space tools start fast.

    result = actsearch.search("mnist1d_mlp", trials=50)
    print(result.verdict)
"""

from __future__ import annotations

from importlib import metadata as _metadata
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
    from actsearch.analysis import Analysis
    from actsearch.api import SearchResult, analyze, report, search, sites
    from actsearch.engine.driver import StopSearch
    from actsearch.engine.export import export_configs, load_model, read_config, train_config
    from actsearch.engine.record import TrialRecord
    from actsearch.models.apply import InitReport, apply_layout
    from actsearch.models.build import build_model
    from actsearch.models.groups import GroupSpec, resolve_groups

# Written once, in pyproject.toml; an installed package's metadata carries it.
__version__ = _metadata.version("actsearch")

__all__ = [
    "ActivationSpec",
    "ActsearchError",
    "Analysis",
    "Candidate",
    "GroupSpec",
    "InitReport",
    "Layer",
    "Layout",
    "SearchResult",
    "SearchSpace",
    "StopSearch",
    "TrialRecord",
    "activation_names",
    "analyze",
    "apply_layout",
    "build_model",
    "candidate_from_params",
    "create_activation",
    "export_configs",
    "get_activation",
    "list_shipped_spaces",
    "load_model",
    "load_space",
    "parse_layout",
    "read_config",
    "register_activation",
    "report",
    "resolve_groups",
    "search",
    "sites",
    "train_config",
]

# Names imported on first use: (module, attribute).
_LAZY = {
    "Analysis": "actsearch.analysis",
    "SearchResult": "actsearch.api",
    "analyze": "actsearch.api",
    "report": "actsearch.api",
    "search": "actsearch.api",
    "sites": "actsearch.api",
    "InitReport": "actsearch.models.apply",
    "apply_layout": "actsearch.models.apply",
    "GroupSpec": "actsearch.models.groups",
    "resolve_groups": "actsearch.models.groups",
    "build_model": "actsearch.models.build",
    "StopSearch": "actsearch.engine.driver",
    "TrialRecord": "actsearch.engine.record",
    "export_configs": "actsearch.engine.export",
    "load_model": "actsearch.engine.export",
    "read_config": "actsearch.engine.export",
    "train_config": "actsearch.engine.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'actsearch' has no attribute {name!r}")
