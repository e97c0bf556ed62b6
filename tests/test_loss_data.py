"""Your own loss and metric (train.loss, train.metric with its direction) and DataLoaders from a
data factory (issue 14, part 4): a minimised metric ranks, prunes, picks finalists and words
the report by itself; loaders train as given."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import optuna
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import EXAMPLES, with_train
from optuna.study import StudyDirection
from optuna.trial import TrialState
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

import actsearch
from actsearch.engine.claims import design
from actsearch.engine.export import export_configs, train_config
from actsearch.engine.pruning import CurveMedianPruner, EpochPruning
from actsearch.engine.record import FINALISTS_ATTR, records
from actsearch.errors import ActsearchError
from actsearch.models.factory import load_factory
from actsearch.schema.space import (
    NOT_MEASURED,
    DataSpec,
    load_space,
    parse_space,
    space_to_document,
)
from actsearch.training.data import factory_data, to_device
from actsearch.training.fit import Recipe, fit
from actsearch.training.population import population_support

EXAMPLE = EXAMPLES / "regression"
METRIC = {"factory": "task.py:mse", "direction": "minimize"}


# --------------------------------------------------------------------------- the space file


def test_a_metric_of_ones_own_leads_the_objectives_in_its_direction() -> None:
    space = parse_space({"train": {"loss": "task.py:mse", "metric": METRIC}}, "s.yaml",
                        base=EXAMPLE)
    assert space.objectives == (("mse", "min"),)
    assert space.train.metric.factory == f"{EXAMPLE / 'task.py'}:mse"  # found from the folder
    named = parse_space({"train": {"metric": {**METRIC, "name": "sq_err"}},
                         "objectives": [{"sq_err": "min"}, {"latency": "min"}]}, "s.yaml")
    assert named.objectives == (("sq_err", "min"), ("latency", "min"))
    # The stored document reads back as the same space, and an old one's is unchanged.
    assert parse_space(space_to_document(space), "s.yaml") == space
    assert "loss" not in space_to_document(load_space("mnist1d_mlp"))["train"]


@pytest.mark.parametrize(("document", "field", "words"), [
    ({"train": {"metric": METRIC}, "objectives": ["accuracy"]}, "objectives[0]",
     "expected 'mse: min' first (train.metric"),
    ({"train": {"metric": {**METRIC, "name": "latency"}}}, "train.metric.name",
     "not one of the built-in objectives"),
    ({"train": {"metric": {"factory": "task.py:mse"}}}, "train.metric.direction",
     "missing field"),
    ({"train": {"metric": {**METRIC, "direction": "down"}}}, "train.metric.direction",
     "maximize"),
    ({"train": {"metric": METRIC}, "objectives": [{"mse": "min"}, "instability"]},
     "objectives", "instability measures accuracy"),
    ({"train": {"loss": "nonsense"}}, "train.loss", "module:function"),
])
def test_a_bad_loss_or_metric_is_one_line(document: dict, field: str, words: str) -> None:
    with pytest.raises(ActsearchError) as e:
        parse_space(document, "s.yaml")
    message = str(e.value)
    assert "\n" not in message and f"s.yaml: {field}" in message and words in message


def test_populations_refuse_a_metric_of_ones_own() -> None:
    space = parse_space({"train": {"metric": METRIC}}, "s.yaml")
    assert "train.loss/train.metric" in population_support(space)
    assert population_support(parse_space({}, "s.yaml")) is None


def test_claims_of_accuracy_flip_their_sign_for_a_minimised_metric() -> None:
    signs = {}
    for direction in ("maximize", "minimize"):
        space = parse_space({"train": {"metric": {**METRIC, "direction": direction}},
                             "model": {"norm": ["none", "batch"]}}, "s.yaml")
        claims, _ = design(space)
        signs[direction] = {c.sign for claim in claims for c in claim.comparisons
                            if c.metric == "test_acc"}
    assert signs == {"maximize": {1}, "minimize": {-1}}
    # Dead units, centring and latency are not the metric: their claimed signs stay.
    for direction in ("maximize", "minimize"):
        space = parse_space({"train": {"metric": {**METRIC, "direction": direction}}}, "s.yaml")
        claims, _ = design(space)
        signs[direction] = {c.metric.split(":")[0]: c.sign for claim in claims
                            for c in claim.comparisons if c.metric != "test_acc"}
    assert signs["maximize"] == signs["minimize"] == {"dead_frac": 1, "abs_mean": 1,
                                                      "latency": -1}


# --------------------------------------------------------------------------- pruning


def test_curve_pruner_stops_the_highest_of_a_minimised_metric() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for curve in ([1.0, 0.5], [2.0, 1.0], [3.0, 1.5]):
        study.add_trial(optuna.trial.create_trial(values=[curve[-1], 1.0],
                                                  user_attrs={"val_acc_curve": curve}))
    pruner = CurveMedianPruner(n_startup_trials=3, maximize=False)
    assert pruner.should_prune(study, 2, 1.1)  # the median at epoch 2 is 1.0: worse
    assert not pruner.should_prune(study, 2, 0.9)


def test_epoch_pruning_keeps_the_lowest_value_of_a_minimised_metric(tmp_path: Path) -> None:
    space = parse_space({"train": {"metric": METRIC}, "objectives": [{"mse": "min"},
                                                                    {"latency": "min"}],
                         "pruner": {"name": "median", "n_startup_trials": 1}}, "s.yaml")
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[1.0, 1.0],
                                              user_attrs={"val_acc_curve": [2.0, 1.0]}))
    pruning = EpochPruning(study, space)
    trial = study.ask()
    pruning.joined(trial)
    pruning.report(trial, 1.5, 1)  # below the complete trial's 2.0 at epoch 1
    assert pruning.decide([(trial, 1)]) == [False]
    pruning.report(trial, 3.0, 2)  # its best so far stays 1.5, above 1.0 at epoch 2
    assert pruning.decide([(trial, 2)]) == [True]


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow  # end to end with finalists
def test_a_regression_searches_by_its_minimised_metric(tmp_path: Path) -> None:
    space = with_train(EXAMPLE / "space.yaml", epochs=3)
    result = actsearch.search(space, trials=8, finalists=2, seeds=2, claim_seeds=0,
                              progress=False, runs_dir=tmp_path, report=True)
    study = result.study
    assert study.directions == [StudyDirection.MINIMIZE]
    assert study.metric_names == ["validation mse"]
    complete = [r for r in records(study.get_trials()) if r.state == TrialState.COMPLETE]
    by_val = sorted(complete, key=lambda r: (r.val_acc, r.number))
    analysis = result.analysis
    assert analysis.metric == "mse"
    assert [row.number for row in analysis.summary.top] == [r.number for r in by_val][:10]
    assert result.best_uniform.number == min((r for r in complete if r.uniform),
                                             key=lambda r: r.val_acc).number
    # The finalists are the lowest: the best layout, then the best uniform one.
    stored = study.user_attrs[FINALISTS_ATTR]
    assert stored[0]["number"] == by_val[0].number
    best = analysis.best
    assert best.mean == min(f["mean"] for f in stored)
    # Accuracy's probes are not measured, and the trials and the report say why.
    for r in complete:
        assert r.probes["robust_noise_0.1"] is None and r.probes["epochs_to_95"] is None
        assert "this study's metric is mse" in r.probes[NOT_MEASURED]
        assert r.probes["grad_ratio"] is not None  # the gradients of the user's loss
    text = (tmp_path / "regression" / "report.md").read_text()
    assert "val mse" in text and "test mse over fresh seeds" in text
    assert "not measured: epochs_to_95, robust_noise_0.1" in text
    assert "test accuracy" not in text and "val acc " not in text
    # Exported, the config names the metric, and retraining it reproduces its test MSE.
    (config,) = export_configs(study, top=1, out_dir=tmp_path / "export", weights=True)
    document = yaml.safe_load(config.read_text())
    assert document["metrics"]["metric"] == "mse" and document["model"]["n_classes"] == 0
    run = train_config(config, trust_code=True)
    assert run.test_acc == pytest.approx(document["metrics"]["test_acc"], abs=1e-6)


def test_the_python_api_takes_a_loss_and_a_metric(tmp_path: Path) -> None:
    make_model, make_data, mse = (load_factory(f"{EXAMPLE / 'task.py'}:{name}")
                                  for name in ("make_model", "make_data", "mse"))

    def rmse(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return float(F.mse_loss(outputs.squeeze(-1), targets).sqrt())

    result = actsearch.search(model=make_model, data=make_data, loss=mse,
                              metric=rmse, metric_direction="minimize", epochs=2, trials=3,
                              finalists=0, claim_seeds=0, progress=False, runs_dir=tmp_path)
    assert result.study.directions == [StudyDirection.MINIMIZE]
    assert result.space.objectives == (("rmse", "min"),)
    for r in records(result.study.get_trials(states=(TrialState.COMPLETE,))):
        # The metric is the user's: the root of the loss the curve's last epoch stored.
        assert r.val_acc == pytest.approx(math.sqrt(r.val_loss_curve[-1]), rel=1e-4)
    for kwargs, parameter in (({"metric": rmse}, "metric_direction"),
                              ({"metric_direction": "minimize"}, "metric_direction")):
        with pytest.raises(ActsearchError) as e:
            actsearch.search(model=make_model, data=make_data, progress=False,
                             runs_dir=tmp_path, **kwargs)
        assert e.value.parameter == parameter


# --------------------------------------------------------------------------- DataLoaders


class _Order(Sampler[int]):
    """The order a trial draws over tensors on the CPU: torch.randperm from its seed, from the
    second pass on (factory_data's look at the first batch is the first)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.generator: torch.Generator | None = None

    def __iter__(self):  # noqa: ANN204
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(self.seed)
            return iter(range(self.n))
        return iter(torch.randperm(self.n, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.n


def _classes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()


def test_a_loader_in_the_trials_order_trains_the_same_model_as_tensors() -> None:
    train, val = _classes(120, 1), _classes(40, 2)
    recipe, seed = Recipe(epochs=3, batch_size=16), 11
    tensors = to_device(factory_data(DataSpec(), lambda: (train, val)), "cpu")
    loaders = to_device(factory_data(DataSpec(), lambda: (
        DataLoader(TensorDataset(*train), batch_size=16, sampler=_Order(120, seed)),
        DataLoader(TensorDataset(*val), batch_size=7))), "cpu")
    assert loaders.loaders is not None and tensors.loaders is None
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ELU(), nn.Linear(16, 3))
    twin = copy.deepcopy(model)
    a = fit(model, tensors, recipe, seed)
    b = fit(twin, loaders, recipe, seed)
    for p, q in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert [h.val_acc for h in a.history] == [h.val_acc for h in b.history]
    assert [h.train_loss for h in a.history] == pytest.approx(
        [h.train_loss for h in b.history], rel=1e-6)
    assert a.samples_seen == b.samples_seen == 360


@pytest.mark.slow  # end to end with finalists
def test_a_shuffling_loader_searches_end_to_end(tmp_path: Path) -> None:
    space = with_train(EXAMPLE / "loaders.yaml", epochs=4)
    result = actsearch.search(space, trials=4, finalists=1, seeds=2, claim_seeds=0,
                              population=4, progress=False, runs_dir=tmp_path)
    complete = records(result.study.get_trials(states=(TrialState.COMPLETE,)))
    assert len(complete) >= 3
    for r in complete:  # the MSE of a trial falls as it trains on the loader's batches
        assert r.val_acc_curve[-1] < r.val_acc_curve[0]
        assert r.population is None  # a loader trains one model at a time
    assert result.study.user_attrs[FINALISTS_ATTR][0]["failed"] == 0


@pytest.mark.slow  # worker processes
def test_worker_processes_import_a_loaders_data_factory(tmp_path: Path) -> None:
    space = with_train(EXAMPLE / "loaders.yaml", epochs=2)
    result = actsearch.search(space, trials=4, workers=2, finalists=0, claim_seeds=0,
                              progress=False, runs_dir=tmp_path)
    trials = records(result.study.get_trials())
    assert len({r.worker for r in trials}) == 2  # two processes ran them
    done = [r for r in trials if r.state == TrialState.COMPLETE]
    assert done and all(r.probes[NOT_MEASURED] for r in done)


def _loaders(*batches: tuple[torch.Tensor, torch.Tensor]) -> DataLoader:
    return DataLoader(list(batches), batch_size=None)  # each batch as given


def test_a_loader_of_the_wrong_shape_is_one_line() -> None:
    x, y = _classes(10, 3)
    with pytest.raises(ActsearchError) as e:
        factory_data(DataSpec(), lambda: (_loaders((x, y)), _loaders((x[:, :5], y))))
    assert "data.factory" in str(e.value) and "one sample shape" in str(e.value)
    with pytest.raises(ActsearchError) as e:
        factory_data(DataSpec(), lambda: (_loaders((x, y)), (x, y)))
    assert "DataLoaders for every split or for none" in str(e.value)
    with pytest.raises(ActsearchError) as e:
        factory_data(DataSpec(), lambda: (_loaders([x]), _loaders((x, y))))
    assert "train: first batch: expected (x, y) tensors" in str(e.value)
    # A later batch that differs stops training with one line naming the split and batch.
    data = to_device(factory_data(DataSpec(), lambda: (
        _loaders((x, y), (x[:, :5], y)), _loaders((x, y)))), "cpu")
    model = nn.Sequential(nn.Linear(6, 3))
    with pytest.raises(ActsearchError) as e:
        fit(model, data, Recipe(epochs=1), 0)
    message = str(e.value)
    assert "\n" not in message
    assert "data.factory: '<lambda>': train: batch 1: expected (x, y) with samples of shape " \
           "(6,)" in message


def test_a_space_file_with_wrong_loaders_names_its_factory(tmp_path: Path) -> None:
    (tmp_path / "data.py").write_text(
        "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
        "def make():\n"
        "    x, y = torch.randn(20, 4), torch.arange(20) % 2\n"
        "    return (DataLoader(TensorDataset(x, y), batch_size=5),\n"
        "            DataLoader(TensorDataset(torch.randn(8, 3), y[:8]), batch_size=4))\n")
    (tmp_path / "space.yaml").write_text(
        f"model: {{factory: '{EXAMPLE / 'task.py'}:make_model'}}\n"
        "data: {factory: data.py:make}\n")
    with pytest.raises(ActsearchError) as e:
        actsearch.search(tmp_path / "space.yaml", trials=1, progress=False,
                         runs_dir=tmp_path / "runs")
    assert f"data.factory: '{tmp_path / 'data.py'}:make'" in str(e.value)
    assert "one sample shape" in str(e.value)
