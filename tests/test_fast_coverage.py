"""Every module of actsearch runs in the fast suite (``pytest -m "not slow"``).

The fast suite is what a change is checked with first; a module that only slow tests reach
would break unnoticed there. This test runs the fast suite under coverage and asks of every
``actsearch/**/*.py`` that a line inside one of its functions ran: an import alone runs a
module's ``def`` and ``import`` lines, which says nothing about its code. It is slow itself (it
runs the whole fast suite), so the suite it runs does not include it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

PACKAGE = REPO / "actsearch"


def _not_run(report: dict) -> list[str]:
    """The package's files (relative to the repository) the fast suite did not run: for a
    file with functions, no line inside one ran; for one without (``__main__.py``), no line
    at all. A file without statements (a package's docstring) has nothing to run."""
    files = report["files"]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        entry = files.get(name)
        if entry is None:
            missing.append(f"{name} (not measured)")
            continue
        if entry["summary"]["num_statements"] == 0:
            continue
        bodies = {k: v for k, v in entry["functions"].items() if k}  # "": module level
        if bodies:
            if not any(region["executed_lines"] for region in bodies.values()):
                missing.append(f"{name} (no function ran)")
        elif not entry["executed_lines"]:
            missing.append(f"{name} (never ran)")
    return missing


def test_the_fast_suite_runs_every_module(tmp_path: Path) -> None:
    out = tmp_path / "coverage.json"
    # A coverage run around this one (pytest --cov) must not measure the inner run as well;
    # the data file goes to tmp_path, not into the working tree.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
    env["COVERAGE_FILE"] = str(tmp_path / ".coverage")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider",
         "--cov=actsearch", f"--cov-report=json:{out}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"the fast suite failed:\n{done.stdout[-5000:]}{done.stderr}"
    report = json.loads(out.read_text())
    some = next(iter(report["files"].values()))
    assert "functions" in some, "coverage's JSON report has no function regions (coverage>=7.6)"
    missing = _not_run(report)
    assert not missing, ("modules that no fast test runs (give each a fast test):\n  "
                         + "\n  ".join(missing))
