"""The README's code is the code of files that tests run: each python or yaml fence stands
under an ``<!-- include: PATH -->`` line and equals that file; the file itself is run here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

_INCLUDED = re.compile(r"^<!-- include: (\S+) -->\n```\w*\n(.*?)^```$", re.M | re.S)


def test_readme_code_is_included_from_files() -> None:
    text = README.read_text(encoding="utf-8")
    included = _INCLUDED.findall(text)
    assert included, "the README includes no file"
    for path, code in included:
        assert code == (REPO / path).read_text(encoding="utf-8"), \
            f"README.md: the block under include: {path} differs from the file; copy it again"
    # Every code fence (not shell commands, which are indented) is an included one.
    assert len(re.findall(r"^```\w", text, re.M)) == len(included)


@pytest.mark.slow
def test_own_model_example_runs(tmp_path: Path) -> None:
    # As a user runs it, from a folder of their own; no latency timing, to stay short.
    done = subprocess.run([sys.executable, str(REPO / "examples" / "own_model.py")],
                          cwd=tmp_path, env={**os.environ, "ACTSEARCH_LATENCY": "off"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    verdict = done.stdout.strip().splitlines()[-1]
    assert re.search(r"no significant difference between|is (higher|lower) than", verdict), \
        done.stdout
    assert (tmp_path / "runs" / "own-model" / "study.db").is_file()
    assert "finalist trial" in done.stdout
