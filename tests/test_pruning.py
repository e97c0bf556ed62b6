from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from actsearch.engine.driver import run_trials
from actsearch.engine.pruning import CurveMedianPruner, ReportBuffer
from actsearch.engine.record import FINISHED
from actsearch.engine.study import open_study
from actsearch.schema.space import load_space
from actsearch.training.data import load_data, to_device


def _study_with_curves(curves: list[list[float]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for curve in curves:
        study.add_trial(optuna.trial.create_trial(
            values=[curve[-1], 1.0], user_attrs={"val_acc_curve": curve}))
    return study


def test_median_rule_on_stored_curves() -> None:
    study = _study_with_curves([[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.3, 0.4, 0.5]])
    pruner = CurveMedianPruner(n_startup_trials=3, n_warmup_steps=2)
    assert not pruner.should_prune(study, 1, 0.0)  # warm-up: epoch 1 < 2
    assert pruner.should_prune(study, 2, 0.49)  # median at epoch 2 is 0.5
    assert not pruner.should_prune(study, 2, 0.5)
    assert not CurveMedianPruner(n_startup_trials=4).should_prune(study, 2, 0.0)
    assert not CurveMedianPruner(enabled=False).should_prune(study, 2, 0.0)
    with pytest.raises(ValueError):
        CurveMedianPruner(n_startup_trials=-1)


def test_multi_objective_study_prunes_hopeless_trials(write_space, tmp_path: Path) -> None:
    # A learning-rate range whose low end cannot learn in 6 epochs: those trials must stop.
    space = load_space(write_space({
        "train.lr": {"low": 1e-7, "high": 3e-2, "log": True}, "train.epochs": 6,
        "sampler.name": "random", "pruner.n_startup_trials": 3, "pruner.n_warmup_steps": 1,
        "objectives": [{"accuracy": "max"}, {"instability": "min"}]}))
    study, space = open_study(space, "mo", f"sqlite:///{tmp_path}/mo.db")
    assert len(study.directions) == 2
    data = to_device(load_data(space.data, 0), "cpu")
    run_trials(study, space, data, trials=14)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(study.get_trials(states=FINISHED)) == 14
    assert pruned, "no trial was pruned"
    assert all(t.user_attrs["epochs"] < 6 for t in pruned)
    front = {t.number for t in study.best_trials}
    assert front and not front & {t.number for t in pruned}
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert len(t.values) == 2 and t.values[0] == pytest.approx(t.user_attrs["val_acc"])
        assert t.values[1] >= 0 and "dead_frac" in t.user_attrs["probes"]


@pytest.mark.slow  # two searches each
@pytest.mark.parametrize("pruner", [
    {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"name": "percentile", "percentile": 40.0, "n_startup_trials": 2},
    {"name": "successive_halving", "min_resource": 1, "reduction_factor": 2},
])
def test_trial_pruning_decides_as_should_prune(write_space, tmp_path: Path, monkeypatch,
                                               pruner) -> None:
    import actsearch.engine.pruning as pruning

    space = load_space(write_space({"train.epochs": 5, "sampler.name": "random",
                                    "pruner": pruner}))
    data = to_device(load_data(space.data, 0), "cpu")

    def search(name: str) -> list[optuna.trial.FrozenTrial]:
        study, _ = open_study(space, name, f"sqlite:///{tmp_path}/{name}.db")
        run_trials(study, space, data, trials=10)
        return study.get_trials()

    reads = []
    real_init = pruning.StudySnapshot.__init__
    monkeypatch.setattr(pruning.StudySnapshot, "__init__",
                        lambda self, study: reads.append(1) or real_init(self, study))
    fast = search("fast")
    assert len(reads) == 10  # one snapshot per trial, not one read per epoch

    def one_by_one(self, trials) -> list[bool]:  # each report written, then should_prune
        self.reports.flush()
        return [trial.should_prune() for trial, _ in trials]

    monkeypatch.setattr(pruning.EpochPruning, "decide", one_by_one)
    slow = search("slow")
    assert any(t.state == TrialState.PRUNED for t in slow), "nothing was pruned"
    for f, s in zip(fast, slow, strict=True):
        assert (f.state, f.params, f.intermediate_values, f.system_attrs) == \
               (s.state, s.params, s.intermediate_values, s.system_attrs)


def test_report_buffer_writes_on_flush_or_when_due(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/r.db")
    trial = study.ask()

    def stored() -> dict[int, float]:
        return study._storage.get_trial(trial._trial_id).intermediate_values

    reports = ReportBuffer(flush_seconds=3600)
    reports.report(trial, 0.25, 1)
    reports.report(trial, 0.5, 2)
    reports.flush_if_due()
    assert stored() == {} and reports.pending() == [(trial.number, 1, 0.25),
                                                   (trial.number, 2, 0.5)]
    reports.flush(trial)
    assert stored() == {1: 0.25, 2: 0.5} and reports.pending() == []
    eager = ReportBuffer(flush_seconds=0)
    eager.report(trial, 0.75, 3)
    eager.flush_if_due()
    assert stored() == {1: 0.25, 2: 0.5, 3: 0.75}


def test_a_failed_write_leaves_the_rest_waiting() -> None:
    class FlakyTrial:  # the storage fails once, at step 2
        number, written, failed = 7, [], False

        def report(self, value: float, step: int) -> None:
            if step == 2 and not self.failed:
                self.failed = True
                raise RuntimeError("database is locked")
            self.written.append(step)

    trial, reports = FlakyTrial(), ReportBuffer(flush_seconds=3600)
    for step in (1, 2, 3):
        reports.report(trial, 0.5, step)
    with pytest.raises(RuntimeError):
        reports.flush()
    assert trial.written == [1] and [s for _, s, _ in reports.pending()] == [2, 3]
    reports.flush()
    assert trial.written == [1, 2, 3] and reports.pending() == []


class InterruptAtEpoch2:
    def trial_started(self, number: int, layout: str) -> None: ...

    def epoch_done(self, number: int, stats) -> None:
        if stats.epoch == 2:
            raise KeyboardInterrupt


def test_reports_of_an_interrupted_trial_are_kept(write_space, tmp_path: Path,
                                                  monkeypatch) -> None:
    # The buffer writes when the trial ends, whichever way: an epoch-2 interrupt leaves the
    # epoch-1 report (made before the interrupt) in the storage.
    from actsearch.engine import pruning

    monkeypatch.setattr(pruning, "FLUSH_SECONDS", 3600)  # no write before the trial ends

    space = load_space(write_space({"train.epochs": 5}))
    data = to_device(load_data(space.data, 0), "cpu")
    study, space = open_study(space, "k", f"sqlite:///{tmp_path}/k.db")
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, data, trials=1, listener=InterruptAtEpoch2())
    (trial,) = study.get_trials(states=(TrialState.FAIL,))
    assert trial.state == TrialState.FAIL
    assert list(trial.intermediate_values) == [1]


def test_a_failing_write_does_not_hide_why_the_trial_stopped(write_space, tmp_path: Path,
                                                             monkeypatch) -> None:
    from actsearch.engine import pruning

    def storage_down(self, value: float, step: int) -> None:
        raise RuntimeError("storage down")

    space = load_space(write_space({"train.epochs": 5}))
    data = to_device(load_data(space.data, 0), "cpu")
    study, space = open_study(space, "k", f"sqlite:///{tmp_path}/k.db")
    monkeypatch.setattr(pruning, "FLUSH_SECONDS", 3600)  # the only write: after the interrupt
    monkeypatch.setattr(optuna.trial.Trial, "report", storage_down)
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, data, trials=1, listener=InterruptAtEpoch2())
