"""Model factories: ``module:function`` (or ``path/to/file.py:function``) names a function
that builds a model.

The module is imported from a folder (the space file's, or the working directory), put first
on ``sys.path``, so that a user's ``model.py`` beside their space file is found. A mistake in
the name is one ``ActsearchError`` line; an error raised by the user's own module or factory
propagates with its traceback, since that is where they will fix it.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actsearch.errors import ActsearchError
from actsearch.schema.space import IN_PYTHON

__all__ = ["load_factory"]

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _from(module: Any, folder: Path) -> bool:
    """Whether a top-level module was imported from ``folder`` (not from a folder inside it:
    ``a/net.py`` and ``a/b/net.py`` are two modules named ``net``)."""
    file = getattr(module, "__file__", None)
    if file is None:
        return False
    file = Path(file).resolve()
    return (file.parent.parent if file.name == "__init__.py" else file.parent) == folder


def load_factory(spec: str, base_dir: str | Path = ".") -> Callable[..., Any]:
    """The function ``spec`` names: ``pkg.module:function`` imported from ``base_dir``, or
    ``path/to/file.py:function`` (the path relative to ``base_dir``)."""
    module_name, sep, attr = str(spec).rpartition(":")
    expected = "expected 'module:function' or 'path/to/file.py:function'"
    if not sep or not attr.isidentifier() or not module_name:
        raise ActsearchError(f"factory {spec!r}: {expected}")
    if module_name == IN_PYTHON:
        raise ActsearchError(f"factory {spec!r}: given in Python (actsearch.search), so it "
                             f"cannot be imported here; this needs an importable factory: "
                             f"'module:function' in a space file")
    folder = Path(base_dir)
    if module_name.endswith(".py"):
        file = folder / module_name
        if not file.is_file():
            raise ActsearchError(f"factory {spec!r}: no file {file}")
        folder, module_name = file.parent, file.stem
    if not _DOTTED.fullmatch(module_name):
        raise ActsearchError(f"factory {spec!r}: {expected}")
    folder = folder.resolve()
    if not folder.is_dir():
        raise ActsearchError(f"factory {spec!r}: no folder {folder}")
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))
    # The same module name from another folder (two examples' model.py) must not be reused;
    # a module this folder does not hold (an installed package: actsearch.zoo) is imported as
    # it is, never again beside the copy already loaded.
    top = module_name.split(".")[0]
    here = (folder / f"{top}.py").is_file() or (folder / top).is_dir()
    if here and top in sys.modules and not _from(sys.modules[top], folder):
        for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
            del sys.modules[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only a missing module of the name itself is the name's mistake; a missing import
        # inside the user's module is theirs, shown with its traceback.
        if e.name is None or not (module_name == e.name
                                  or module_name.startswith(f"{e.name}.")):
            raise
        raise ActsearchError(f"factory {spec!r}: no module {module_name!r} in {folder}") from None
    function = getattr(module, attr, None)
    if function is None:
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
        listing = f"; it defines: {', '.join(found)}" if found else ""
        raise ActsearchError(f"factory {spec!r}: module {module_name!r} has no {attr!r}"
                             f"{listing}")
    if not callable(function):
        raise ActsearchError(f"factory {spec!r}: {attr!r} is a {type(function).__name__}, "
                             f"not a function")
    return function
