from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from scipy import stats as scipy_stats

from actsearch.analysis import compare_finalists, pareto_rows
from actsearch.faces.cli import main


def test_compare_finalists_uses_welch_against_the_best_uniform() -> None:
    finalists = [
        {"number": 7, "layout": "relu | elu(0.50)", "uniform": False,
         "test_acc": [0.70, 0.72, 0.71], "mean": 0.71},
        {"number": 1, "layout": "elu(1.00) | elu(1.00)", "uniform": True,
         "test_acc": [0.66, 0.65, 0.67], "mean": 0.66},
        {"number": 0, "layout": "relu | relu", "uniform": True,
         "test_acc": [0.60, 0.61, 0.62], "mean": 0.61},
    ]
    rows = compare_finalists(finalists)
    mixed, best_uniform, other = rows
    assert best_uniform.versus_uniform is None  # the reference itself
    expected = scipy_stats.ttest_ind([0.70, 0.72, 0.71], [0.66, 0.65, 0.67], equal_var=False)
    assert mixed.versus_uniform.p_value == pytest.approx(expected.pvalue)
    assert mixed.versus_uniform.difference == pytest.approx(0.05)
    assert other.versus_uniform.label_b == "elu(1.00) | elu(1.00)"


def test_pareto_rows_single_objective_trades_accuracy_for_time() -> None:
    study = optuna.create_study(direction="maximize")
    for acc, seconds in [(0.7, 2.0), (0.6, 1.0), (0.5, 1.5), (0.7, 3.0)]:
        study.add_trial(optuna.trial.create_trial(
            value=acc, user_attrs={"val_acc": acc, "train_seconds": seconds, "layout": "x"}))
    rows = pareto_rows(study.trials, [("accuracy", "max")])
    assert [values for _, values in rows] == [(0.7, 2.0), (0.6, 1.0)]


def test_multi_objective_search_writes_reports(write_space, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    space = write_space({"objectives": [{"accuracy": "max"}, {"latency": "min"}],
                         "budget.trials": 6})
    assert main(["search", str(space), "--study", "mo", "--runs-dir", str(runs), "--plain",
                 "--finalists", "2", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front (accuracy, latency)" in out and "finalists" in out
    md = (runs / "mo" / "report.md").read_text()
    html = (runs / "mo" / "report.html").read_text()
    pareto = md[md.index("Pareto front"):].split("\n\n")[1]
    accuracies = [row.split("|")[-3].strip() for row in pareto.splitlines()[2:]]
    assert accuracies and all(re.fullmatch(r"\d\.\d{4}", a) for a in accuracies), pareto
    for text in (md, html):
        assert "Pareto front" in text and "vs best uniform" in text
        assert "p (Welch)" in text and "per-layer preference" in text
    assert "<script src=" not in html  # self-contained: plotly inlined, nothing fetched
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{runs}/mo/study.db")
    finalists = study.user_attrs["finalists"]
    assert any(f["uniform"] for f in finalists)
    assert all(len(f["test_acc"]) == 2 for f in finalists)
    for f in finalists:
        assert f["ci_low"] <= f["mean"] <= f["ci_high"]
    # The report command rebuilds the same files from the storage alone.
    (runs / "mo" / "report.md").unlink()
    assert main(["report", str(runs / "mo")]) == 0
    assert (runs / "mo" / "report.md").read_text() == md


def test_objective_values_are_formatted_as_in_the_other_tables() -> None:
    from actsearch.faces.report import _objective_value

    assert _objective_value("accuracy", 0.85) == "0.8500"  # .4g would print 0.85
    assert _objective_value("val acc", 1.0) == "1.0000"
    assert _objective_value("train s", 12.345) == "12.3"
    assert _objective_value("latency", 1.0123456) == "1.012"
