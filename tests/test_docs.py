"""The documentation site: its generated reference parts cover what the code declares.

``docs_hooks.py`` (the MkDocs hook) renders the CLI reference from the argument parser and the
space-file field tables from the JSON Schema at build time. These tests call its renderers
without MkDocs and compare against the parser and the schema themselves, so a new flag or field
that the renderers drop fails here. The build itself (``mkdocs build --strict``) is marked slow
and needs the ``docs`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from actsearch.faces.cli import build_parser
from actsearch.schema.space import field_table, space_json_schema

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def _load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: sub for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()}


def _section(text: str, heading: str) -> str:
    """The text under a heading ``heading`` up to the next heading of that level."""
    found = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    assert found, f"no heading {heading!r}"
    end = re.compile(rf"^{found.group(1)} ", re.M).search(text, found.end())
    return text[found.start():end.start() if end else len(text)]


def _first_cells(section: str) -> list[str]:
    """The first cell of every table row, as the reader sees it (code span unwrapped)."""
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", section, re.M)]


def _expected(sub: argparse.ArgumentParser) -> list[str]:
    """Every argument of a subcommand a user can pass: each flag, or a positional's name."""
    names = []
    for action in sub._actions:
        if action.help == argparse.SUPPRESS or "-h" in action.option_strings:
            continue
        if action.option_strings:
            names.extend(action.option_strings)
        else:
            names.append(action.metavar or action.dest)
    return names


def _assert_covers(parser: argparse.ArgumentParser, text: str) -> None:
    subs = _subparsers(parser)
    assert subs, "the parser has no subcommands"
    for name, sub in subs.items():
        section = _section(text, f"{parser.prog} {name}")
        cells = ", ".join(_first_cells(section))
        for flag in _expected(sub):
            assert re.search(rf"(^|, ){re.escape(flag)}(,|$)", cells), (
                f"{parser.prog} {name}: {flag} is missing from the CLI reference")
        usage = " ".join(sub.format_usage().split())
        assert usage.removeprefix("usage: ").split(" ", 2)[:2] == [parser.prog, name]
        assert " ".join(section.split()).count(f"usage: {parser.prog} {name}") == 1
        if sub.description:
            assert " ".join(sub.description.split()) in " ".join(section.split())
        assert f"[`{name}`](#{parser.prog}-{name})" in text, f"{name} is not in the command table"


def test_cli_reference_covers_every_subcommand_and_option() -> None:
    parser = build_parser()
    _assert_covers(parser, hooks.render_cli(parser))
    # The top-level flags too (--version).
    top = _section(hooks.render_cli(parser), parser.prog)
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}`" in top


def test_cli_reference_follows_the_parser_not_a_list() -> None:
    # A flag and a subcommand added to the parser appear without touching the renderer.
    parser = build_parser()
    sub = _subparsers(parser)["search"]
    sub.add_argument("--brand-new-flag", metavar="X", default=7, help="added <here> | now")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    extra = subparsers.add_parser("brand-new", description="A new command.")
    extra.add_argument("thing", help="its argument")
    extra.add_argument("--hidden", help=argparse.SUPPRESS)
    text = hooks.render_cli(parser)
    _assert_covers(parser, text)
    row = next(line for line in text.splitlines() if "`--brand-new-flag`" in line)
    # Escaped for Markdown: no raw HTML, no extra column.
    assert row == "| `--brand-new-flag` | `X` | `7` | added &lt;here&gt; \\| now |"
    assert "--hidden" not in text


def _rows(text: str) -> set[str]:
    return set(_first_cells(text))


def test_field_table_lists_every_schema_property() -> None:
    schema = space_json_schema()
    rows = _rows(field_table())
    for key, prop in schema["properties"].items():
        assert key in rows, f"{key} is missing from the field table"
        ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("allOf", [])), None)
        if ref is None:
            continue
        section = schema["$defs"][ref.rsplit("/", 1)[1]]
        for sub in section.get("properties", {}):
            assert f"{key}.{sub}" in rows, f"{key}.{sub} is missing from the field table"


def test_nested_field_tables_list_every_other_definition() -> None:
    # The mappings field_table does not expand (ranges, groups, a metric, a model variant).
    schema = space_json_schema()
    assert _rows(hooks.render_space_fields()) == _rows(field_table())
    rendered = hooks.render_nested_fields()
    top = {p.get("$ref", "").rsplit("/", 1)[-1] for p in schema["properties"].values()}
    blocks = rendered.split("\n\n")
    nested = [name for name in schema["$defs"] if name not in top]
    assert nested, "expected nested definitions (FloatRange, GroupSection ...)"
    for name in nested:
        definition = schema["$defs"][name]
        lead = hooks._cell(definition.get("description", name)).rstrip(".")
        at = next((i for i, b in enumerate(blocks) if b.startswith(f"**{lead}")), None)
        assert at is not None, f"no table for {name}"
        assert _rows(blocks[at + 1]) == set(definition["properties"]), name


def test_generated_markers_in_the_pages_are_known() -> None:
    found = {m.group(1) for page in DOCS.rglob("*.md")
             for m in hooks.MARKER.finditer(page.read_text(encoding="utf-8"))}
    assert {"cli", "space-fields", "space-nested-fields"} <= found
    assert found <= set(hooks.RENDERERS)
    with pytest.raises(ValueError, match="unknown marker"):
        hooks.expand("<!-- generated: no-such-thing -->")


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings_handlers"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the docs extra (pip install '.[docs]')")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "cli" / "index.html").is_file()
