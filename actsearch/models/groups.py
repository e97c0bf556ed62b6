"""Groups of sites that share one choice, so that a deep model stays searchable.

A group picks sites by glob patterns (``fnmatch``: ``layer1.*``, ``*.gate_act``) and may
have its own activation choices and parameter ranges (a gate among sigmoid/relu/elu while the
signal picks among relu/elu/selu/gelu). Every site no group picks is a group of its own, with
the default choices. The result is plain data for the search to sample from: one choice per
group, spread to its sites by ``group_layout``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from actsearch.errors import ActsearchError
from actsearch.models.activations import DEFAULT_CHOICES, get_activation
from actsearch.models.layout import Layer
from actsearch.models.sites import Site
from actsearch.schema.space import FloatRange

__all__ = ["GroupSpec", "SiteGroup", "group_layout", "resolve_groups"]


@dataclass(frozen=True)
class GroupSpec:
    """A group as the user declares it.

    Attributes:
        patterns: Globs over site names; a site's name without ``#k`` matches too, so
            ``*.relu`` picks every call of a shared ``relu``.
        choices: The group's activation choices (default: the search's).
        ranges: Parameter ranges per parametrised activation among the choices, as a
            ``FloatRange`` or ``(low, high)`` (default: the search's, else the registry's).
    """

    patterns: tuple[str, ...]
    choices: tuple[str, ...] | None = None
    ranges: Mapping[str, FloatRange | tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteGroup:
    """Sites that share one choice, with what that choice may be."""

    name: str
    sites: tuple[str, ...]
    choices: tuple[str, ...]
    ranges: dict[str, FloatRange]  # one per parametrised activation among the choices


_CALL = re.compile(r"#\d+$")


def _matches(pattern: str, site: str) -> bool:
    return fnmatchcase(site, pattern) or fnmatchcase(_CALL.sub("", site), pattern)


def _range(value: FloatRange | tuple[float, float], where: str) -> FloatRange:
    if isinstance(value, FloatRange):
        return value
    try:
        low, high = value
        return FloatRange(low=float(low), high=float(high))
    except (TypeError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        first = str(e).splitlines()
        raise ActsearchError(f"{where}: expected (low, high) with 0 < low <= high, got "
                             f"{value!r}{f' ({first[-1].strip()})' if first else ''}",
                             parameter="groups") from None


def _checked(name: str, choices: Sequence[str],
             ranges: Mapping[str, Any], defaults: Mapping[str, FloatRange],
             where: str) -> tuple[tuple[str, ...], dict[str, FloatRange]]:
    if isinstance(choices, str) or not choices:
        raise ActsearchError(f"{where}.choices: expected a non-empty list of activation names, "
                             f"got {choices!r}", parameter="groups")
    for i, choice in enumerate(choices):
        try:
            get_activation(choice)
        except ActsearchError as e:
            raise ActsearchError(f"{where}.choices[{i}]: {e}", parameter="groups") from None
        if choice in choices[:i]:
            raise ActsearchError(f"{where}.choices[{i}]: {choice!r} given twice",
                                 parameter="groups")
    for act in ranges:
        if act not in choices:
            raise ActsearchError(f"{where}.ranges.{act}: {act} is not among the group's "
                                 f"choices ({', '.join(choices)})", parameter="groups")
        if get_activation(act).param is None:
            raise ActsearchError(f"{where}.ranges.{act}: {act} takes no parameter",
                                 parameter="groups")
    resolved = {}
    for act in choices:
        spec = get_activation(act)
        if spec.param is None:
            continue
        if act in ranges:
            resolved[act] = _range(ranges[act], f"{where}.ranges.{act}")
        elif act in defaults:
            resolved[act] = defaults[act]
        else:
            resolved[act] = FloatRange(low=spec.low, high=spec.high, log=spec.log)
    return tuple(choices), resolved


def resolve_groups(sites: Iterable[Site | str],
                   groups: Mapping[str, Sequence[str] | GroupSpec] | None = None, *,
                   choices: Sequence[str] = DEFAULT_CHOICES,
                   ranges: Mapping[str, FloatRange | tuple[float, float]] | None = None,
                   ) -> list[SiteGroup]:
    """Tie sites into groups by pattern; every other site is a group of its own.

    Args:
        sites: The model's sites (a ``SiteReport``, ``Site`` objects or their names), input
            side first.
        groups: Group name -> its patterns, or a ``GroupSpec`` with its own choices and
            ranges.
        choices: The activation choices of groups that name none, and of single sites.
        ranges: Their parameter ranges (default: the registry's).

    Returns the groups in the order of their first site. A pattern that matches no site, a
    site two groups pick, or a bad choice or range raises one ``ActsearchError`` line naming
    the group (``groups.<name>``).
    """
    names = [s.name if isinstance(s, Site) else str(s) for s in sites]
    default_choices, default_ranges = _checked(
        "", tuple(choices), {k: _range(v, f"ranges.{k}") for k, v in (ranges or {}).items()},
        {}, "activations")
    owner: dict[str, str] = {}
    declared: dict[str, SiteGroup] = {}
    for group, spec in (groups or {}).items():
        where = f"groups.{group}"
        if not isinstance(spec, GroupSpec):
            if isinstance(spec, str):
                spec = (spec,)
            spec = GroupSpec(tuple(spec))
        if not spec.patterns:
            raise ActsearchError(f"{where}: expected at least one site pattern",
                                 parameter="groups")
        if group in names and not any(_matches(p, group) for p in spec.patterns):
            raise ActsearchError(f"{where}: the name of a site the group does not hold; name "
                                 f"the group otherwise", parameter="groups")
        picked: list[str] = []
        for pattern in spec.patterns:
            hits = [n for n in names if _matches(pattern, n)]
            if not hits:
                raise ActsearchError(f"{where}: pattern {pattern!r} matches no site (actsearch "
                                     f"sites lists them)", parameter="groups")
            picked += [n for n in hits if n not in picked]
        for site in picked:
            if site in owner:
                raise ActsearchError(f"{where}: site {site!r} is in group {owner[site]!r} too; "
                                     f"a site belongs to one group", parameter="groups")
            owner[site] = group
        group_choices, group_ranges = _checked(
            group, spec.choices or default_choices, spec.ranges,
            default_ranges, where)
        declared[group] = SiteGroup(group, tuple(n for n in names if n in picked),
                                    group_choices, group_ranges)
    resolved: list[SiteGroup] = []
    for site in names:
        if site not in owner:
            resolved.append(SiteGroup(site, (site,), default_choices, dict(default_ranges)))
        elif declared[owner[site]].sites[0] == site:
            resolved.append(declared[owner[site]])
    return resolved


def group_layout(groups: Sequence[SiteGroup], chosen: Mapping[str, Layer]) -> dict[str, Layer]:
    """Spread one choice per group (group name -> Layer) to each of its sites."""
    unknown = sorted(set(chosen) - {g.name for g in groups})
    if unknown:
        raise ActsearchError(f"layout: no group {unknown[0]!r}; groups are: "
                             f"{', '.join(g.name for g in groups)}", parameter="layout")
    layout: dict[str, Layer] = {}
    for group in groups:
        if group.name not in chosen:
            raise ActsearchError(f"layout: no choice for group {group.name!r}",
                                 parameter="layout")
        for site in group.sites:
            layout[site] = chosen[group.name]
    return layout
