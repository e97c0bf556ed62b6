"""The trial record: every attribute actsearch stores on a trial, declared once.

A trial's results live in Optuna as user attributes (so optuna-dashboard, Optuna's own plots
and any script can read them). This module is the only place that names them: writers fill a
:class:`TrialRecord` and call :meth:`TrialRecord.write`; readers (analysis, report, graphs,
dashboard, export, finalists, workers, the live view) call :meth:`TrialRecord.from_frozen`.
The attribute names are those actsearch has always written, so older studies still open. The
study's own seed is read one way too (:func:`study_seed`).

No torch here: the report and the dashboard read records without loading it.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import optuna

    from actsearch.schema.space import SearchSpace

__all__ = [
    "BASELINE_ATTR",
    "CLAIMS_ATTR",
    "ERROR_ATTR",
    "FINALISTS_ATTR",
    "FINISHED",
    "LATENCY_ATTR",
    "OBJECTIVE_SOURCES",
    "OVER_BUDGET_ATTR",
    "SEED_ATTR",
    "STORED",
    "TrialRecord",
    "WORKER_ATTR",
    "instability",
    "study_seed",
    "records",
    "worker_id",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what a study's trial budget counts
BASELINE_ATTR = "baseline"  # an enqueued uniform baseline (never pruned); set by enqueue
ERROR_ATTR = "error"  # why a trial failed, "<reason>: <message>"
# The study (not trial) attribute with the finalists' retraining results; declared here, free of
# torch, so that the analysis reads it without importing actsearch.engine.finalists.
FINALISTS_ATTR = "finalists"
# The study attribute with the claims' designed comparisons (actsearch.engine.claims): their
# arms' per-seed results and which claims apply; likewise read by the analysis without torch.
CLAIMS_ATTR = "claims"
# The study attribute with eager and compiled latencies of the finalists' and the uniform
# layouts against uniform ReLU (actsearch.engine.latency).
LATENCY_ATTR = "latency"
WORKER_ATTR = "worker"  # "<hostname>:<pid>": finds the trials of dead workers
OVER_BUDGET_ATTR = "over_budget"  # a FAIL trial that never ran: the budget had no slot for it
_TRACEBACK_CHARS = 8000  # storages keep attrs in text columns; a deep recursion can be huge
_ERROR_CHARS = 500


def _stored(default: Any = None) -> Any:
    """A field stored as a user attribute of the same name."""
    if isinstance(default, list):
        return field(default_factory=list, metadata={"stored": True})
    return field(default=default, metadata={"stored": True})


@dataclass
class TrialRecord:
    """What actsearch knows about one trial.

    The first fields come from Optuna (number, state, params, values); the rest are stored as
    the trial's user attributes under their field names.
    """

    number: int = -1
    state: TrialState = TrialState.RUNNING
    params: dict[str, Any] = field(default_factory=dict)
    values: tuple[float, ...] | None = None
    retry_history: tuple[int, ...] = ()  # earlier trials this one retries (Optuna's attr)
    # What the sampler could choose per parameter: the graphs list every activation offered,
    # not only those some trial happened to pick.
    distributions: dict[str, Any] = field(default_factory=dict)

    layout: str | None = _stored()  # e.g. "relu | elu(0.73) | selu", input side first
    uniform: bool | None = _stored()  # one activation (and parameter) everywhere
    baseline: bool | None = _stored()  # an enqueued uniform baseline (BASELINE_ATTR)
    seed: int | None = _stored()  # the seed of the weights and the data order
    worker: str | None = _stored()  # "<hostname>:<pid>" of the process that ran it
    end: str | None = _stored()  # "complete", "pruned at epoch k", "diverged at epoch k"
    epochs: int | None = _stored()  # epochs trained
    val_acc_curve: list[float] = _stored([])  # per epoch, on the validation split
    val_loss_curve: list[float] = _stored([])
    train_seconds: float | None = _stored()  # training steps only, no evaluation
    samples_per_second: float | None = _stored()
    # The validation metric (accuracy, or train.metric's value: the first objective's name
    # says which) after the last epoch trained; val_acc_curve and test_acc hold the same.
    val_acc: float | None = _stored()
    population: int | None = _stored()  # the most candidates that trained beside it
    test_acc: float | None = _stored()  # complete trials: held-out test split
    probes: dict[str, Any] | None = _stored()  # complete trials: actsearch.training.probes
    error: str | None = _stored()  # failed trials: "<reason>: <message>"
    traceback: str | None = _stored()
    # Never trained: failed because the study's trial budget had no slot left for it (a
    # worker lost the race for the last slot, or a queued trial was left over when the budget
    # was met; see actsearch.engine.budget). Readers skip these: they are not failures.
    over_budget: bool | None = _stored()

    # --- reading --------------------------------------------------------------------------

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        """The record of a trial as Optuna returns it (``study.get_trials()``)."""
        record = cls.from_user_attrs(trial.user_attrs)
        record.number, record.state, record.params = trial.number, trial.state, dict(trial.params)
        record.values = tuple(trial.values) if trial.values else None
        record.retry_history = tuple(trial.system_attrs.get("retry_history", ()))
        record.distributions = dict(trial.distributions)
        return record

    @classmethod
    def from_user_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The stored fields alone, from a trial's user attributes (a running trial's too)."""
        return cls(**{name: attrs[name] for name in STORED if name in attrs})

    @property
    def is_complete(self) -> bool:
        return self.state == TrialState.COMPLETE

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    @property
    def diverged(self) -> bool:
        return str(self.end or "").startswith("diverged")

    @property
    def choice_params(self) -> list[str]:
        """The params that hold the activation choices, input side first: ``act_<i>`` per
        layer, or a factory model's ``act:<group>`` per group in its layout's order (that of
        the groups' first sites in execution order)."""
        keys = [k for k in self.params if k.startswith("act_") and k[4:].isdigit()]
        if keys:
            return sorted(keys, key=lambda k: int(k[4:]))
        # The layout reads "gates=sigmoid | signal=elu(1.20)"; params keep no such order.
        groups = [part.split("=", 1)[0] for part in str(self.layout or "").split(" | ")
                  if "=" in part]
        return [f"act:{g}" for g in groups if f"act:{g}" in self.params]

    @property
    def activations(self) -> list[str]:
        """The activation chosen at each layer or group (``choice_params``), input side
        first."""
        return [str(self.params[k]) for k in self.choice_params]

    @property
    def accuracy(self) -> float:
        """Validation accuracy after the last epoch (NaN when none was measured); every table
        ranks by it, whatever the objectives."""
        return float(self.val_acc) if self.val_acc is not None else math.nan

    @property
    def reason(self) -> str:
        """A failed trial's reason: the text before the first colon of ``error``."""
        return str(self.error).split(":", 1)[0] if self.error else "unknown"

    def objective_values(self, objectives: Sequence[tuple[str, str]]) -> tuple[float, ...]:
        """The values of the objectives (``(name, direction)`` pairs) from this record."""
        probes = self.probes or {}
        values = []
        for i, (name, _) in enumerate(objectives):
            # The first is the validation metric, under its own name when train.metric's.
            value = OBJECTIVE_SOURCES["accuracy" if i == 0 else name](self, probes)
            values.append(math.nan if value is None else float(value))
        return tuple(values)

    # --- writing --------------------------------------------------------------------------

    def write(self, trial: Any, names: Iterable[str]) -> None:
        """Store the named fields as the trial's user attributes (one write each)."""
        for name in names:
            value = getattr(self, name)
            if name == "error" and value is not None:
                value = str(value)[:_ERROR_CHARS]
            elif name == "traceback" and value is not None:
                value = str(value)[-_TRACEBACK_CHARS:]
            trial.set_user_attr(name, value)


STORED = tuple(f.name for f in fields(TrialRecord) if f.metadata.get("stored"))
assert {BASELINE_ATTR, ERROR_ATTR, WORKER_ATTR, OVER_BUDGET_ATTR} <= set(STORED)


def worker_id() -> str:
    """This process as ``<hostname>:<pid>``, the value of a trial's ``worker`` attribute."""
    return f"{socket.gethostname()}:{os.getpid()}"


def records(trials: Iterable[FrozenTrial]) -> list[TrialRecord]:
    """The records of Optuna trials, in the same order."""
    return [TrialRecord.from_frozen(t) for t in trials]


def instability(probes: dict[str, Any]) -> float:
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


# Where each objective of ``schema.space.OBJECTIVES`` comes from: (record, probes) -> value.
OBJECTIVE_SOURCES: dict[str, Callable[[TrialRecord, dict[str, Any]], object]] = {
    "accuracy": lambda r, probes: r.val_acc,
    "latency": lambda r, probes: probes.get("lat_b1_rel"),
    "latency_big": lambda r, probes: probes.get("lat_big_rel"),
    "throughput": lambda r, probes: r.samples_per_second,
    "convergence": lambda r, probes: probes.get("epochs_to_95"),
    "dead_units": lambda r, probes: probes.get("dead_frac_max"),
    "instability": lambda r, probes: instability(probes),
}


SEED_ATTR = "seed"  # the study's seed: its sampler's, every trial's training and the splits'


def study_seed(study: optuna.Study, space: SearchSpace) -> int:
    """The seed a study was created with; a study stored before actsearch recorded it ran
    with its space's (``sampler.seed``)."""
    return int(study.user_attrs.get(SEED_ATTR, space.seed))

