"""Serve a study in optuna-dashboard, with actsearch's graphs and a summary note in it.

``prepare_dashboard`` stores the figures of ``actsearch.faces.graphs`` in the study
(optuna-dashboard shows figures saved with ``save_plotly_graph_object`` on the study's page), a
Markdown note that says what the search found, and the objective names; figures and note draw
one ``actsearch.analysis.Analysis``, the same the report draws, so they say what it says.
``serve_dashboard`` runs the real optuna-dashboard WSGI app on a local server and, for a study
that is still running, refreshes the graphs on a timer.

Nothing here reaches the network: the server is the only socket opened, and the dashboard's
page loads its scripts from that server alone.

Run it through ``actsearch.api.dashboard`` (the CLI's ``dashboard``).
"""

from __future__ import annotations

import ipaddress
import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.study import StudyDirection

from actsearch.analysis import Analysis, analyze
from actsearch.engine.storage import make_storage, resolve_run, space_of_study
from actsearch.errors import ActsearchError
from actsearch.faces.graphs import FIGURE_TITLES, all_figures
from actsearch.schema.space import Metric

__all__ = [
    "DashboardServer",
    "analyze_study",
    "prepare_dashboard",
    "serve_dashboard",
    "summary_note",
]

_ACC_NAME = "validation accuracy"


def analyze_study(study: optuna.Study) -> Analysis:
    """The analysis the dashboard draws: ``actsearch.analysis.analyze`` with the objectives
    and epochs of the study's space (a study actsearch did not create: its directions)."""
    try:
        space = space_of_study(study)
        objectives, epochs = list(space.objectives), space.train.epochs
    except ActsearchError:
        if len(study.directions) == 1:
            objectives = [Metric("accuracy").objective]
        else:
            names = study.metric_names or [f"objective {i}"
                                           for i in range(len(study.directions))]
            objectives = [Metric(n, d == StudyDirection.MAXIMIZE).objective
                          for n, d in zip(names, study.directions, strict=True)]
        epochs = 0
    # No fANOVA: the note does not show importances, and it is redrawn while a study runs.
    return analyze(study, objectives, epochs, importance=False)


def summary_note(analysis: Analysis) -> str:
    """The study note: the analysis' findings in words (Markdown), as the report states them."""
    summary, reference = analysis.summary, analysis.best_uniform
    lines = [f"## actsearch: study {analysis.study_name}", ""]
    # The answer first, as the report leads with it.
    lines += [f"- {line}" for line in analysis.headline] + [""]
    measured = [r for r in summary.top if not math.isnan(r.val_acc)]
    if not measured:
        lines += ["No trial has completed yet.", ""]
    else:
        best = measured[0]
        kind = "uniform" if best.uniform else "mixed"
        lines.append(f"**Best layout:** `{best.layout}` ({kind}, trial {best.number}): "
                     f"validation {analysis.metric} {_fmt(best.val_acc)}"
                     + (f", test {analysis.metric} {_fmt(best.test_acc)}"
                        if best.test_acc is not None else "") + ".")
        lines.append("")
        lines.append(f"**Versus uniform:** {analysis.verdict}.")
        lines.append("")
        for line in analysis.convergence.lines:
            lines += [f"**{line.split(':', 1)[0]}:**{line.split(':', 1)[1]}", ""]
        if reference is None:
            lines.append("**Best uniform:** no uniform baseline has completed yet.")
        else:
            lines.append(f"**Best uniform:** `{reference.layout}` (trial {reference.number}), "
                         f"by {reference.chosen_by}.")
        lines.append("")
        mixed = analysis.search_mixed
        if mixed is None:
            lines.append("**In the search:** no mixed layout has completed yet.")
        elif reference is not None:
            # Numbers only: whether mixed beats uniform is the verdict's to say.
            lines.append(f"**In the search** (validation accuracy, one run each): the best "
                         f"mixed layout `{mixed.layout}` ({_fmt(mixed.val_acc)}), the best "
                         f"uniform layout `{reference.layout}` ({_fmt(reference.val_acc)}).")
        else:
            lines.append(f"**In the search** (validation accuracy, one run each): the best "
                         f"mixed layout `{mixed.layout}` ({_fmt(mixed.val_acc)}).")
        lines.append("")
        heat = analysis.heatmap
        prefs = []
        for label, row, count in zip(heat.labels, heat.shares, heat.counts, strict=True):
            if not count:  # no top trial is this deep
                continue
            top_share = max(row, default=0.0)
            names = "/".join(a for a, s in zip(heat.activations, row, strict=True)
                             if s == top_share)
            prefs.append(f"{label} {names} ({top_share:.0%}"
                         f"{' each' if '/' in names else ''})")
        if prefs:
            row = "group" if heat.per_group else "layer"
            lines.append(f"**Per {row}, in the top {heat.top_trials} of "
                         f"{heat.complete_trials} complete trials:** {', '.join(prefs)}.")
            lines.append("")
        pareto = analysis.pareto_info
        front = ", ".join(f"`{p.row.layout}`" for p in pareto.front[:5])
        lines.append(f"**Pareto front** ({' vs '.join(pareto.names)}): {len(pareto.front)} "
                     f"non-dominated trials: {front}{', ...' if len(pareto.front) > 5 else ''}.")
        lines.append("")
    lines.append(f"**Trials:** {summary.complete} complete, {summary.pruned} pruned "
                 f"({summary.diverged} diverged), {summary.failed} failed, "
                 f"{summary.running} running.")
    lines += ["", "Graphs on the study's History page: " + "; ".join(FIGURE_TITLES.values())
              + ". actsearch rewrites this note whenever it redraws them."]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "?" if math.isnan(number) else f"{number:.4f}"


def prepare_dashboard(study: optuna.Study, analysis: Analysis | None = None) -> list[str]:
    """Store actsearch's graphs, a summary note and the objective names in the study.

    Safe to call again (a running study's graphs are overwritten in place; the note is
    written only when its text changed, so that its version does not climb on every refresh).

    Args:
        study: The study.
        analysis: Its analysis, when the caller has it already (default: ``analyze_study``).

    Returns:
        The graph object ids (the keys of ``actsearch.graphs.FIGURE_TITLES``).
    """
    from optuna_dashboard import get_note, save_note, save_plotly_graph_object

    if analysis is None:
        analysis = analyze_study(study)
    if study.metric_names is None:
        # optuna_dashboard.set_objective_names is a deprecated wrapper around this (0.21 says
        # so with a FutureWarning on each call); set_metric_names is what it stores.
        names = [_ACC_NAME] if len(study.directions) == 1 else [
            name for name, _ in analysis.objectives]
        if len(names) != len(study.directions):  # an analysis under other objectives
            names = [f"objective {i}" for i in range(len(study.directions))]
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, on every call
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    ids = []
    for graph_id, figure in all_figures(analysis).items():
        ids.append(save_plotly_graph_object(study, figure, graph_object_id=graph_id))
    note = summary_note(analysis)
    if get_note(study) != note:
        save_note(study, note)
    return ids


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: resolving it would be a network look-up, so assume not
        return False


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        # One line per request would bury the URL line; errors still reach stderr via wsgiref.
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # The dashboard page fires several API requests at once; a study with many trials would
    # otherwise serialise them behind the slowest.
    daemon_threads = True
    allow_reuse_address = True


class DashboardServer:
    """optuna-dashboard on a local WSGI server, with an optional graph-refresh thread.

    ``serve_dashboard`` is the blocking front door; this class is for embedding and tests.
    """

    def __init__(self, storage: str, study_name: str, host: str = "127.0.0.1",
                 port: int = 8080, refresh_seconds: float | None = None) -> None:
        from optuna_dashboard import wsgi

        if refresh_seconds is not None and not refresh_seconds > 0:
            raise ActsearchError(f"refresh: expected a positive number of seconds, got "
                                 f"{refresh_seconds}", parameter="refresh")
        resolve_run(study_name, storage)  # a clear error when the study is not there
        store = make_storage(storage)  # journal:// URLs and SQLite in WAL mode, as searches
        self.study = optuna.load_study(study_name=study_name, storage=store)
        prepare_dashboard(self.study)
        self.refresh_seconds = refresh_seconds
        try:
            self._server = make_server(host, port, wsgi(store), _ThreadingServer,
                                       _QuietHandler)
        except OSError as e:
            raise ActsearchError(f"host {host}, port {port}: cannot listen ({e})",
                                 parameter="host") from None
        self.host = host
        self.port = self._server.server_port  # the real one when port 0 was asked for
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The study's page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard/studies/{self.study._study_id}"

    def serve_forever(self) -> None:
        """Serve (and refresh) until ``shutdown`` is called or Ctrl+C."""
        if self.refresh_seconds is not None:
            self._refresher = threading.Thread(target=self._refresh_loop, name="refresh",
                                               daemon=True)
            self._refresher.start()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self._server.server_close()

    def shutdown(self) -> None:
        """Stop serving; ``serve_forever`` returns (call from another thread)."""
        self._stop.set()
        self._server.shutdown()

    def _fingerprint(self) -> tuple[Any, ...]:
        return tuple((t.number, t.state, t.datetime_complete)
                     for t in self.study.get_trials(deepcopy=False))

    def _refresh_loop(self) -> None:
        assert self.refresh_seconds is not None
        last = self._fingerprint()
        while not self._stop.wait(self.refresh_seconds):
            try:
                now = self._fingerprint()
                if now != last:  # nothing finished: no writes to a storage that is busy
                    prepare_dashboard(self.study)
                    last = now
            except Exception as e:  # a locked database, a dropped connection: try next time
                print(f"actsearch: dashboard refresh failed: {e}", file=sys.stderr, flush=True)


def serve_dashboard(storage: str, study_name: str, host: str = "127.0.0.1", port: int = 8080,
                    refresh_seconds: float | None = None,
                    on_ready: Callable[[str], None] | None = None) -> None:
    """Serve a study in optuna-dashboard with actsearch's graphs; blocks until Ctrl+C.

    Args:
        storage: An Optuna storage URL.
        study_name: The study to show (and prepare; every study in the storage is browsable).
        host: The address to listen on; anything but loopback gets a one-line warning.
        port: The port (0: any free one; the URL line says which).
        refresh_seconds: Re-draw the graphs and the note this often while trials finish
            (for a study that is still running); None draws them once.
        on_ready: Called with the study page's URL once the server listens (default: print
            it on stdout).
    """
    if not _is_loopback(host):
        print(f"actsearch: warning: listening on {host}: anyone who can reach it can read "
              "and edit the study (the dashboard has no login)", file=sys.stderr, flush=True)
    server = DashboardServer(storage, study_name, host, port, refresh_seconds)
    if on_ready is None:
        print(f"actsearch: dashboard of study {study_name} at {server.url} (Ctrl+C to stop)",
              flush=True)
    else:
        on_ready(server.url)
    if threading.current_thread() is threading.main_thread():
        # A service manager (or a test) stops the server with SIGTERM: stop as on Ctrl+C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
