from __future__ import annotations

import math
import re
import subprocess
import sys

import optuna
import pytest
from conftest import run_tiny_study
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from actsearch.analysis import Analysis, analyze
from actsearch.faces import graphs
from actsearch.faces.graphs import FIGURE_TITLES, all_figures, figures_to_html

ACCURACY = [("accuracy", "max")]


def _dominates(a, b, signs) -> bool:
    """Brute force, independent of the code under test: a is no worse anywhere, better once."""
    return (all(s * x >= s * y for x, y, s in zip(a, b, signs, strict=True))
            and any(s * x > s * y for x, y, s in zip(a, b, signs, strict=True)))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> optuna.Study:
    storage, name = run_tiny_study(tmp_path_factory.mktemp("graphs"))
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture(scope="module")
def analysis(study: optuna.Study) -> Analysis:
    return analyze(study, ACCURACY, 3)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_heatmap_shares_sum_to_one_per_depth(study: optuna.Study, analysis: Analysis) -> None:
    info = analysis.heatmap
    complete = _complete(study)
    assert info.activations == ["relu", "elu", "selu"]
    assert info.layers == [0, 1]
    assert info.complete_trials == len(complete)
    assert info.top_trials == math.ceil(len(complete) / 4)
    for row, count in zip(info.shares, info.counts, strict=True):
        assert sum(row) == pytest.approx(1.0)
        assert count == info.top_trials
    # The shares are those of the best quarter of complete trials, counted by hand.
    top = sorted(complete, key=lambda t: (-t.value, t.number))[:info.top_trials]
    for i in info.layers:
        for j, a in enumerate(info.activations):
            expected = sum(t.params[f"act_{i}"] == a for t in top) / len(top)
            assert info.shares[i][j] == pytest.approx(expected)
            alphas = [t.params[f"elu_alpha_{i}"] for t in top if t.params[f"act_{i}"] == a
                      and a == "elu"]
            if alphas:
                assert info.mean_params[i][j] == pytest.approx(sum(alphas) / len(alphas))
            else:
                assert info.mean_params[i][j] is None


def test_pareto_points_are_non_dominated(study: optuna.Study, analysis: Analysis) -> None:
    info = analysis.pareto_info
    assert info.names == ("val acc", "train s") and info.signs == (1, -1)
    assert len(info.points) == len(_complete(study))
    front = [p for p in info.points if p.on_front]
    assert front
    for p in info.points:
        dominated = any(_dominates(q.values, p.values, info.signs) for q in info.points)
        assert p.on_front is not dominated
    # The most accurate trial is on the front (nothing beats it on accuracy).
    best = max(info.points, key=lambda p: (p.values[0], -p.values[1]))
    assert best.on_front
    by_number = {t.number: t for t in study.trials}
    for p in info.points:
        attrs = by_number[p.row.number].user_attrs
        assert p.values == (attrs["val_acc"], attrs["train_seconds"])
        assert p.row.layout == attrs["layout"] and p.row.uniform == attrs["uniform"]
    # The report's Pareto table lists the same front, best accuracy first.
    assert [row.number for row, _ in analysis.pareto] == [p.row.number for p in info.front]


def test_pareto_of_a_multi_objective_study_matches_optuna() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"act_0": CategoricalDistribution(["relu", "selu"])}
    for i, (acc, ms) in enumerate([(0.9, 5.0), (0.8, 1.0), (0.85, 6.0), (0.7, 0.5), (0.9, 4.0),
                                   (0.6, 3.0)]):
        study.add_trial(create_trial(values=[acc, ms], params={"act_0": ["relu", "selu"][i % 2]},
                                     distributions=dist, user_attrs={"layout": f"l{i}"}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"act_0": "relu"},
                                 distributions=dist))
    analysis = analyze(study, [("val acc", "max"), ("latency ms", "min")], 0, importance=False)
    info = analysis.pareto_info
    assert info.names == ("val acc", "latency ms") and info.signs == (1, -1)
    assert {p.row.number for p in info.front} == {t.number for t in study.best_trials} == \
        {1, 3, 4}
    fig = graphs.plot_pareto_front(analysis)  # draws the first two objectives
    assert FIGURE_TITLES["actsearch-pareto"] in fig.layout.title.text


def test_baselines_and_curves(study: optuna.Study) -> None:
    analysis = analyze(study, ACCURACY, 3, graph_top_k=3, importance=False)
    info = analysis.bars
    complete = _complete(study)
    # No finalists: the search's validation accuracy, and the axis says so.
    assert info.measure == "search" and "no finalists" in info.axis
    uniform_layouts = {t.user_attrs["layout"] for t in complete if t.user_attrs["uniform"]}
    assert [b.label for b in info.uniform] and {b.label for b in info.uniform} == \
        uniform_layouts
    assert len(info.mixed) <= 3
    for bars in (info.uniform, info.mixed):
        assert [b.value for b in bars] == sorted((b.value for b in bars), reverse=True)
        assert len({b.label for b in bars}) == len(bars)
        assert all(b.ci_low is None for b in bars)  # one run: no interval
    if info.mixed:
        best_mixed = max(t.value for t in complete if not t.user_attrs["uniform"])
        assert info.mixed[0].value == pytest.approx(best_mixed)
    # No finalists: the best uniform layout is the search's best, and there is no verdict.
    best_uniform = max((t for t in complete if t.user_attrs["uniform"]),
                       key=lambda t: (t.value, -t.number))
    assert analysis.best_uniform.number == best_uniform.number
    assert analysis.best_uniform.test_mean is None
    assert analysis.comparison.outcome == "none"
    fig = graphs.plot_uniform_vs_mixed(analysis)
    assert "no verdict: no finalists were retrained" in fig.layout.title.text

    curves = analyze(study, ACCURACY, 3, graph_top_k=2, importance=False).curves
    assert curves[0].number == study.best_trial.number
    assert any(c.uniform for c in curves)  # the best uniform is always there to compare
    for c in curves:
        t = study.trials[c.number]
        assert len(c.val_acc) == len(c.val_loss) == t.user_attrs["epochs"]
        assert c.val_acc[-1] == pytest.approx(t.value, abs=1e-6)


def test_figures_of_an_empty_and_a_running_study() -> None:
    study = optuna.create_study(direction="maximize")
    figures = all_figures(analyze(study, ACCURACY, 0))
    assert set(figures) == set(FIGURE_TITLES)
    dist = {"act_0": CategoricalDistribution(["relu", "elu"]),
            "elu_alpha_0": FloatDistribution(0.1, 2.0)}
    study.add_trial(create_trial(state=TrialState.RUNNING, params={"act_0": "relu"},
                                 distributions={"act_0": dist["act_0"]}))
    study.add_trial(create_trial(value=0.5, params={"act_0": "elu", "elu_alpha_0": 0.5},
                                 distributions=dist,
                                 user_attrs={"layout": "elu(0.50)", "uniform": True,
                                             "val_acc": 0.5,
                                             "val_acc_curve": [0.4, 0.5],
                                             "val_loss_curve": [1.0, 0.9],
                                             "train_seconds": 1.0}))
    analysis = analyze(study, ACCURACY, 0)
    for fig in all_figures(analysis).values():
        fig.to_json()  # drawable
    heat = analysis.heatmap
    assert heat.shares == [[0.0, 1.0]] and heat.mean_params == [[None, 0.5]]


def test_html_is_self_contained(analysis: Analysis) -> None:
    page = figures_to_html(list(all_figures(analysis).values()), title="study <tiny>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>study &lt;tiny&gt;</title>" in page
    # plotly.js is inlined once; nothing is loaded from anywhere (no src=, no link).
    assert len(re.findall(r"<script[^>]*\bsrc=", page)) == 0
    assert "<link" not in page
    assert page.count("Plotly.newPlot(") == len(FIGURE_TITLES)
    assert len(page) > 3_000_000  # the minified plotly.js bundle
    for title in FIGURE_TITLES.values():
        assert title in page


@pytest.mark.slow  # a child process
def test_graphs_and_dashboard_do_not_import_torch() -> None:
    code = ("import sys, actsearch.analysis, actsearch.faces.graphs, actsearch.faces.dashboard, "
            "actsearch.faces.report; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_latency_per_activation_is_each_uniform_layouts_probe(study: optuna.Study,
                                                              analysis: Analysis) -> None:
    uniform = {}
    for t in sorted(_complete(study), key=lambda t: (-t.value, t.number)):
        if t.user_attrs["uniform"]:
            uniform.setdefault(t.params["act_0"], t)  # the best trial of each uniform layout
    assert {r.activation for r in analysis.latency} == set(uniform)
    for r in analysis.latency:
        assert r.number == uniform[r.activation].number
        assert r.b1_ms == uniform[r.activation].user_attrs["probes"]["lat_b1_ms"]
    fig = graphs.plot_latency(analysis)
    (bars,) = fig.data
    assert list(bars.x) == sorted(r.b1_ms for r in analysis.latency)  # fastest first
    assert FIGURE_TITLES["actsearch-latency"] in fig.layout.title.text
