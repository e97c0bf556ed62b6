"""Render the analysis for people: rich tables in the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from actsearch.analysis import StudySummary, failure_reasons

__all__ = ["failure_line", "print_summary"]


def print_summary(summary: StudySummary, console: Console, title: str = "top layouts") -> None:
    """The closing table of a search: the best layouts, then the uniform baselines."""
    table = Table(title=title, title_justify="left")
    for col, justify in (("#", "right"), ("trial", "right"), ("layout", "left"),
                         ("val acc", "right"), ("vs best uniform", "right"),
                         ("epochs", "right"), ("train s", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    reference = summary.best_uniform
    for rank, row in enumerate(summary.top, start=1):
        delta = "" if reference is None else f"{row.val_acc - reference.val_acc:+.4f}"
        layout = f"{row.layout} [dim](uniform)[/dim]" if row.uniform else row.layout
        table.add_row(str(rank), str(row.number), layout, f"{row.val_acc:.4f}", delta,
                      str(row.epochs), f"{row.train_seconds:.1f}")
    console.print(table)
    if summary.baselines:
        baselines = ", ".join(f"{r.layout} {r.val_acc:.4f}" for r in summary.baselines)
        console.print(f"uniform baselines (val acc): {baselines}", highlight=False)
    saved = summary.epochs_if_unpruned - summary.epochs_trained
    console.print(
        f"{summary.complete} complete, {summary.pruned} pruned ({summary.diverged} diverged), "
        f"{summary.failed} failed; pruning saved {saved} of {summary.epochs_if_unpruned} epochs",
        highlight=False,
    )


def failure_line(trials: Sequence[FrozenTrial]) -> str | None:
    """One closing line for the CLI, e.g. ``3 trials failed: 2 out of memory, 1 ValueError``."""
    reasons = failure_reasons(trials)
    diverged = sum(1 for t in trials if t.state == TrialState.PRUNED
                   and str(t.user_attrs.get("end", "")).startswith("diverged"))
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
