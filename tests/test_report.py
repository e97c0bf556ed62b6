from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from scipy import stats as scipy_stats

import actsearch
from actsearch.analysis import compare_finalists, pareto_rows
from actsearch.faces.cli import main
from actsearch.faces.dashboard import summary_note
from actsearch.faces.graphs import plot_uniform_vs_mixed


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
    # Read together in one table, the two comparisons are adjusted together (Holm).
    raw = [mixed.versus_uniform.p_value, other.versus_uniform.p_value]
    smaller, larger = sorted(raw)
    hand = [min(1, 2 * smaller), max(min(1, 2 * smaller), larger)]
    assert sorted([mixed.p_holm, other.p_holm]) == pytest.approx(hand)
    assert best_uniform.p_holm is None


def test_pareto_rows_single_objective_trades_accuracy_for_time() -> None:
    study = optuna.create_study(direction="maximize")
    for acc, seconds in [(0.7, 2.0), (0.6, 1.0), (0.5, 1.5), (0.7, 3.0)]:
        study.add_trial(optuna.trial.create_trial(
            value=acc, user_attrs={"val_acc": acc, "train_seconds": seconds, "layout": "x"}))
    rows = pareto_rows(study.trials, [("accuracy", "max")])
    assert [values for _, values in rows] == [(0.7, 2.0), (0.6, 1.0)]


@pytest.mark.slow  # end to end
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


@pytest.mark.slow  # end to end on MNIST-1D
def test_the_default_space_report_leads_with_its_answer(tmp_path: Path) -> None:
    result = actsearch.search("mnist1d_mlp", trials=4, finalists=1, seeds=2, claim_seeds=2,
                              runs_dir=tmp_path / "runs", progress=False, report=True)
    analysis = result.analysis
    md = (tmp_path / "runs" / "mnist1d_mlp" / "report.md").read_text()
    # The first section is the answer: the best layout, the verdict, every claim, the cost.
    first = md.split("\n## ")[1]
    assert first.startswith("answer\n")
    head = [line[2:] for line in first.splitlines() if line.startswith("- ")]
    assert head == analysis.headline
    assert head[0].startswith("Best layout: ") and "over 2 fresh seeds" in head[0]
    assert head[1] == f"Mixed vs best uniform: {analysis.verdict}."
    claims = [line for line in head if line.startswith("Claim: ")]
    assert len(claims) == len(analysis.claims.results) == 5
    assert any("sharp units in gating paths" in c and "not applicable" in c for c in claims)
    assert head[-1].startswith("Cost: 4 trials") and "pruning saved" in head[-1]
    html = (tmp_path / "runs" / "mnist1d_mlp" / "report.html").read_text()
    assert html.index("<h2>answer</h2>") < html.index("<h2>top layouts")
    # The dashboard's note leads with the same lines.
    note = summary_note(analysis).split("\n\n")[1]
    assert note.splitlines() == [f"- {line}" for line in analysis.headline]

    # The uniform-vs-mixed graph draws the finalists' test accuracy with 95% intervals.
    finalists = {f["number"]: f for f in result.study.user_attrs["finalists"]}
    assert analysis.bars.measure == "test"
    fig = plot_uniform_vs_mixed(analysis)
    drawn = 0
    for trace in fig.data:
        for x, y, plus, minus in zip(trace.x, trace.y, trace.error_x.array,
                                     trace.error_x.arrayminus, strict=True):
            f = finalists[int(y.rsplit("#", 1)[1].rstrip(")"))]
            assert x == pytest.approx(f["mean"])
            assert x + plus == pytest.approx(f["ci_high"]) and x - minus == \
                pytest.approx(f["ci_low"])
            drawn += 1
    assert drawn == len(finalists)
    assert "test accuracy of the finalists" in fig.layout.xaxis.title.text
