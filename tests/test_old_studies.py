"""Studies written by earlier versions still open, report, export and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import actsearch
from actsearch.engine.export import read_config
from actsearch.engine.record import STORED, TrialRecord
from actsearch.engine.storage import space_of_study

# End to end: an old study reported, exported and resumed with finalists.
pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "v0.1-tiny" / "study.db"


def _copy(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    shutil.copy(FIXTURE, run / "study.db")  # never write to the fixture itself
    return run


def test_an_old_study_reads_reports_exports_and_resumes(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    study = optuna.load_study(study_name="old", storage=f"sqlite:///{run / 'study.db'}")
    records = [TrialRecord.from_frozen(t) for t in study.get_trials()]
    assert len(records) == 8 and all(r.is_finished for r in records)
    for r in records:  # every attribute the old version wrote reads back through the record
        assert r.layout and r.seed is not None and r.worker and r.end
        assert len(r.val_acc_curve) == r.epochs == len(r.val_loss_curve)
        assert (r.probes is not None) == r.is_complete == (r.test_acc is not None)
    written = {k for t in study.get_trials() for k in t.user_attrs}
    assert written <= set(STORED), written - set(STORED)

    analysis = actsearch.analyze(run)
    assert analysis.summary.complete + analysis.summary.pruned == 8
    assert analysis.finalists and analysis.best_uniform is not None
    html, md = actsearch.report(run, out=tmp_path / "report")
    assert analysis.verdict in md.read_text() and html.is_file()
    # Stored before claims existed: the report says they were not run.
    assert not analysis.claims.ran
    assert "Claims: not run" in md.read_text().split("\n## ")[1]

    (config,) = actsearch.export_configs(study, top=1, out_dir=tmp_path / "exports")
    assert str(read_config(config).layout) == analysis.summary.top[0].layout

    # Resumed with its stored space: two more trials, nothing repeated, finalists redone.
    result = actsearch.search(space_of_study(study), study="old", trials=10, finalists=2,
                              seeds=2, runs_dir=tmp_path / "runs", progress=False)
    assert result.finished == 2
    trials = result.study.get_trials()
    assert len(trials) == 10 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                                     for t in trials)
    assert len({str(sorted(t.params.items())) for t in trials}) >= 9  # new params sampled
