"""Latency after the search (``actsearch.engine.latency``) and the "exp() costs little" claim.

The claim's statistics are tested on planted block-pair ratios, where the truth is known; the
measurement itself on a tiny search, eager and compiled.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import actsearch
from actsearch import ActsearchError
from actsearch.analysis import analyze_claims, analyze_latency
from actsearch.engine.latency import BIG_BATCH, MARGIN, default_mode
from actsearch.faces.cli import main
from actsearch.faces.graphs import plot_latency


def _claims_document() -> dict:
    """The latency claim as ``engine.claims.design`` declares it, with no trained arm."""
    comparisons = [{"label": f"elu / relu latency, {mode}, batch {b}",
                    "metric": f"latency:{mode}:{b}", "weights": {"uniform elu": 1}, "sign": -1}
                   for mode in ("eager", "compiled") for b in (1, BIG_BATCH)]
    return {"seeds": [1, 2], "arms": {},
            "claims": [{"key": "elu-latency-small", "statement": "exp() costs little",
                        "reason": "", "comparisons": comparisons}]}


def _latency_document(ratio: float, spread: float, pairs: int = 20, seed: int = 0) -> dict:
    """Every comparison's block pairs drawn around ``ratio`` (log-normal, ``spread`` in log)."""
    rng = np.random.default_rng(seed)

    def draws() -> dict[str, list[float]]:
        return {str(b): [float(ratio * math.exp(rng.normal(0, spread))) for _ in range(pairs)]
                for b in (1, BIG_BATCH)}

    return {"mode": "compiled", "device": "cpu", "threads": 1, "margin": MARGIN,
            "batch_sizes": [1, BIG_BATCH], "compile": None,
            "models": [{"label": "uniform elu", "kind": "activation", "layout": "elu | elu",
                        "norm": "none", "eager": draws(), "compiled": draws()}]}


@pytest.mark.parametrize(("ratio", "spread", "verdict"), [
    (1.0, 0.02, "supported"),  # well inside the 10% margin
    (1.5, 0.02, "contradicted"),  # far outside it
    (1.1, 0.30, "not resolved"),  # at the margin, noisy
])
def test_planted_latency_ratios_get_their_verdict(ratio: float, spread: float,
                                                  verdict: str) -> None:
    claims = analyze_claims(_claims_document(), _latency_document(ratio, spread))
    (claim,) = claims.results
    assert claim.verdict == verdict
    assert {c.verdict for c in claim.comparisons} == {verdict}
    for c in claim.comparisons:
        assert c.n == 20
        # The words give the ratio itself, not its log less the margin.
        assert c.words.startswith(f"{c.label} {c.value_text(c.effect)} (95% CI x")
        assert math.exp(c.effect + c.offset) == pytest.approx(ratio, rel=0.2)
        if verdict == "not resolved":
            assert c.seeds_needed is not None and c.seeds_needed > 20
            assert "block pairs in all would resolve it" in c.words


def test_latency_claim_without_measurements_is_not_run() -> None:
    (claim,) = analyze_claims(_claims_document(), None).results
    assert claim.verdict == "not run" and "not measured" in claim.reason


def test_latency_comparisons_join_the_holm_family() -> None:
    document = _claims_document()
    document["arms"] = {"a": {"test_acc": [0.5, 0.6, 0.7]}, "b": {"test_acc": [0.4, 0.4, 0.5]}}
    document["claims"].append({"key": "k", "statement": "a beats b", "reason": "",
                               "comparisons": [{"label": "a - b", "metric": "test_acc",
                                                "weights": {"a": 1, "b": -1}, "sign": 1}]})
    claims = analyze_claims(document, _latency_document(1.0, 0.02))
    tested = [c for r in claims.results for c in r.comparisons]
    assert len(tested) == 5
    # Holm by hand over the five: the i-th smallest p times (5 - i), running maximum.
    order = sorted(range(5), key=lambda i: tested[i].p_value)
    running, expected = 0.0, {}
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (5 - rank) * tested[i].p_value))
        expected[i] = running
    assert [c.p_holm for c in tested] == pytest.approx([expected[i] for i in range(5)])


@pytest.mark.slow  # end to end, timed
def test_search_times_finalists_and_uniform_layouts(write_space, tmp_path: Path) -> None:
    result = actsearch.search(write_space(), trials=5, finalists=1, seeds=2, claim_seeds=2,
                              latency="eager", runs_dir=tmp_path, progress=False)
    stored = result.study.user_attrs["latency"]
    labels = [m["label"] for m in stored["models"]]
    finalists = [m for m in stored["models"] if m["kind"] == "finalist"]
    assert len(finalists) == len(result.study.user_attrs["finalists"])
    assert labels[-3:] == ["uniform relu", "uniform elu", "uniform selu"]
    for m in stored["models"]:
        assert set(m["eager"]) == {"1", str(BIG_BATCH)}
        assert all(len(v) == 20 and min(v) > 0 for v in m["eager"].values())
        assert m["compiled"] == {}
    assert stored["compile"] and "eager" in stored["compile"]
    # A layout timed twice (a uniform finalist) shares one measurement.
    by_layout: dict[str, list[dict]] = {}
    for m in stored["models"]:
        by_layout.setdefault(m["layout"], []).append(m["eager"])
    assert all(all(e == group[0] for e in group) for group in by_layout.values())
    # The analysis reads it: the claim is judged on the eager pairs, the compiled ones are
    # missing, so the claim cannot be supported.
    claim = next(r for r in result.analysis.claims.results if r.key == "elu-latency-small")
    eager = [c for c in claim.comparisons if ", eager," in c.label]
    assert all(c.n == 20 for c in eager) and claim.verdict != "supported"
    costs = analyze_latency(stored)
    assert [r.label for r in costs.rows] == labels
    assert any(line.startswith("ELU at every site") for line in costs.lines)
    # The latency graph draws each activation's eager ratios (compiled: not measured).
    fig = plot_latency(result.analysis)
    assert [t.name for t in fig.data] == [f"eager, batch {b}" for b in (1, BIG_BATCH)]
    uniform = {r.label.removeprefix("uniform "): r for r in costs.rows if r.kind == "activation"}
    assert list(fig.data[1].y) == list(uniform)
    assert list(fig.data[1].x) == [r.eager[BIG_BATCH] for r in uniform.values()]
    # Resumed with nothing new, the latencies are kept, not timed again.
    again = actsearch.search(write_space(), trials=5, finalists=1, seeds=2, claim_seeds=2,
                             latency="eager", runs_dir=tmp_path, progress=False)
    assert again.study.user_attrs["latency"] == stored


@pytest.mark.slow  # torch.compile
def test_compiled_latency_is_measured_where_torch_compile_works(write_space,
                                                               tmp_path: Path) -> None:
    result = actsearch.search(write_space(), trials=3, finalists=1, seeds=2, claim_seeds=0,
                              latency="compiled", runs_dir=tmp_path, progress=False)
    stored = result.study.user_attrs["latency"]
    assert stored["mode"] == "compiled"
    if stored["compile"] is not None:  # a machine without a compiler says why
        assert stored["compile"].startswith("torch.compile failed")
        pytest.skip(stored["compile"])
    for m in stored["models"]:
        assert set(m["compiled"]) == {"1", str(BIG_BATCH)}
        assert all(len(v) == 20 and min(v) > 0 for v in m["compiled"].values())
    md = (tmp_path / result.study.study_name / "report.md")
    actsearch.report(result.study.study_name, runs_dir=tmp_path, out=md.parent)
    assert "## latency against uniform relu on cpu" in md.read_text()


def test_latency_mode_is_checked(write_space, tmp_path: Path, monkeypatch,
                                 capsys) -> None:
    with pytest.raises(ActsearchError, match="latency: expected 'compiled' or 'eager' or 'off'"):
        actsearch.search(write_space(), trials=1, latency="fast", runs_dir=tmp_path,
                         progress=False)
    monkeypatch.setenv("ACTSEARCH_LATENCY", "sometimes")
    with pytest.raises(ActsearchError, match=r"\$ACTSEARCH_LATENCY: expected one of"):
        default_mode()
    assert main(["search", str(write_space()), "--latency", "fast"]) == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_compiled_latency_keeps_torchs_cuda_home_line_out(monkeypatch, tmp_path: Path) -> None:
    # A CUDA build of torch on a machine without a GPU but with a CUDA toolkit: importing
    # torch.utils.cpp_extension (inductor does, for every CPU compile) logs "No CUDA runtime
    # is found, using CUDA_HOME=...". Simulated here: torch claims to be a CUDA build.
    import logging
    import sys

    import torch

    from actsearch.engine.latency import _import_cpp_extension_quietly

    monkeypatch.setattr(torch.cuda, "_is_compiled", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    logger = logging.getLogger("torch.utils.cpp_extension")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    original = sys.modules.pop("torch.utils.cpp_extension", None)
    try:
        import torch.utils.cpp_extension  # noqa: F401  (as inductor does)
        assert any("No CUDA runtime is found" in m for m in seen), seen  # the line exists
        seen.clear()
        sys.modules.pop("torch.utils.cpp_extension")
        level = logger.level
        _import_cpp_extension_quietly()
        assert seen == [] and logger.level == level
    finally:
        logger.removeHandler(handler)
        if original is not None:
            sys.modules["torch.utils.cpp_extension"] = original
            torch.utils.cpp_extension = original
