"""One analysis under every face: the report, the dashboard's note and the graphs state the same
verdict and the same best uniform layout, because they all draw one ``Analysis``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import optuna
import pytest
from conftest import layout_trial
from optuna_dashboard import get_note
from scipy import stats as scipy_stats

from actsearch.analysis import analyze, compare_finalists, decide
from actsearch.engine.record import FINALISTS_ATTR
from actsearch.faces.cli import main
from actsearch.faces.dashboard import prepare_dashboard
from actsearch.faces.graphs import BEST_UNIFORM_ANNOTATION, VERDICT_ANNOTATION
from actsearch.faces.report import write_report

FINALISTS_HEADING = "## finalists: test accuracy over fresh seeds\n"


def _stored_figure(study: optuna.Study, graph_id: str) -> dict:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    attrs = study._storage.get_study_system_attrs(study._study_id)
    return json.loads(get_plotly_graph_objects(attrs)[graph_id])


def _faces(md: str, study: optuna.Study) -> dict[str, dict]:
    """What each face says: its verdict sentence and its best uniform (layout, trial).

    The dashboard's note and figures are those ``prepare_dashboard`` stores in the study (it
    builds its own analysis), the report is the ``report.md`` given.
    """
    prepare_dashboard(study)
    faces = {}

    section = md.split(FINALISTS_HEADING)[1].split("\n## ")[0]
    notes = [line for line in section.splitlines() if line and not line.startswith("|")]
    best = re.search(r"^best uniform: (.+) \(trial (\d+)\), by ", md, re.MULTILINE)
    faces["report"] = {"verdict": notes[0], "best uniform": (best[1], int(best[2]))}

    note = get_note(study)
    verdict = re.search(r"^\*\*Versus uniform:\*\* (.+)\.$", note, re.MULTILINE)
    best = re.search(r"^\*\*Best uniform:\*\* `(.+)` \(trial (\d+)\), by ", note, re.MULTILINE)
    faces["note"] = {"verdict": verdict[1], "best uniform": (best[1], int(best[2])),
                     "text": note}

    figure = _stored_figure(study, "actsearch-baselines")
    annotations = {a.get("name"): a["text"] for a in figure["layout"]["annotations"]}
    caption = html.unescape(annotations[VERDICT_ANNOTATION].replace("<br>", " "))
    best = re.fullmatch(r"best uniform: (.+) \(#(\d+)\)",
                        html.unescape(annotations[BEST_UNIFORM_ANNOTATION]))
    faces["graph"] = {"verdict": caption, "best uniform": (best[1], int(best[2])),
                      "title": html.unescape(figure["layout"]["title"]["text"]),
                      "line at": figure["layout"]["shapes"][0]["x0"],
                      "bars": {y: x for trace in figure["data"]
                               for x, y in zip(trace["x"], trace["y"], strict=True)}}
    return faces


def _assert_faces_agree(faces: dict[str, dict], verdict: str, best_uniform: tuple[str, int],
                        best_uniform_test_mean: float) -> None:
    for name, face in faces.items():
        assert face["verdict"] == verdict, name
        assert face["best uniform"] == best_uniform, name
    graph = faces["graph"]
    # The dashed line marks the best uniform layout's bar (its finalist's mean test accuracy,
    # what the verdict rests on), whatever the search's numbers say.
    layout, number = best_uniform
    assert graph["line at"] == pytest.approx(best_uniform_test_mean)
    assert graph["bars"][f"{layout}  (#{number})"] == pytest.approx(best_uniform_test_mean)
    significant = "no significant difference" not in verdict
    assert ("no significant difference" in graph["title"]) is (not significant)
    if not significant:  # the search's numbers may favour a layout; no face may say it won
        assert "beats" not in faces["note"]["text"] and "beats" not in graph["title"]


@pytest.mark.slow  # end to end
def test_report_note_and_graphs_agree_on_a_searched_study(write_space, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    space = write_space({"budget.trials": 8})
    assert main(["search", str(space), "--study", "agree", "--runs-dir", str(runs), "--plain",
                 "--finalists", "2", "--seeds", "3"]) == 0
    md = (runs / "agree" / "report.md").read_text()
    study = optuna.load_study(study_name="agree", storage=f"sqlite:///{runs}/agree/study.db")
    faces = _faces(md, study)

    # What the faces must say, computed here from the stored finalists alone.
    finalists = study.user_attrs["finalists"]
    uniform = [f for f in finalists if f["uniform"]]
    mixed = [f for f in finalists if not f["uniform"]]
    reference = max(uniform, key=lambda f: f["mean"])
    if mixed:
        best = max(mixed, key=lambda f: f["mean"])
        p_values = [scipy_stats.ttest_ind(f["test_acc"], reference["test_acc"],
                                          equal_var=False).pvalue
                    for f in finalists if f is not reference]
        p = p_values[[f for f in finalists if f is not reference].index(best)]
        # Holm by hand: the best mixed finalist was picked among these comparisons.
        order = sorted(p_values)
        m = len(order)
        p_holm = max(min(1.0, (m - i) * order[i]) for i in range(order.index(p) + 1))
        verdict = faces["report"]["verdict"]
        if p_holm >= 0.05:
            assert verdict.startswith(f"no significant difference between {best['layout']} "
                                      f"and {reference['layout']}")
        else:
            higher = best if best["mean"] > reference["mean"] else reference
            assert verdict.startswith(f"{higher['layout']} is higher than")
        assert f"p = {p:.3g}" in verdict
    else:
        verdict = "no mixed layout among the finalists: the best layouts found are uniform"
    _assert_faces_agree(faces, verdict, (reference["layout"], reference["number"]),
                        reference["mean"])


def _finalist(number: int, layout: str, uniform: bool, test_acc: list[float]) -> dict:
    mean = sum(test_acc) / len(test_acc)
    return {"number": number, "layout": layout, "uniform": uniform, "test_acc": test_acc,
            "mean": mean, "std": 0.01, "ci_low": mean - 0.02, "ci_high": mean + 0.02,
            "stability": None}


def test_search_accuracy_does_not_overrule_the_finalists(tmp_path: Path) -> None:
    # In the search (one run each) the best mixed layout leads the best uniform one by 0.08, and
    # "relu | relu" is the best uniform layout. Over fresh seeds "selu | selu" is the best
    # uniform layout, and the best mixed finalist is level with it. Before the faces shared one
    # analysis, the dashboard said the mixed layout beats "relu | relu" and the graph showed a
    # +0.08 gain, while the report found no significant difference against "selu | selu".
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="split", storage=storage, direction="maximize")
    for number, (layout, uniform, acc) in enumerate([
            ("relu | relu", True, 0.62), ("selu | selu", True, 0.60),
            ("relu | selu", False, 0.70), ("selu | relu", False, 0.66)]):
        study.add_trial(layout_trial(acc, layout, uniform, train_seconds=1.0 + number, epochs=2,
                                     val_acc_curve=[acc - 0.1, acc],
                                     val_loss_curve=[1.0, 0.9]))
    study.set_user_attr(FINALISTS_ATTR, [
        _finalist(2, "relu | selu", False, [0.64, 0.66, 0.65]),
        _finalist(3, "selu | relu", False, [0.60, 0.61, 0.62]),
        _finalist(0, "relu | relu", True, [0.60, 0.61, 0.59]),
        _finalist(1, "selu | selu", True, [0.66, 0.64, 0.65])])

    analysis = analyze(study, [("accuracy", "max")], 2)
    _, md_path = write_report(analysis, tmp_path / "report")
    md = md_path.read_text()
    faces = _faces(md, study)

    verdict = faces["report"]["verdict"]
    assert verdict.startswith("no significant difference between relu | selu and selu | selu")
    _assert_faces_agree(faces, verdict, ("selu | selu", 1), 0.65)
    # The top table's "vs best uniform" is against that same layout's search accuracy.
    top = md.split("## top layouts of study split\n")[1].split("\n\n")[0]
    assert "| 1 | 2 | relu \\| selu | 0.7000 | +0.1000 |" in top
    assert "In the search** (validation accuracy, one run each): the best mixed layout " \
           "`relu | selu` (0.7000), the best uniform layout `selu | selu` (0.6000)" in \
           faces["note"]["text"]


def test_the_verdict_names_the_winner_only_when_significant() -> None:
    rows = compare_finalists([
        _finalist(4, "relu | selu", False, [0.70, 0.71, 0.72]),
        _finalist(0, "relu | relu", True, [0.60, 0.61, 0.62])])
    verdict = decide(rows)
    assert verdict.outcome == "mixed" and verdict.uniform.layout == "relu | relu"
    assert verdict.text.startswith("relu | selu is higher than relu | relu by 0.1")
    assert verdict.short.startswith("verdict: best mixed beats best uniform by 0.1000")
    reverse = decide(compare_finalists([
        _finalist(4, "relu | selu", False, [0.60, 0.61, 0.62]),
        _finalist(0, "relu | relu", True, [0.70, 0.71, 0.72])]))
    assert reverse.outcome == "uniform" and "best uniform beats best mixed" in reverse.short
    none = decide([])
    assert none.outcome == "none" and none.short == "no verdict: no finalists were retrained"
    # A minimised metric (an error): the lower mean wins, and the sentence says which is better.
    lower = decide(compare_finalists([
        _finalist(4, "relu | selu", False, [0.10, 0.11, 0.12]),
        _finalist(0, "relu | relu", True, [0.20, 0.21, 0.22])], sign=-1), "mse")
    assert lower.outcome == "mixed"
    assert lower.text.startswith("relu | relu is higher than relu | selu by 0.1")
    assert lower.text.endswith(": relu | selu is the better (a lower mse is better)")
    assert "is the better" not in verdict.text
