"""The answer in words, as every face leads with it (``Analysis.headline``): the best layout,
whether it beats the best uniform one, each claim's verdict, latency, notes and what the
search cost. Only words: the numbers come from the ``Analysis``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actsearch.analysis.verdict import FinalistComparison

if TYPE_CHECKING:  # the Analysis holds these lines as properties: core imports this module
    from actsearch.analysis.core import Analysis

__all__ = ["cost_line", "headline_lines"]


def cost_line(analysis: Analysis) -> str:
    """What the search cost, in one line (``Analysis.cost``)."""
    s = analysis.summary
    saved = s.epochs_if_unpruned - s.epochs_trained
    share = f" ({saved / s.epochs_if_unpruned:.0%})" if s.epochs_if_unpruned else ""
    text = (f"{s.complete + s.pruned + s.failed} trials ({s.complete} complete, {s.pruned} "
            f"pruned, {s.failed} failed); pruning saved {saved} of {s.epochs_if_unpruned} "
            f"epochs{share}")
    if analysis.wall_seconds is not None:
        text += f"; the trials took {analysis.wall_seconds:.0f} s"
    seeds = {len(f.test_acc) for f in analysis.finalists}
    if analysis.finalists:
        text += (f"; {len(analysis.finalists)} finalists retrained with "
                 f"{'/'.join(map(str, sorted(seeds)))} seeds")
    if analysis.claims.ran:
        text += f"; {len(analysis.claims.arms)} claim arms with {analysis.claims.seeds} seeds"
    return text


def headline_lines(analysis: Analysis) -> list[str]:
    """The answer, first in every face (``Analysis.headline``): the best layout, whether it
    beats the best uniform one, each claim's verdict, and the cost."""
    best = analysis.best
    if best is None:
        lines = ["Best layout: no trial has completed yet."]
    elif isinstance(best, FinalistComparison):
        ci = ("" if best.ci_low is None else
              f", 95% CI {best.ci_low:.4f} to {best.ci_high:.4f}")
        lines = [f"Best layout: {best.label} ({'uniform' if best.uniform else 'mixed'}, "
                 f"trial {best.number}): test {analysis.metric} {best.mean:.4f}{ci} over "
                 f"{len(best.test_acc)} fresh seeds."]
    else:
        lines = [f"Best layout: {best.label} ({'uniform' if best.uniform else 'mixed'}, "
                 f"trial {best.number}): validation {analysis.metric} {best.val_acc:.4f} in the "
                 f"search (one run; no finalists retrained)."]
    lines.append(f"Mixed vs best uniform: {analysis.verdict}.")
    lines += [f"{line}." for line in analysis.claims.lines]
    lines += [f"Latency: {line}." for line in analysis.latency_costs.lines]
    lines += [f"Note: {c.line}." for c in analysis.searched
              if any(not c.complete.get(v) for v in c.values)]
    lines += [f"Note: not measured: {note}." for note in analysis.probe_notes]
    lines.append(f"Cost: {cost_line(analysis)}.")
    return lines
