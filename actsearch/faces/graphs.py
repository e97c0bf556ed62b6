"""actsearch's plotly figures of a study: the one place that builds them.

Each ``plot_...()`` only draws a part of an ``actsearch.analysis.Analysis`` (its data, and the
rankings and the verdict behind it, are computed and tested there, as Optuna's
``visualization/_intermediate_values.py`` separates ``_get_..._info()`` from drawing). So a
figure says what the report and the dashboard's note say. The dashboard stores these figures in
the study; ``figures_to_html`` renders them into one self-contained offline page for a report.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence

import plotly.graph_objects as go

from actsearch.analysis import Analysis

__all__ = [
    "FIGURE_TITLES",
    "all_figures",
    "figures_to_html",
    "plot_latency",
    "plot_layer_heatmap",
    "plot_learning_curves",
    "plot_pareto_front",
    "plot_uniform_vs_mixed",
]

FIGURE_TITLES = {
    "actsearch-pareto": "actsearch: Pareto front",
    "actsearch-layers": "actsearch: activation per layer",
    "actsearch-baselines": "actsearch: uniform vs mixed",
    "actsearch-curves": "actsearch: learning curves",
    "actsearch-latency": "actsearch: latency per activation",
}
VERDICT_ANNOTATION = "verdict"  # the name of the uniform-vs-mixed figure's caption
BEST_UNIFORM_ANNOTATION = "best uniform"  # the name of the label of its best-uniform line

# template="none" keeps each figure's JSON small (a full template adds ~6 kB per figure, and the
# dashboard stores figures in 2 kB study attributes, rewritten on every refresh).
_LAYOUT = {
    "template": "none",
    "font": {"family": "Liberation Sans, Arial, sans-serif", "size": 13},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
    "hovermode": "closest",
}
_AXIS = {"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999",
         "showline": True, "automargin": True}
_AXIS_NAMES = {"val acc": "validation accuracy", "train s": "train seconds"}
_UNIFORM_COLOR = "#1f77b4"
_MIXED_COLOR = "#ff7f0e"
_DOMINATED_COLOR = "#bbbbbb"
_FRONT_COLOR = "#d62728"
_CAPTION_CHARS = 90  # the dashboard draws figures at half width


def _title(graph_id: str, detail: str) -> dict[str, object]:
    # Short first line: the dashboard draws these figures at half width.
    return {"text": f"{FIGURE_TITLES[graph_id]}<br><sup>{html.escape(detail)}</sup>"}


# ----------------------------------------------------------------------------- Pareto front


def plot_pareto_front(analysis: Analysis) -> go.Figure:
    """Every complete trial in objective space, the non-dominated ones marked and joined.

    Accuracy (the first axis of ``analysis.pareto_info``) is drawn upwards, the second axis
    (training time with one objective) across; with more objectives, the first two.
    """
    info = analysis.pareto_info
    # "val mse" (a train.metric's) reads "validation mse".
    y_name, x_name = (_AXIS_NAMES.get(n, n.replace("val ", "validation ", 1))
                      for n in info.names[:2])
    fig = go.Figure()
    for on_front, label, color, size in ((False, "dominated", _DOMINATED_COLOR, 8),
                                         (True, "non-dominated", _FRONT_COLOR, 11)):
        pts = [p for p in info.points if p.on_front == on_front]
        fig.add_trace(go.Scatter(
            x=[p.values[1] for p in pts], y=[p.values[0] for p in pts], mode="markers",
            name=label, marker={"color": color, "size": size,
                                "symbol": ["diamond" if p.row.uniform else "circle"
                                           for p in pts],
                                "line": {"width": 1, "color": "#333"}},
            text=[f"trial {p.row.number}: {p.row.label}"
                  f"{' (uniform)' if p.row.uniform else ''}" for p in pts],
            hovertemplate=f"%{{text}}<br>{x_name} %{{x:.4g}}<br>{y_name} %{{y:.4f}}"
                          "<extra></extra>"))
    front = sorted(info.front, key=lambda p: p.values[1])
    if len(info.names) == 2 and len(front) > 1:  # a step line only means something in 2-D
        fig.add_trace(go.Scatter(x=[p.values[1] for p in front], y=[p.values[0] for p in front],
                                 mode="lines", line={"color": _FRONT_COLOR, "dash": "dot",
                                                     "shape": "hv"},
                                 name="front", hoverinfo="skip"))
    fig.update_layout(**_LAYOUT, title=_title("actsearch-pareto", "diamonds: uniform layouts"))
    fig.update_xaxes(title_text=x_name, **_AXIS)
    fig.update_yaxes(title_text=y_name, **_AXIS)
    return fig


# ----------------------------------------------------------------------------- layer heatmap


def plot_layer_heatmap(analysis: Analysis) -> go.Figure:
    """Depth x activation: which activation the best layouts use at each layer (a factory
    model's: at each group, input side first)."""
    info = analysis.heatmap
    text = [[f"{s:.0%}" + (f"<br>alpha {m:.2f}" if m is not None else "")
             for s, m in zip(row, mrow, strict=True)]
            for row, mrow in zip(info.shares, info.mean_params, strict=True)]
    fig = go.Figure(go.Heatmap(
        z=info.shares, x=info.activations, y=info.labels,
        zmin=0, zmax=1, colorscale="Blues", text=text, texttemplate="%{text}",
        hovertemplate="%{y}, %{x}: %{z:.0%} of the top trials<extra></extra>",
        colorbar={"title": {"text": "share"}, "tickformat": ".0%"}))
    fig.update_layout(**_LAYOUT, title=_title(
        "actsearch-layers", f"share among the top {info.top_trials} of "
        f"{info.complete_trials} complete trials"))
    fig.update_xaxes(title_text="activation", **{**_AXIS, "showgrid": False})
    # Input side on top, as the layout string reads left to right.
    fig.update_yaxes(title_text="group" if info.per_group else "depth", autorange="reversed",
                     **{**_AXIS, "showgrid": False})
    return fig


# ----------------------------------------------------------------------------- baselines


def plot_uniform_vs_mixed(analysis: Analysis) -> go.Figure:
    """Bars: the uniform and the best mixed finalists' mean test accuracy over fresh seeds with
    95% intervals (the numbers the verdict rests on; a study without finalists shows its
    search's validation accuracy and says so), the best uniform layout as a line; the subtitle
    and the caption state the analysis' verdict."""
    bars, reference, verdict = analysis.bars, analysis.best_uniform, analysis.comparison
    fig = go.Figure()
    for rows, name, color in ((bars.uniform, "uniform", _UNIFORM_COLOR),
                              (bars.mixed, "mixed", _MIXED_COLOR)):
        # One run (the search's, or a finalist with one seed) has no interval: no whisker.
        plus = [0.0 if b.ci_high is None else b.ci_high - b.value for b in rows]
        minus = [0.0 if b.ci_low is None else b.value - b.ci_low for b in rows]
        fig.add_trace(go.Bar(
            x=[b.value for b in rows], y=[f"{b.label}  (#{b.number})" for b in rows],
            orientation="h", name=name, marker={"color": color},
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "visible": any(plus) or any(minus)},
            text=[f"{b.value:.4f}" for b in rows], textposition="outside",
            customdata=[b.runs for b in rows],
            hovertemplate="%{y}<br>%{x:.4f} over %{customdata} runs<extra></extra>"))
    values = [b.value for b in bars.uniform + bars.mixed]
    values += [v for b in bars.uniform + bars.mixed for v in (b.ci_low, b.ci_high)
               if v is not None]
    if reference is not None and bars.reference is not None:
        fig.add_vline(x=bars.reference, line={"color": _UNIFORM_COLOR, "dash": "dash"},
                      annotation={"name": BEST_UNIFORM_ANNOTATION,
                                  "text": html.escape(f"best uniform: {reference.layout} "
                                                      f"(#{reference.number})"),
                                  "font": {"color": _UNIFORM_COLOR, "size": 11}},
                      annotation_position="top")
        values.append(bars.reference)
    caption = textwrap.wrap(verdict.text, _CAPTION_CHARS)
    fig.add_annotation(name=VERDICT_ANNOTATION, text="<br>".join(map(html.escape, caption)),
                       xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top",
                       yshift=-72, showarrow=False, align="left", font={"size": 11})
    fig.update_layout(**_LAYOUT, title=_title("actsearch-baselines", verdict.short),
                      barmode="group", bargap=0.25)
    fig.update_layout(margin={**_LAYOUT["margin"], "b": 90 + 15 * len(caption)})
    low = min(values, default=0.0)
    high = max(values, default=1.0)
    pad = max((high - low) * 0.5, 0.01)
    # Bars from zero would hide differences of a fraction of a percent.
    fig.update_xaxes(title_text=bars.axis, range=[max(0.0, low - pad), high + pad], **_AXIS)
    fig.update_yaxes(autorange="reversed", **{**_AXIS, "showgrid": False})
    return fig


# ----------------------------------------------------------------------------- learning curves


def plot_learning_curves(analysis: Analysis) -> go.Figure:
    """Validation accuracy and loss per epoch of the best layouts (uniform ones dashed)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"validation {analysis.metric}",
                                                        "validation loss"))
    palette = ["#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for k, c in enumerate(analysis.curves):
        color = _UNIFORM_COLOR if c.uniform else palette[k % len(palette)]
        line = {"color": color, "dash": "dash" if c.uniform else "solid"}
        name = f"#{c.number} {c.label}"
        for col, values in ((1, c.val_acc), (2, c.val_loss)):
            fig.add_trace(go.Scatter(
                x=list(range(1, len(values) + 1)), y=values, mode="lines+markers", line=line,
                name=name, legendgroup=name, showlegend=col == 1,
                hovertemplate=f"{html.escape(name)}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>"),
                row=1, col=col)
    fig.update_layout(**_LAYOUT, title=_title("actsearch-curves", "the best layouts, "
                                              "uniform ones dashed"),
                      legend={"orientation": "h", "y": -0.3})
    # Room for the two-line title above the subplot titles.
    fig.update_layout(margin={**_LAYOUT["margin"], "t": 100})
    fig.update_xaxes(title_text="epoch", dtick=1, **_AXIS)
    fig.update_yaxes(**_AXIS)
    return fig


# ----------------------------------------------------------------------------- latency


_LATENCY_COLORS = {("eager", 0): "#9ecae1", ("eager", 1): "#1f77b4",
                   ("compiled", 0): "#fdae6b", ("compiled", 1): "#e6550d"}


def plot_latency(analysis: Analysis) -> go.Figure:
    """Each activation's latency on this device. Timed after the search (a search's ``latency``): its
    uniform layout against uniform ReLU, one bar per mode (eager, compiled) and batch size,
    with the claim's margin drawn; otherwise each uniform trial's batch-1 probe (median over
    timed blocks, the interquartile range as a whisker), fastest first."""
    costs = analysis.latency_costs
    if costs.ran:
        return _plot_latency_costs(analysis)
    rows = sorted(analysis.latency, key=lambda r: r.b1_ms)
    fig = go.Figure(go.Bar(
        x=[r.b1_ms for r in rows], y=[r.activation for r in rows], orientation="h",
        marker={"color": _UNIFORM_COLOR},
        error_x={"type": "data", "array": [(r.b1_iqr_ms or 0.0) / 2 for r in rows],
                 "visible": any(r.b1_iqr_ms for r in rows)},
        text=[f"{r.b1_ms:.4f} ms" for r in rows], textposition="outside",
        customdata=[[r.number, math.nan if r.big_ms is None else r.big_ms] for r in rows],
        hovertemplate="%{y} (trial %{customdata[0]}): %{x:.4f} ms at batch 1<br>"
                      "%{customdata[1]:.3f} ms at the large batch<extra></extra>"))
    fig.update_layout(**_LAYOUT, title=_title(
        "actsearch-latency", "each activation's uniform layout, batch 1, on this device"))
    fig.update_xaxes(title_text="inference latency, ms (median; whisker: half the IQR)",
                     **_AXIS)
    fig.update_yaxes(autorange="reversed", **{**_AXIS, "showgrid": False})
    return fig


def _plot_latency_costs(analysis: Analysis) -> go.Figure:
    costs = analysis.latency_costs
    rows = [r for r in costs.rows if r.kind == "activation"]
    names = [r.label.removeprefix("uniform ") for r in rows]
    fig = go.Figure()
    for mode in ("eager", "compiled"):
        for i, batch in enumerate(costs.batch_sizes):
            values = [getattr(r, mode).get(batch) for r in rows]
            if all(v is None for v in values):
                continue  # compiled not measured: the caption says why
            fig.add_trace(go.Bar(
                name=f"{mode}, batch {batch}", x=[math.nan if v is None else v for v in values],
                y=names, orientation="h",
                marker={"color": _LATENCY_COLORS[(mode, min(i, 1))]},
                text=["-" if v is None else f"x{v:.2f}" for v in values], textposition="outside",
                hovertemplate=f"%{{y}}, {mode}, batch {batch}: x%{{x:.3f}} ReLU's latency"
                              "<extra></extra>"))
    fig.add_vline(x=1.0, line={"color": "#555", "width": 1})
    fig.add_vline(x=1.0 + costs.margin, line={"color": _FRONT_COLOR, "dash": "dot", "width": 1},
                  annotation_text=f"margin x{1 + costs.margin:.2f}",
                  annotation_position="top right")
    note = f"against uniform relu on {costs.device}, {costs.threads} thread(s)"
    if costs.compile_failure:
        note += f"; compiled: not measured ({costs.compile_failure})"
    fig.update_layout(**_LAYOUT, barmode="group", title=_title("actsearch-latency", note))
    fig.update_xaxes(title_text="latency / ReLU's at every site (median over block pairs)",
                     **_AXIS)
    fig.update_yaxes(autorange="reversed", **{**_AXIS, "showgrid": False})
    return fig


# ----------------------------------------------------------------------------- together


def all_figures(analysis: Analysis) -> dict[str, go.Figure]:
    """Every actsearch figure of an analysis, by a stable id (the keys of ``FIGURE_TITLES``)."""
    return {
        "actsearch-pareto": plot_pareto_front(analysis),
        "actsearch-layers": plot_layer_heatmap(analysis),
        "actsearch-baselines": plot_uniform_vs_mixed(analysis),
        "actsearch-curves": plot_learning_curves(analysis),
        "actsearch-latency": plot_latency(analysis),
    }


def figures_to_html(figures: Sequence[go.Figure], title: str = "actsearch",
                    intro_html: str = "") -> str:
    """One self-contained HTML page with the figures: plotly.js inlined once, no CDN.

    Args:
        figures: The figures, drawn top to bottom.
        title: The page's title and heading (escaped here).
        intro_html: Trusted HTML placed under the heading (e.g. a summary), not escaped.

    Returns:
        The page; it opens offline, with nothing fetched from the network.
    """
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    # displaylogo off: the logo is a link out to plotly's site.
    config = {"displaylogo": False, "responsive": True}
    divs = [pio.to_html(fig, include_plotlyjs=False, full_html=False, config=config,
                        default_width="100%", default_height="520px", include_mathjax=False)
            for fig in figures]
    body = "\n".join(f'<section class="figure">{d}</section>' for d in divs)
    name = html.escape(title)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{name}</title>\n"
        "<style>body{font-family:'Liberation Sans',Arial,sans-serif;margin:2em auto;"
        "max-width:1100px;padding:0 1em}section.figure{margin:1.5em 0}</style>\n"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n"
        f"</head>\n<body>\n<h1>{name}</h1>\n{intro_html}\n{body}\n</body>\n</html>\n"
    )
