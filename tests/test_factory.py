"""Model factories named as module:function or path/to/file.py:function."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES

from actsearch.errors import ActsearchError
from actsearch.models.factory import load_factory


def test_a_module_is_imported_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "nets.py").write_text("def make(width=3):\n    return ('net', width)\n")
    assert load_factory("pkg.nets:make", tmp_path)(width=5) == ("net", 5)
    assert load_factory("pkg/nets.py:make", tmp_path)() == ("net", 3)


def test_the_same_module_name_in_two_folders_is_two_modules() -> None:
    resnet = load_factory("model:make_model", EXAMPLES / "resnet_digits")
    gated = load_factory("model:make_model", EXAMPLES / "gated")
    assert type(resnet()).__name__ == "ResNetDigits" and type(gated()).__name__ == "GatedNet"


@pytest.mark.parametrize(("spec", "message"), [
    ("model", "^factory 'model': expected 'module:function' or 'path/to/file.py:function'$"),
    ("model:", "^factory 'model:': expected"),
    ("a b:make", "^factory 'a b:make': expected"),
    ("nowhere:make", "^factory 'nowhere:make': no module 'nowhere' in "),
    ("nowhere.py:make", "^factory 'nowhere.py:make': no file "),
    ("model:make", "^factory 'model:make': module 'model' has no 'make'; it defines: "
                   "BasicBlock, ResNetDigits, make_model$"),
    ("model:torch", "^factory 'model:torch': 'torch' is a module, not a function$"),
])
def test_a_bad_factory_is_one_line(spec: str, message: str) -> None:
    with pytest.raises(ActsearchError, match=message) as info:
        load_factory(spec, EXAMPLES / "resnet_digits")
    assert "\n" not in str(info.value)


def test_the_users_own_errors_keep_their_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import not_installed_anywhere\n")
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere"):
        load_factory("broken:make", tmp_path)
    (tmp_path / "raises.py").write_text("def make():\n    raise RuntimeError('my bug')\n")
    with pytest.raises(RuntimeError, match="my bug"):
        load_factory("raises:make", tmp_path)()


def test_an_installed_package_is_imported_once_from_any_folder(tmp_path: Path) -> None:
    # The shipped models' factories live in actsearch itself: naming one from a space file's
    # folder must use the package already loaded, not a second copy of it (whose classes,
    # ActsearchError among them, would be other classes).
    import actsearch.errors

    factory = load_factory("actsearch.zoo.resnet:resnet1d", tmp_path)
    with pytest.raises(actsearch.errors.ActsearchError, match="model.kwargs.norm"):
        factory(norm="layer")
    assert sys.modules["actsearch.errors"] is actsearch.errors
