"""The import rules of docs/architecture.md, read from every module's source (lazy imports too).

Each module has a rank; it may import actsearch modules of its own rank or lower. Nothing that
trains or builds models imports Optuna; the modules that the space tools, reports and the
dashboard start from import no torch, directly or through another actsearch module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "actsearch"

# The first matching prefix gives a module's rank (docs/architecture.md, "Import rules").
RANKS = [
    ("actsearch.errors", 0), ("actsearch.stats", 0),
    ("actsearch.models.activations", 1),
    ("actsearch.schema", 2),
    ("actsearch.models", 3), ("actsearch.zoo", 3),
    ("actsearch.training", 4),
    ("actsearch.engine", 5),
    ("actsearch.analysis", 6),
    ("actsearch.faces.cli", 9),
    ("actsearch.faces", 7),
    ("actsearch.api", 8),
    ("actsearch.__main__", 9), ("actsearch", 9),
]
NO_OPTUNA = ("actsearch.models", "actsearch.zoo", "actsearch.training", "actsearch.schema",
             "actsearch.stats", "actsearch.errors")
NO_TORCH = ("actsearch.errors", "actsearch.stats", "actsearch.schema", "actsearch.analysis",
            "actsearch.engine.record", "actsearch.engine.storage")
# The registry names activations for space files and loads torch only to build one: there,
# imports inside functions do not count towards the torch rule.
TORCH_WHEN_CALLED = ("actsearch.models.activations",)


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _rank(module: str) -> int:
    for prefix, rank in RANKS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} has no rank: add it to RANKS and docs/architecture.md")


def _imports(module: str, lazy: bool = True) -> set[str]:
    """Every module the source imports, at the top or (``lazy``) inside functions; never
    those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(MODULES[module].read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` blocks never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
        if not lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from actsearch.x import y` may import the module actsearch.x.y
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if f"{node.module}.{a.name}" in MODULES}
    return found


def _actsearch(imports: set[str]) -> set[str]:
    return {m for m in imports if m in MODULES and m != "actsearch"}


def test_every_module_has_a_rank() -> None:
    for module in MODULES:
        _rank(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_points_up(module: str) -> None:
    up = sorted(m for m in _actsearch(_imports(module)) if _rank(m) > _rank(module))
    assert not up, f"{module} (rank {_rank(module)}) imports {up}, ranked above it"


def _closure(module: str) -> set[str]:
    """The modules ``module`` may load: its imports (lazy ones too), theirs, and so on."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        imports = _imports(current, lazy=current not in TORCH_WHEN_CALLED)
        todo += sorted(_actsearch(imports))
        # A package's __init__ runs before any of its modules.
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))
                 if ".".join(parts[:i]) in MODULES]
    return seen


def _third_party(module: str) -> set[str]:
    return {m.split(".")[0] for c in _closure(module)
            for m in _imports(c, lazy=c not in TORCH_WHEN_CALLED)}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(NO_OPTUNA)))
def test_nothing_that_trains_imports_optuna(module: str) -> None:
    assert "optuna" not in _third_party(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(NO_TORCH)))
def test_space_tools_and_analysis_import_no_torch(module: str) -> None:
    assert "torch" not in _third_party(module)


@pytest.mark.slow  # a child process
def test_the_rules_hold_when_imported() -> None:
    # The same rule at run time: importing the torch-free modules loads no torch.
    code = ("import sys; " + "; ".join(f"import {m}" for m in NO_TORCH)
            + "; assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_the_rules_can_fail() -> None:
    # The reader sees lazy imports inside functions and skips TYPE_CHECKING blocks.
    assert "actsearch.engine.driver" in _imports("actsearch.api")
    assert "actsearch.faces.live" in _imports("actsearch.api")  # imported inside search()
    assert "actsearch.api" not in _imports("actsearch.engine.driver")
    assert _rank("actsearch.faces.report") < _rank("actsearch.api") < _rank("actsearch.faces.cli")
