from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from conftest import DELETE, copy_export, edit_yaml, search, space_document
from optuna.trial import TrialState

from actsearch.engine.export import (
    SCHEMA_VERSION,
    export_configs,
    load_model,
    read_config,
    select_trials,
    train_config,
)
from actsearch.engine.storage import load_run, space_of_study
from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.faces.cli import main
from actsearch.models.build import build_model
from actsearch.models.layout import candidate_from_params
from actsearch.training.data import load_data, to_device
from actsearch.training.fit import fit, recipe_for

KEY_ORDER = ["schema_version", "architecture", "layers", "recipe", "data", "metrics",
             "provenance"]

# A smaller space than conftest's, shared by the bad-file tests through one module-scoped
# export (function-scoped write_space cannot feed a module-scoped fixture).
SMALL_SPACE = space_document({
    "name": "small", "description": DELETE, "data.samples": 300, "model.width": 8,
    "train.epochs": 2, "train.schedule": DELETE, "pruner": {"name": "none"},
    "sampler": DELETE, "budget.trials": 3})


def _retrained_trial_model(study: optuna.Study,
                           trial: optuna.trial.FrozenTrial) -> torch.nn.Module:
    """The trial's model, trained again the way a search trains it (independently of export)."""
    space = space_of_study(study)
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    candidate = candidate_from_params(trial.params, space)
    torch.manual_seed(trial.user_attrs["seed"])
    model = build_model(space.model, candidate.layout, data.input_shape, data.n_classes,
                        candidate.norm)
    result = fit(model, data, recipe_for(space, candidate), trial.user_attrs["seed"])
    assert result.history[-1].val_acc == trial.value
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, Path]:
    """A finished tiny study and its best config exported with weights."""
    # The CLI's layout: runs/<study>/study.db
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    folder.mkdir()
    space_path = folder / "small.yaml"
    space_path.write_text(yaml.safe_dump(SMALL_SPACE))
    study = search(space_path, f"sqlite:///{folder}/study.db", 3, "tiny")
    [config] = export_configs(study, top=1, out_dir=folder / "out", weights=True, device="cpu")
    return study, config


@pytest.fixture
def config(tiny: tuple[optuna.Study, Path], tmp_path: Path) -> Path:
    """A private copy of the exported config and its weights, free to be spoiled."""
    return copy_export(tiny[1], tmp_path)


def _one_line_error(path: Path, match: str, loader=load_model) -> str:
    with pytest.raises(ActsearchError, match=match) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# ------------------------------------------------------------------------ round trips


def test_round_trip_with_weights(write_space, tmp_path: Path) -> None:
    study = search(write_space(), f"sqlite:///{tmp_path}/s.db", 6, "tiny")
    paths = export_configs(study, top=2, out_dir=tmp_path / "out", weights=True, device="cpu")
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)),
                      key=lambda t: (-t.value, t.number))
    assert [p.name for p in paths] == [f"tiny-trial{t.number}.yaml" for t in complete[:2]]
    best = complete[0]

    document = yaml.safe_load(paths[0].read_text())
    assert list(document) == [*KEY_ORDER, "weights"]
    assert list(document["architecture"]) == ["family", "width", "depth", "norm", "dropout",
                                              "kernel_size", "stride", "input_shape",
                                              "n_classes"]
    assert document["metrics"]["val_acc"] == best.value
    assert document["metrics"]["test_acc"] == best.user_attrs["test_acc"]
    assert document["provenance"]["trial"] == best.number
    assert document["provenance"]["seed"] == best.user_attrs["seed"]
    assert document["provenance"]["layout"] == best.user_attrs["layout"]
    assert document["data"]["fingerprint"] == load_data(space_of_study(study).data, 0).fingerprint
    for i, layer in enumerate(document["layers"]):
        assert layer["activation"] == best.params[f"act_{i}"]
        if layer["activation"] == "elu":  # the exact searched alpha, not a rounded display
            assert layer["alpha"] == best.params[f"elu_alpha_{i}"]
    weights = paths[0].with_suffix(".pt")
    assert weights.is_file() and document["weights"]["file"] == weights.name
    state = torch.load(weights, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

    model = load_model(paths[0])
    assert isinstance(model, torch.nn.Sequential) and not model.training
    x = torch.randn(32, 20, generator=torch.Generator().manual_seed(1))
    trial_model = _retrained_trial_model(study, best)
    with torch.no_grad():
        got = model(x)
        want = trial_model(x)
        torch.manual_seed(12345)
        untrained = read_config(paths[0]).build().eval()(x)
    assert torch.equal(got, want)
    assert not torch.allclose(got, untrained)


def test_json_export_without_weights(write_space, tmp_path: Path) -> None:
    study = search(write_space(), f"sqlite:///{tmp_path}/s.db", 4, "tiny")
    [path] = export_configs(study, top=1, out_dir=tmp_path / "out", fmt="json")
    assert path.suffix == ".json" and sorted(p.suffix for p in path.parent.iterdir()) == [".json"]
    document = json.loads(path.read_text())
    assert list(document) == KEY_ORDER
    assert set(document["provenance"]) >= {"study", "trial", "seed", "actsearch", "torch",
                                           "optuna"}
    config = read_config(path)
    assert config.weights is None and str(config.layout) == document["provenance"]["layout"]
    # The config records the trained model's test accuracy: an untrained one says so.
    with pytest.warns(ActsearchWarning, match=r"no weights: .*\.pt not found; the model is "
                      r"untrained"):
        assert isinstance(load_model(path), torch.nn.Sequential)


def test_cnn_with_per_layer_shapes_round_trips(write_space, tmp_path: Path) -> None:
    model = {"family": "cnn1d", "width": 4, "depth": 3, "kernel_size": [5, 3, 3],
             "stride": [2, 1, 1], "padding": [1, 1, "same"]}
    study = search(write_space({"model": model, "train.epochs": 2}),
                   f"sqlite:///{tmp_path}/c.db", 4, "cnn")
    [path] = export_configs(study, top=1, out_dir=tmp_path / "out", weights=True, device="cpu")
    text = path.read_text()
    assert ("  kernel_size: [5, 3, 3]\n  stride: [2, 1, 1]\n  padding: [1, 1, same]\n"
            "  input_shape: [20]\n") in text
    config = read_config(path)
    assert (config.arch.kernel_size, config.arch.stride, config.arch.padding) == (
        (5, 3, 3), (2, 1, 1), (1, 1, "same"))

    loaded = load_model(path)
    convs = [m for m in loaded if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [
        ((5,), (2,), (1,)), ((3,), (1,), (1,)), ((3,), (1,), (1,))]
    x = torch.randn(16, 20, generator=torch.Generator().manual_seed(1))
    trial_model = _retrained_trial_model(study, select_trials(study)[0])
    with torch.no_grad():
        assert torch.equal(loaded(x), trial_model(x))


def test_a_config_without_padding_means_same(config: Path) -> None:
    # A CNN config as written before padding existed (and as written now for same padding).
    def to_cnn(document: dict) -> None:
        document["architecture"].update(family="cnn1d", kernel_size=5, stride=2)
        document.pop("weights")

    edit_yaml(config, to_cnn)
    assert "padding" not in yaml.safe_load(config.read_text())["architecture"]
    with pytest.warns(ActsearchWarning, match="the model is untrained"):
        convs = [m for m in load_model(config) if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((5,), (2,), (2,))] * 2


def test_load_run_from_run_folder(tiny: tuple[optuna.Study, Path]) -> None:
    study, config = tiny
    folder = config.parent.parent
    assert load_run(folder).study_name == study.study_name
    assert load_run(folder / "study.db").study_name == study.study_name
    assert load_run(folder.name, runs_dir=folder.parent).study_name == "tiny"
    with pytest.raises(ActsearchError, match="neither a run folder nor the name of a study"):
        load_run("nosuch", runs_dir=folder)


def test_finalist_metrics_and_multi_objective_best_trials(tiny: tuple[optuna.Study, Path],
                                                          tmp_path: Path) -> None:
    study, _ = tiny
    multi = optuna.create_study(directions=["maximize", "minimize"])
    multi.set_user_attr("seed", study.user_attrs["seed"])
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        multi.add_trial(optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, user_attrs=t.user_attrs,
            values=[t.value, float(t.number)]))
    pareto = {t.number for t in multi.best_trials}
    chosen = select_trials(multi, top=10)
    assert {t.number for t in chosen} == pareto
    multi.set_user_attr("finalists", [{
        "number": chosen[0].number, "seeds": [1, 2], "test_acc": [0.49, 0.51], "mean": 0.5,
        "std": 0.01, "ci_low": 0.41, "ci_high": 0.59}])
    paths = export_configs(multi, space_of_study(study), top=10, out_dir=tmp_path)
    metrics = yaml.safe_load(paths[0].read_text())["metrics"]
    assert metrics["val_acc"] == chosen[0].user_attrs["val_acc"]
    assert metrics["finalist_test_acc_mean"] == 0.5 and metrics["finalist_test_acc_std"] == 0.01
    assert metrics["finalist_test_acc_ci95"] == [0.41, 0.59]
    later = yaml.safe_load(paths[1].read_text())["metrics"] if len(paths) > 1 else {}
    assert "finalist_test_acc_mean" not in later


def test_retraining_that_does_not_reproduce_the_trial_is_refused(
        tiny: tuple[optuna.Study, Path], tmp_path: Path) -> None:
    study, _ = tiny
    best = select_trials(study)[0]
    # A copy of the best trial that claims a validation accuracy it never reached.
    fake = optuna.create_study(direction="maximize")
    fake.set_user_attr("seed", study.user_attrs["seed"])
    fake.add_trial(optuna.trial.create_trial(
        params=best.params, distributions=best.distributions, user_attrs=best.user_attrs,
        value=best.value - 0.01))
    space = space_of_study(study)
    with pytest.raises(ActsearchError, match="retraining on cpu gave val_acc"):
        export_configs(fake, space, out_dir=tmp_path, weights=True, device="cpu")
    with pytest.warns(RuntimeWarning, match="not the trial's"):
        [path] = export_configs(fake, space, out_dir=tmp_path, weights=True, device="cpu",
                                strict=False)
    assert yaml.safe_load(path.read_text())["weights"]["val_acc"] == pytest.approx(best.value)


def test_train_config_reproduces_the_trial_and_other_seeds_come_close(
        write_space, delete, tmp_path: Path) -> None:
    path = write_space({"train.epochs": 8, "pruner.name": "none",
                        "pruner.n_startup_trials": delete, "pruner.n_warmup_steps": delete})
    study = search(path, f"sqlite:///{tmp_path}/s.db", 3, "tiny")
    [config] = export_configs(study, top=1, out_dir=tmp_path / "out")
    metrics = yaml.safe_load(config.read_text())["metrics"]
    same = train_config(config, device="cpu")
    assert same.status == "complete" and same.epochs == 8
    assert same.val_acc == pytest.approx(metrics["val_acc"], abs=1e-6)
    assert same.test_acc == pytest.approx(metrics["test_acc"], abs=1e-6)
    others = [train_config(config, seed=s, device="cpu") for s in (101, 202)]
    assert [o.seed for o in others] == [101, 202]
    assert others[0].test_acc != others[1].test_acc or others[0].val_acc != others[1].val_acc
    for other in others:
        assert abs(other.test_acc - metrics["test_acc"]) < 0.15


# ------------------------------------------------------------------------ ONNX


@pytest.mark.slow  # torch.onnx.export(dynamo=True): torch.compile's tracer
def test_onnx_matches_pytorch(tiny: tuple[optuna.Study, Path], tmp_path: Path) -> None:
    import onnxruntime as ort  # the onnx extra is part of the test extra: no skipping

    study, _ = tiny
    [path] = export_configs(study, top=1, out_dir=tmp_path, fmt="onnx", weights=True,
                            device="cpu")
    config = read_config(path)
    assert config.onnx is not None and config.onnx.is_file()
    session = ort.InferenceSession(str(config.onnx), providers=["CPUExecutionProvider"])
    x = torch.randn(5, *config.input_shape, generator=torch.Generator().manual_seed(3))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = load_model(path)(x).numpy()
    assert got.shape == (5, config.n_classes)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.slow  # torch.onnx.export(dynamo=True): torch.compile's tracer
def test_onnx_disagreement_is_an_error(tiny: tuple[optuna.Study, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort  # the onnx extra is part of the test extra: no skipping

    real_run = ort.InferenceSession.run

    def skewed_run(self, *args, **kwargs):
        return [out + 1e-3 for out in real_run(self, *args, **kwargs)]

    monkeypatch.setattr(ort.InferenceSession, "run", skewed_run)
    with pytest.raises(ActsearchError, match="ONNX Runtime output differs from PyTorch"):
        export_configs(tiny[0], out_dir=tmp_path, fmt="onnx", device="cpu")


def test_onnx_without_the_extra_names_it(tiny: tuple[optuna.Study, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ActsearchError, match=r"missing: onnxscript.*actsearch\[onnx\]"):
        export_configs(tiny[0], out_dir=tmp_path, fmt="onnx", device="cpu")
    assert not list(tmp_path.iterdir())  # refused before writing anything


# ------------------------------------------------------------------------ exporting again


def _export(run: Path, out: Path, *flags: str) -> None:
    # As a user would: the CLI, into the same folder each time.
    assert main(["export", str(run), "--top", "2", "--out", str(out), "--device", "cpu",
                 *flags]) == 0


def _loads_the_trained_model(study: optuna.Study, path: Path) -> None:
    """load_model gives the trial's trained model, without a warning."""
    number = yaml.safe_load(path.read_text())["provenance"]["trial"]
    [trial] = [t for t in study.get_trials() if t.number == number]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ActsearchWarning)
        loaded = load_model(path)
    x = torch.randn(16, 20, generator=torch.Generator().manual_seed(1))
    trained = _retrained_trial_model(study, trial)
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))


def test_exporting_again_keeps_the_weights_an_earlier_export_wrote(
        tiny: tuple[optuna.Study, Path], tmp_path: Path) -> None:
    study, exported = tiny
    run, out = exported.parent.parent, tmp_path / "out"
    _export(run, out, "--weights")
    first = {p.name: yaml.safe_load(p.read_text())["weights"] for p in out.glob("*.yaml")}
    saved = {p.name: p.read_bytes() for p in out.glob("*.pt")}
    assert len(first) == len(saved) == 2
    _export(run, out)  # without --weights: the configs still name them
    _export(run, out, "--format", "json")  # another format beside them names them too
    configs = sorted([*out.glob("*.yaml"), *out.glob("*.json")])
    assert len(configs) == 4
    for path in configs:
        assert yaml.safe_load(path.read_text())["weights"] == first[f"{path.stem}.yaml"]
        _loads_the_trained_model(study, path)
    assert {p.name: p.read_bytes() for p in out.glob("*.pt")} == saved  # nothing rewritten
    assert list(yaml.safe_load(configs[0].read_text()))[-1] == "weights"  # in its place


@pytest.mark.slow  # torch.onnx.export traces with dynamo
def test_exporting_onnx_after_weights_keeps_both(tiny: tuple[optuna.Study, Path],
                                                 tmp_path: Path) -> None:
    study, exported = tiny
    run, out = exported.parent.parent, tmp_path / "out"
    _export(run, out, "--weights")
    _export(run, out, "--format", "onnx")
    _export(run, out)  # and a plain export after both keeps both
    for path in out.glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        assert list(document)[-2:] == ["weights", "onnx"]
        config = read_config(path)
        assert config.weights == path.with_suffix(".pt")
        assert config.onnx == path.with_suffix(".onnx") and config.onnx.is_file()
        _loads_the_trained_model(study, path)


def test_exporting_again_keeps_only_what_is_still_the_trials(tiny: tuple[optuna.Study, Path],
                                                             tmp_path: Path) -> None:
    study, exported = tiny
    run, out = exported.parent.parent, tmp_path / "out"
    _export(run, out, "--weights")
    changed, other = sorted(out.glob("*.yaml"))
    # A weights file that changed since is not the one its config recorded: dropped...
    state = torch.load(changed.with_suffix(".pt"), weights_only=True)
    torch.save({k: v + 1.0 for k, v in state.items()}, changed.with_suffix(".pt"))
    # ...and so are weights recorded for another model under the same name.
    edit_yaml(other, lambda d: d["provenance"].update(seed=d["provenance"]["seed"] + 1))
    _export(run, out)
    for path in (changed, other):
        assert "weights" not in yaml.safe_load(path.read_text())
        with pytest.warns(ActsearchWarning, match=r"\.pt is not named by it"):
            load_model(path)


# ------------------------------------------------------------------------ bad files


def test_unknown_activation(config: Path) -> None:
    edit_yaml(config, lambda d: d["layers"][1].update(activation="swish9"))
    message = _one_line_error(config, r"layers\[1\]\.activation: unknown activation 'swish9'")
    assert "expected one of: relu, elu, selu" in message


def test_negative_alpha(config: Path) -> None:
    edit_yaml(config, lambda d: d["layers"].__setitem__(0, {"activation": "elu", "alpha": -0.5}))
    _one_line_error(config, r"layers\[0\]\.alpha: expected a number > 0, got -0\.5")


@pytest.mark.parametrize(("section", "key"), [
    ("recipe", "lr"), ("architecture", "input_shape"), ("data", "fingerprint"),
    ("architecture", None), ("layers", None), ("schema_version", None)])
def test_missing_fields(config: Path, section: str, key: str | None) -> None:
    edit_yaml(config, lambda d: d[section].pop(key) if key else d.pop(section))
    field = f"{section}.{key}" if key else section
    _one_line_error(config, rf": {field}: missing field")


def test_missing_alpha_of_an_elu_layer(config: Path) -> None:
    edit_yaml(config, lambda d: d["layers"].__setitem__(0, {"activation": "elu"}))
    _one_line_error(config, r"layers\[0\]\.alpha: missing field")


def test_newer_schema_version(config: Path) -> None:
    newer = SCHEMA_VERSION + 1
    edit_yaml(config, lambda d: d.update(schema_version=newer))
    _one_line_error(config, rf"schema_version: written by a newer actsearch \(schema {newer}\)")


@pytest.mark.parametrize(("change", "field", "expected"), [
    ({"padding": -1}, "padding", "expected an integer >= 0 or same, got -1"),
    ({"kernel_size": [3, 3, 3]}, "kernel_size",
     "a list of 2, one per conv layer (depth 2); got a list of 3"),
    ({"padding": 0, "kernel_size": [9, 9], "stride": 2}, "kernel_size",
     "conv layer 2 of 2 has no output (sizes 20 -> 6 -> 0;")])
def test_bad_cnn_shapes(config: Path, change: dict, field: str, expected: str) -> None:
    edit_yaml(config, lambda d: d["architecture"].update(family="cnn1d", **change))
    message = _one_line_error(config, rf": architecture\.{field}: ")
    assert expected in message


def test_unknown_key(config: Path) -> None:
    edit_yaml(config, lambda d: d["recipe"].update(momentum=0.9))
    _one_line_error(config, r"recipe\.momentum: unknown key")


def test_weights_file_with_another_sha256(config: Path) -> None:
    weights = config.with_suffix(".pt")
    state = torch.load(weights, weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0
    torch.save(state, weights)
    _one_line_error(config, r"weights\.file: .*\.pt does not match weights\.sha256")


def test_weights_file_with_other_shapes(config: Path) -> None:
    # The sha256 still matches, but the config now describes a narrower network.
    edit_yaml(config, lambda d: d["architecture"].update(width=4))
    _one_line_error(config, r"weights\.file: .*\.pt: 0\.weight has shape \(8, 20\), "
                    r"the architecture expects \(4, 20\)")


def _one_line_warning(path: Path, match: str) -> torch.nn.Module:
    with pytest.warns(ActsearchWarning, match=match) as caught:
        model = load_model(path)
    [warning] = [w for w in caught if issubclass(w.category, ActsearchWarning)]
    message = str(warning.message)
    assert "\n" not in message and message.startswith(str(path))
    return model


def test_missing_weights_file_builds_an_untrained_model_with_a_warning(config: Path) -> None:
    weights = config.with_suffix(".pt")
    trained = load_model(config)
    weights.unlink()
    model = _one_line_warning(config, rf"weights\.file: {re.escape(str(weights))} not found; "
                              rf"the model is untrained \(the config records the trained "
                              rf"one's: test accuracy \d\.\d{{4}}\)")
    x = torch.randn(8, *read_config(config).input_shape)
    with torch.no_grad():
        assert not model.training and not torch.equal(model(x), trained(x))


def test_metrics_without_weights_build_an_untrained_model_with_a_warning(config: Path) -> None:
    weights = config.with_suffix(".pt")
    edit_yaml(config, lambda d: d.pop("weights"))
    # The weights an earlier export wrote are beside it, but nothing says they are its own.
    _one_line_warning(config, rf"no weights: {re.escape(str(weights))} is not named by it; "
                      r"the model is untrained .*; export it with its weights to load them")
    weights.unlink()
    _one_line_warning(config, rf"no weights: {re.escape(str(weights))} not found; the model is "
                      r"untrained \(the config records the trained one's: test accuracy")


def test_a_config_that_records_no_trained_model_builds_one_quietly(config: Path) -> None:
    edit_yaml(config, lambda d: (d.pop("weights"), d.pop("metrics")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not load_model(config).training


def test_yaml_that_constructs_objects_is_refused(config: Path, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = config.read_text().replace(
        "schema_version: 1", f"schema_version: !!python/object/apply:os.system ['touch {marker}']")
    config.write_text(text)
    _one_line_error(config, r"line 1: YAML tags that construct objects are not allowed")
    _one_line_error(config, "not allowed", loader=train_config)
    assert not marker.exists()


def test_data_set_that_differs_from_the_export(config: Path) -> None:
    edit_yaml(config, lambda d: d["data"].update(samples=320))
    _one_line_error(config, r"data\.fingerprint: the data set differs", loader=train_config)


def test_not_a_mapping_and_not_a_config(config: Path) -> None:
    config.write_text("- just\n- a list\n")
    _one_line_error(config, r"<top level>: expected a mapping, got a list")
    other = config.with_suffix(".txt")
    other.write_text("schema_version: 1\n")
    _one_line_error(other, r"expected a \.yaml, \.yml or \.json config")


@pytest.mark.parametrize("spec", [
    {"name": "mnist1d"}, {"name": "digits"}, {"name": "synthetic", "samples": 600},
    {"name": "npz", "path": "d.npz"}, {"name": "csv", "path": "d.csv", "label": "y"}])
def test_data_section_lists_what_applies_and_reads_back(spec: dict, tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    from actsearch.schema.config import ConfigData, data_document
    from actsearch.schema.space import DataSpec

    written = DataSpec(**{**spec, "path": str(tmp_path / spec["path"])} if "path" in spec
                       else spec)
    document = data_document(written, 3, "f00d")
    assert ("test_fraction" in document) == (spec["name"] != "mnist1d")  # own test split
    assert ("samples" in document) == (spec["name"] == "synthetic")
    read = TypeAdapter(ConfigData).validate_python(document)
    assert (read.spec(tmp_path), read.split_seed, read.fingerprint) == (written, 3, "f00d")


def test_a_schema_1_architecture_names_no_factory(config: Path) -> None:
    # A factory model's config is schema 2, which load_model runs only when trusted.
    edit_yaml(config, lambda d: d["architecture"].update(factory="evil.py:make"))
    _one_line_error(config, r"architecture\.factory: unknown key")
