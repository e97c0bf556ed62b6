"""The trial driver: one ask/tell loop over the one-at-a-time trainer and populations."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from actsearch.engine.driver import StopSearch, run_trials, trial_seed
from actsearch.engine.record import FINISHED, TrialRecord
from actsearch.engine.study import open_study, space_of_study
from actsearch.models.layout import candidate_from_params
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device
from actsearch.training.population import Population


def _open(write_space, tmp_path: Path, changes: dict | None = None, name: str = "p"):
    study, space = open_study(load_space(write_space(changes)), name,
                              f"sqlite:///{tmp_path}/{name}.db")
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    return study, space, data


@pytest.mark.parametrize("population", [1, 4])
def test_every_trial_is_recorded_the_same_way(write_space, tmp_path: Path,
                                              population: int) -> None:
    study, space, data = _open(write_space, tmp_path, {"train.epochs": 4,
                                                      "pruner.n_startup_trials": 3})
    told: list[TrialRecord] = []
    done = run_trials(study, space, data, trials=11, population=population,
                      callbacks=[lambda s, record: told.append(record)])
    trials = study.get_trials()
    assert (done.finished, done.failed, done.stop_reason) == (11, 0, None)
    assert len(trials) == 11 and sorted(r.number for r in told) == list(range(11))
    assert all(isinstance(r, TrialRecord) and r.is_finished for r in told)
    # The enqueued uniform baselines come out of ask() first.
    assert [t.user_attrs["layout"] for t in trials[:3]] == [
        "relu | relu", "elu(1.00) | elu(1.00)", "selu | selu"]
    assert any(t.state == TrialState.PRUNED for t in trials), "no trial was pruned"
    for t in trials:
        record = TrialRecord.from_frozen(t)
        layout = candidate_from_params(t.params, space_of_study(study)).layout
        assert str(layout) == record.layout and record.uniform == layout.is_uniform
        assert record.seed == trial_seed(study.user_attrs["seed"], t.number)
        assert record.train_seconds > 0 and record.samples_per_second > 0
        assert len(record.val_acc_curve) == len(record.val_loss_curve) == record.epochs
        assert list(t.intermediate_values) == list(range(1, record.epochs + 1))
        assert (record.population or 1) <= population
        if t.state == TrialState.COMPLETE:
            assert record.end == "complete" and record.epochs == 4
            assert t.value == pytest.approx(record.val_acc) and 0 <= record.test_acc <= 1
            # Measured on the candidate's own standalone model, in a population too.
            assert len(record.probes["dead_frac"]) == len(layout.layers)
            assert record.probes["lat_b1_ms"] > 0
        else:
            assert record.end.startswith(("pruned at epoch", "diverged at epoch"))
            assert record.test_acc is None
    # The budget counts finished trials: a second call has nothing left to do.
    assert run_trials(study, space, data, trials=11, population=population).finished == 0


@pytest.mark.slow  # a search of eight trials in populations
def test_a_population_member_that_raises_fails_alone(write_space, tmp_path: Path,
                                                     monkeypatch) -> None:
    study, space, data = _open(write_space, tmp_path, {"pruner": {"name": "none"}})
    real = Population.train_epoch

    def failing(self, *args, **kwargs):
        # The batched step names no member: it fails whenever trial 4's member is in it.
        if any(m.tag.number == 4 for m in self.members):
            raise ValueError("a bad member")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Population, "train_epoch", failing)
    done = run_trials(study, space, data, trials=8, population=4)
    trials = study.get_trials()
    assert (done.finished, done.failed) == (8, 1)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [4]
    assert failed[0].user_attrs["error"] == "ValueError: a bad member"
    assert "a bad member" in failed[0].user_attrs["traceback"]
    assert len(study.get_trials(states=FINISHED)) == 8


def test_out_of_memory_splits_the_population_and_every_trial_completes(
        write_space, tmp_path: Path, monkeypatch) -> None:
    study, space, data = _open(write_space, tmp_path, {"pruner": {"name": "none"}})
    real = Population.train_epoch

    def small_gpu(self, *args, **kwargs):
        if len(self.members) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Population, "train_epoch", small_gpu)
    done = run_trials(study, space, data, trials=7, population=4)
    assert (done.finished, done.failed) == (7, 0)
    records = [TrialRecord.from_frozen(t) for t in study.get_trials()]
    assert all(r.is_complete and (r.population or 1) <= 2 for r in records)


def test_interrupt_fails_the_running_trials(write_space, tmp_path: Path, monkeypatch) -> None:
    import actsearch.engine.pruning

    monkeypatch.setattr(actsearch.engine.pruning, "FLUSH_SECONDS", 3600)  # reports wait
    study, space, data = _open(write_space, tmp_path)
    real, calls = Population.train_epoch, []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Population, "train_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, data, trials=6, population=2)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 2
    # Reports waiting in memory are written before the trials fail: each keeps its epochs.
    for trial in study.trials:
        assert list(trial.intermediate_values) == list(range(1, trial.last_step + 1))
    assert all(t.last_step for t in study.trials[2:])
    assert all(t.user_attrs["error"].startswith("interrupted") for t in study.trials[2:])


def test_a_callback_stops_the_search(write_space, tmp_path: Path) -> None:
    study, space, data = _open(write_space, tmp_path)

    def enough(study: optuna.Study, record: TrialRecord) -> None:
        if record.number == 3:
            raise StopSearch

    done = run_trials(study, space, data, trials=10, callbacks=[enough])
    assert done.finished == 4 and done.stop_reason == "stopped by a callback"
    assert len(study.get_trials(states=FINISHED)) == 4


# Trial attributes that measure time, and so differ between two runs of the same search.
_TIMED = ("train_seconds", "samples_per_second", "probes")


def _search_counting(space, path: Path, one_by_one: bool, monkeypatch) -> tuple[list, int, int]:
    """A population search: its trials, the should_prune calls and the trial reads made."""
    import actsearch.engine.pruning as pruning

    if one_by_one:  # each report in the storage, then should_prune: Optuna's own way
        def decide(self, trials) -> list[bool]:
            self.reports.flush()
            return [trial.should_prune() for trial, _ in trials]

        monkeypatch.setattr(pruning.EpochPruning, "decide", decide)
    # The same study name in both runs: HyperbandPruner picks brackets from it.
    study, space = open_study(space, "s", f"sqlite:///{path}")
    data = to_device(load_data(space.data, study.user_attrs["seed"]), "cpu")
    counts = {"should_prune": 0, "reads": 0}
    should_prune, storage = optuna.trial.Trial.should_prune, study._storage
    get_all_trials = storage.get_all_trials

    def counting_should_prune(self):
        counts["should_prune"] += 1
        return should_prune(self)

    def counting_reads(*args, **kwargs):
        counts["reads"] += 1
        return get_all_trials(*args, **kwargs)

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", counting_should_prune)
    monkeypatch.setattr(storage, "get_all_trials", counting_reads)
    assert run_trials(study, space, data, trials=12, population=4).finished == 12
    monkeypatch.undo()
    return study.get_trials(), counts["should_prune"], counts["reads"]


@pytest.mark.slow  # two searches each
@pytest.mark.parametrize("pruner", [
    {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"name": "percentile", "percentile": 75.0, "n_startup_trials": 2},
    {"name": "successive_halving", "min_resource": 1, "reduction_factor": 2},
    {"name": "hyperband", "min_resource": 1, "reduction_factor": 2},
])
def test_batched_pruning_decides_as_should_prune(write_space, tmp_path: Path, monkeypatch,
                                                 pruner: dict) -> None:
    space = load_space(write_space({"train.epochs": 4, "pruner": pruner}))
    ref, ref_calls, ref_reads = _search_counting(space, tmp_path / "ref.db", True, monkeypatch)
    got, calls, reads = _search_counting(space, tmp_path / "got.db", False, monkeypatch)
    assert any(t.state == TrialState.PRUNED for t in ref), "no trial was pruned"
    assert len(got) == len(ref) == 12
    for g, r in zip(got, ref, strict=True):
        assert (g.number, g.state, g.params, g.value) == (r.number, r.state, r.params, r.value)
        assert g.intermediate_values == r.intermediate_values
        assert g.system_attrs == r.system_attrs  # SuccessiveHalving's rung values included
        assert {k: v for k, v in g.user_attrs.items() if k not in _TIMED} == \
               {k: v for k, v in r.user_attrs.items() if k not in _TIMED}
    if pruner["name"] == "hyperband":  # bracket studies read the storage: one by one
        assert calls == ref_calls > 0
    else:  # one read per join or leave of the population instead of one per member
        assert calls == 0 and ref_calls > 12
        assert reads < ref_reads - ref_calls // 2


def test_a_probe_that_raises_fails_its_trial_only(write_space, tmp_path: Path,
                                                  monkeypatch) -> None:
    import actsearch.engine.driver as driver

    study, space, data = _open(write_space, tmp_path, {"pruner": {"name": "none"}})
    real, calls = driver.probe_model, []

    def probe(model, data, device, result, reference=None, **options):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a probe broke")
        return real(model, data, device, result, reference, **options)

    monkeypatch.setattr(driver, "probe_model", probe)
    done = run_trials(study, space, data, trials=5)
    assert (done.finished, done.failed) == (5, 1)
    (failed,) = study.get_trials(states=(TrialState.FAIL,))
    assert failed.number == 2 and failed.user_attrs["error"] == "RuntimeError: a probe broke"
    assert not study.get_trials(states=(TrialState.RUNNING,))


@pytest.mark.slow  # two searches
def test_a_lone_search_keeps_count_instead_of_reading_the_study(write_space, tmp_path: Path,
                                                                monkeypatch) -> None:
    # Alone on its storage the budget reads the study once, then counts what it was told:
    # the same trials, exactly the budget, in fewer reads.
    def search(concurrent: bool) -> tuple[list, int]:
        study, space, data = _open(write_space, tmp_path, name=f"c{concurrent}")
        reads, real = [], study._storage.get_all_trials
        monkeypatch.setattr(study._storage, "get_all_trials",
                            lambda *a, **k: reads.append(1) or real(*a, **k))
        assert run_trials(study, space, data, trials=9, concurrent=concurrent).finished == 9
        return [(t.params, t.state) for t in study.trials], len(reads)

    (shared, shared_reads), (alone, alone_reads) = search(True), search(False)
    assert alone == shared and len(alone) == 9
    assert alone_reads <= shared_reads - 8  # one read a trial fewer
