"""Render the analysis for people: rich tables in the terminal, report.md and report.html.

The tables are built once (``_tables``) and drawn three ways; the graphs come from
``actsearch.faces.graphs``, the same figures the dashboard shows. Everything here is drawn from
one ``actsearch.analysis.Analysis``: nothing is ranked or judged again.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actsearch.analysis import Analysis, BestUniform, StudySummary, failure_reasons
from actsearch.analysis.claims import METHOD
from actsearch.engine.record import records
from actsearch.engine.terms import TERMS

__all__ = ["failure_line", "print_analysis", "write_report"]


@dataclass(frozen=True)
class _Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _val_header(metric: str) -> str:
    """The validation metric's column: val acc, or val <train.metric's name>."""
    return "val acc" if metric == "accuracy" else f"val {metric}"


def _summary_table(summary: StudySummary, reference: BestUniform | None, title: str,
                   metric: str = "accuracy") -> _Table:
    rows = []
    for rank, row in enumerate(summary.top, start=1):
        delta = row.val_acc - reference.val_acc if reference is not None else math.nan
        layout = f"{row.label} (uniform)" if row.uniform else row.label
        rows.append([str(rank), str(row.number), layout, f"{row.val_acc:.4f}",
                     "" if math.isnan(delta) else f"{delta:+.4f}",
                     str(row.epochs), f"{row.train_seconds:.1f}"])
    saved = summary.epochs_if_unpruned - summary.epochs_trained
    note = (f"{summary.complete} complete, {summary.pruned} pruned ({summary.diverged} "
            f"diverged), {summary.failed} failed; pruning saved {saved} of "
            f"{summary.epochs_if_unpruned} epochs")
    if reference is not None:
        note = (f"best uniform: {reference.layout} (trial {reference.number}), by "
                f"{reference.chosen_by}\n" + note)
    if summary.baselines:
        note = (f"uniform baselines ({_val_header(metric)}): " + ", ".join(
            f"{r.layout} {r.val_acc:.4f}" for r in summary.baselines) + "\n" + note)
    return _Table(title, ["#", "trial", "layout", _val_header(metric), "vs best uniform",
                          "epochs", "train s"], rows, note)


def _objective_value(name: str, value: float) -> str:
    # Accuracies as in every other table; seconds to a tenth; other measures 4 significant.
    if name in ("accuracy", "val acc"):
        return f"{value:.4f}"
    return f"{value:.1f}" if name == "train s" else f"{value:.4g}"


def _tables(analysis: Analysis) -> list[_Table]:
    metric = analysis.metric
    tables = [_summary_table(analysis.summary, analysis.best_uniform,
                             f"top layouts of study {analysis.study_name}", metric)]
    names = list(analysis.pareto_info.names)
    tables.append(_Table(
        "Pareto front (" + ", ".join(names) + ")", ["trial", "layout", *names],
        [[str(r.number), r.label, *(_objective_value(n, v) for n, v in zip(names, values,
                                                                             strict=True))]
         for r, values in analysis.pareto]))
    if analysis.finalists:
        rows = []
        for f in analysis.finalists:
            v = f.versus_uniform
            ci = "-" if f.ci_low is None else f"[{f.ci_low:.4f}, {f.ci_high:.4f}]"
            rows.append([str(f.number), f.label + (" (uniform)" if f.uniform else ""),
                         str(len(f.test_acc)), _f(f.mean), _f(f.std), ci, _f(f.stability, 3),
                         "-" if v is None else f"{v.difference:+.4f}",
                         "-" if v is None else f"[{v.ci_low:+.4f}, {v.ci_high:+.4f}]",
                         "-" if v is None else f"{v.p_value:.3f}", _f(f.p_holm, 3)])
        tables.append(_Table(
            f"finalists: test {metric} over fresh seeds",
            ["trial", "layout", "seeds", "mean", "std", "95% CI", "stability",
             "vs best uniform", "diff 95% CI", "p (Welch)", "p (Holm)"], rows,
            "\n".join([analysis.verdict, *analysis.convergence.lines,
                       "stability (lower is steadier): the search trial's instability plus the "
                       f"std of test {metric} over seeds; p (Holm): Welch's p adjusted by Holm's "
                       "method over every finalist compared with the best uniform one (the "
                       "verdict reads it)"])))
    elif analysis.convergence.lines:  # no finalists: the baselines' own curves say it
        tables[0] = dataclasses.replace(tables[0], note="\n".join(
            [tables[0].note, *analysis.convergence.lines]))
    tables += _claim_tables(analysis)
    tables += _latency_table(analysis)
    if analysis.preferences:
        heat = analysis.heatmap
        per_group = heat.per_group
        acts = sorted({a for p in analysis.preferences for a in p.overall})
        rows = [[label.removeprefix("layer "), str(p.n_top),
                 *(f"{p.top.get(a, 0):.2f} ({p.overall.get(a, 0):.2f})" for a in acts),
                 p.favourite or "-", _f(analysis.importance.get(key), 3)]
                for p, label, key in zip(analysis.preferences, heat.labels, heat.params,
                                         strict=True)]
        what = "group" if per_group else "layer"
        tables.append(_Table(
            f"per-{what} preference: share in the top quartile (share in all complete trials)",
            ["group (input side first)" if per_group else "layer (1: input side)",
             "top trials", *acts, "favourite", "importance"], rows,
            f"importance: Optuna's fANOVA share of validation-{metric} variance explained by "
            f"the {what}'s activation choice"))
    if analysis.probes:
        rows = []
        for number, p in analysis.probes.items():
            layout = next((r.label for r in [*analysis.summary.top, *analysis.summary.baselines]
                           if r.number == number), "?")
            # Per layer (a list) or per site (a mapping by name): values input side first.
            means = " ".join(_f(m, 2) for m in _values(p.get("act_mean")))
            dead = " ".join(_f(d, 2) for d in _values(p.get("dead_frac")))
            rows.append([str(number), layout, means, dead, _f(p.get("grad_ratio"), 2),
                         _f(p.get("robust_noise_0.1"), 3), _f(p.get("lat_b1_ms"), 3),
                         "-" if p.get("epochs_to_95") is None else str(p["epochs_to_95"])])
        unit = "per site" if analysis.sites else "per hidden layer"
        tables.append(_Table(
            f"stability and speed of the listed layouts ({unit}, input side first)",
            ["trial", "layout", "act mean", "dead frac", "grad ratio first/last",
             "acc under noise 0.1", "latency b1 ms", "epochs to 95%"], rows,
            "\n".join(f"not measured: {note}" for note in analysis.probe_notes)))
    if analysis.sites:
        tables.append(_Table(
            f"per site of trial {analysis.sites_trial} (the best complete), in execution order",
            ["site", "act mean", "act std", "dead frac", "grad norm at output"],
            [[s.site, _f(s.act_mean, 3), _f(s.act_std, 3), _f(s.dead_frac, 2),
              _f(s.grad_norm, 3)] for s in analysis.sites]))
    return tables


def _values(stored: Any) -> list[Any]:
    return list(stored.values()) if isinstance(stored, dict) else list(stored or [])


def _claim_tables(analysis: Analysis) -> list[_Table]:
    claims, metric = analysis.claims, analysis.metric
    if not claims.ran:
        return []
    rows = []
    for c in claims.results:
        if not c.comparisons:
            rows.append([c.statement, "-", "-", "-", "-", "-", "-", c.verdict, c.reason])
        for k in c.comparisons:
            unit = "block pairs in all" if k.latency else "seeds per arm"
            rows.append([c.statement, k.label, str(k.n), k.value_text(k.effect),
                         "-" if k.ci_low is None else
                         f"[{k.value_text(k.ci_low)}, {k.value_text(k.ci_high)}]",
                         _f(k.p_value, 3), _f(k.p_holm, 3), k.verdict,
                         "" if k.seeds_needed is None else f"~{k.seeds_needed} {unit}"])
    arms = [[a.name, a.layout, a.norm, str(len(a.test_acc)), _f(a.mean),
             "-" if a.ci_low is None else f"[{a.ci_low:.4f}, {a.ci_high:.4f}]"]
            for a in claims.arms]
    tables = [_Table(f"claims: designed comparisons over {claims.seeds} fresh seeds per arm",
                   ["claim", "comparison", "seeds", "effect", "95% CI", "p (paired t)",
                    "p (Holm)", "verdict", "note"], rows, f"{TERMS} {METHOD}"),
            _Table(f"claim arms: test {metric} over the claim seeds",
                   ["arm", "layout", "norm", "seeds", "mean", "95% CI"], arms)]
    return tables


def _latency_table(analysis: Analysis) -> list[_Table]:
    costs = analysis.latency_costs
    if not costs.ran:
        return []
    headers = ["layout", "kind", "norm"]
    for mode in ("eager", "compiled"):
        headers += [f"{mode}, batch {b}" for b in costs.batch_sizes]
    rows = []
    for r in costs.rows:
        row = [f"{r.label}: {r.layout}", r.kind, r.norm]
        for by_batch in (r.eager, r.compiled):
            row += [f"x{by_batch[b]:.3f}" if b in by_batch else "-" for b in costs.batch_sizes]
        rows.append(row)
    note = ("Each figure: the median over alternating block pairs of this layout's latency / "
            "the same network's with ReLU at every site (a fresh model: latency does not "
            "depend on the weights' values); compiled: both under torch.compile.")
    if costs.compile_failure:
        note += f" Compiled: not measured ({costs.compile_failure})."
    return [_Table(f"latency against uniform relu on {costs.device} ({costs.threads} "
                   f"thread{'s' if costs.threads != 1 else ''})", headers, rows, note)]


def _rich(table: _Table, console: Console) -> None:
    # Cells are plain text: a label's "[norm batch]" is no rich markup tag to swallow.
    t = Table(title=escape(table.title), title_justify="left")
    for header in table.headers:
        t.add_column(escape(header))
    for row in table.rows:
        t.add_row(*(escape(cell) for cell in row))
    console.print(t)
    if table.note:
        console.print(table.note, highlight=False, markup=False)


def print_analysis(analysis: Analysis, console: Console) -> None:
    """The answer first, then every table of the analysis, in the terminal."""
    console.print(f"[bold]answer: {escape(analysis.study_name)}[/bold]", highlight=False)
    for line in analysis.headline:
        console.print(line, highlight=False, markup=False)
    console.print()
    for table in _tables(analysis):
        _rich(table, console)


def _markdown(table: _Table) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"## {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", *table.note.splitlines()]
    return "\n".join(lines) + "\n"


def _html(table: _Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    note = "".join(f"<p>{html.escape(line)}</p>" for line in table.note.splitlines())
    return (f"<h2>{html.escape(table.title)}</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


_CSS = ("<style>table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;font:13px sans-serif}h2{font:bold 16px sans-serif}</style>")


def write_report(analysis: Analysis, folder: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and a self-contained ``report.html`` (graphs inlined) to ``folder``;
    the analysis carries everything the report says, graphs included."""
    from actsearch.faces.graphs import all_figures, figures_to_html

    folder.mkdir(parents=True, exist_ok=True)
    tables = _tables(analysis)
    md = folder / "report.md"
    head = "".join(f"- {line}\n" for line in analysis.headline)
    md.write_text(f"# actsearch report: {analysis.study_name}\n\n## answer\n\n{head}\n"
                  + "\n".join(_markdown(t) for t in tables), encoding="utf-8")
    answer = ("<h2>answer</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>"
                                              for line in analysis.headline) + "</ul>")
    page = figures_to_html(list(all_figures(analysis).values()),
                           title=f"actsearch report: {analysis.study_name}",
                           intro_html=_CSS + answer + "".join(_html(t) for t in tables))
    report = folder / "report.html"
    report.write_text(page, encoding="utf-8")
    return report, md


def failure_line(trials: Sequence[FrozenTrial]) -> str | None:
    """One closing line for the CLI, e.g. ``3 trials failed: 2 out of memory, 1 ValueError``."""
    reasons = failure_reasons(trials)
    diverged = sum(1 for r in records(trials) if r.state == TrialState.PRUNED and r.diverged)
    parts = []
    if reasons:
        n = sum(reasons.values())
        parts.append(f"{n} trial{'s' if n != 1 else ''} failed: "
                     + ", ".join(f"{count} {reason}" for reason, count in reasons.items()))
    if diverged:
        parts.append(f"{diverged} diverged (pruned)")
    if not parts:
        return None
    return "; ".join(parts) + " (see each trial's user attrs 'error' and 'traceback')"
