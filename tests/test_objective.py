from __future__ import annotations

import math

import pytest

from actsearch.schema.space import load_space
from actsearch.search.objective import instability, objective_values


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
    attrs = {"val_acc": 0.7, "samples_per_second": 1234.0,
             "probes": {"lat_b1_rel": 1.1, "dead_frac_max": 0.05, "epochs_to_95": 3}}
    assert objective_values(space, attrs) == (0.7, 1.1, 0.05, 1234.0, 3.0)
