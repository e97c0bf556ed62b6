"""Searching your own model and data: factories in a space file, groups, the examples."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest
import torch
import yaml
from conftest import EXAMPLES, with_train
from optuna.trial import TrialState
from torch.utils.data import DataLoader, TensorDataset

import actsearch
from actsearch.engine.export import export_configs, load_model, train_config
from actsearch.engine.record import FINALISTS_ATTR, records
from actsearch.engine.storage import space_of_study
from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.models.custom import with_sites
from actsearch.models.layout import candidate_from_params, uniform_choices
from actsearch.schema.space import (
    DataSpec,
    load_space,
    parse_space,
    space_to_document,
)
from actsearch.training.data import factory_data


@pytest.mark.slow  # end to end, the examples' models
@pytest.mark.parametrize("example", ["resnet_digits", "functional_mlp", "gated"])
def test_each_example_searches_end_to_end(example: str, tmp_path: Path) -> None:
    space = with_train(EXAMPLES / example / "space.yaml", epochs=1)
    result = actsearch.search(space, trials=6, finalists=1, seeds=2, progress=False,
                              runs_dir=tmp_path, report=True)
    groups = result.space.custom.groups
    assert groups, "the factory model's sites were found and grouped"
    trials = result.study.get_trials(deepcopy=False)
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 6
    for trial in trials:
        # One choice per group, named after it, each among the group's own choices.
        acts = {k: v for k, v in trial.params.items() if k.startswith("act:")}
        assert acts == {f"act:{g.name}": acts[f"act:{g.name}"] for g in groups}
        for g in groups:
            assert acts[f"act:{g.name}"] in g.choices
        # The layout is rebuilt from the params alone.
        rebuilt = candidate_from_params(trial.params, result.space)
        assert str(rebuilt.layout) == trial.user_attrs["layout"]
    done = records(t for t in trials if t.state == TrialState.COMPLETE)
    baselines = {t.layout for t in done if t.baseline}
    common = uniform_choices(result.space)[0]
    assert len(baselines) == len(common) and all(t.uniform for t in done if t.baseline)
    finalists = result.study.user_attrs[FINALISTS_ATTR]
    assert finalists and all(len(f["test_acc"]) == 2 for f in finalists)
    assert all(path.is_file() for path in result.report_files)
    assert groups[0].name in result.report_files[0].read_text()


def test_group_choices_and_ranges_hold_and_uniform_baselines_skip_what_a_group_lacks(
        tmp_path: Path) -> None:
    space = with_train(EXAMPLES / "gated" / "space.yaml", epochs=1)
    result = actsearch.search(space, trials=5, finalists=0, progress=False, runs_dir=tmp_path)
    gates = next(g for g in result.space.custom.groups if g.name == "gates")
    assert gates.choices == ("sigmoid", "relu", "elu")
    assert (gates.ranges["elu"].low, gates.ranges["elu"].high) == (0.5, 1.5)
    # selu is not a gate's choice, sigmoid not the others': no uniform baseline of either.
    assert uniform_choices(result.space) == (["relu", "elu"], ["selu", "sigmoid"])
    for trial in result.study.get_trials(deepcopy=False):
        alpha = trial.params.get("elu_alpha:gates")
        assert alpha is None or 0.5 <= alpha <= 1.5


def test_a_factory_search_probes_each_site_and_reports_per_group(tmp_path: Path) -> None:
    space = with_train(EXAMPLES / "gated" / "space.yaml", epochs=1)
    space = dataclasses.replace(space, objectives=(("accuracy", "max"), ("latency", "min")))
    result = actsearch.search(space, trials=5, finalists=0, progress=False, runs_dir=tmp_path,
                              report=True)
    sites = [s for g in result.space.custom.groups for s in g.sites]
    done = records(t for t in result.study.get_trials(deepcopy=False)
                   if t.state == TrialState.COMPLETE)
    assert done
    for record in done:
        probes = record.probes
        for key in ("act_mean", "dead_frac", "grad_norm"):
            assert sorted(probes[key]) == sorted(sites)
        assert list(probes["act_mean"])[0] == "stem_act"  # input side first
        # ReLU is every group's choice: latency is relative to ReLU everywhere, an objective.
        assert probes["lat_b1_rel"] > 0
        assert record.values[1] == probes["lat_b1_rel"]
    heat = result.analysis.heatmap
    assert heat.per_group and heat.labels == ["stem_act", "signal", "gates"]
    assert [s.site for s in result.analysis.sites] == list(done[0].probes["act_mean"])
    report = result.report_files[0].with_suffix(".md").read_text()
    assert "per-group preference" in report and "| gates |" in report
    assert "per site of trial" in report


def test_a_latency_objective_needs_relu_in_every_group(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {factory: 'net:make'}\ndata: {factory: 'net:data'}\n"
                           "activations: {choices: [elu, selu]}\n"
                           "objectives: [accuracy, latency]\n")
    with pytest.raises(ActsearchError, match="latency is relative to ReLU.*group 1 cannot "
                                             "choose relu") as e:
        actsearch.search(load_space(path), trials=2, finalists=0, progress=False,
                         runs_dir=tmp_path / "runs")
    assert "\n" not in str(e.value)


@pytest.mark.slow  # three searches
def test_the_same_seed_gives_the_same_trials_and_a_resume_adds_to_them(tmp_path: Path) -> None:
    space = with_train(EXAMPLES / "functional_mlp" / "space.yaml", epochs=1)
    runs = [actsearch.search(space, trials=4, finalists=0, progress=False,
                             runs_dir=tmp_path / str(i)) for i in range(2)]
    first, second = ([(t.params, t.values) for t in r.study.trials] for r in runs)
    assert first == second
    resumed = actsearch.search(space, trials=6, finalists=0, progress=False,
                               runs_dir=tmp_path / "0")
    assert resumed.finished == 2 and len(resumed.study.trials) == 6
    assert [(t.params, t.values) for t in resumed.study.trials[:4]] == first


def write(folder: Path, text: str, model: str = "") -> Path:
    (folder / "net.py").write_text(model or (
        "import torch\nfrom torch import nn\n\n"
        "def make(width=8):\n"
        "    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))\n\n"
        "def data():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.randn(60, 4, generator=g)\n"
        "    y = (x[:, 0] > 0).long()\n"
        "    return (x[:40], y[:40]), (x[40:], y[40:])\n"))
    path = folder / "s.yaml"
    path.write_text(text)
    return path


def test_factories_are_found_from_the_space_files_folder_and_stored_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "model: {factory: 'net:make', kwargs: {width: 4}}\n"
                           "data: {factory: 'net.py:data'}\n")
    monkeypatch.chdir(tmp_path.parent)  # another working directory
    space = load_space(path)
    document = space_to_document(space)
    assert document["model"] == {"factory": f"{tmp_path / 'net.py'}:make",
                                 "kwargs": {"width": 4}}
    assert document["data"] == {"factory": f"{tmp_path / 'net.py'}:data"}
    assert parse_space(document, "stored").model == space.model
    # No test split: the validation split stands in, and the search says so.
    result = actsearch.search(space, trials=3, finalists=0, progress=False,
                              runs_dir=tmp_path / "runs")
    assert [g.name for g in result.space.custom.groups] == ["1"]
    assert "groups" not in space_to_document(result.space)


@pytest.mark.parametrize(("text", "message"), [
    ("model: {factory: 'net:make', width: 3}", "model.width: a factory model takes no"),
    ("model: {kwargs: {a: 1}}", "model.kwargs: only for a factory model"),
    ("groups: {a: [x]}", "groups: groups tie a factory model's sites"),
    ("data: {factory: 'net:data', name: digits}", "data.name: data.factory makes the splits"),
    ("model: {factory: 'no_colon'}", "model.factory: expected 'module:function'"),
    ("model: {factory: 'net:make'}\ngroups: {g: {sites: [a], choices: [relu], "
     "elu_alpha: {low: 1}}}", "groups.g.elu_alpha: elu is not among the group's choices"),
    ("model: {factory: 'net:make'}\ngroups: {g: {sitez: [a]}}", "groups.g.sitez: unknown key"),
])
def test_a_mistake_in_a_factory_space_is_one_line_naming_the_field(text: str,
                                                                  message: str) -> None:
    with pytest.raises(ActsearchError, match=message) as e:
        parse_space(yaml.safe_load(text), "f.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("f.yaml: ")


def test_a_group_pattern_that_matches_no_site_names_the_group(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {factory: 'net:make'}\ndata: {factory: 'net:data'}\n"
                           "groups: {gates: ['*.gate']}\n")
    with pytest.raises(ActsearchError, match=r"s\.yaml: groups\.gates: pattern '\*\.gate' "
                                              r"matches no site"):
        actsearch.search(load_space(path), trials=2, progress=False, runs_dir=tmp_path)
    assert not (tmp_path / "s" / "study.db").exists(), "no study is left behind"


def test_a_factory_that_raises_shows_the_users_own_error(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {factory: 'net:make'}\ndata: {factory: 'net:data'}\n",
                 model="def make():\n    raise ValueError('my bug')\n\n"
                       "def data():\n    import torch\n"
                       "    x = torch.zeros(8, 4)\n    y = torch.arange(8) % 2\n"
                       "    return (x, y), (x, y)\n")
    with pytest.raises(ValueError, match="my bug"):
        actsearch.search(load_space(path), trials=2, progress=False, runs_dir=tmp_path)


def splits(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3), torch.arange(n) % 3


@pytest.mark.parametrize(("returned", "message"), [
    (lambda: splits()[0], "returned Tensor; expected \\(train, val\\)"),
    (lambda: (splits()[0], splits()), "train: expected \\(x, y\\) tensors"),
    (lambda: [DataLoader(TensorDataset(*splits())), splits()], "expected DataLoaders for "
     "every split or for none, got one for train only"),
    (lambda: (splits(), (torch.randn(20, 3), torch.randn(20))), "val: y: expected 20 class "
     "indices"),
    (lambda: (splits(), (torch.randn(20, 4), torch.arange(20) % 2)), "one sample shape"),
])
def test_a_data_factory_that_returns_the_wrong_thing_is_one_line(returned: object,
                                                                  message: str) -> None:
    returned.__name__ = "mine"  # type: ignore[attr-defined]
    with pytest.raises(ActsearchError, match=f"data.factory: 'mine'.*{message}"):
        factory_data(DataSpec(), returned)  # type: ignore[arg-type]


def test_a_data_factorys_tensor_datasets_become_the_splits() -> None:
    x, y = splits(30)
    data = factory_data(DataSpec(), lambda: (TensorDataset(x, y), (x[:9], y[:9]),
                                             TensorDataset(x[:6], y[:6])))
    assert data.has_test and data.input_shape == (3,) and data.n_classes == 3
    assert torch.equal(torch.from_numpy(data.x_test), x[:6])
    assert data.y_train.dtype.name == "int64"


def make_net(width: int = 8) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(),
                               torch.nn.Linear(width, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, 2))


def xor_splits() -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    x = torch.randn(120, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] * x[:, 1] > 0).long()
    return (x[:80], y[:80]), (x[80:100], y[80:100]), (x[100:], y[100:])


@pytest.mark.slow  # end to end with finalists
def test_python_search_without_a_file_resumes_with_the_same_objects(tmp_path: Path) -> None:
    splits = xor_splits()
    options = {"model": make_net, "data": splits, "groups": {"hidden": ["1", "3"]},
               "choices": ["relu", "tanh", "elu"], "kwargs": {"width": 6}, "epochs": 1,
               "progress": False, "runs_dir": tmp_path}
    first = actsearch.search(trials=4, finalists=1, seeds=2, **options)
    assert [g.name for g in first.space.custom.groups] == ["hidden"]
    assert first.space.custom.groups[0].sites == ("1", "3")
    assert {t.user_attrs["layout"] for t in first.study.trials if t.user_attrs.get("baseline")} \
        == {"hidden=relu", "hidden=tanh", "hidden=elu(1.00)"}
    stored = space_of_study(first.study)
    assert space_to_document(stored)["model"] == {"factory": "<python>:make_net",
                                                  "kwargs": {"width": 6}}
    resumed = actsearch.search(trials=6, finalists=0, **options)
    assert resumed.finished == 2 and len(resumed.study.trials) == 6
    # Anything that must import the model from the stored study says in one line why not.
    with pytest.raises(ActsearchError, match="'<python>:make_net': given in Python.*needs an "
                                             "importable factory"):
        with_sites(stored, splits[0][0])
    with pytest.raises(ActsearchError, match=r"^study \S+: model.factory '<python>:make_net' "
                                             r"was given in Python.*importable factory") as e:
        export_configs(first.study, out_dir=tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_python_search_refuses_what_cannot_go_together(tmp_path: Path) -> None:
    with pytest.raises(ActsearchError, match="^space: give a space or model= and data="):
        actsearch.search("mnist1d_mlp", model=make_net, data=xor_splits(), runs_dir=tmp_path)
    with pytest.raises(ActsearchError, match="^epochs: only with model="):
        actsearch.search("mnist1d_mlp", epochs=2, runs_dir=tmp_path)
    with pytest.raises(ActsearchError, match="^workers: a model given in Python"):
        actsearch.search(model=make_net, data=xor_splits(), workers=2, runs_dir=tmp_path)
    with pytest.raises(ActsearchError, match=r"^actsearch.search\(\): train.epochs: "):
        actsearch.search(model=make_net, data=xor_splits(), epochs=0, runs_dir=tmp_path)


def test_actsearch_sites_of_a_factory_space_shows_its_model_and_groups(
        capsys: pytest.CaptureFixture[str]) -> None:
    from actsearch.faces.cli import main

    assert main(["sites", str(EXAMPLES / "resnet_digits" / "space.yaml")]) == 0
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip()
            for line in capsys.readouterr().out.splitlines() if line.startswith("│")}
    assert rows == {"stem.2": "stem", "layers.0.relu#0": "block0", "layers.0.relu#1": "block0",
                    "layers.1.relu#0": "block1", "layers.1.relu#1": "block1"}


def test_a_worker_imports_the_same_factory_from_the_stored_study(tmp_path: Path) -> None:
    from actsearch.engine.workers import WorkerOptions, run_worker

    space = with_train(EXAMPLES / "functional_mlp" / "space.yaml", epochs=1)
    first = actsearch.search(space, trials=4, finalists=0, progress=False, runs_dir=tmp_path)
    url = f"sqlite:///{tmp_path / 'functional_mlp' / 'study.db'}"
    sigterm = signal.getsignal(signal.SIGTERM)  # a worker takes SIGTERM as Ctrl-C
    try:
        assert run_worker(WorkerOptions(url, "functional_mlp", trials=6, quiet=True)) == 0
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    trials = first.study.get_trials(deepcopy=False)
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 6
    assert all(set(t.params) >= {"act:relu()#0", "act:relu()#1", "act:tanh()"} for t in trials)


def test_a_factory_mixes_with_a_shipped_data_set_or_family(tmp_path: Path) -> None:
    # Your model on a shipped data set (synthetic: 20 features, 4 classes)...
    path = write(tmp_path, "model: {factory: 'net:make', kwargs: {width: 4}}\n"
                           "data: {name: synthetic, samples: 200}\n",
                 model="from torch import nn\n\ndef make(width=8):\n"
                       "    return nn.Sequential(nn.Linear(20, width), nn.ReLU(),\n"
                       "                         nn.Linear(width, 4))\n")
    mine = actsearch.search(with_train(path, epochs=1), trials=3, finalists=0,
                            progress=False, runs_dir=tmp_path / "a")
    assert [g.name for g in mine.space.custom.groups] == ["1"]
    # ...and your data with a shipped family: its layers, its params.
    (tmp_path / "b").mkdir()
    path = write(tmp_path / "b", "model: {family: mlp, width: 8, depth: 2}\n"
                                 "data: {factory: 'net:data'}\n")
    shipped = actsearch.search(with_train(path, epochs=1), trials=3, finalists=0,
                               progress=False, runs_dir=tmp_path / "b")
    assert shipped.space.custom is None
    assert all({"act_0", "act_1"} <= set(t.params) for t in shipped.study.trials)
    # Exported: your model names a shipped data set as a shipped family's config does; a
    # shipped family's config (schema 1) names your data, whose code only training runs.
    [exported] = export_configs(mine.study, out_dir=tmp_path / "a" / "out")
    document = yaml.safe_load(exported.read_text())
    assert document["schema_version"] == 2
    assert document["data"]["name"] == "synthetic" and document["data"]["samples"] == 200
    assert train_config(exported, trust_code=True).status == "complete"
    [exported] = export_configs(shipped.study, out_dir=tmp_path / "b" / "out")
    document = yaml.safe_load(exported.read_text())
    assert document["schema_version"] == 1
    assert document["data"]["factory"] == f"{tmp_path / 'b' / 'net.py'}:data"
    with pytest.warns(ActsearchWarning, match="the model is untrained"):  # no weights
        assert isinstance(load_model(exported), torch.nn.Sequential)  # builds without the data
    with pytest.raises(ActsearchError, match=r"data\.factory: this config runs the code of"):
        train_config(exported)
    run = train_config(exported, trust_code=True)
    assert run.val_acc == document["metrics"]["val_acc"]
