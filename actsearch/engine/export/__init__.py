"""Exported configs: write the best layouts of a study as files, load and retrain them.

A config is a plain YAML or JSON document (read with ``yaml.safe_load`` / ``json.loads`` only)
that says everything needed to rebuild and retrain one candidate: the architecture (a shipped
family's, schema 1; or a factory model's factory, kwargs and per-site activations, schema 2),
the training recipe, the data (with its fingerprint and split seed), the trial's metrics and
where it came from. Nothing in a shipped family's config is executed; a config that names a
factory (model or data) runs that code to build the model, so ``load_model`` and
``train_config`` refuse it unless told to trust it (``trust_code=True``).

Trials store no weights. When weights (or an ONNX model) are asked for, the candidate is
retrained with the trial's own seed exactly as the search trained it (``trainers.start_model``,
then ``fit``); training is deterministic on one device, so the retrained model is the trial's
model, and the export checks that by comparing validation accuracies. Weights go beside the
config as a state dict (``<name>.pt``, loadable with ``torch.load(..., weights_only=True)``)
whose sha256 the config records, so a swapped or edited weights file is detected. Exporting
again into the same folder keeps what an earlier export of the same trial wrote there (its
weights, its ONNX model) while the files are there unchanged.

The parts, in the order an export runs them:

- ``write``: selecting trials (``select_trials``), each trial's document, writing the files
  (``export_configs``) and keeping an earlier export's weights;
- ``retrain``: a trial's model trained again, checked against the trial, saved as weights or
  as ONNX (checked with ONNX Runtime);
- ``read``: ``read_config``, ``load_model`` and ``train_config``; a config's model is built by
  ``build_candidate`` (``ExportedConfig.space``), as every candidate is.
"""

from __future__ import annotations

from actsearch.engine.export.read import (
    ConfigRun,
    ExportedConfig,
    load_model,
    read_config,
    train_config,
)
from actsearch.engine.export.write import FORMATS, export_configs, select_trials
from actsearch.schema.config import SCHEMA_VERSION

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
