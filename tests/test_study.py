from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from conftest import search
from optuna.trial import TrialState

from actsearch.engine.driver import run_trials
from actsearch.engine.record import FINISHED
from actsearch.engine.storage import SPACE_ATTR, space_of_study
from actsearch.engine.study import open_study
from actsearch.errors import ActsearchError, mask_url
from actsearch.models.layout import candidate_from_params
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device


def test_trials_record_what_reports_need(write_space, tmp_path: Path) -> None:
    study = search(write_space(), f"sqlite:///{tmp_path}/s.db", 6)
    trials = study.get_trials(states=FINISHED)
    assert len(trials) == 6
    # The uniform baselines run first.
    assert [t.user_attrs["layout"] for t in trials[:3]] == [
        "relu | relu", "elu(1.00) | elu(1.00)", "selu | selu"]
    for t in trials:
        attrs = t.user_attrs
        assert len(attrs["val_acc_curve"]) == attrs["epochs"]
        assert attrs["end"] == "complete" or attrs["end"].startswith("pruned at epoch")
        assert attrs["train_seconds"] > 0
        assert str(candidate_from_params(t.params, space_of_study(study)).layout) == \
            attrs["layout"]
        if t.state == TrialState.COMPLETE:
            assert 0 <= attrs["test_acc"] <= 1
            assert t.value == pytest.approx(attrs["val_acc_curve"][-1], abs=1e-6)
            assert list(t.intermediate_values) == list(range(1, attrs["epochs"] + 1))


def test_bad_learning_rates_get_pruned(write_space, tmp_path: Path) -> None:
    path = write_space({"train.lr": {"low": 1e-7, "high": 3.0, "log": True},
                        "train.epochs": 6, "sampler.name": "random",
                        "pruner.n_startup_trials": 3})
    study = search(path, f"sqlite:///{tmp_path}/p.db", 16)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "no trial was pruned"
    assert all(t.user_attrs["epochs"] < 6 for t in pruned)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    best_pruned = max(max(t.intermediate_values.values()) for t in pruned
                      if not t.user_attrs["end"].startswith("diverged"))
    assert max(t.value for t in complete) > best_pruned


def test_resume_adds_trials_and_keeps_the_first_runs(write_space, tmp_path: Path) -> None:
    path, storage = write_space(), f"sqlite:///{tmp_path}/r.db"
    first = search(path, storage, 4)
    before = {t.number: (t.params, t.state, t.value) for t in first.get_trials()}
    second = search(path, storage, 7)
    after = second.get_trials()
    assert len(after) == 7
    assert {t.number: (t.params, t.state, t.value) for t in after[:4]} == before
    # Nothing reruns when the budget is reached already.
    third = search(path, storage, 7)
    assert len(third.get_trials()) == 7


@pytest.mark.slow  # four searches
def test_same_seed_same_trials_and_resume_does_not_repeat(write_space, tmp_path: Path) -> None:
    path = write_space({"train.epochs": 2, "sampler.name": "random"})
    a = search(path, f"sqlite:///{tmp_path}/a.db", 7)
    b = search(path, f"sqlite:///{tmp_path}/b.db", 7)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    # A resumed study must not replay the sampler's sequence from the start.
    search(path, f"sqlite:///{tmp_path}/c.db", 5)
    c = search(path, f"sqlite:///{tmp_path}/c.db", 7)
    first_sampled = [t.params for t in c.trials[3:5]]  # after the 3 enqueued baselines
    assert [t.params for t in c.trials[5:7]] != first_sampled


@pytest.mark.slow  # two searches
def test_interrupted_trial_is_failed_and_resume_completes(write_space, tmp_path: Path,
                                                          monkeypatch) -> None:
    from actsearch.training.trainers import SequentialTrainer

    path, storage = write_space(), f"sqlite:///{tmp_path}/i.db"
    real_start, calls = SequentialTrainer._start, []

    def interrupting_start(self, member):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_start(self, member)

    monkeypatch.setattr(SequentialTrainer, "_start", interrupting_start)
    with pytest.raises(KeyboardInterrupt):
        search(path, storage, 6)
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL]
    monkeypatch.setattr(SequentialTrainer, "_start", real_start)
    study = search(path, storage, 6)
    assert len(study.get_trials(states=FINISHED)) == 6
    layouts = [t.user_attrs["layout"] for t in study.get_trials(states=FINISHED)]
    assert "selu | selu" in layouts  # the interrupted baseline was queued again


def test_resume_with_a_different_space_is_refused(write_space, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/d.db"
    search(write_space(), storage, 3)
    with pytest.raises(ActsearchError, match=r"created from a different space \(model\.width: "
                                             r"16 in the study, 8 here\)"):
        search(write_space({"model.width": 8}, name="other.yaml"), storage, 3)


def test_mask_url() -> None:
    assert mask_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("sqlite:///runs/a/study.db") == "sqlite:///runs/a/study.db"


def test_bad_storage_url_names_and_pruner_settings(write_space, tmp_path: Path) -> None:
    with pytest.raises(ActsearchError, match="^storage nosuch://x: unknown storage"):
        open_study(load_space(None), "x", "nosuch://x")
    with pytest.raises(ActsearchError) as info:
        open_study(load_space(None), "x", f"sqlite:///{tmp_path}/not-a-folder/x.db")
    assert str(info.value).count("cannot open storage") == 1 and "\n" not in str(info.value)
    with pytest.raises(ActsearchError, match="^study: expected letters"):
        open_study(load_space(None), "../x", f"sqlite:///{tmp_path}/n.db")
    # Settings the space schema accepts but Optuna refuses are still one-line user errors.
    space = load_space(write_space({"pruner": {"name": "successive_halving",
                                               "reduction_factor": 1}}))
    with pytest.raises(ActsearchError, match=r"space.yaml: pruner: .*reduction_factor"):
        open_study(space, "sh", f"sqlite:///{tmp_path}/sh.db")


@pytest.mark.slow  # two searches of 16 trials
def test_lone_search_samples_as_with_the_constant_liar(write_space, tmp_path: Path,
                                                       monkeypatch) -> None:
    # Without other running trials the liar changes nothing but the storage reads: the same
    # trials, in fewer reads (make_sampler).
    path = write_space({"train.epochs": 2})

    def search(concurrent: bool) -> tuple[list, int]:
        study, space = open_study(load_space(path), "s", f"sqlite:///{tmp_path}/{concurrent}.db",
                                  concurrent=concurrent)
        data = to_device(load_data(space.data, 0), "cpu")
        reads = []
        get_all_trials = study._storage.get_all_trials
        monkeypatch.setattr(study._storage, "get_all_trials",
                            lambda *a, **k: reads.append(1) or get_all_trials(*a, **k))
        run_trials(study, space, data, trials=16)  # TPE samples from the 11th trial on
        return [(t.params, t.state) for t in study.trials], len(reads)

    (liar_trials, liar_reads), (lone_trials, lone_reads) = search(True), search(False)
    assert lone_trials == liar_trials
    assert lone_reads < liar_reads


def test_resume_takes_the_budget_and_population_of_the_file(write_space,
                                                             tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/b.db"
    open_study(load_space(write_space({"budget.trials": 3})), "s", storage)
    _, space = open_study(load_space(write_space({"budget.trials": 9, "population": 4},
                                                 name="more.yaml")), "s", storage)
    assert (space.trials, space.population) == (9, 4)
    stored = space_of_study(optuna.load_study(study_name="s", storage=storage))
    assert (stored.trials, stored.population) == (9, 4)  # what workers elsewhere read


@pytest.mark.parametrize("population", [1, 3])
def test_uniform_baselines_are_never_pruned(write_space, tmp_path: Path,
                                            population: int) -> None:
    # A complete trial with a perfect curve, and a pruner that keeps the top 1%: every other
    # trial is pruned at its first epoch, unless exempt.
    space = load_space(write_space({"train.epochs": 6, "pruner": {
        "name": "percentile", "percentile": 1.0, "n_startup_trials": 1}}))
    study, space = open_study(space, "b", f"sqlite:///{tmp_path}/b.db")
    study.add_trial(optuna.trial.create_trial(
        value=1.0, intermediate_values={epoch: 1.0 for epoch in range(1, 7)}))
    data = to_device(load_data(space.data, 0), "cpu")
    if population == 1:
        run_trials(study, space, data, trials=12)
    else:
        run_trials(study, space, data, trials=12, population=population)
    baselines = [t for t in study.trials if t.user_attrs.get("baseline")]
    assert len(baselines) == 3
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["epochs"] == 6
               for t in baselines)
    assert study.get_trials(states=(TrialState.PRUNED,)), "the pruner pruned nothing"


def test_a_cnn_study_stored_before_padding_existed_resumes(tmp_path: Path) -> None:
    from test_space import MNIST1D_CNN_DOCUMENT

    storage = f"sqlite:///{tmp_path}/c.db"
    # mnist1d_cnn as shipped then (before issue 12 changed its recipe)
    space = load_space(Path(__file__).parent / "fixtures" / "space-documents" / "mnist1d_cnn.yaml")
    study, _ = open_study(space, "c", storage)
    study.set_user_attr(SPACE_ATTR, MNIST1D_CNN_DOCUMENT)  # as the previous version wrote it
    _, resumed = open_study(space, "c", storage)  # the same file: no refusal
    assert resumed.model == space.model
    stored = optuna.load_study(study_name="c", storage=storage).user_attrs[SPACE_ATTR]
    assert stored == MNIST1D_CNN_DOCUMENT  # nothing to rewrite
    padded = dataclasses.replace(space, model=dataclasses.replace(space.model, padding=1))
    with pytest.raises(ActsearchError, match=r"model\.padding: None in the study, 1 here"):
        open_study(padded, "c", storage)
