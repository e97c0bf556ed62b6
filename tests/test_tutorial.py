"""The tutorial page runs as written: its code blocks, taken from docs/tutorial.md itself.

Fences marked ``.file`` are written to their ``title``, fences marked ``.run`` are run (bash or
python) in a fresh folder in page order, and a ``.output`` fence right after a run is checked
against what that run printed: its lines in order, ``...`` alone standing for any lines and
within a line for any text (numbers that differ between machines).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.md"

_FENCE = re.compile(r"^```(\{[^}\n]*\}|[\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass
class Block:
    language: str
    classes: set[str]
    title: str | None
    text: str


def fences(markdown: str) -> list[Block]:
    """Every fenced code block with its language, classes and title (``{.python .file
    title="model.py"}``)."""
    blocks = []
    for match in _FENCE.finditer(markdown):
        info, text = match.group(1), match.group(2)
        if info.startswith("{"):
            title = re.search(r'title="([^"]*)"', info)
            classes = re.findall(r"(?:^|\s|\{)\.([\w-]+)", re.sub(r'\w+="[^"]*"', "", info))
            language, rest = (classes[0], set(classes[1:])) if classes else ("", set())
            blocks.append(Block(language, rest, title.group(1) if title else None, text))
        else:
            blocks.append(Block(info, set(), None, text))
    return blocks


def matches(expected: str, printed: str) -> str | None:
    """None when ``printed`` holds the expected lines in order (whitespace runs folded,
    ``...`` a wildcard); else the first expected line not found."""
    def fold(line: str) -> str:
        return " ".join(line.split())

    lines = [fold(line) for line in printed.splitlines()]
    at = 0
    for want in expected.splitlines():
        want = fold(want)
        if want in ("", "..."):
            continue
        pattern = re.compile(".*?".join(re.escape(part) for part in want.split("...")))
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


def test_output_matching_is_strict_where_the_page_is() -> None:
    printed = "a 1\nb 2.5 x\nc\n"
    assert matches("a 1\n...\nc", printed) is None
    assert matches("b ... x", printed) is None
    assert matches("c\na 1", printed) == "a 1"  # order matters
    assert matches("b 3 x", printed) == "b 3 x"
    blocks = fences('```{.python .file title="m.py"}\nx = 1\n```\n\n```bash\nls\n```\n')
    assert [(b.language, b.classes, b.title, b.text) for b in blocks] == [
        ("python", {"file"}, "m.py", "x = 1\n"), ("bash", set(), None, "ls\n")]


def test_the_page_marks_what_it_runs() -> None:
    blocks = fences(TUTORIAL.read_text(encoding="utf-8"))
    assert {b.title for b in blocks if "file" in b.classes} == {"model.py", "space.yaml"}
    runs = [b for b in blocks if "run" in b.classes]
    assert len(runs) >= 5 and all(b.language in ("bash", "python") for b in runs)
    for i, block in enumerate(blocks):
        if "output" in block.classes:
            assert "run" in blocks[i - 1].classes, f"an output fence follows no run: {block}"


@pytest.mark.slow
def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    blocks = fences(TUTORIAL.read_text(encoding="utf-8"))
    # The installed console script, from the venv running the tests, and no latency timing
    # (the tutorial passes --latency off; the Python search inherits this).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ACTSEARCH_LATENCY": "off", "PYTHONPATH": str(tmp_path)}
    printed = ""
    for i, block in enumerate(blocks):
        if "file" in block.classes:
            (tmp_path / block.title).write_text(block.text, encoding="utf-8")
        elif "run" in block.classes:
            command = (["bash", "-euo", "pipefail", "-c", block.text]
                       if block.language == "bash" else [sys.executable, "-c", block.text])
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=600)
            printed = done.stdout + done.stderr
            assert done.returncode == 0, f"block {i} failed:\n{block.text}\n{printed}"
        elif "output" in block.classes:
            missing = matches(block.text, printed)
            assert missing is None, f"block {i}: not printed: {missing!r}\n--- printed:\n{printed}"
