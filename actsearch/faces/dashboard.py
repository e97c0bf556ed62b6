"""Serve a study in optuna-dashboard, with actsearch's graphs and a summary note in it.

``prepare_dashboard`` stores the figures of ``actsearch.faces.graphs`` in the study (optuna-dashboard
shows figures saved with ``save_plotly_graph_object`` on the study's page), a Markdown note
that says what the search found, and the objective names. ``serve_dashboard`` runs the real
optuna-dashboard WSGI app on a local server and, for a study that is still running, refreshes
the graphs on a timer.

Nothing here reaches the network: the server is the only socket opened, and the dashboard's
page loads its scripts from that server alone.

Run it as ``actsearch dashboard RUN_OR_STUDY [--storage URL] [--host H] [--port P]
[--refresh S]``.
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
from optuna.trial import TrialState

from actsearch.errors import ActsearchError
from actsearch.faces.graphs import (
    FIGURE_TITLES,
    _get_baseline_info,
    _get_heatmap_info,
    _get_pareto_info,
    _ranked,
    all_figures,
)
from actsearch.search.storage import make_storage, resolve_run

__all__ = [
    "DashboardServer",
    "prepare_dashboard",
    "serve_dashboard",
    "summary_note",
]

_ACC_NAME = "validation accuracy"


def summary_note(study: optuna.Study) -> str:
    """The study note: the findings in words (Markdown), from the same data as the graphs."""
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    diverged = sum(str(t.user_attrs.get("end", "")).startswith("diverged") for t in trials)
    lines = [f"## actsearch: study {study.study_name}", ""]
    ranked = _ranked(trials)
    baselines = _get_baseline_info(trials)
    if not ranked:
        lines += ["No trial has completed yet.", ""]
    else:
        best = ranked[0]
        acc = best.values[0] if len(best.values) == 1 else best.user_attrs.get("val_acc", "?")
        kind = "uniform" if best.user_attrs.get("uniform") else "mixed"
        lines.append(f"**Best layout:** `{best.user_attrs.get('layout', '?')}` ({kind}, trial "
                     f"{best.number}): validation accuracy {_fmt(acc)}"
                     + (f", test accuracy {_fmt(best.user_attrs['test_acc'])}"
                        if "test_acc" in best.user_attrs else "") + ".")
        lines.append("")
        ref, mixed = baselines.best_uniform, baselines.best_mixed
        if ref is None:
            lines.append("**Versus uniform:** no uniform baseline has completed yet.")
        elif mixed is None:
            lines.append(f"**Versus uniform:** no mixed layout has completed yet; the best "
                         f"uniform layout is `{ref.layout}` ({_fmt(ref.accuracy)}).")
        else:
            verdict = ("beats" if baselines.gain and baselines.gain > 0 else
                       "does not beat")
            lines.append(f"**Versus uniform:** the best mixed layout `{mixed.layout}` "
                         f"({_fmt(mixed.accuracy)}) {verdict} the best uniform layout "
                         f"`{ref.layout}` ({_fmt(ref.accuracy)}) by {baselines.gain:+.4f}.")
        lines.append("")
        heat = _get_heatmap_info(trials)
        prefs = []
        for i, row in zip(heat.layers, heat.shares, strict=True):
            top_share = max(row, default=0.0)
            names = "/".join(a for a, s in zip(heat.activations, row, strict=True)
                             if s == top_share)
            prefs.append(f"layer {i + 1} {names} ({top_share:.0%}"
                         f"{' each' if '/' in names else ''})")
        if prefs:
            lines.append(f"**Per layer, in the top {heat.top_trials} of {heat.complete_trials} "
                         f"complete trials:** {', '.join(prefs)}.")
            lines.append("")
        pareto = _get_pareto_info(trials, study.directions, study.metric_names)
        front = ", ".join(f"`{p.layout}`" for p in pareto.front[:5])
        lines.append(f"**Pareto front** ({' vs '.join(pareto.names)}): {len(pareto.front)} "
                     f"non-dominated trials: {front}{', ...' if len(pareto.front) > 5 else ''}.")
        lines.append("")
    lines.append(f"**Trials:** {counts[TrialState.COMPLETE]} complete, "
                 f"{counts[TrialState.PRUNED]} pruned ({diverged} diverged), "
                 f"{counts[TrialState.FAIL]} failed, {counts[TrialState.RUNNING]} running.")
    lines += ["", "Graphs on the study's History page: " + "; ".join(FIGURE_TITLES.values())
              + ". actsearch rewrites this note whenever it redraws them."]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "?" if math.isnan(number) else f"{number:.4f}"


def prepare_dashboard(study: optuna.Study) -> list[str]:
    """Store actsearch's graphs, a summary note and the objective names in the study.

    Safe to call again (a running study's graphs are overwritten in place; the note is
    written only when its text changed, so that its version does not climb on every refresh).

    Returns:
        The graph object ids (the keys of ``actsearch.graphs.FIGURE_TITLES``).
    """
    from optuna_dashboard import get_note, save_note, save_plotly_graph_object

    if study.metric_names is None:
        # optuna_dashboard.set_objective_names is a deprecated wrapper around this (0.21 says
        # so with a FutureWarning on each call); set_metric_names is what it stores.
        names = [_ACC_NAME] if len(study.directions) == 1 else [
            f"objective {i}" for i in range(len(study.directions))]
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, on every call
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    ids = []
    for graph_id, figure in all_figures(study).items():
        ids.append(save_plotly_graph_object(study, figure, graph_object_id=graph_id))
    note = summary_note(study)
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
            raise ActsearchError(f"--refresh: expected a positive number of seconds, got "
                                 f"{refresh_seconds}")
        resolve_run(study_name, storage)  # a clear error when the study is not there
        store = make_storage(storage)  # journal:// URLs and SQLite in WAL mode, as searches
        self.study = optuna.load_study(study_name=study_name, storage=store)
        prepare_dashboard(self.study)
        self.refresh_seconds = refresh_seconds
        try:
            self._server = make_server(host, port, wsgi(store), _ThreadingServer,
                                       _QuietHandler)
        except OSError as e:
            raise ActsearchError(f"--host {host} --port {port}: cannot listen ({e})") from None
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
