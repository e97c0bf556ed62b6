"""Groups of sites by glob pattern, with their own choices and ranges."""

from __future__ import annotations

import pytest

from actsearch.errors import ActsearchError
from actsearch.models.groups import GroupSpec, group_layout, resolve_groups
from actsearch.models.layout import Layer
from actsearch.schema.space import FloatRange

GATED = ["stem_act", "blocks.0.act", "blocks.0.gate_act", "blocks.1.act", "blocks.1.gate_act"]
RESNET = ["stem.2", "layers.0.relu#0", "layers.0.relu#1", "layers.1.relu#0", "layers.1.relu#1"]


def test_groups_pick_sites_by_glob_and_the_rest_stay_single() -> None:
    groups = resolve_groups(GATED, {"gates": ["*.gate_act"], "signal": ["blocks.*.act"]})
    assert [(g.name, g.sites) for g in groups] == [
        ("stem_act", ("stem_act",)),
        ("signal", ("blocks.0.act", "blocks.1.act")),
        ("gates", ("blocks.0.gate_act", "blocks.1.gate_act")),
    ]
    assert all(g.choices == ("relu", "elu", "selu") for g in groups)
    assert [g.name for g in resolve_groups(GATED)] == GATED  # default: one choice per site


def test_a_pattern_matches_every_call_of_a_shared_module() -> None:
    groups = resolve_groups(RESNET, {"stem": ["stem.2"], "stage1": ["layers.0.*"],
                                     "relu": ["layers.1.relu"]})
    assert [(g.name, g.sites) for g in groups] == [
        ("stem", ("stem.2",)), ("stage1", ("layers.0.relu#0", "layers.0.relu#1")),
        ("relu", ("layers.1.relu#0", "layers.1.relu#1"))]


def test_per_group_choices_and_ranges() -> None:
    groups = resolve_groups(
        GATED, {"gates": GroupSpec(("*.gate_act",), ("sigmoid", "relu", "elu"),
                                   {"elu": (0.5, 1.5)}),
                "signal": GroupSpec(("blocks.*.act",), ("relu", "elu", "selu", "gelu"))},
        ranges={"elu": FloatRange(low=0.2, high=1.0)})
    by_name = {g.name: g for g in groups}
    assert by_name["gates"].choices == ("sigmoid", "relu", "elu")
    assert by_name["gates"].ranges == {"elu": FloatRange(low=0.5, high=1.5)}
    assert by_name["signal"].choices == ("relu", "elu", "selu", "gelu")
    assert by_name["signal"].ranges == {"elu": FloatRange(low=0.2, high=1.0)}  # the search's
    assert by_name["stem_act"].ranges == {"elu": FloatRange(low=0.2, high=1.0)}
    layout = group_layout(groups, {"gates": Layer("sigmoid"), "signal": Layer("elu", 0.7),
                                   "stem_act": Layer("selu")})
    assert layout["blocks.1.gate_act"] == Layer("sigmoid")
    assert layout["blocks.0.act"] == layout["blocks.1.act"] == Layer("elu", 0.7)
    assert len(layout) == len(GATED)


@pytest.mark.parametrize(("groups", "message"), [
    ({"stage9": ["layers.9.*"]}, r"^groups.stage9: pattern 'layers.9.\*' matches no site"),
    ({"a": ["layers.0.*"], "b": ["*.relu#1"]},
     r"^groups.b: site 'layers.0.relu#1' is in group 'a' too"),
    ({"gates": GroupSpec(("stem.2",), ("sigmoid", "rleu"))},
     r"^groups.gates.choices\[1\]: unknown activation 'rleu'"),
    ({"gates": GroupSpec(("stem.2",), ("relu",), {"elu": (0.1, 1.0)})},
     r"^groups.gates.ranges.elu: elu is not among the group's choices \(relu\)"),
    ({"gates": GroupSpec(("stem.2",), ("elu",), {"elu": (2.0, 1.0)})},
     r"^groups.gates.ranges.elu: expected \(low, high\)"),
    ({"empty": []}, r"^groups.empty: expected at least one site pattern"),
])
def test_group_mistakes_are_one_line_naming_the_group(groups, message) -> None:
    with pytest.raises(ActsearchError, match=message) as info:
        resolve_groups(RESNET, groups)
    assert "\n" not in str(info.value)


def test_a_layout_must_choose_for_every_group() -> None:
    groups = resolve_groups(RESNET, {"all": ["*"]})
    assert [g.sites for g in groups] == [tuple(RESNET)]
    with pytest.raises(ActsearchError, match="no choice for group 'all'"):
        group_layout(groups, {})
    with pytest.raises(ActsearchError, match="no group 'stem.2'; groups are: all"):
        group_layout(groups, {"all": Layer("relu"), "stem.2": Layer("elu", 1.0)})
