"""Exporting a factory model's study (schema 2) and loading it back, trusted or refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from conftest import EXAMPLES, copy_export, edit_yaml, with_train

import actsearch
from actsearch.engine.export import export_configs, load_model, read_config, train_config
from actsearch.engine.storage import space_of_study
from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.faces.cli import main
from actsearch.models.custom import with_sites
from actsearch.models.layout import candidate_from_params
from actsearch.schema.config import FACTORY_SCHEMA
from actsearch.training.data import study_data, to_device
from actsearch.training.fit import fit, recipe_for


def _study(example: str, folder: Path) -> optuna.Study:
    space = with_train(EXAMPLES / example / "space.yaml", epochs=1)
    return actsearch.search(space, trials=4, finalists=0, progress=False, runs_dir=folder).study


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, Path]:
    """A tiny search of examples/gated and its best config exported with weights."""
    folder = tmp_path_factory.mktemp("gated")
    study = _study("gated", folder)
    [config] = export_configs(study, out_dir=folder / "out", weights=True, device="cpu")
    return study, config


@pytest.fixture
def config(gated: tuple[optuna.Study, Path], tmp_path: Path) -> Path:
    """A private copy of the exported config and its weights, free to be spoiled."""
    return copy_export(gated[1], tmp_path)


def _trial_model(study: optuna.Study, number: int) -> torch.nn.Module:
    """The trial's model trained again as a search trains it (independently of export)."""
    space = space_of_study(study)
    dataset = study_data(space.data, study.user_attrs["seed"])
    space = with_sites(space, torch.as_tensor(dataset.x_train[:2]))
    trial = study.trials[number]
    candidate = candidate_from_params(trial.params, space)
    torch.manual_seed(trial.user_attrs["seed"])
    model = space.custom.build(candidate.layout)
    result = fit(model, to_device(dataset, "cpu"), recipe_for(space, candidate),
                 trial.user_attrs["seed"])
    assert result.history[-1].val_acc == trial.value
    return model.eval()


def _refusal(path: Path, flag: str = "`trust_code`") -> str:
    # The library names the parameter; the CLI says its flag.
    return (f"{path}: model.factory: this config runs the code of "
            f"{EXAMPLES / 'gated' / 'model.py'}:make_model; pass {flag} if you trust it")


def test_the_config_names_the_factory_its_sites_and_groups(
        gated: tuple[optuna.Study, Path]) -> None:
    study, path = gated
    document = yaml.safe_load(path.read_text())
    assert document["schema_version"] == FACTORY_SCHEMA
    assert document["model"]["factory"] == f"{EXAMPLES / 'gated' / 'model.py'}:make_model"
    assert document["model"]["kwargs"] == {"features": 64, "width": 32, "depth": 3}
    assert document["data"]["factory"] == f"{EXAMPLES / 'digits.py'}:flat"
    groups = document["groups"]
    assert set(groups) == {"stem_act", "signal", "gates"}
    # Every site is in the map, with its group's choice (and an elu's alpha) from the trial.
    params = study.trials[document["provenance"]["trial"]].params
    for group, sites in groups.items():
        for site in sites:
            entry = document["sites"][site]
            assert entry["activation"] == params[f"act:{group}"]
            if entry["activation"] == "elu":
                assert entry["alpha"] == params[f"elu_alpha:{group}"]
    assert len(document["sites"]) == sum(map(len, groups.values()))


def test_load_model_with_trust_gives_the_trials_model(gated: tuple[optuna.Study, Path]) -> None:
    study, path = gated
    loaded = load_model(path, trust_code=True)
    expected = _trial_model(study, yaml.safe_load(path.read_text())["provenance"]["trial"])
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(loaded(x), expected(x))
    assert str(read_config(path).layout) == study.trials[
        yaml.safe_load(path.read_text())["provenance"]["trial"]].user_attrs["layout"]


def test_a_factory_config_is_refused_without_trust(config: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for loader in (load_model, train_config):
        with pytest.raises(ActsearchError) as info:
            loader(config)
        assert str(info.value) == _refusal(config)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"actsearch: error: {_refusal(config, '--trust-code')}\n"


def test_actsearch_train_trust_code_reproduces_the_trial(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config), "--trust-code", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    val_acc = yaml.safe_load(config.read_text())["metrics"]["val_acc"]
    assert f"validation {val_acc:.4f}" in out and "test accuracy" in out


def test_a_weights_file_that_does_not_fit_is_one_line(config: Path) -> None:
    # Another network than the weights'.
    edit_yaml(config, lambda d: d["model"]["kwargs"].update(width=16))
    with pytest.raises(ActsearchError, match=r"weights\.file: .* has shape") as info:
        load_model(config, trust_code=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d, tmp: d["model"].update(factory=f"{tmp / 'three.py'}:make"),
     r"model\.factory: '.*three\.py:make' returned int, expected a torch nn\.Module"),
    (lambda d, tmp: d["sites"].update({"no.such.site": {"activation": "relu"}}),
     r"no\.such\.site"),
])
def test_a_model_the_config_cannot_build_is_one_line_naming_it(config: Path, tmp_path: Path,
                                                               change, message: str) -> None:
    # Built through build_candidate, as every candidate is; the message names the config.
    (tmp_path / "three.py").write_text("def make(**kwargs):\n    return 3\n")
    document = yaml.safe_load(config.read_text())
    change(document, tmp_path)
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    for loader in (load_model, train_config):
        with pytest.raises(ActsearchError, match=rf"^{config}: .*{message}") as info:
            loader(config, trust_code=True)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["model"].update(init="sometimes"), r"model\.init"),
    (lambda d: d["model"].pop("factory"), r"model\.factory: missing field"),
    (lambda d: d["model"].update(input_shape=[0]), r"model\.input_shape"),
    (lambda d: d["sites"]["stem_act"].update(activation="nope"), r"sites\.stem_act\.activation"),
    (lambda d: d.update(sites={}), r"sites"),
    (lambda d: d.update(layers=[]), r"layers: unknown key"),
])
def test_a_bad_field_of_a_schema_2_config_is_one_line_naming_it(config: Path, change,
                                                                field: str) -> None:
    edit_yaml(config, change)
    with pytest.raises(ActsearchError, match=rf"^{config}: {field}") as info:
        read_config(config)  # validation runs no code, trusted or not
    assert "\n" not in str(info.value)


@pytest.mark.slow  # torch.onnx.export(dynamo=True): torch.compile's tracer
def test_onnx_of_a_functional_sites_model_matches_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    study = _study("functional_mlp", tmp_path)
    [path] = export_configs(study, out_dir=tmp_path / "out", fmt="onnx", device="cpu")
    onnx = read_config(path).onnx
    assert onnx is not None and onnx.is_file()
    # The model with its functional sites rewritten is a torch.fx GraphModule; without
    # weights, an untrained one (which load_model says).
    with pytest.warns(ActsearchWarning, match=r"no weights: .*\.pt not found"):
        model = load_model(path, trust_code=True)
    assert isinstance(model, torch.fx.GraphModule)
    # No weights file: the ONNX model is the trained one, so compare against a retrain.
    trained = _trial_model(study, yaml.safe_load(path.read_text())["provenance"]["trial"])
    x = torch.randn(7, 64, generator=torch.Generator().manual_seed(2))
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        want = trained(x).numpy()
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_data_factory_takes_no_other_data_setting(config: Path) -> None:
    edit_yaml(config, lambda d: d["data"].update(val_fraction=0.3))
    with pytest.raises(ActsearchError, match=rf"^{config}: data\.val_fraction: unknown key"):
        read_config(config)
