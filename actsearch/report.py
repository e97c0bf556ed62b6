"""Render the analysis for people: rich tables in the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from actsearch.analysis import StudySummary

__all__ = ["print_summary"]


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
