"""A trial's model trained again for its weights or ONNX model, checked against the trial.

Trials store no weights: the candidate is retrained with the trial's own seed exactly as the
search trained it alone (``trainers.start_model``, then ``fit``), which on the device the
study ran on gives the trial's model; its validation metric must match the trial's.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial
from torch import nn

from actsearch.engine.export.read import sha256
from actsearch.engine.record import TrialRecord
from actsearch.errors import ActsearchError
from actsearch.models.layout import Candidate
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.fit import fit, recipe_for, scoring_of
from actsearch.training.trainers import start_model

__all__ = ["check_reproduced", "require_onnx", "retrain", "save_onnx", "save_weights"]

# The retrained model must reproduce the trial: val_acc is stored rounded to 6 decimals.
_VAL_ACC_TOLERANCE = 1e-6
# ONNX Runtime and PyTorch must agree on the logits of a probe batch to this (abs and rel).
_ONNX_TOLERANCE = 1e-5
_ONNX_EXTRA = "pip install 'actsearch[onnx]'"


def retrain(space: SearchSpace, candidate: Candidate, data: DeviceData,
            seed: int) -> tuple[nn.Module, float]:
    """The candidate trained as the search trains one alone (the same seeded start, the same
    fit), in eval mode, and its last validation metric."""
    model = start_model(space, data, candidate, seed)
    result = fit(model, data, recipe_for(space, candidate), seed, scoring=scoring_of(space))
    val_acc = result.history[-1].val_acc if result.history else float("nan")
    return model.eval(), val_acc


def check_reproduced(study_name: str, trial: FrozenTrial, val_acc: float, expected: float,
                     device: torch.device, strict: bool) -> None:
    """Raise (or with ``strict`` False, warn) when the retrained model's validation metric is
    not the trial's: its weights would not be the trial's model."""
    if abs(val_acc - expected) <= _VAL_ACC_TOLERANCE:
        return
    # A trial trained in a population rounds differently from a model trained alone
    # (batched products), so its retrain matches only up to that rounding.
    population = TrialRecord.from_frozen(trial).population or 1
    why = (f"it trained in a population of {population}, whose batched products round "
           f"differently" if population > 1 else
           "retrain on the device the study ran on")
    message = (f"trial {trial.number} of study {study_name!r}: retraining on {device} gave "
               f"val_acc {val_acc:.6f}, the trial had {expected:.6f}; the exported weights are "
               f"not the trial's ({why})")
    if strict and population <= 1:
        raise ActsearchError(message)
    # stacklevel: the caller of export_configs, through check_reproduced and export_configs.
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def save_weights(model: nn.Module, path: Path, val_acc: float) -> dict[str, Any]:
    """Save the state dict (on the CPU) and return the config's ``weights`` block."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, path)
    return {"file": path.name, "sha256": sha256(path), "val_acc": round(val_acc, 6)}


def save_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """Export the model as ONNX (checked with ONNX Runtime) and return the ``onnx`` block."""
    _export_onnx(model, example, path)
    return {"file": path.name, "sha256": sha256(path)}


def require_onnx() -> None:
    """Refuse ONNX export, before any retraining, when its packages are missing."""
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
