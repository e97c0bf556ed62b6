from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from actsearch.faces.cli import main


def test_spaces_lists_shipped(capsys) -> None:
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d_mlp" in out and "digits_mlp" in out and "(default)" in out


def test_check_good_and_bad_file(write_space, capsys) -> None:
    assert main(["spaces", "--check", str(write_space())]) == 0
    assert ": ok" in capsys.readouterr().out
    bad = write_space({"activations.choices": ["relu", "swish9"]}, name="bad.yaml")
    assert main(["spaces", "--check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml: activations.choices[1]" in err


@pytest.mark.parametrize("argv", [["search", "--trials", "0"], ["search", "--trials", "abc"],
                                  ["search", "--bogus"], ["search", "--storage", "sqlite:///"],
                                  ["search", "nosuch_space"], ["search", "--device", "tpu9"],
                                  ["frobnicate"]])
def test_user_mistakes_exit_2_with_one_line(argv, capsys, tmp_path: Path) -> None:
    assert main([*argv, *(["--runs-dir", str(tmp_path)] if argv[0] == "search" and
                          "--bogus" not in argv else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actsearch: error: ") and err.count("\n") == 1


@pytest.mark.slow  # end to end
def test_search_in_process(write_space, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    code = main(["search", str(write_space()), "--trials", "5", "--study", "cli",
                 "--runs-dir", str(runs), "--plain"])
    assert code == 0
    out = capsys.readouterr().out
    assert "top layouts of study cli" in out and "uniform baselines" in out
    assert out.count("trial ") >= 5  # one plain line per finished trial
    study = optuna.load_study(study_name="cli", storage=f"sqlite:///{runs}/cli/study.db")
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 5
    # The same command again resumes: nothing to run, nothing lost.
    assert main(["search", str(write_space()), "--trials", "5", "--study", "cli",
                 "--runs-dir", str(runs), "--plain"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="cli",
                                 storage=f"sqlite:///{runs}/cli/study.db").trials) == 5


@pytest.mark.slow  # child processes
def test_console_script_end_to_end(write_space, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("actsearch")
    assert script.exists(), "the console script is not installed"
    env = {**os.environ, "COLUMNS": "160"}
    done = subprocess.run([str(script), "search", str(write_space()), "--trials", "4"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "top layouts" in done.stdout
    assert (tmp_path / "runs" / "tiny" / "study.db").exists()
    bad = subprocess.run([str(script), "search", "missing.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "actsearch: error: missing.yaml: space file not found"


@pytest.mark.slow  # a child process
def test_a_closed_pipe_ends_the_command_quietly() -> None:
    # `actsearch spaces --schema | head -1`: the reader leaves before the writer is done. A
    # pipe whose reading end is already closed makes the first write fail every time.
    script = Path(sys.executable).with_name("actsearch")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([str(script), "spaces", "--schema"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""  # no traceback, no "Exception ignored" at exit


def test_python_dash_m_runs_the_cli(monkeypatch, capsys) -> None:
    # `python -m actsearch spaces`, in this process (the console script's run is slow): the
    # module's exit code is the command's.
    import runpy

    monkeypatch.setattr(sys, "argv", ["actsearch", "spaces"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("actsearch", run_name="__main__")
    assert done.value.code == 0
    assert "mnist1d_mlp" in capsys.readouterr().out


@pytest.mark.slow  # end to end: search with finalists, export, train
def test_export_and_train_commands(write_space, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["search", str(write_space()), "--trials", "4", "--study", "ex",
                 "--runs-dir", str(runs), "--plain"]) == 0
    assert main(["export", str(runs / "ex"), "--weights", "--device", "cpu"]) == 0
    configs = sorted((runs / "ex" / "exports").glob("*.yaml"))
    assert len(configs) == 1 and configs[0].with_suffix(".pt").exists()
    capsys.readouterr()
    assert main(["train", str(configs[0])]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nosuch")]) == 2


def test_bad_data_file_is_caught_before_a_study_exists(write_space, tmp_path: Path,
                                                        capsys) -> None:
    space = write_space({"data": {"name": "npz", "path": str(tmp_path / "nothere.npz")}})
    assert main(["spaces", "--check", str(space)]) == 2
    assert "nothere.npz: data.path: file not found" in capsys.readouterr().err
    runs = tmp_path / "runs"
    assert main(["search", str(space), "--trials", "3", "--runs-dir", str(runs)]) == 2
    assert not list(runs.glob("*/study.db"))  # nothing to get in the way of the fixed file


def test_check_compares_a_cnn_with_the_data_file(write_space, tmp_path: Path, capsys) -> None:
    # Reading the space cannot know an npz file's sample shape; --check reads the file too.
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((40, 6)), y=np.arange(40) % 2)
    cnn = {"model.family": "cnn1d", "model.kernel_size": 9,
           "data": {"name": "npz", "path": str(tmp_path / "d.npz")}}
    assert main(["spaces", "--check", str(write_space(cnn))]) == 0  # same padding: 6 -> 6
    capsys.readouterr()
    assert main(["spaces", "--check", str(write_space({**cnn, "model.padding": 0}))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "space.yaml: model.kernel_size: conv layer 1 of 2 has no output (sizes 6 -> 0;" in err
    # A search says the same before its study exists.
    runs = tmp_path / "runs"
    assert main(["search", str(write_space({**cnn, "model.padding": 0})), "--trials", "3",
                 "--runs-dir", str(runs)]) == 2
    assert "model.kernel_size: conv layer 1 of 2 has no output" in capsys.readouterr().err
    assert not list(runs.glob("*/study.db"))


@pytest.mark.slow  # three searches
def test_finalists_are_retrained_when_the_best_layouts_change(write_space, tmp_path: Path,
                                                              capsys) -> None:
    args = [str(write_space()), "--study", "f", "--runs-dir", str(tmp_path), "--plain",
            "--finalists", "2", "--seeds", "2"]
    assert main(["search", *args, "--trials", "4"]) == 0
    assert main(["search", *args, "--trials", "4"]) == 0  # nothing new: nothing retrained
    assert "finalists: unchanged" in capsys.readouterr().out
    study = optuna.load_study(study_name="f", storage=f"sqlite:///{tmp_path}/f/study.db")
    best = max(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    # A new best trial (what a run with --finalists 0 may add): the finalists are stale.
    study.add_trial(optuna.trial.create_trial(
        params=best.params, distributions=best.distributions, value=1.0,
        user_attrs={**best.user_attrs, "val_acc": 1.0}))
    assert main(["search", *args, "--trials", "5"]) == 0
    out = capsys.readouterr().out
    assert "finalists: unchanged" not in out
    finalists = study.user_attrs["finalists"]
    assert finalists[0]["number"] == len(study.trials) - 1


@pytest.mark.slow  # a search until five trials fail
def test_a_run_of_failures_ends_the_search_with_one_line_and_exit_1(write_space, tmp_path: Path,
                                                                    capsys, monkeypatch) -> None:
    from actsearch.training.fit import Run

    def broken(self):
        raise ValueError("the model is broken")

    monkeypatch.setattr(Run, "epoch", broken)
    code = main(["search", str(write_space()), "--trials", "20", "--finalists", "0",
                 "--runs-dir", str(tmp_path), "--plain"])
    out = capsys.readouterr().out
    assert code == 1
    assert ("stopped early: 5 trials in a row failed (the last: ValueError: the model is "
            "broken)") in out
    assert "5 trials failed: 5 ValueError" in out


def test_sites_of_a_shipped_space(capsys) -> None:
    assert main(["sites", "digits_cnn"]) == 0
    out = capsys.readouterr().out
    assert "2 activation sites of digits_cnn" in out
    rows = [line for line in out.splitlines() if " module " in line]
    assert len(rows) == 2 and all("2x16x8x8" in row and "relu" in row for row in rows)
    # Named by module path, one group per hidden layer, as the layer's trial param.
    assert [row.split()[1] for row in rows] == ["2", "4"]
    assert [row.split()[-2] for row in rows] == ["act_0", "act_1"]


def test_sites_of_a_factory_with_groups_and_shared_calls(capsys) -> None:
    argv = ["sites", "examples/resnet_digits/model.py:make_model", "--input-shape", "1,8,8",
            "--kwargs", '{"width": 8}', "--group", "stage0=layers.0.*"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split() for line in out.splitlines()
            if "shared-call" in line}
    assert list(rows) == ["layers.0.relu#0", "layers.0.relu#1", "layers.1.relu#0",
                          "layers.1.relu#1"]
    assert rows["layers.0.relu#1"][-2] == "stage0" and rows["layers.1.relu#1"][-2] == (
        "layers.1.relu#1")
    assert all("2x8x8x8" in row for row in rows.values())  # width 8 from --kwargs
    assert main(argv[:4] + ["--tied"]) == 0
    assert "layers.0.relu " in capsys.readouterr().out


def test_sites_says_what_cannot_be_searched(capsys) -> None:
    assert main(["sites", "tests/fixtures/untraceable.py:make_model", "--input-shape", "8"]) == 0
    out = capsys.readouterr().out
    assert "act " in out and "elu(0.50)" in out
    assert "not searchable: relu(): functional relu: torch.fx cannot trace the model" in out


@pytest.mark.parametrize(("argv", "expected"), [
    (["sites", "nowhere:make_model", "--input-shape", "8"],
     "actsearch: error: factory 'nowhere:make_model': no module 'nowhere' in"),
    (["sites", "examples/gated/model.py:make_model"],
     "actsearch: error: --input-shape: needed for a model that is not a space's"),
    (["sites", "examples/gated/model.py:make_model", "--input-shape", "40", "--kwargs", "[1]"],
     "actsearch: error: --kwargs: expected a JSON object"),
    (["sites", "examples/gated/model.py:make_model", "--input-shape", "40", "--group",
      "gates=*.nothing"], "actsearch: error: --group gates: pattern '*.nothing' matches no"),
])
def test_sites_mistakes_exit_2_with_one_line(argv, expected, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


def test_sites_of_a_shipped_factory_space_show_its_groups(capsys) -> None:
    assert main(["sites", "mnist1d_gated"]) == 0
    rows = [line.split("│") for line in capsys.readouterr().out.splitlines() if " module " in line]
    groups = {row[1].strip(): row[6].strip() for row in rows}
    assert groups == {f"blocks.{i}.{kind}_act": kind for i in range(3)
                      for kind in ("gate", "signal")}
