"""actsearch's plotly figures of a study: the one place that builds them.

Each figure has a pure ``_get_..._info()`` that turns finished trials into a plain dataclass
(tested on its own), and a ``plot_...()`` that only draws that data, as Optuna's
``visualization/_intermediate_values.py`` does. The dashboard stores these figures in the
study; ``figures_to_html`` renders them into one self-contained offline page for a report.

Accuracy here is a trial's validation accuracy: its value in a single-objective study, else its
``val_acc`` user attribute (multi-objective studies may put it on any objective).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from actsearch.stats import pareto_front

__all__ = [
    "FIGURE_TITLES",
    "all_figures",
    "figures_to_html",
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
}

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
_UNIFORM_COLOR = "#1f77b4"
_MIXED_COLOR = "#ff7f0e"
_DOMINATED_COLOR = "#bbbbbb"
_FRONT_COLOR = "#d62728"


# ----------------------------------------------------------------------------- helpers


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.values]


def _accuracy(trial: FrozenTrial) -> float:
    """The trial's validation accuracy (see the module docstring)."""
    if trial.values is not None and len(trial.values) == 1:
        return float(trial.values[0])
    if "val_acc" in trial.user_attrs:
        return float(trial.user_attrs["val_acc"])
    return float(trial.values[0]) if trial.values else math.nan


def _layout_of(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("layout", f"trial {trial.number}"))


def _is_uniform(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get("uniform", False))


def _ranked(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials, best accuracy first (ties: the earlier trial first)."""
    scored = [t for t in _complete(trials) if not math.isnan(_accuracy(t))]
    return sorted(scored, key=lambda t: (-_accuracy(t), t.number))


def _best_per_layout(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The best complete trial of each distinct layout, best first.

    A sampler may propose a layout twice; the graphs show layouts, not repeats.
    """
    seen: set[str] = set()
    best = []
    for t in _ranked(trials):
        if _layout_of(t) not in seen:
            seen.add(_layout_of(t))
            best.append(t)
    return best


def _title(graph_id: str, detail: str) -> dict[str, object]:
    # Short first line: the dashboard draws these figures at half width.
    return {"text": f"{FIGURE_TITLES[graph_id]}<br><sup>{html.escape(detail)}</sup>"}


# ----------------------------------------------------------------------------- Pareto front


@dataclass(frozen=True)
class _ParetoPoint:
    number: int
    layout: str
    uniform: bool
    values: tuple[float, ...]  # one per objective, in the study's order
    on_front: bool


@dataclass(frozen=True)
class _ParetoInfo:
    names: tuple[str, ...]  # one per objective
    signs: tuple[int, ...]  # +1 maximised, -1 minimised
    points: list[_ParetoPoint]

    @property
    def front(self) -> list[_ParetoPoint]:
        """Front points in order of the first axis."""
        return sorted((p for p in self.points if p.on_front), key=lambda p: p.values)


def _get_pareto_info(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection],
                     names: Sequence[str] | None = None) -> _ParetoInfo:
    """Points and their non-domination.

    With one objective the front is two-dimensional: train_seconds (minimised) against
    validation accuracy (maximised), so the front shows what a faster layout costs. With
    several objectives, the study's own objectives (a point is on the front when no trial beats
    it on every objective; the figure draws the first two).
    """
    complete = _complete(trials)
    if len(directions) == 1:
        axes = ("train seconds", "validation accuracy")
        signs: tuple[int, ...] = (-1, +1)
        rows = [(float(t.user_attrs.get("train_seconds", math.nan)), _accuracy(t))
                for t in complete]
    else:
        axes = tuple(names) if names and len(names) == len(directions) else tuple(
            f"objective {i}" for i in range(len(directions)))
        signs = tuple(+1 if d == StudyDirection.MAXIMIZE else -1 for d in directions)
        rows = [tuple(float(v) for v in t.values) for t in complete]
    keep = [i for i, r in enumerate(rows) if not any(math.isnan(v) for v in r)]
    rows = [rows[i] for i in keep]
    complete = [complete[i] for i in keep]
    on_front = set(pareto_front(rows, ["maximize" if s > 0 else "minimize" for s in signs]))
    points = [_ParetoPoint(t.number, _layout_of(t), _is_uniform(t), tuple(r), i in on_front)
              for i, (t, r) in enumerate(zip(complete, rows, strict=True))]
    return _ParetoInfo(axes, signs, points)


def plot_pareto_front(study: optuna.Study) -> go.Figure:
    """Non-dominated layouts (see ``_get_pareto_info``), front points marked and joined."""
    names = study.metric_names if len(study.directions) > 1 else None
    info = _get_pareto_info(study.get_trials(deepcopy=False), study.directions, names)
    fig = go.Figure()
    x_name, y_name = info.names[0], info.names[1]
    for on_front, label, color, size in ((False, "dominated", _DOMINATED_COLOR, 8),
                                         (True, "non-dominated", _FRONT_COLOR, 11)):
        pts = [p for p in info.points if p.on_front == on_front]
        fig.add_trace(go.Scatter(
            x=[p.values[0] for p in pts], y=[p.values[1] for p in pts], mode="markers",
            name=label, marker={"color": color, "size": size,
                                "symbol": ["diamond" if p.uniform else "circle" for p in pts],
                                "line": {"width": 1, "color": "#333"}},
            text=[f"trial {p.number}: {p.layout}{' (uniform)' if p.uniform else ''}"
                  for p in pts],
            hovertemplate=f"%{{text}}<br>{x_name} %{{x:.4g}}<br>{y_name} %{{y:.4f}}"
                          "<extra></extra>"))
    front = info.front
    if len(info.names) == 2 and len(front) > 1:  # a step line only means something in 2-D
        fig.add_trace(go.Scatter(x=[p.values[0] for p in front], y=[p.values[1] for p in front],
                                 mode="lines", line={"color": _FRONT_COLOR, "dash": "dot",
                                                     "shape": "hv"},
                                 name="front", hoverinfo="skip"))
    fig.update_layout(**_LAYOUT, title=_title("actsearch-pareto", "diamonds: uniform layouts"))
    fig.update_xaxes(title_text=x_name, **_AXIS)
    fig.update_yaxes(title_text=y_name, **_AXIS)
    return fig


# ----------------------------------------------------------------------------- layer heatmap


@dataclass(frozen=True)
class _HeatmapInfo:
    activations: list[str]  # columns
    layers: list[int]  # rows: layer index, input side first
    shares: list[list[float]]  # shares[layer][activation], each row sums to 1 (or is all 0)
    counts: list[int]  # top trials that have each layer
    mean_params: list[list[float | None]]  # mean parameter (ELU alpha) where one exists
    top_trials: int  # size of the top quartile
    complete_trials: int


def _activation_choices(trials: Sequence[FrozenTrial]) -> list[str]:
    """All activations the space offered, in the space's order (from the distributions)."""
    names: list[str] = []
    for t in trials:
        for key, dist in t.distributions.items():
            if key.startswith("act_") and isinstance(dist, CategoricalDistribution):
                names += [str(c) for c in dist.choices if str(c) not in names]
    for t in trials:  # enqueued params only, should a trial lack distributions
        names += [str(v) for k, v in t.params.items()
                  if k.startswith("act_") and str(v) not in names]
    return names


def _get_heatmap_info(trials: Sequence[FrozenTrial], quantile: float = 0.25) -> _HeatmapInfo:
    """Share of each activation at each layer among the best ``quantile`` of complete trials."""
    ranked = _ranked(trials)
    top = ranked[:max(1, math.ceil(len(ranked) * quantile))] if ranked else []
    activations = _activation_choices(_complete(trials))
    n_layers = max((int(k.split("_")[1]) + 1 for t in top for k in t.params
                    if k.startswith("act_") and k.split("_")[1].isdigit()), default=0)
    shares, counts, means = [], [], []
    for i in range(n_layers):
        chosen = [(t.params[f"act_{i}"], t.params) for t in top if f"act_{i}" in t.params]
        counts.append(len(chosen))
        row, mean_row = [], []
        for a in activations:
            with_a = [p for name, p in chosen if name == a]
            row.append(len(with_a) / len(chosen) if chosen else 0.0)
            values = [float(v) for p in with_a for k, v in p.items()
                      if k.startswith(f"{a}_") and k.endswith(f"_{i}")]
            mean_row.append(sum(values) / len(values) if values else None)
        shares.append(row)
        means.append(mean_row)
    return _HeatmapInfo(activations, list(range(n_layers)), shares, counts, means, len(top),
                        len(ranked))


def plot_layer_heatmap(study: optuna.Study, quantile: float = 0.25) -> go.Figure:
    """Depth x activation: which activation the best layouts use at each layer."""
    info = _get_heatmap_info(study.get_trials(deepcopy=False), quantile)
    text = [[f"{s:.0%}" + (f"<br>alpha {m:.2f}" if m is not None else "")
             for s, m in zip(row, mrow, strict=True)]
            for row, mrow in zip(info.shares, info.mean_params, strict=True)]
    fig = go.Figure(go.Heatmap(
        z=info.shares, x=info.activations, y=[f"layer {i + 1}" for i in info.layers],
        zmin=0, zmax=1, colorscale="Blues", text=text, texttemplate="%{text}",
        hovertemplate="%{y}, %{x}: %{z:.0%} of the top trials<extra></extra>",
        colorbar={"title": {"text": "share"}, "tickformat": ".0%"}))
    fig.update_layout(**_LAYOUT, title=_title(
        "actsearch-layers", f"share among the top {info.top_trials} of "
        f"{info.complete_trials} complete trials"))
    fig.update_xaxes(title_text="activation", **{**_AXIS, "showgrid": False})
    # Input side on top, as the layout string reads left to right.
    fig.update_yaxes(title_text="depth", autorange="reversed", **{**_AXIS, "showgrid": False})
    return fig


# ----------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class _LayoutBar:
    number: int
    layout: str
    accuracy: float
    train_seconds: float


@dataclass(frozen=True)
class _BaselineInfo:
    uniform: list[_LayoutBar]  # the best trial of each uniform layout, best first
    mixed: list[_LayoutBar]  # the best ``top_k`` mixed layouts, best first

    @property
    def best_uniform(self) -> _LayoutBar | None:
        return self.uniform[0] if self.uniform else None

    @property
    def best_mixed(self) -> _LayoutBar | None:
        return self.mixed[0] if self.mixed else None

    @property
    def gain(self) -> float | None:
        """Best mixed minus best uniform accuracy (None when either is missing)."""
        if self.best_uniform is None or self.best_mixed is None:
            return None
        return self.best_mixed.accuracy - self.best_uniform.accuracy


def _bar(t: FrozenTrial) -> _LayoutBar:
    return _LayoutBar(t.number, _layout_of(t), _accuracy(t),
                      float(t.user_attrs.get("train_seconds", math.nan)))


def _get_baseline_info(trials: Sequence[FrozenTrial], top_k: int = 5) -> _BaselineInfo:
    best = _best_per_layout(trials)
    return _BaselineInfo([_bar(t) for t in best if _is_uniform(t)],
                         [_bar(t) for t in best if not _is_uniform(t)][:top_k])


def plot_uniform_vs_mixed(study: optuna.Study, top_k: int = 5) -> go.Figure:
    """Bars: every uniform baseline and the best mixed layouts, best uniform as a line."""
    info = _get_baseline_info(study.get_trials(deepcopy=False), top_k)
    fig = go.Figure()
    for bars, name, color in ((info.uniform, "uniform", _UNIFORM_COLOR),
                              (info.mixed, "mixed", _MIXED_COLOR)):
        fig.add_trace(go.Bar(
            x=[b.accuracy for b in bars], y=[f"{b.layout}  (#{b.number})" for b in bars],
            orientation="h", name=name, marker={"color": color},
            text=[f"{b.accuracy:.4f}" for b in bars], textposition="outside",
            customdata=[b.train_seconds for b in bars],
            hovertemplate="%{y}<br>val acc %{x:.4f}<br>%{customdata:.1f} s<extra></extra>"))
    accs = [b.accuracy for b in info.uniform + info.mixed]
    if info.best_uniform is not None:
        fig.add_vline(x=info.best_uniform.accuracy, line={"color": _UNIFORM_COLOR, "dash": "dash"})
    gain = "best uniform and best mixed layouts" if info.gain is None else (
        f"best mixed {info.gain:+.4f} vs best uniform")
    fig.update_layout(**_LAYOUT, title=_title("actsearch-baselines", gain), barmode="group",
                      bargap=0.25)
    low = min(accs, default=0.0)
    high = max(accs, default=1.0)
    pad = max((high - low) * 0.5, 0.01)
    # Bars from zero would hide differences of a fraction of a percent.
    fig.update_xaxes(title_text="validation accuracy", range=[max(0.0, low - pad), high + pad],
                     **_AXIS)
    fig.update_yaxes(autorange="reversed", **{**_AXIS, "showgrid": False})
    return fig


# ----------------------------------------------------------------------------- learning curves


@dataclass(frozen=True)
class _Curve:
    number: int
    layout: str
    uniform: bool
    val_acc: list[float]  # per epoch, epoch 1 first
    val_loss: list[float]


@dataclass(frozen=True)
class _CurvesInfo:
    curves: list[_Curve]  # the best layouts, best first, then the best uniform if not among them


def _get_curves_info(trials: Sequence[FrozenTrial], top_k: int = 5) -> _CurvesInfo:
    best = [t for t in _best_per_layout(trials) if t.user_attrs.get("val_acc_curve")]
    chosen = best[:top_k]
    uniform = next((t for t in best if _is_uniform(t)), None)
    if uniform is not None and uniform not in chosen:  # the reference the others must beat
        chosen.append(uniform)
    return _CurvesInfo([_Curve(t.number, _layout_of(t), _is_uniform(t),
                               [float(v) for v in t.user_attrs.get("val_acc_curve", [])],
                               [float(v) for v in t.user_attrs.get("val_loss_curve", [])])
                        for t in chosen])


def plot_learning_curves(study: optuna.Study, top_k: int = 5) -> go.Figure:
    """Validation accuracy and loss per epoch of the best layouts (uniform ones dashed)."""
    from plotly.subplots import make_subplots

    info = _get_curves_info(study.get_trials(deepcopy=False), top_k)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy",
                                                        "validation loss"))
    palette = ["#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for k, c in enumerate(info.curves):
        color = _UNIFORM_COLOR if c.uniform else palette[k % len(palette)]
        line = {"color": color, "dash": "dash" if c.uniform else "solid"}
        name = f"#{c.number} {c.layout}"
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


# ----------------------------------------------------------------------------- together


def all_figures(study: optuna.Study) -> dict[str, go.Figure]:
    """Every actsearch figure of the study, by a stable id (the keys of ``FIGURE_TITLES``)."""
    return {
        "actsearch-pareto": plot_pareto_front(study),
        "actsearch-layers": plot_layer_heatmap(study),
        "actsearch-baselines": plot_uniform_vs_mixed(study),
        "actsearch-curves": plot_learning_curves(study),
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
