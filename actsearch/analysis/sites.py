"""A factory model's per-site probes: the best complete trial's, site by site in execution
order (a shipped family's probes are per hidden layer and have none)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actsearch.analysis.rows import LayoutRow
from actsearch.engine.record import TrialRecord

__all__ = ["SiteProbe", "site_probes"]


@dataclass(frozen=True)
class SiteProbe:
    """One site's probes in a factory model's trial (``site_probes``)."""

    site: str  # as find_sites names it
    act_mean: float | None
    act_std: float | None
    dead_frac: float | None
    grad_norm: float | None  # of d(loss)/d(the site's output)


def site_probes(probes: dict[str, Any] | None) -> list[SiteProbe]:
    """A trial's per-site probes in execution order, input side first; [] when its probes
    are per layer (a shipped family) or missing."""
    means = (probes or {}).get("act_mean")
    if not isinstance(means, dict):
        return []

    def at(key: str, site: str) -> float | None:
        values = probes.get(key)
        return values.get(site) if isinstance(values, dict) else None

    return [SiteProbe(site, at("act_mean", site), at("act_std", site), at("dead_frac", site),
                      at("grad_norm", site)) for site in means]


def _best_sites(ranked: Sequence[LayoutRow], by_number: dict[int, TrialRecord]
                ) -> tuple[list[SiteProbe], int | None]:
    """The per-site probes of the best complete trial that has them, and its number."""
    for row in ranked:
        sites = site_probes(by_number[row.number].probes)
        if sites:
            return sites, row.number
    return [], None
