"""Writing exported configs: the trials chosen, each one's document, the files.

``export_configs`` is the one entry: it selects the best trials (``select_trials``), writes
each one's config (``config_document``), retrains it when weights or an ONNX model are asked
for (``retrain``), and keeps what an earlier export of the same trial wrote into the folder
(``_kept_files``): exporting again without weights, or as another format, never leaves a
weights file its config no longer names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState

from actsearch.engine.driver import trial_seed
from actsearch.engine.export.read import sha256
from actsearch.engine.export.retrain import (
    check_reproduced,
    require_onnx,
    retrain,
    save_onnx,
    save_weights,
)
from actsearch.engine.pipeline import stored_run
from actsearch.engine.record import FINALISTS_ATTR, TrialRecord, study_seed
from actsearch.errors import ActsearchError
from actsearch.models.activations import get_activation
from actsearch.models.groups import group_layout
from actsearch.models.layout import Layer, candidate_from_params
from actsearch.schema.config import (
    FACTORY_SCHEMA,
    FAMILY_SCHEMA,
    architecture_document,
    data_document,
    factory_model_document,
    recipe_document,
)
from actsearch.schema.documents import read_document
from actsearch.schema.space import IN_PYTHON, SearchSpace
from actsearch.training.fit import recipe_for, select_device

__all__ = ["FORMATS", "config_document", "export_configs", "select_trials"]

FORMATS = ("yaml", "json", "onnx")
# The files beside a config that an export writes, in the order their blocks follow the rest.
_FILE_BLOCKS = ("weights", "onnx")
# What says which model a config is: an earlier config of the same trial that agrees on all of
# it described the same trained model (metrics and versions may have changed since).
_SAME_PROVENANCE = ("study", "trial", "seed", "layout")


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


# ----------------------------------------------------------------------------- documents


def _versions() -> dict[str, str]:
    # The installed package's version (the top package reads the same), not an import of the
    # top package from inside it.
    from importlib.metadata import version

    return {"actsearch": version("actsearch"), "torch": str(torch.__version__),
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
    seed = study_seed(study, space)
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
        "data": data_document(space.data, seed, fingerprint),
        "metrics": metrics,
        "provenance": {
            "study": study.study_name,
            "trial": trial.number,
            "seed": int(record.seed if record.seed is not None
                        else trial_seed(seed, trial.number)),
            "layout": str(candidate.layout),
            **_versions(),
        },
    }


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


# ----------------------------------------------------------------------------- earlier exports


def _same_model(earlier: dict[str, Any], document: dict[str, Any]) -> bool:
    """Whether an earlier config describes the same trained model as ``document``: the same
    trial of the same study, with the same architecture, layout, recipe, data and seed."""
    def model_part(d: dict[str, Any]) -> dict[str, Any]:
        provenance = d.get("provenance")
        if not isinstance(provenance, dict):
            return {}
        kept = {k: v for k, v in d.items()
                if k not in ("metrics", "provenance", *_FILE_BLOCKS)}
        return {**kept, "provenance": {k: provenance.get(k) for k in _SAME_PROVENANCE}}

    # The new document as it reads back from its file (lists, not tuples; plain numbers).
    return model_part(earlier) == model_part(json.loads(json.dumps(document)))


def _kept_files(document: dict[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """The ``weights`` and ``onnx`` blocks an earlier export of the same trial wrote into
    ``folder`` (as ``<name>.yaml`` or ``<name>.json``) that this export does not write again,
    where their files are still there and unchanged (sha256): kept, so that an export never
    drops what an earlier one wrote."""
    kept: dict[str, Any] = {}
    for path in (folder / f"{name}.yaml", folder / f"{name}.json"):
        if not path.is_file():
            continue
        try:
            earlier = read_document(path, "config", json_too=True)
        except ActsearchError:  # not a config this export can read: it is overwritten
            continue
        if not isinstance(earlier, dict) or not _same_model(earlier, document):
            continue
        for key in _FILE_BLOCKS:
            block = earlier.get(key)
            if key in document or key in kept or not isinstance(block, dict):
                continue
            file = block.get("file")
            # Only a file beside the config, as an export writes it.
            if not isinstance(file, str) or Path(file).name != file:
                continue
            if (folder / file).is_file() and sha256(folder / file) == block.get("sha256"):
                kept[key] = block
    return kept


# ----------------------------------------------------------------------------- exporting


def export_configs(study: optuna.Study, space: SearchSpace | None = None, top: int = 1,
                   out_dir: str | Path = "exports", fmt: str = "yaml", weights: bool = False,
                   *, device: str | torch.device | None = None,
                   strict: bool = True) -> list[Path]:
    """Write one config file per selected trial; returns the config paths, best first.

    Exporting again into the same folder keeps what an earlier export of the same trial wrote
    there: a config written without weights (or as another format) still names the weights
    file (and ONNX model) an earlier export saved, while that file is unchanged.

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
        require_onnx()  # fail before any retraining
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
    again = weights or fmt == "onnx"
    # A plain config needs no device: only retraining (weights, ONNX) asks for one.
    torch_device = select_device(None if device is None else str(device)) if again else None
    # A factory model's sites, found as the search found them (its groups name the params).
    space, dataset, data = stored_run(study, space, torch_device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for trial in trials:
        document = config_document(study, space, trial, dataset.input_shape, dataset.n_classes,
                                   dataset.fingerprint)
        name = _file_name(study.study_name, trial.number)
        config_path = out / f"{name}.{'json' if fmt == 'json' else 'yaml'}"
        if again:
            assert data is not None and torch_device is not None
            candidate = candidate_from_params(trial.params, space)
            model, val_acc = retrain(space, candidate, data, document["provenance"]["seed"])
            check_reproduced(study.study_name, trial, val_acc, document["metrics"]["val_acc"],
                             torch_device, strict)
            if weights:
                document["weights"] = save_weights(model, out / f"{name}.pt", val_acc)
            if fmt == "onnx":
                document["onnx"] = save_onnx(model, data.x_val[:16], out / f"{name}.onnx")
        # Read before the config is overwritten: what an earlier export of this trial wrote.
        document.update(_kept_files(document, out, name))
        document = {**{k: v for k, v in document.items() if k not in _FILE_BLOCKS},
                    **{k: document[k] for k in _FILE_BLOCKS if k in document}}
        _write_document(document, config_path, fmt)
        paths.append(config_path)
    return paths
