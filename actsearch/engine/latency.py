"""What each activation costs in latency on this device, eager and under ``torch.compile``.

The folklore says ELU's extra exp() costs little latency, especially once compiled (the
compiler fuses the exp into the surrounding kernel). Every trial's probes time its model in
eager mode only: compiling costs seconds per model. So after the search, for the finalists'
layouts and the uniform layout of each activation (the claims' "uniform relu/elu/selu" arms),
this module times a freshly built model (latency does not depend on the weights' values)
against the uniform-ReLU model of the same depth and normalisation, at batch 1 and at a large
batch, in eager mode and compiled, in alternating blocks (``probes.compare_latency``: a shared
machine's speed drifts, the paired ratio does not). Each block pair gives one ratio; all of
them are stored, so ``analysis`` can test "costs little" (the ratio's mean log below
log(1 + ``MARGIN``)) as one of the claims' paired comparisons.

Stored as the study's ``latency`` user attribute: ``device``, ``threads``, ``margin``,
``batch_sizes``, ``compile`` (None, or the reason ``torch.compile`` could not be used: the
compiled columns are then empty) and ``models``: one entry per measured layout (``label``,
``kind`` "finalist" or "activation", ``layout``, ``norm``, and per mode "eager"/"compiled"
a dict batch size (as text) -> per-pair ratios).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from torch import nn

from actsearch.engine.record import FINALISTS_ATTR, LATENCY_ATTR
from actsearch.errors import ActsearchError
from actsearch.models.layout import (
    Candidate,
    candidate_from_params,
    layout_params,
    relu_layout,
    uniform_choices,
)
from actsearch.schema.space import SearchSpace
from actsearch.training.data import DeviceData
from actsearch.training.probes import compare_latency
from actsearch.training.trainers import start_model

__all__ = ["LATENCY_ATTR", "MARGIN", "MODES", "Measured", "default_mode", "latency_current",
           "measured_layouts", "run_latency"]

MODES = ("compiled", "eager", "off")
MARGIN = 0.10  # "costs little": at most 10% slower than the same network with ReLU
BIG_BATCH = 4096  # as the trials' probes (``lat_big_batch``)
_BLOCKS = 20  # block pairs per comparison: 20 ratios for the paired test
_BLOCK_SECONDS = 0.01
_SEED = 0  # the measured models' weights; any value: latency does not depend on it


def default_mode() -> str:
    """What a search does unless told (``actsearch.search(latency=...)``):
    ``$ACTSEARCH_LATENCY``, else "compiled". The test suite sets it to "off"
    (tests/conftest.py): compiling costs seconds per model, and timing is for benchmarks."""
    mode = os.environ.get("ACTSEARCH_LATENCY", "compiled")
    if mode not in MODES:
        raise ActsearchError(f"$ACTSEARCH_LATENCY: expected one of {', '.join(MODES)}, got "
                             f"{mode!r}")
    return mode


@dataclass(frozen=True)
class Measured:
    """A layout to time: a finalist's, or an activation's uniform layout."""

    label: str  # "trial 12" or the claims' arm name, "uniform elu"
    kind: str  # "finalist" or "activation"
    candidate: Candidate


def _model(space: SearchSpace, data: DeviceData, candidate: Candidate) -> nn.Module:
    return start_model(space, data, candidate, _SEED).eval()


def measured_layouts(study: optuna.Study, space: SearchSpace) -> list[Measured]:
    """The finalists' layouts (as stored) and each uniform activation's layout."""
    out: list[Measured] = []
    for entry in study.user_attrs.get(FINALISTS_ATTR) or []:
        trial = study.trials[entry["number"]]
        out.append(Measured(f"trial {entry['number']}", "finalist",
                            candidate_from_params(trial.params, space)))
    common, _ = uniform_choices(space)
    groups = len(space.custom.groups) if space.custom is not None else space.depths[0]
    for name in dict.fromkeys(["relu", *common]):
        if name in common:
            params = layout_params(space, [name] * groups)
            out.append(Measured(f"uniform {name}", "activation",
                                candidate_from_params(params, space)))
    return out


@contextlib.contextmanager
def _compiler(models: int) -> Iterator[None]:
    """Room in dynamo's cache for every model compiled here (each module instance is a new
    entry of the same ``forward``: past the limit dynamo silently falls back to eager), and
    a clean cache afterwards."""
    import torch._dynamo as dynamo

    _import_cpp_extension_quietly()
    dynamo.reset()
    try:
        with dynamo.config.patch(cache_size_limit=max(8, 4 * models),
                                 accumulated_cache_size_limit=max(256, 8 * models)):
            yield
    finally:
        dynamo.reset()


def _import_cpp_extension_quietly() -> None:
    # Inductor's CPU compile imports torch.utils.cpp_extension, which looks for a CUDA toolkit
    # once, at import, and on a CUDA build of torch without a GPU logs "No CUDA runtime is
    # found, using CUDA_HOME=..." (harmless: nothing here builds CUDA code). Importing it
    # first with its logger raised to ERROR keeps that line out of every search; its later
    # warnings (a compiler's version, say) still show.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension  # noqa: F401
    finally:
        logger.setLevel(level)


def _ratios(model: nn.Module, reference: nn.Module, data: DeviceData,
            batch_sizes: tuple[int, ...]) -> dict[str, list[float]]:
    out = {}
    for b in batch_sizes:
        c = compare_latency(model, reference, data.x_val, b, blocks=_BLOCKS,
                            block_seconds=_BLOCK_SECONDS)
        out[str(b)] = [round(r, 5) for r in c.pair_ratios]
    return out


def _plan(measured: list[Measured]) -> list[dict[str, Any]]:
    return [{"label": m.label, "kind": m.kind, "layout": str(m.candidate.layout),
             "norm": m.candidate.norm} for m in measured]


def latency_current(study: optuna.Study, space: SearchSpace, mode: str) -> bool:
    """Whether the stored latencies are what ``run_latency`` would measure now: the same
    layouts, in the same mode (a resumed search does not time them again)."""
    stored = study.user_attrs.get(LATENCY_ATTR)
    if not stored or stored.get("mode") != mode:
        return False
    keys = ("label", "kind", "layout", "norm")
    return ([{k: m[k] for k in keys} for m in stored.get("models", [])]
            == _plan(measured_layouts(study, space)))


def run_latency(study: optuna.Study, space: SearchSpace, data: DeviceData, *,
                compile: bool = True,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time the finalists' and the uniform layouts against uniform ReLU, eager and compiled,
    and store the document (see the module's docstring) as the study's ``latency``."""
    measured = measured_layouts(study, space)
    batch_sizes = (1, BIG_BATCH)
    references: dict[tuple[int, str], nn.Module] = {}

    def reference(candidate: Candidate) -> nn.Module:
        key = (candidate.layout.depth, candidate.norm)
        if key not in references:
            relu = dataclasses.replace(candidate, layout=relu_layout(candidate.layout.depth))
            references[key] = _model(space, data, relu)
        return references[key]

    entries = _plan(measured)
    # A layout measured twice (a uniform finalist is also its activation's uniform layout)
    # is timed once; its entries share the figures.
    timed: dict[tuple[str, str], dict[str, Any]] = {}
    for m, entry in zip(measured, entries, strict=True):
        key = (entry["layout"], entry["norm"])
        if key not in timed:
            model = _model(space, data, m.candidate)
            timed[key] = {"eager": _ratios(model, reference(m.candidate), data, batch_sizes),
                          "compiled": {}}
        entry.update(timed[key])
    failure = None if compile else "not asked for (latency: eager)"
    if compile:
        with _compiler(len(timed) + len(references)):
            compiled_refs: dict[tuple[int, str], nn.Module] = {}
            compiled: dict[tuple[str, str], dict[str, list[float]]] = {}
            try:
                for m, entry in zip(measured, entries, strict=True):
                    key = (entry["layout"], entry["norm"])
                    ref_key = (m.candidate.layout.depth, m.candidate.norm)
                    if ref_key not in compiled_refs:
                        compiled_refs[ref_key] = torch.compile(reference(m.candidate),
                                                               dynamic=False)
                    if key not in compiled:
                        model = torch.compile(_model(space, data, m.candidate),
                                              dynamic=False)
                        compiled[key] = _ratios(model, compiled_refs[ref_key], data,
                                                batch_sizes)
                    entry["compiled"] = compiled[key]
            except Exception as e:  # the compiler's own failures are many and varied
                failure = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0]}"
                for entry in entries:
                    entry["compiled"] = {}
    document = {"mode": "compiled" if compile else "eager", "device": str(data.x_train.device),
                "threads": torch.get_num_threads(), "margin": MARGIN,
                "batch_sizes": list(batch_sizes), "compile": failure, "models": entries}
    study.set_user_attr(LATENCY_ATTR, document)
    if progress is not None:
        progress(f"latency: {len(entries)} layouts against uniform relu, eager"
                 + (" and compiled" if failure is None else f" only ({failure})"))
    return document
