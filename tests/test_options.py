"""Run options are checked and defaulted once, on their types (``RunOptions`` for a search,
``WorkerOptions`` for a worker): the CLI's parser and the API's signatures leave every default
to them, and a worker process gets its options as JSON, never as command-line arguments."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import actsearch.api as api
from actsearch import ActsearchError
from actsearch.engine.pipeline import RunOptions
from actsearch.engine.workers import WorkerOptions, run_workers
from actsearch.faces.cli import build_parser


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}


@pytest.mark.parametrize(("command", "function", "options"), [
    ("search", api.search, RunOptions), ("worker", api.worker, WorkerOptions)])
def test_no_default_outside_the_options_type(command, function, options) -> None:
    fields = {f.name: f for f in dataclasses.fields(options)}
    signature = inspect.signature(function).parameters
    flags = _flags(_subparser(command))
    covered = 0
    for name, field in fields.items():
        if name in signature and signature[name].default is not inspect.Parameter.empty:
            assert signature[name].default is None, f"{function.__name__}({name}=...) defaults"
        if name in flags:
            covered += 1
            action = flags[name]
            if not isinstance(action, argparse._StoreTrueAction):
                assert action.default is None, f"{command} --{name}: its own default"
            said = re.search(r"\(default: ([^;),]+)", action.help or "")
            if said and field.default is not dataclasses.MISSING and field.default is not None:
                assert said.group(1) == str(field.default), \
                    f"{command} --{name} says default {said.group(1)}, {options.__name__} " \
                    f"says {field.default}"
    assert covered >= 8  # the test reads the flags it means to


def test_options_check_what_a_caller_gives() -> None:
    assert RunOptions.given(trials=None, finalists=None) == RunOptions()
    for values, parameter in [({"trials": 0}, "trials"), ({"seeds": 0}, "seeds"),
                              ({"claim_seeds": 1}, "claim_seeds"), ({"finalists": -1},
                                                                    "finalists"),
                              ({"dtype": "float16"}, "dtype"), ({"latency": "fast"}, "latency"),
                              ({"workers": True}, "workers"), ({"timeout": 0}, "timeout")]:
        with pytest.raises(ActsearchError) as info:
            RunOptions.given(**values)
        assert info.value.parameter == parameter
        assert str(info.value).startswith(f"{parameter}: expected")
    with pytest.raises(ActsearchError, match="^grace_period: expected a positive integer"):
        WorkerOptions("sqlite:///x.db", "s", grace_period=0)


def test_worker_options_travel_as_json(tmp_path: Path) -> None:
    options = WorkerOptions("journal:///x/journal.log", "s", trials=7, timeout=2.5,
                            device="cpu", quiet=True, dtype="float64")
    path = tmp_path / "o.json"
    path.write_text(options.to_json())
    assert WorkerOptions.from_file(path) == options
    path.write_text(json.dumps({**json.loads(options.to_json()), "trails": 3}))
    with pytest.raises(ActsearchError, match=r"o\.json: unknown worker options \['trails'\]"):
        WorkerOptions.from_file(path)
    path.write_text(json.dumps({**json.loads(options.to_json()), "trials": "many"}))
    with pytest.raises(ActsearchError, match=r"o\.json: trials: expected a positive integer"):
        WorkerOptions.from_file(path)


def test_a_worker_process_gets_its_options_as_json(tmp_path: Path) -> None:
    # A stand-in for the worker module records what each process was given.
    record = tmp_path / "seen"
    record.mkdir()
    stub = ("import sys, json, pathlib; o = json.load(open(sys.argv[1])); "
            f"pathlib.Path({str(record)!r}, str(o['worker_index'])).write_text(json.dumps(o))")
    options = WorkerOptions("journal:///x/journal.log", "s", trials=5, device="cpu")
    assert run_workers(2, options, cores=4, command=(sys.executable, "-c", stub)) == 0
    seen = {int(p.name): json.loads(p.read_text()) for p in record.iterdir()}
    assert sorted(seen) == [0, 1]
    for index, given in seen.items():
        assert WorkerOptions(**given) == dataclasses.replace(
            options, worker_index=index, threads=2)  # the cores shared between them


@pytest.mark.slow
def test_the_worker_module_refuses_a_bad_options_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    done = subprocess.run([sys.executable, "-m", "actsearch.engine.workers", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"actsearch worker: error: {bad}: expected a worker's options as JSON "
        f"(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"]
