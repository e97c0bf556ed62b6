from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import REPO, layout_trial, run_tiny_study
from optuna_dashboard import get_note

from actsearch.engine.storage import resolve_run
from actsearch.errors import ActsearchError
from actsearch.faces import dashboard
from actsearch.faces.dashboard import DashboardServer, prepare_dashboard
from actsearch.faces.graphs import FIGURE_TITLES

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, and quiet: no update checks, no sync, no field trials, nothing but our
# own server on the network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps",
                  "--disable-domain-reliability", "--metrics-recording-only"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder holding one finished tiny study, runs/tiny/study.db."""
    folder = tmp_path_factory.mktemp("runs")
    run_tiny_study(folder)
    return folder


def _load(runs: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{runs / 'tiny/study.db'}")


def _graphs_in(study: optuna.Study) -> dict[str, dict]:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k: json.loads(v) for k, v in get_plotly_graph_objects(attrs).items()}


def test_prepare_dashboard_stores_graphs_note_and_names(runs: Path) -> None:
    study = _load(runs)
    assert prepare_dashboard(study) == list(FIGURE_TITLES)
    stored = _graphs_in(study)
    assert set(stored) == set(FIGURE_TITLES)
    for graph_id, figure in stored.items():
        assert figure["layout"]["title"]["text"].startswith(FIGURE_TITLES[graph_id])
    assert optuna.load_study(study_name="tiny", storage=study._storage).metric_names == [
        "validation accuracy"]
    note = get_note(study)
    best = study.best_trial
    assert f"**Best layout:** `{best.user_attrs['layout']}`" in note
    assert "**Versus uniform:**" in note
    complete = sum(t.state.name == "COMPLETE" for t in study.trials)
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    assert f"**Trials:** {complete} complete, {pruned} pruned" in note
    # Unchanged findings leave the note's version alone (each save bumps it).
    version = study._storage.get_study_system_attrs(study._study_id)["dashboard:note_ver"]
    prepare_dashboard(study)
    assert study._storage.get_study_system_attrs(study._study_id)["dashboard:note_ver"] == \
        version


def test_resolve_run(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{(runs / 'tiny/study.db').resolve()}"
    assert resolve_run(str(runs / "tiny")) == (url, "tiny")
    assert resolve_run("tiny", runs_dir=runs) == (url, "tiny")
    assert resolve_run("tiny", storage=url) == (url, "tiny")
    monkeypatch.chdir(runs.parent)
    assert resolve_run("tiny", runs_dir=runs.name) == (url, "tiny")
    with pytest.raises(ActsearchError, match="neither a run folder nor the name of a study"):
        resolve_run("nosuch", runs_dir=runs)
    with pytest.raises(ActsearchError, match="no study 'other' in .*; studies there: tiny"):
        resolve_run("other", storage=url)
    with pytest.raises(ActsearchError, match="a folder without study.db or journal.log"):
        resolve_run(str(runs))
    with pytest.raises(ActsearchError, match="nosuch://x: unknown storage"):
        resolve_run("x", storage="nosuch://x")


def test_warns_in_one_line_when_not_on_loopback(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    class FakeServer:  # no socket: the test must not listen on every interface
        url = "http://x/dashboard/studies/1"

        def __init__(self, *args: object) -> None:
            pass

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(dashboard, "DashboardServer", FakeServer)
    for host, warned in (("0.0.0.0", True), ("192.168.1.5", True), ("myhost", True),
                         ("127.0.0.1", False), ("localhost", False), ("::1", False)):
        dashboard.serve_dashboard("sqlite://", "s", host=host, port=0)
        err = capsys.readouterr().err
        assert (err.count("\n") == 1 and "warning: listening on" in err) is warned, host
        assert warned or err == ""


def _synthetic_study(path: Path) -> str:
    storage = f"sqlite:///{path}"
    study = optuna.create_study(study_name="live", storage=storage, direction="maximize")
    study.add_trial(layout_trial(0.5, "relu | relu", True))
    return storage


def test_refresh_redraws_the_graphs_of_a_running_study(tmp_path: Path) -> None:
    storage = _synthetic_study(tmp_path / "live.db")
    server = DashboardServer(storage, "live", port=0, refresh_seconds=0.2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        study = optuna.load_study(study_name="live", storage=storage)
        assert "no mixed layout has completed yet" in get_note(study)
        # Another worker finishes a trial.
        study.add_trial(layout_trial(0.75, "selu | relu", False))
        deadline = time.monotonic() + 10
        while "`selu | relu`" not in get_note(study) and time.monotonic() < deadline:
            time.sleep(0.1)
        note = get_note(study)
        # The search's numbers, but no verdict from them: that is the finalists' to give.
        assert "the best mixed layout `selu | relu` (0.7500)" in note
        assert "**Versus uniform:** no finalists were retrained" in note
        assert "beats" not in note
        assert "0.75" in json.dumps(_graphs_in(study)["actsearch-baselines"])
    finally:
        server.shutdown()
        thread.join(5)
    assert not thread.is_alive()


def test_refresh_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ActsearchError, match="^refresh: expected a positive number"):
        DashboardServer(_synthetic_study(tmp_path / "r.db"), "live", port=0, refresh_seconds=0)


# ----------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by .ci/browser.sh when missing (never a downloaded one)."""
    if not CHROMIUM.exists():
        result = subprocess.run(["bash", str(REPO / ".ci/browser.sh")], capture_output=True,
                                text=True, timeout=900)
        if result.returncode != 0 or not CHROMIUM.exists():
            why = (result.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"no headless browser: {CHROMIUM} is missing and .ci/browser.sh could "
                        f"not install it ({why})")
    return str(CHROMIUM)


@pytest.fixture
def served(runs: Path) -> Iterator[str]:
    """``actsearch dashboard`` on a free loopback port; yields the study's URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "actsearch", "dashboard", str(runs / "tiny"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            stderr = proc.stderr.read() if proc.poll() is not None else "(still running)"
            pytest.fail(f"the dashboard printed no URL within 30 s: {stderr}")
        assert first.startswith("actsearch: dashboard of study tiny at http://127.0.0.1:"), first
        yield first.split(" at ")[1].split()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()


@pytest.mark.slow  # a browser and a dashboard process
def test_dashboard_in_a_headless_browser(chromium: str, served: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(the browser itself comes from .ci/browser.sh)")
    origin = served.split("/dashboard")[0]
    with sync_api.sync_playwright() as p:
        # A persistent context is Playwright's way of giving chromium a fresh --user-data-dir.
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(20_000)

            # The study list ("1. tiny"), then the study by its name.
            page.goto(origin + "/dashboard")
            page.get_by_text(re.compile(r"^\d+\. tiny$")).first.click()
            page.wait_for_url(served)
            page.get_by_text(re.compile(r"^tiny \(id=\d+\)$")).first.wait_for()
            for graph_id, title in FIGURE_TITLES.items():
                page.get_by_text(title, exact=True).first.wait_for()
                plot = page.locator(f'[id="user-defined-plot:{graph_id}"] .main-svg')
                assert plot.count() >= 1, graph_id
            assert page.get_by_text("validation accuracy").count() > 0  # the objective's name
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            page.goto(served + "/note")
            page.get_by_text("Best layout:").first.wait_for()
            body = page.inner_text("body")
            assert "Versus uniform:" in body and "complete," in body and "pruned" in body
            page.screenshot(path=str(tmp_path / "note.png"))
        finally:
            context.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert not errors, errors
    # Everything the page loaded came from the dashboard's own server.
    assert requests and all(u.startswith(origin + "/") for u in requests), requests
