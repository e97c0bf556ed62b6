"""One trial: candidate -> model -> train -> report/prune -> metrics into the trial."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import socket
import traceback
from collections.abc import Callable
from typing import Protocol

import optuna
import torch

from actsearch.errors import ActsearchError
from actsearch.models.build import build_model
from actsearch.models.layout import BASELINE_ATTR, Candidate, Layer, Layout, suggest_candidate
from actsearch.schema.space import SearchSpace
from actsearch.search.pruning import CurveMedianPruner, TrialPruning
from actsearch.training.data import DeviceData
from actsearch.training.fit import EpochStats, FitResult, evaluate, fit, recipe_for
from actsearch.training.probes import probe_model

__all__ = [
    "ERROR_ATTR",
    "instability",
    "is_baseline",
    "objective_values",
    "probe_model",
    "TRACEBACK_ATTR",
    "WORKER_ATTR",
    "GuardedObjective",
    "Objective",
    "TrialFailed",
    "TrialListener",
    "recipe_for",
    "record_result",
    "start_trial",
    "trial_seed",
    "worker_id",
]

ERROR_ATTR = "error"  # one line: "<reason>: <message>", e.g. "out of memory: CUDA out of ..."
TRACEBACK_ATTR = "traceback"
WORKER_ATTR = "worker"  # "<hostname>:<pid>" of the process that ran the trial
_TRACEBACK_CHARS = 8000  # storages keep attrs in text columns; a deep recursion can be huge


class TrialListener(Protocol):
    """Receives progress from inside trials (the live view implements it)."""

    def trial_started(self, number: int, layout: str) -> None: ...

    def epoch_done(self, number: int, stats: EpochStats) -> None: ...


def trial_seed(seed: int, number: int) -> int:
    """The weights-and-data-order seed of trial ``number`` in a study seeded with ``seed``."""
    return (seed * 1_000_003 + number) % 2**31


def _round(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values]




def objective_values(space: SearchSpace, attrs: dict[str, object]) -> tuple[float, ...]:
    """The values of the space's objectives, from a finished trial's user attributes."""
    probes: dict = attrs.get("probes") or {}  # type: ignore[assignment]
    values = []
    for name, _ in space.objectives:
        value = _OBJECTIVE_SOURCES[name](attrs, probes)
        values.append(float("nan") if value is None else float(value))
    return tuple(values)


def instability(probes: dict) -> float:
    """Noise sensitivity + largest dead fraction + min(|log10 gradient ratio|, 10) / 10.

    A gradient ratio that is zero or not finite (probes store None for it) counts as the
    largest term, 1: exactly the unstable models must not drop out as "not measured".
    """
    noise, dead, ratio = (probes.get(k) for k in ("robust_noise_0.1", "dead_frac_max",
                                                  "grad_ratio"))
    if noise is None or dead is None:
        return float("nan")
    gradient = min(abs(math.log10(ratio)), 10.0) / 10 if ratio else 1.0
    return max(0.0, 1.0 - noise) + dead + gradient


# Where each objective of ``space.OBJECTIVES`` comes from: (trial attrs, probes) -> value.
_OBJECTIVE_SOURCES: dict[str, Callable[[dict, dict], object]] = {
    "accuracy": lambda attrs, probes: attrs.get("val_acc"),
    "latency": lambda attrs, probes: probes.get("lat_b1_rel"),
    "latency_big": lambda attrs, probes: probes.get("lat_big_rel"),
    "throughput": lambda attrs, probes: attrs.get("samples_per_second"),
    "convergence": lambda attrs, probes: probes.get("epochs_to_95"),
    "dead_units": lambda attrs, probes: probes.get("dead_frac_max"),
    "instability": lambda attrs, probes: instability(probes),
}


class Objective:
    """Callable for ``study.optimize``: trains the sampled candidate, returns its objectives.

    Every trial stores in its user attributes what reports need: ``layout``, ``val_acc_curve``,
    ``val_loss_curve``, ``train_seconds``, ``samples_per_second``, ``epochs``, ``val_acc``,
    ``seed`` and ``end`` (``complete``, ``pruned at epoch k`` or ``diverged at epoch k``);
    complete trials also ``test_acc`` and ``probes`` (speed and stability, one dict: see
    ``actsearch.probes.METRICS``). With one objective, pruning is Optuna's (per-epoch
    ``trial.report``, written in batches: ``actsearch.pruning.ReportBuffer``); with several,
    Optuna refuses reports, and ``CurveMedianPruner`` prunes on the validation accuracy.
    """

    def __init__(self, space: SearchSpace, data: DeviceData, device: torch.device, seed: int,
                 listener: TrialListener | None = None, measure: bool = True) -> None:
        self.space, self.data, self.device, self.seed = space, data, device, seed
        self.listener = listener
        self.measure = measure or len(space.objectives) > 1  # objectives may need probes
        self.multi = len(space.objectives) > 1
        self.curve_pruner = CurveMedianPruner.for_space(space) if self.multi else None
        # Relative latency needs a fixed reference model (uniform ReLU) per depth; built only
        # when a latency objective asks for it, since timing it doubles the probe's cost.
        self.wants_reference = any(n.startswith("latency") for n, _ in space.objectives)
        self._references: dict[tuple[int, str], torch.nn.Module] = {}

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        candidate, seed = start_trial(trial, self.space, self.seed, self.listener)

        torch.manual_seed(seed)
        model = build_model(self.space.model, candidate.layout, self.data.input_shape,
                            self.data.n_classes, candidate.norm).to(self.device)

        best = [0.0]
        pruning = TrialPruning(trial) if self.curve_pruner is None else None
        exempt = is_baseline(trial)
        if self.curve_pruner is not None and self.curve_pruner.enabled and not exempt:
            self.curve_pruner.refresh(trial.study)  # one read a trial, not one an epoch

        def on_epoch(stats: EpochStats) -> bool:
            if self.listener is not None:
                self.listener.epoch_done(trial.number, stats)
            if pruning is not None:  # a baseline reports too, and pruners keep rung records
                prune = pruning.report_and_decide(stats.val_acc, stats.epoch)
                return exempt or not prune
            best[0] = max(best[0], stats.val_acc)
            return exempt or not self.curve_pruner.decide(stats.epoch, best[0])

        try:
            result = fit(model, self.data, recipe_for(self.space, candidate), seed, on_epoch)
        except BaseException:
            # The reports of an interrupted or failed trial are worth keeping too, but not at
            # the price of the error that stopped it.
            if pruning is not None:
                with contextlib.suppress(Exception):
                    pruning.flush()
            raise
        if pruning is not None:
            pruning.flush()
        record_result(trial, result)
        if result.status != "complete":
            # Diverged candidates are pruned too: the sampler learns they are bad, and the
            # study goes on. `end` tells the two apart.
            raise optuna.TrialPruned(trial.user_attrs.get("end", result.status))
        _, test_acc = evaluate(model, self.data.x_test, self.data.y_test)
        trial.set_user_attr("test_acc", round(test_acc, 6))
        if not self.measure:
            return result.history[-1].val_acc
        probes = self._probe(model, candidate.layout.depth, candidate.norm, result)
        # One write for all probes: 23 separate attributes cost 0.5 s on SQLite.
        trial.set_user_attr("probes", probes)
        if not self.multi:
            return result.history[-1].val_acc
        return objective_values(self.space, {**trial.user_attrs, "probes": probes})

    def _probe(self, model: torch.nn.Module, depth: int, norm: str,
               result: FitResult) -> dict[str, object]:
        reference = self._reference(depth, norm) if self.wants_reference else None
        return probe_model(model, self.data, self.device, result, reference)

    def _reference(self, depth: int, norm: str) -> torch.nn.Module:
        key = (depth, norm)
        if key not in self._references:
            relu = Layout(tuple(Layer("relu") for _ in range(depth)))
            torch.manual_seed(self.seed)
            self._references[key] = build_model(
                self.space.model, relu, self.data.input_shape, self.data.n_classes, norm
            ).to(self.device).eval()
        return self._references[key]


def is_baseline(trial: optuna.Trial | optuna.trial.FrozenTrial) -> bool:
    """Whether the trial is one of the study's enqueued uniform baselines. Baselines are what
    every layout is compared against, so they train to the end: never pruned."""
    return bool(trial.user_attrs.get(BASELINE_ATTR))


def start_trial(trial: optuna.Trial, space: SearchSpace, study_seed: int,
                listener: TrialListener | None = None) -> tuple[Candidate, int]:
    """Sample the trial's candidate and record what identifies it; returns it and its seed."""
    candidate = suggest_candidate(trial, space)
    layout = str(candidate.layout)
    seed = trial_seed(study_seed, trial.number)
    trial.set_user_attr("layout", layout)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("uniform", candidate.layout.is_uniform)
    if listener is not None:
        listener.trial_started(trial.number, layout)
    return candidate, seed


def record_result(trial: optuna.Trial, result: FitResult) -> None:
    """Store how a trial's training went in its user attributes (see ``Objective``)."""
    history = result.history
    last = history[-1].epoch if history else 0
    end = {"complete": "complete", "stopped": f"pruned at epoch {last}",
           "diverged": f"diverged at epoch {last}"}[result.status]
    trial.set_user_attr("end", end)
    trial.set_user_attr("epochs", last)
    trial.set_user_attr("val_acc_curve", _round([h.val_acc for h in history]))
    trial.set_user_attr("val_loss_curve", _round([h.val_loss for h in history]))
    trial.set_user_attr("train_seconds", round(result.train_seconds, 4))
    trial.set_user_attr("samples_per_second", round(result.samples_per_second, 1))
    if history:
        trial.set_user_attr("val_acc", round(history[-1].val_acc, 6))


def worker_id() -> str:
    """This process as ``<hostname>:<pid>``, the value of a trial's ``worker`` user attr."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialFailed(Exception):
    """A trial failed for a reason recorded in its ``error`` user attr; the study goes on."""


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    # The CPU allocator raises a plain RuntimeError.
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _free_memory() -> None:
    # The failed step's tensors hang off the exception's frames: collect them before the next
    # trial allocates, and give cached blocks back so the next model does not OOM in turn.
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class GuardedObjective:
    """Wrap an objective so that one trial's fault fails that trial only.

    At start the trial records its ``worker`` (``host:pid``). Out of memory and any unexpected
    exception are recorded in the trial's ``error`` (and ``traceback``) user attrs and raised
    as :class:`TrialFailed`, which ``study.optimize(catch=(TrialFailed,))`` turns into a FAIL
    while the study goes on. Pruning passes through; a user mistake (:class:`ActsearchError`)
    stops the study, since every other trial would fail the same way; an interrupt (Ctrl-C,
    SIGTERM) is recorded as ``interrupted`` and stops it.
    """

    def __init__(self, objective: Callable[[optuna.Trial], float]) -> None:
        self.objective = objective

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_id())
        try:
            return self.objective(trial)
        except optuna.TrialPruned:
            raise
        except ActsearchError as e:
            trial.set_user_attr(ERROR_ATTR, f"ActsearchError: {_first_line(e)}"[:500])
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(ERROR_ATTR, "interrupted: stopped by a signal or Ctrl-C")
            raise
        except Exception as e:
            if _is_out_of_memory(e):
                reason = f"out of memory: {_first_line(e)}"
            else:
                reason = f"{type(e).__name__}: {_first_line(e)}"
            trial.set_user_attr(ERROR_ATTR, reason[:500])
            trial.set_user_attr(TRACEBACK_ATTR, traceback.format_exc()[-_TRACEBACK_CHARS:])
            del e  # drop our reference to the frames before freeing
            _free_memory()
            raise TrialFailed(reason) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
