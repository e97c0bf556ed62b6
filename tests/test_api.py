"""The Python API: ``actsearch.search()`` runs what ``actsearch search`` runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

import actsearch
from actsearch import ActsearchError
from actsearch.faces.cli import main


@pytest.mark.slow  # end to end
def test_search_from_python_end_to_end(write_space, tmp_path: Path) -> None:
    seen: list[actsearch.TrialRecord] = []
    result = actsearch.search(
        actsearch.load_space(write_space()), trials=6, finalists=1, seeds=2, study="py",
        runs_dir=tmp_path / "runs", progress=False, report=True,
        callbacks=[lambda study, record: seen.append(record)])
    assert isinstance(result, actsearch.SearchResult)
    assert (result.finished, result.failed, result.interrupted) == (6, 0, False)
    assert [r.number for r in seen] == list(range(6))
    assert all(r.layout and r.state in (TrialState.COMPLETE, TrialState.PRUNED) for r in seen)
    assert len(result.study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 6
    # Plain objects: the best layouts, the best uniform one and the verdict.
    assert result.best_layouts and result.best_layouts[0].val_acc >= result.best_uniform.val_acc
    assert result.verdict == result.analysis.verdict and result.analysis.finalists
    html, md = result.report_files
    assert html == tmp_path / "runs" / "py" / "report.html" and md.is_file()
    assert result.verdict in md.read_text()
    # analyze() and report() read the same study back from its run folder.
    again = actsearch.analyze(tmp_path / "runs" / "py")
    assert again.verdict == result.verdict
    assert again.best_uniform == result.best_uniform
    assert actsearch.report("py", runs_dir=tmp_path / "runs", out=tmp_path / "r")[1].is_file()
    # Running it again resumes: nothing to run, finalists unchanged, nothing lost.
    resumed = actsearch.search(write_space(), trials=6, finalists=1, seeds=2, study="py",
                               runs_dir=tmp_path / "runs", progress=False)
    assert resumed.finished == 0 and len(resumed.study.trials) == 6


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"trials": 0}, "trials"),
    ({"timeout": -1.0}, "timeout"),
    ({"workers": 0}, "workers"),
    ({"finalists": -1}, "finalists"),
    ({"seeds": 0}, "seeds"),
    ({"claim_seeds": 1}, "claim_seeds"),  # a paired test needs two seeds (0: no claims)
    ({"device": "tpu"}, "device"),
    ({"population": "many"}, "population"),
    ({"dtype": "float16"}, "dtype"),
    ({"threads": 0}, "threads"),
    ({"study": "../x"}, "study"),
    ({"storage": "nosuch://x"}, "storage"),
    ({"progress": "loud"}, "progress"),
])
def test_bad_arguments_name_the_parameter_not_a_flag(write_space, tmp_path: Path, kwargs: dict,
                                                     parameter: str) -> None:
    with pytest.raises(ActsearchError) as info:
        actsearch.search(write_space(), runs_dir=tmp_path, **{"progress": False, **kwargs})
    message = str(info.value)
    assert info.value.parameter == parameter and message.startswith(parameter), message
    assert "--" not in message.split(":")[0] and "\n" not in message
    # The CLI says the same with its flag.
    assert info.value.for_cli().startswith(f"--{parameter.replace('_', '-')}")


def test_the_cli_speaks_of_flags(write_space, tmp_path: Path, capsys) -> None:
    code = main(["search", str(write_space()), "--population", "many",
                 "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("actsearch: error: --population: expected")


def test_export_names_its_parameters(write_space, tmp_path: Path) -> None:
    result = actsearch.search(write_space(), trials=4, finalists=0, runs_dir=tmp_path,
                              progress=False)
    with pytest.raises(ActsearchError, match="^format: unknown format 'xml'") as info:
        actsearch.export_configs(result.study, out_dir=tmp_path / "x", fmt="xml")
    assert info.value.parameter == "format"
    with pytest.raises(ActsearchError, match="^top: expected at least 1"):
        actsearch.export_configs(result.study, top=0, out_dir=tmp_path / "x")
