"""MkDocs hooks: the reference parts of the documentation, rendered from the code at build time.

A page asks for a generated part with a marker comment on a line of its own, e.g.
``<!-- generated: cli -->``; ``on_page_markdown`` replaces it with the rendered Markdown before
the page is converted. An unknown marker stops the build, so a typo cannot leave a hole.

The renderers are plain functions (``render_cli``, ``render_space_fields`` ...) that
``tests/test_docs.py`` calls without MkDocs. They read the declarations the code itself uses:
the argument parser (``actsearch.faces.cli.build_parser``), the space files' JSON Schema
(``actsearch.schema.space.space_json_schema`` and ``field_table``), the objectives
(``actsearch.schema.space.OBJECTIVES``), the probes' definitions
(``actsearch.training.probes.METRICS``) and the shipped spaces.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)

# Width of the usage lines in the CLI reference (argparse would take the terminal's).
USAGE_WIDTH = 76


_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _escape_html(text: str) -> str:
    """``<``, ``>`` and ``&`` as entities outside code spans (inside them Markdown shows
    them as they are), so that ``<name>`` in a description is text, not an HTML tag."""
    out, at = [], 0
    for span in _CODE_SPAN.finditer(text):
        out.append(html.escape(text[at:span.start()], quote=False))
        out.append(span.group(0))
        at = span.end()
    out.append(html.escape(text[at:], quote=False))
    return "".join(out)


def _cell(text: str) -> str:
    """Plain text as a Markdown table cell: no raw HTML, no column breaks, one line."""
    return _escape_html(" ".join(str(text).split())).replace("|", "\\|")


def _code(text: str) -> str:
    """Text as a code span (in a table cell too: the tables extension does not split a row
    at a pipe inside a code span, and would show an escaping backslash there)."""
    return f"`{text}`"


# --------------------------------------------------------------------------------- the CLI


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """The parser's subcommands, in the order they were added: (name, parser)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices.items())
    return found


def documented_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The arguments a reader may use: all but ``--help`` and those hidden with SUPPRESS."""
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
            and a.help != argparse.SUPPRESS]


def argument_name(action: argparse.Action) -> str:
    """How a reader types the argument: its flags (``--trials``), or a positional's name."""
    if action.option_strings:
        return ", ".join(action.option_strings)
    return action.metavar if isinstance(action.metavar, str) else action.dest


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _value(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """What follows the flag, as ``--help`` shows it (a metavar, or the choices)."""
    if action.nargs == 0 or not action.option_strings:  # a flag alone; a positional
        return ""
    if action.choices is not None and action.metavar is None:
        return " \\| ".join(_code(choice) for choice in action.choices)
    formatter = argparse.HelpFormatter(parser.prog)
    return _code(formatter._format_args(action, action.dest.upper()))


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if not action.option_strings and action.default is None:
        return "optional"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return _code(action.default)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:  # as argparse expands it: %(default)s, %(prog)s, %%
        text = text % {**vars(action), "prog": parser.prog}
    return _cell(text)


def render_command(name: str, parser: argparse.ArgumentParser, level: int = 2) -> str:
    """One command: heading, description, usage line and a table of its arguments."""
    lines = [f"{'#' * level} {name}", ""]
    if parser.description:
        lines += [_escape_html(" ".join(parser.description.split())), ""]
    lines += ["```text", _usage(parser), "```", ""]
    actions = documented_actions(parser)
    if actions:
        lines += ["| argument | value | default | description |", "| --- | --- | --- | --- |"]
        for action in actions:
            lines.append(f"| {_code(argument_name(action))} | {_value(parser, action)} | "
                         f"{_default(action)} | {_help(parser, action)} |")
        lines.append("")
    return "\n".join(lines)


def render_cli(parser: argparse.ArgumentParser | None = None, level: int = 3) -> str:
    """The CLI reference: the program's own arguments, a table of the subcommands, then
    every subcommand in the order the parser declares them, each under a heading of
    ``level``."""
    if parser is None:
        from actsearch.faces.cli import build_parser

        parser = build_parser()
    parts = [render_command(parser.prog, parser, level)]
    summary = ["| command | what it does |", "| --- | --- |"]
    for name, sub in subcommands(parser):
        anchor = f"{parser.prog}-{name}"
        summary.append(f"| [`{name}`](#{anchor}) | {_cell(sub.description or '')} |")
    parts.append("\n".join(summary) + "\n")
    for name, sub in subcommands(parser):
        parts.append(render_command(f"{parser.prog} {name}", sub, level))
    return "\n".join(parts)


# ------------------------------------------------------------------------- space files


def render_space_fields() -> str:
    """The table of every space-file field: ``field_table`` (the sections and their fields,
    from the JSON Schema the declaration generates)."""
    from actsearch.schema.space import field_table

    # field_table() is plain text in Markdown's table syntax: only <...> needs escaping.
    return "\n".join(_escape_html(line) for line in field_table().splitlines())


def _nested_defs(schema: dict[str, Any]) -> list[str]:
    """The ``$defs`` that ``field_table`` does not expand (those no top-level field refers to
    directly), in the order the fields first use them."""
    defs = schema["$defs"]
    top = {ref for prop in schema["properties"].values() for ref in _refs(prop)}
    order: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    name = value.rsplit("/", 1)[1]
                    if name not in top and name not in order:
                        order.append(name)
                        visit(defs[name])
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    for prop in schema["properties"].values():
        visit(prop)
        for ref in _refs(prop):
            visit(defs[ref])
    return order


def _refs(prop: dict[str, Any]) -> Iterator[str]:
    """The ``$defs`` a property refers to directly (as ``field_table`` follows them)."""
    if "$ref" in prop:
        yield prop["$ref"].rsplit("/", 1)[1]
    for p in prop.get("allOf", []):
        if "$ref" in p:
            yield p["$ref"].rsplit("/", 1)[1]


def _all_refs(node: Any) -> Iterator[str]:
    """Every ``$defs`` name a property's value may be, looking through anyOf/oneOf/allOf (not
    into the properties of a mapping, nor into ``additionalProperties``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[1]
            elif key not in ("properties", "additionalProperties"):
                yield from _all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_refs(item)


def _used_at(schema: dict[str, Any], name: str) -> list[str]:
    """The dotted fields whose value may be the ``$defs`` entry ``name`` (``<name>`` stands
    for any key of a mapping such as ``groups``)."""
    defs = schema["$defs"]
    places: list[str] = []

    def walk(properties: dict[str, Any], prefix: str, seen: frozenset[str]) -> None:
        for key, prop in properties.items():
            extra = prop.get("additionalProperties")
            for where, node in ((f"{prefix}{key}", prop),
                                (f"{prefix}{key}.<name>", extra if isinstance(extra, dict)
                                 else {})):
                refs = list(_all_refs(node))
                if name in refs:
                    places.append(where)
                for ref in refs:
                    if ref not in seen:
                        walk(defs[ref].get("properties", {}), f"{where}.", seen | {ref})

    walk(schema["properties"], "", frozenset())
    return list(dict.fromkeys(places))


def _kind_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "mapping"
    if "enum" in prop:
        return " \\| ".join(map(str, prop["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in prop:
            kinds = [_kind_of(p) for p in prop[key] if p.get("type") != "null"]
            return " or ".join(dict.fromkeys(kinds))
    words = {"integer": "int", "number": "float", "string": "str", "boolean": "bool",
             "object": "mapping", "array": "list"}
    return words.get(prop.get("type", ""), prop.get("type", "any"))


def _bounds_of(prop: dict[str, Any]) -> str:
    words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<",
             "minItems": "items >=", "minProperties": "keys >="}
    return ", ".join(f"{sign} {prop[key]:g}" for key, sign in words.items() if key in prop)


def render_nested_fields() -> str:
    """One table per mapping nested deeper than ``field_table`` goes (``FloatRange``,
    ``GroupSection`` ...), each with the fields that use it."""
    from actsearch.schema.space import space_json_schema

    schema = space_json_schema()
    defs = schema["$defs"]
    parts = []
    for name in _nested_defs(schema):
        section = defs[name]
        places = ", ".join(f"`{p}`" for p in _used_at(schema, name))
        required = set(section.get("required", ()))
        lines = [f"**{_cell(section.get('description', name)).rstrip('.')}.** "
                 f"Used at {places}.", "",
                 "| key | type | default | description |", "| --- | --- | --- | --- |"]
        for key, prop in section.get("properties", {}).items():
            bounds = _bounds_of(prop)
            kind = _kind_of(prop) + (f" ({bounds})" if bounds else "")
            if key in required:
                default = "required"
            elif prop.get("default") is None:
                default = ""
            else:
                default = _code(json.dumps(prop["default"]))
            lines.append(f"| `{key}` | {kind} | {default} | "
                         f"{_cell(prop.get('description', ''))} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def render_objectives() -> str:
    """The objectives a space may name, with their direction and value."""
    from actsearch.schema.space import OBJECTIVES

    lines = ["| objective | direction | value |", "| --- | --- | --- |"]
    for name, (direction, meaning) in OBJECTIVES.items():
        lines.append(f"| `{name}` | {direction} | {_cell(meaning)} |")
    return "\n".join(lines)


def render_shipped_spaces() -> str:
    """The spaces that ship with actsearch (``actsearch spaces`` lists the same)."""
    from actsearch.schema.space import list_shipped_spaces

    lines = ["| space | model | trials | description |", "| --- | --- | --- | --- |"]
    for space in list_shipped_spaces():
        model = space.model.factory or space.model.family
        lines.append(f"| `{space.name}` | {_code(model)} | {space.trials} | "
                     f"{_cell(space.description)} |")
    return "\n".join(lines)


def render_measurements() -> str:
    """The probes every complete trial stores, with their definitions."""
    from actsearch.training.probes import ACCURACY_PROBES, METRICS

    lines = ["| probe | definition |", "| --- | --- |"]
    for name, definition in METRICS.items():
        note = " (measured on accuracy: not with a metric of your own)" \
            if name in ACCURACY_PROBES else ""
        lines.append(f"| `{name}` | {_cell(definition + note)} |")
    return "\n".join(lines)


def render_activations() -> str:
    """The registered activations: module, searched parameter, init, batched form."""
    from actsearch.models.activations import activation_names, get_activation

    lines = ["| name | module | searched parameter (default, range) | init of the layer "
             "feeding it | in a population |", "| --- | --- | --- | --- | --- |"]
    for name in activation_names():
        spec = get_activation(name)
        if spec.param is None:
            param = ""
        else:
            scale = ", log" if spec.log else ""
            param = (f"`{name}_{spec.param}` ({spec.default:g}, {spec.low:g} to "
                     f"{spec.high:g}{scale})")
        batched = "batched" if spec.batched is not None else "one at a time"
        lines.append(f"| `{name}` | `nn.{spec.torch_class}` | {param} | {spec.init} | {batched} |")
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[], str]] = {
    "cli": render_cli,
    "space-fields": render_space_fields,
    "space-nested-fields": render_nested_fields,
    "objectives": render_objectives,
    "shipped-spaces": render_shipped_spaces,
    "measurements": render_measurements,
    "activations": render_activations,
}


def expand(markdown: str, where: str = "a page") -> str:
    """Replace every generated-content marker in ``markdown``."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise ValueError(f"{where}: unknown marker <!-- generated: {name} --> (known: "
                             f"{', '.join(RENDERERS)})")
        return RENDERERS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: expand the page's markers before it is converted."""
    from mkdocs.exceptions import PluginError

    try:
        return expand(markdown, page.file.src_uri)
    except ValueError as e:
        raise PluginError(str(e)) from None
