"""The import rules of docs/architecture.md, read from every module's source (lazy imports too).

Each module has a rank; it may import actsearch modules of its own rank or lower. Nothing that
trains or builds models imports Optuna; the modules that the space tools, reports and the
dashboard start from import no torch, directly or through another actsearch module.
"""

from __future__ import annotations

import ast
import functools
import re
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
# The claims' terms (engine/terms.py) are read by the engine and the report alike: neither
# Optuna nor torch.
NO_OPTUNA = ("actsearch.models", "actsearch.zoo", "actsearch.training", "actsearch.schema",
             "actsearch.stats", "actsearch.errors", "actsearch.engine.terms")
NO_TORCH = ("actsearch.errors", "actsearch.stats", "actsearch.schema", "actsearch.analysis",
            "actsearch.engine.record", "actsearch.engine.storage", "actsearch.engine.terms")
# The analysis is one module per view (docs/architecture.md): none grows past this.
ANALYSIS_MAX_LINES = 400
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


@functools.cache
def _tree(module: str) -> ast.Module:
    # Parsed once per module: the tests below walk the same sources many times.
    return ast.parse(MODULES[module].read_text())


@functools.cache
def _imports(module: str, lazy: bool = True) -> frozenset[str]:
    """Every module the source imports, at the top or (``lazy``) inside functions; never
    those under ``if TYPE_CHECKING:``."""
    tree = _tree(module)
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
    return frozenset(found)


def _actsearch(imports: set[str]) -> set[str]:
    # The top package counts too: it is the public API, ranked with the faces that use it.
    return {m for m in imports if m in MODULES}


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


def _analysis_modules() -> list[str]:
    return [m for m in MODULES if m == "actsearch.analysis" or m.startswith("actsearch.analysis.")]


def test_the_analysis_is_a_package_of_short_modules() -> None:
    modules = _analysis_modules()
    assert MODULES["actsearch.analysis"].name == "__init__.py" and len(modules) > 1
    long = {m: n for m in modules
            if (n := len(MODULES[m].read_text().splitlines())) > ANALYSIS_MAX_LINES}
    assert not long, (f"analysis modules over {ANALYSIS_MAX_LINES} lines: {long}; split them by "
                      f"view (docs/architecture.md)")


def test_the_rules_cover_the_analysis_package() -> None:
    # Every module of the package has the analysis's rank and its no-torch rule, so the
    # parametrized tests above check each one of them.
    for module in _analysis_modules():
        assert _rank(module) == _rank("actsearch.analysis") == 6, module
        assert module.startswith(NO_TORCH), module
    assert "actsearch.analysis.core" in _imports("actsearch.analysis")


# ----------------------------------------------------------------------------- one builder


def _callers(*names: str) -> set[str]:
    """Where actsearch's source calls one of ``names`` (as written: ``build_model`` or
    ``x.build_model``, ``torch.manual_seed``): ``module:function`` of each call, the function
    qualified by its class (``module:<module>`` at the top level)."""
    found = set()
    for module in MODULES:

        def visit(node: ast.AST, scope: list[str], module: str = module) -> None:
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if any(called == n or ("." not in n and called.endswith(f".{n}"))
                       for n in names):
                    found.add(f"{module}:{'.'.join(scope) or '<module>'}")
            inner = scope
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = [*scope, node.name]
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(_tree(module), [])
    return found




def test_build_model_is_called_only_by_the_builder() -> None:
    # A family's network comes from build_candidate (or base_model, a space's model before
    # any layout): no one else tells a family from a factory model.
    callers = _callers("build_model")
    assert callers == {"actsearch.models.build:build_candidate",
                       "actsearch.models.build:base_model"}


def test_start_model_is_the_one_seeded_start() -> None:
    # Seeding the global generator and building: only start_model (trainers, populations,
    # the driver's reference, latency, export's retraining and train_config call it), so
    # every model starts as a trial's did. An exported config's model is built unseeded
    # (load_model: its weights replace the init).
    assert _callers("torch.manual_seed", "torch.random.manual_seed",
                    "torch.cuda.manual_seed", "torch.cuda.manual_seed_all") == {
        "actsearch.training.trainers:start_model"}
    assert _callers("build_candidate") == {"actsearch.training.trainers:start_model",
                                           "actsearch.engine.export.read:ExportedConfig.build"}


def test_the_call_finder_can_fail() -> None:
    # It sees calls by plain name, through a module, and inside methods; not other names.
    assert "actsearch.api:_space_model" in _callers("base_model")
    assert "actsearch.training.batched:StackedPopulation._start" in _callers("start_model")
    assert not _callers("torch.no_such_function")
    # A generator's own seed (fit.Run's data order) is not the global generator's.
    assert "actsearch.training.fit:Run.__init__" in _callers("manual_seed")
    assert "actsearch.training.fit:Run.__init__" not in _callers("torch.manual_seed")


# ----------------------------------------------------------------------------- one pipeline


def test_the_cli_calls_only_the_api() -> None:
    # Flags, exit codes and drawing: the CLI imports the API, the public package (its
    # version, the shipped spaces), the error type and the faces that draw, nothing else.
    assert _actsearch(_imports("actsearch.faces.cli")) == {
        "actsearch", "actsearch.api", "actsearch.errors", "actsearch.faces.report"}


def test_preparing_a_run_happens_in_the_pipeline_only() -> None:
    # Finding a factory model's sites, splitting a named data set and retraining finalists
    # are what the pipeline does for every face; their own modules define them.
    assert _callers("with_sites") == {"actsearch.engine.pipeline:prepare",
                                      "actsearch.engine.pipeline:stored_run",
                                      "actsearch.engine.pipeline:variant_space"}
    assert _callers("load_data") == {"actsearch.engine.pipeline:Prepared.data",
                                     "actsearch.training.data:study_data"}
    assert _callers("run_finalists") == {"actsearch.engine.pipeline:after_search"}


# models/ and zoo/ share a rank and import each other, in these places only (the exception is
# written in docs/architecture.md too): the zoo builds its layers from the registry, layouts
# and sites; the builder and a factory model's groups name the zoo's factories.
MODELS_ZOO = {
    ("actsearch.zoo.layers", "actsearch.models.activations"),
    ("actsearch.zoo.layers", "actsearch.models.layout"),
    ("actsearch.zoo.layers", "actsearch.models.sites"),
    ("actsearch.zoo.mlp", "actsearch.models.layout"),
    ("actsearch.zoo.cnn", "actsearch.models.layout"),
    ("actsearch.models.build", "actsearch.zoo.cnn"),
    ("actsearch.models.build", "actsearch.zoo.mlp"),
    ("actsearch.models.custom", "actsearch.zoo.layers"),
}


def test_models_and_zoo_import_each_other_only_where_the_page_says() -> None:
    def package(module: str) -> str:
        return module.split(".")[1] if module.count(".") else ""

    crossing = {(m, i) for m in MODULES for i in _actsearch(_imports(m))
                if {package(m), package(i)} == {"models", "zoo"}}
    assert crossing == MODELS_ZOO
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module, imported in MODELS_ZOO:
        short = module.removeprefix("actsearch."), imported.removeprefix("actsearch.")
        assert "`{}` -> `{}`".format(*short) in page, (module, imported)


def test_nothing_inside_imports_the_top_package_but_the_cli() -> None:
    # The top package re-exports the public names; a module under it that imported it would
    # point up (and load everything).
    assert {m for m in MODULES if "actsearch" in _imports(m)} <= {
        "actsearch.faces.cli", "actsearch.__main__"}


def test_only_the_cli_speaks_of_flags() -> None:
    # The library names parameters (``trials``); the CLI turns them into its flags.
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    spoken = {m: flag.findall(path.read_text()) for m, path in MODULES.items()
              if m != "actsearch.faces.cli"}
    assert {m: found for m, found in spoken.items() if found} == {}
