"""Reading a user's YAML or JSON file, and turning a declaration's refusal into one line.

Both file formats (space files, exported configs) are declared as pydantic models; this module
is what they share: the safe YAML loader that refuses a key given twice, and the one function
that words any validation error as ``FILE: FIELD.PATH: expected ..., got ...`` (an
``ActsearchError``, never a traceback). No torch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from actsearch.errors import ActsearchError

__all__ = ["expect", "fail", "found", "load_yaml", "read_document", "validate"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, but a mapping that gives one key twice is refused.

    PyYAML keeps the last value silently; in a space file that hides the line the user edited.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<:" merges, it is no key
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = lines.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {first} and "
                    f"{key_node.start_mark.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, refusing a mapping key given twice (``yaml.YAMLError`` names both
    lines)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def read_document(path: Path, what: str, *, json_too: bool = False) -> Any:
    """The parsed contents of a YAML (or, with ``json_too``, JSON) file; nothing in it runs.

    ``what`` names the file in messages (``space file``, ``config``).
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ActsearchError(f"{path}: cannot read the {what} ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ActsearchError(f"{path}: line {line}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                             f"expected a {what} in YAML{' or JSON' if json_too else ''}"
                             ) from None
    if json_too and path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ActsearchError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    try:
        return load_yaml(text)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}" if mark is not None else "<document>"
        if "given twice" in (e.problem or ""):
            raise ActsearchError(f"{path}: {where}: not valid YAML: {e.problem}") from None
        raise ActsearchError(f"{path}: {where}: YAML tags that construct objects are not allowed "
                             f"in a {what} (not valid YAML: {e.problem})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        # A character the reader refuses (e.g. NUL) has a position, not a mark.
        line = mark.line if mark is not None else text[:getattr(e, "position", 0)].count("\n")
        where = f"line {line + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ActsearchError(f"{path}: {where}: not valid YAML ({problem})") from None


# ----------------------------------------------------------------------------- errors


def fail(message: str, field: str = "") -> PydanticCustomError:
    """An error for a validator to raise: ``message`` about ``field`` (dotted, relative to the
    model whose validator raises it; empty: the model itself)."""
    return PydanticCustomError("actsearch", "{message}", {"message": message, "field": field})


def expect(what: str) -> WrapValidator:
    """A validator that words any refusal of its field as ``expected <what>, got ...``."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("expected", "expected {what}", {"what": what}) from None

    return WrapValidator(wrap)


def found(value: Any) -> str:
    """A value as an error message shows it: its kind, and the value where it is short."""
    kind = {dict: "a mapping", list: "a list", tuple: "a list", str: "a string",
            bool: "a boolean", type(None): "nothing", bytes: "binary data"}.get(
        type(value), type(value).__name__)
    if isinstance(value, (dict, list, tuple, type(None), bytes)):
        return kind
    shown = repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        shown = str(value)
    return f"{kind} {shown}" if len(shown) <= 40 else f"{kind} {shown[:37]}..."


def _number(value: Any) -> str:
    # A number out of range reads best bare (got 0); anything else with its kind.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return found(value)


_TYPES = {"int_type": "int", "int_parsing": "int", "int_from_float": "int",
          "float_type": "float", "float_parsing": "float", "string_type": "str",
          "bool_type": "bool", "bool_parsing": "bool", "list_type": "a list",
          "tuple_type": "a list", "dict_type": "a mapping", "dataclass_type": "a mapping",
          "model_type": "a mapping", "model_attributes_type": "a mapping",
          "dataclass_exact_type": "a mapping"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<="}


def _what(error: dict[str, Any]) -> str:
    """The error's ``expected ..., got ...`` (or its own sentence)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "actsearch":
        return str(ctx["message"])
    if kind == "expected":  # an integer's field: a float is of the wrong kind
        shown = repr(value) if isinstance(value, int) and not isinstance(value, bool) \
            else found(value)
        return f"expected {ctx['what']}, got {shown}"
    if kind == "wrong_type":
        return f"expected {ctx['expected']}, got {found(value)}"
    if kind == "missing":
        return "missing field"
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, got {found(value)}"
    if kind == "literal_error":
        options = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"unknown value {value!r}; expected one of: {options}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        noun = "an integer" if isinstance(value, int) else "a number"
        return f"expected {noun} {_BOUNDS[kind]} {bound:g}, got {_number(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {_number(value)}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"expected at least {n} entr{'y' if n == 1 else 'ies'}, got {len(value)}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown key"
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {found(value)}"


# A key a dotted path can show as it is; any other is quoted: groups[":"].
_PLAIN_KEY = re.compile(r"[\w-]+")


def _path(loc: tuple[Any, ...], document: Any, missing_last: bool) -> str:
    """The dotted path of an error's location in ``document``.

    pydantic's locations also name union members (``depth.int``); only steps that exist in the
    document are kept (a missing key, the last step, exists only in the declaration).
    """
    parts, node = [], document
    for i, step in enumerate(loc):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, (list, tuple)) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif not (missing_last and i == len(loc) - 1):
            continue
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif not _PLAIN_KEY.fullmatch(str(step)):  # a user's odd key (a group named ":")
            parts.append(f"[{json.dumps(str(step))}]")
        else:
            parts.append(f".{step}" if parts else str(step))
    return "".join(parts)


def validate(check: Callable[[Any], Any], document: Any, source: str) -> Any:
    """``check(document)`` (a pydantic validation), its refusal as one ``ActsearchError`` line:
    ``source: field.path: expected ..., got ...``."""
    try:
        return check(document)
    except ValidationError as e:
        # Unions are told apart by the value's kind (no member-by-member refusals): the
        # first error is the first mistake in the document's order.
        error = e.errors(include_url=False)[0]
        where = _path(tuple(error["loc"]), document, error["type"] == "missing")
        field = (error.get("ctx") or {}).get("field", "")
        if field:
            where = f"{where}{'' if field.startswith('[') else '.'}{field}" if where else field
        raise ActsearchError(f"{source}: {where or '<top level>'}: {_what(error)}") from None
