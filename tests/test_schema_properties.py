"""Property-based tests of the declared formats (hypothesis).

Documents made by mutating valid ones (a wrong type, a missing or unknown key, a number out of
range, NaN or infinity, nesting where a scalar belongs, a key given twice, binary junk) raise
nothing but ``ActsearchError``, whose one line names the file and a field; valid documents
round-trip (load -> document -> load gives the same space).
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.schema.config import read_config_file
from actsearch.schema.space import list_shipped_spaces, load_space, parse_space, space_to_document

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Examples per property: 400 in the full run, 100 in the fast loop (tests/conftest.py).
SETTINGS = settings(deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# Valid documents to start from: each shipped space's and each stored one's.
SPACES = [space_to_document(s) for s in list_shipped_spaces()] + [
    json.loads(p.read_text()) for p in sorted((FIXTURES / "space-documents").glob("*.json"))]
CONFIGS = [yaml.safe_load(p.read_text()) for p in sorted((FIXTURES / "v1-configs").glob("*"))
           if p.suffix in (".yaml", ".json")]
# ``SOURCE: FIELD: ...`` where FIELD is a dotted path (with [i] indices and ["odd key"]s) or
# <top level>.
LINE = re.compile(r"^(?P<source>[^:]+): (?P<field><top level>|line \d+|"
                  r"(?:[\w.\[\]-]|\[\"(?:[^\"\\]|\\.)*\"\])+): \S.*$")

JUNK = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.binary(max_size=8), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0, -1, 10**12, 1e300, "",
                     "same", "auto", [], {}]))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a document (mappings and lists), the root excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[dict[str, Any]]) -> tuple[Any, tuple[Any, ...]]:
    """A valid document with one mutation, and the path it touched."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    path = draw(st.sampled_from(_paths(document)))
    *parents, key = path
    node = document
    for p in parents:
        node = node[p]
    kind = draw(st.sampled_from(["replace", "delete", "unknown", "nest", "wrap"]))
    if kind == "replace":
        node[key] = draw(JUNK)
    elif kind == "delete":
        del node[key]
    elif kind == "unknown" and isinstance(node, dict):
        unknown = draw(st.text(min_size=1, max_size=8))
        node[unknown] = draw(JUNK)
        path = (*parents, unknown)
    elif kind == "nest":  # a mapping where a scalar (or anything) belongs
        node[key] = {"value": node[key]}
    else:
        node[key] = [node[key], node[key]]
    return document, path


def _check_refusal(message: str, source: str, touched: tuple[Any, ...] = ()) -> None:
    assert "\n" not in message
    match = LINE.match(message)
    assert match, message
    assert match["source"] == source
    if touched:  # the field named is in the section the mutation touched, or checks across
        top = match["field"].split(".")[0].split("[")[0]
        assert top in (str(touched[0]), "<top level>", *ACROSS), message


# Checks across sections name the field they are about: a CNN's shape against the data, the
# number of layers against the depth, groups and claims that need a factory model.
ACROSS = ("model", "architecture", "layers", "groups", "claims")


def _parse_quietly(document: Any, source: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ActsearchWarning)
        return parse_space(document, source)


@SETTINGS
@given(mutated(SPACES))
def test_a_mutated_space_is_read_or_refused_in_one_line(case: tuple[Any, tuple]) -> None:
    document, touched = case
    try:
        space = _parse_quietly(document, "space.yaml")
    except ActsearchError as e:
        _check_refusal(str(e), "space.yaml", touched)
    else:  # what it accepted, it writes back and reads again as the same space
        assert _parse_quietly(space_to_document(space), "space.yaml") == space


@SETTINGS
@given(mutated(CONFIGS), st.sampled_from([".yaml", ".json"]))
def test_a_mutated_config_is_read_or_refused_in_one_line(tmp_path_factory, case, suffix) -> None:
    document, touched = case
    path = tmp_path_factory.mktemp("c") / f"c{suffix}"
    try:
        text = json.dumps(document) if suffix == ".json" else yaml.safe_dump(document)
    except (TypeError, ValueError):  # bytes have no JSON
        return
    path.write_text(text)
    try:
        read_config_file(path)
    except ActsearchError as e:
        _check_refusal(str(e), str(path), touched)


@SETTINGS
@given(st.sampled_from(SPACES), st.data())
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path_factory, document,
                                                        data) -> None:
    lines = yaml.safe_dump(document, sort_keys=False).splitlines()
    # A line that starts a key of a mapping ("  key: ..."), given again right after itself.
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_]\w*:", line)]
    i = data.draw(st.sampled_from(keyed))
    key = lines[i].split(":")[0].strip()
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    extra = f"{indent}{key}: 1"
    path = tmp_path_factory.mktemp("s") / "space.yaml"
    path.write_text("\n".join([*lines[:i], extra, *lines[i:]]) + "\n")
    with pytest.raises(ActsearchError) as info:
        load_space(path)
    message = str(info.value)
    _check_refusal(message, str(path))
    assert f"key {key!r} is given twice (lines {i + 1} and " in message, message


@SETTINGS
@given(st.binary(min_size=1, max_size=200))
def test_binary_junk_is_refused_in_one_line(tmp_path_factory, junk: bytes) -> None:
    path = tmp_path_factory.mktemp("j") / "junk.yaml"
    path.write_bytes(junk)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ActsearchWarning)
            load_space(path)
    except ActsearchError as e:
        _check_refusal(str(e), str(path))


# ----------------------------------------------------------------------- valid documents

VALID = st.fixed_dictionaries({
    "name": st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True),
    "description": st.text(max_size=20),
    "data": st.fixed_dictionaries({
        "name": st.sampled_from(["mnist1d", "digits", "synthetic"]),
        "val_fraction": st.floats(0.05, 0.5), "test_fraction": st.floats(0.05, 0.5),
        "samples": st.integers(100, 5000)}),
    "model": st.fixed_dictionaries({
        "family": st.just("mlp"), "width": st.integers(1, 512),
        "depth": st.one_of(st.integers(1, 6), st.integers(1, 3).map(
            lambda low: {"low": low, "high": low + 2})),
        "norm": st.one_of(st.sampled_from(["none", "batch", "layer"]), st.lists(
            st.sampled_from(["none", "batch", "layer"]), min_size=1, max_size=3, unique=True)),
        "dropout": st.floats(0.0, 0.9)}),
    "activations": st.lists(st.sampled_from(["relu", "elu", "selu", "gelu", "leaky_relu"]),
                            min_size=1, max_size=5, unique=True).map(
        lambda choices: {"choices": choices}),
    "train": st.fixed_dictionaries({
        "lr": st.one_of(st.floats(1e-5, 1.0), st.floats(1e-5, 1e-3).map(
            lambda low: {"low": low, "high": low * 10, "log": True})),
        "batch_size": st.integers(1, 256), "epochs": st.integers(1, 50),
        "optimizer": st.sampled_from(["adam", "adamw", "sgd"])}),
    "budget": st.fixed_dictionaries({"trials": st.integers(1, 500)},
                                    optional={"timeout": st.floats(1.0, 1e4)}),
    "population": st.one_of(st.just("auto"), st.integers(1, 64)),
    "objectives": st.lists(st.sampled_from(["latency", "throughput", "dead_units"]),
                           unique=True, max_size=3).map(lambda rest: ["accuracy", *rest]),
})


@SETTINGS
@given(VALID)
def test_valid_documents_round_trip(document: dict[str, Any]) -> None:
    space = _parse_quietly(document, "space.yaml")
    written = space_to_document(space)
    again = _parse_quietly(json.loads(json.dumps(written)), "space.yaml")
    assert again == space
    assert space_to_document(again) == written
