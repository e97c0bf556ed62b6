from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from actsearch.engine.record import STORED, TrialRecord, instability
from actsearch.schema.space import load_space


def test_instability_terms() -> None:
    probes = {"robust_noise_0.1": 0.9, "dead_frac_max": 0.25, "grad_ratio": 100.0}
    assert instability(probes) == pytest.approx(0.1 + 0.25 + 0.2)
    # A vanished or exploded gradient ratio (stored as None) is the worst term, not missing.
    assert instability({**probes, "grad_ratio": None}) == pytest.approx(0.1 + 0.25 + 1.0)
    assert instability({**probes, "grad_ratio": 1e-30}) == pytest.approx(0.1 + 0.25 + 1.0)
    assert math.isnan(instability({"dead_frac_max": 0.1}))


def test_objective_values_follow_the_space(write_space) -> None:
    space = load_space(write_space({"objectives": ["accuracy", "latency", "dead_units",
                                                   "throughput", "convergence"]}))
    record = TrialRecord(val_acc=0.7, samples_per_second=1234.0,
                         probes={"lat_b1_rel": 1.1, "dead_frac_max": 0.05, "epochs_to_95": 3})
    assert record.objective_values(space.objectives) == (0.7, 1.1, 0.05, 1234.0, 3.0)


def test_a_record_written_to_a_trial_reads_back(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/r.db")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    written = TrialRecord(layout="relu | elu(0.50)", uniform=False, seed=7, worker="h:1",
                          end="complete", epochs=2, val_acc_curve=[0.5, 0.6],
                          val_loss_curve=[1.2, 1.1], train_seconds=0.5,
                          samples_per_second=100.0, val_acc=0.6, test_acc=0.55,
                          probes={"dead_frac_max": 0.0}, error="x" * 900)
    written.write(trial, STORED)
    study.tell(trial, 0.6)
    read = TrialRecord.from_frozen(study.trials[0])
    assert read.state == TrialState.COMPLETE and read.values == (0.6,)
    assert read.params == {"x": trial.params["x"]}
    for name in STORED:
        expected = getattr(written, name)
        if name == "error":
            expected = expected[:500]  # errors are cut to one storable line
        assert getattr(read, name) == expected, name
    # Old studies carry only some attributes: the rest read as their defaults.
    old = optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={"layout": "selu"})
    record = TrialRecord.from_frozen(old)
    assert record.layout == "selu" and record.val_acc is None and record.val_acc_curve == []
    assert math.isnan(record.accuracy) and record.is_finished and not record.is_complete
