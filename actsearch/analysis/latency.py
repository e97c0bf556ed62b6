"""What each activation and each finalist costs in latency: the probes' per-activation
latencies (``ActivationLatency``), and the ratios against uniform ReLU, eager and compiled,
that ``actsearch.engine.latency`` stores after the search (``analyze_latency``)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actsearch.analysis.rows import LayoutRow
from actsearch.engine.record import TrialRecord

__all__ = ["ActivationLatency", "LatencyCost", "LatencyCosts", "analyze_latency"]


@dataclass(frozen=True)
class ActivationLatency:
    """An activation's inference latency on the device the study ran on: its uniform layout's
    probes (the best complete trial of it), so the network around it is the same for each."""

    activation: str
    number: int  # the uniform trial measured
    b1_ms: float  # batch 1: median over timed blocks, milliseconds
    b1_iqr_ms: float | None  # the interquartile range of those blocks
    big_ms: float | None  # at the probes' large batch


def _latencies(baselines: Sequence[LayoutRow], by_number: dict[int, TrialRecord]
               ) -> list[ActivationLatency]:
    rows = []
    for row in baselines:
        record = by_number.get(row.number)
        probes = (record.probes if record is not None else None) or {}
        if (record is None or not record.activations or probes.get("lat_b1_ms") is None
                or any(r.activation == record.activations[0] for r in rows)):
            continue  # one row per activation: its best uniform layout (baselines come best first)
        iqr, big = probes.get("lat_b1_iqr_ms"), probes.get("lat_big_ms")
        rows.append(ActivationLatency(record.activations[0], row.number,
                                      float(probes["lat_b1_ms"]),
                                      None if iqr is None else float(iqr),
                                      None if big is None else float(big)))
    return rows


@dataclass(frozen=True)
class LatencyCost:
    """A layout's latency against uniform ReLU (same depth and norm), eager and compiled:
    the median over alternating block pairs of the ratio, per batch size."""

    label: str  # "trial 12" (a finalist) or "uniform elu"
    kind: str  # "finalist" or "activation"
    layout: str
    norm: str
    eager: dict[int, float]  # batch size -> median ratio
    compiled: dict[int, float]  # empty when torch.compile was not used


@dataclass(frozen=True)
class LatencyCosts:
    """``analyze_latency``: what each activation and each finalist costs in latency on the
    study's device (``actsearch.engine.latency``); ``ran`` is False when not measured."""

    ran: bool
    device: str = ""
    threads: int = 0
    margin: float = 0.0
    compile_failure: str | None = None  # why there are no compiled figures
    batch_sizes: list[int] = field(default_factory=list)
    rows: list[LatencyCost] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """Each activation's cost against ReLU, eager and compiled, one line each."""
        if not self.ran:
            return []
        out = []
        for row in self.rows:
            if row.kind != "activation" or row.label == "uniform relu":
                continue
            parts = []
            for b in self.batch_sizes:
                modes = [f"x{getattr(row, mode)[b]:.2f} {mode}" for mode in ("eager", "compiled")
                         if b in getattr(row, mode)]
                parts.append(f"{', '.join(modes)} at batch {b}")
            name = row.label.removeprefix("uniform ")
            out.append(f"{name.upper()} at every site against ReLU: {'; '.join(parts)} "
                       f"({self.device}, {self.threads} thread"
                       f"{'s' if self.threads != 1 else ''})")
        if self.compile_failure:
            out.append(f"Compiled latency: not measured ({self.compile_failure})")
        return out


def analyze_latency(document: dict[str, Any] | None) -> LatencyCosts:
    """The ``latency`` attribute's ratios as medians per layout, mode and batch size."""
    if not document:
        return LatencyCosts(False)

    def medians(by_batch: dict[str, list[float]]) -> dict[int, float]:
        return {int(b): float(statistics.median(v)) for b, v in by_batch.items() if v}

    rows = [LatencyCost(m["label"], m["kind"], m["layout"], m["norm"], medians(m["eager"]),
                        medians(m.get("compiled") or {})) for m in document.get("models", [])]
    return LatencyCosts(True, document.get("device", "?"), int(document.get("threads", 0)),
                        float(document.get("margin", 0.0)), document.get("compile"),
                        [int(b) for b in document.get("batch_sizes", [])], rows)
