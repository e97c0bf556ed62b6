"""The declared formats: the shipped JSON Schema, the README's field table, duplicate keys,
values no machine can train, and files written by the code before the declaration."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import jsonschema
import optuna
import pytest
import yaml

from actsearch.engine.export import load_model, read_config
from actsearch.errors import ActsearchError, ActsearchWarning
from actsearch.faces.cli import main
from actsearch.schema.space import (
    KNOWN_SAMPLES,
    SCHEMA_FILE,
    DataSpec,
    SpaceFile,
    load_space,
    parse_space,
    space_json_schema,
    space_to_document,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == space_json_schema(), (
        "regenerate it: actsearch spaces --schema > actsearch/schema/space.schema.json")


def test_schema_and_declaration_agree() -> None:
    schema = space_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for section, field in SpaceFile.__pydantic_fields__.items():
        declared = field.annotation.__pydantic_fields__ if dataclasses.is_dataclass(
            field.annotation) else None
        if declared is None or section == "activations":
            continue
        ref = schema["properties"][section]["$ref"].rsplit("/", 1)[1]
        properties = schema["$defs"][ref]["properties"]
        assert list(properties) == list(declared), section
        for key, info in declared.items():
            default = info.get_default(call_default_factory=True)
            if default is not None and not dataclasses.is_dataclass(default):
                expected = list(default) if isinstance(default, tuple) else default
                assert properties[key]["default"] == expected, f"{section}.{key}"
            assert properties[key]["description"] == info.description, f"{section}.{key}"


def test_every_shipped_space_validates_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(space_json_schema())
    spaces = sorted((REPO / "actsearch" / "search_spaces").glob("*.yaml"))
    assert spaces
    for path in [*spaces, FIXTURES / "space-documents" / "cnn_layers.yaml"]:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"
    # The schema refuses what the declaration refuses, e.g. a string width or an unknown key.
    for bad in ({"model": {"width": "wide"}}, {"model": {"colour": "red"}},
                {"train": {"lr": 0}}, {"data": {"name": "imagenet"}}):
        assert list(validator.iter_errors(bad)), bad
        with pytest.raises(ActsearchError):
            parse_space(bad, "x.yaml")


def test_spaces_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == space_json_schema()


BAD_FILES = {
    "twice.yaml": ("model:\n  width: 10\n  depth: 2\n  width: 20\n",
                   r"line 4: not valid YAML: key 'width' is given twice \(lines 2 and 4\)"),
    "type.yaml": ("train: {epochs: ten}\n", r"train\.epochs: expected int, got a string 'ten'"),
    "huge.yaml": ("model: {width: 1000000, depth: 200}\n",
                  r"model\.width: 200 hidden layers of width 1000000 hold about 2\.0e\+14 "),
    "binary.yaml": (b"\xff\xfe\x00junk", r"line 1: not UTF-8 text \(byte 0xff\)"),
    "nan.yaml": ("train: {lr: .nan}\n", r"train\.lr: expected a finite number, got nan"),
}


def test_spaces_check_says_one_line_per_bad_file(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for name, (text, _) in BAD_FILES.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths.append(str(path))
    good = str(REPO / "actsearch" / "search_spaces" / "mnist1d_mlp.yaml")
    assert main(["spaces", "--check", good, *paths]) == 2
    out, err = capsys.readouterr()
    assert out.count(": ok (") == 1
    lines = err.strip().splitlines()
    assert len(lines) == len(BAD_FILES)
    for line, (name, (_, expected)) in zip(lines, BAD_FILES.items(), strict=True):
        assert line.startswith(f"actsearch: error: {tmp_path / name}: "), line
        assert re.search(expected, line), line
    assert main(["spaces", "--check", good]) == 0


def test_duplicate_keys_in_a_config_are_refused(tmp_path: Path) -> None:
    text = (FIXTURES / "v1-configs" / "mnist1d_mlp-trial1.yaml").read_text()
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("  epochs: 20\n", "  epochs: 20\n  epochs: 5\n", 1))
    with pytest.raises(ActsearchError, match=r"key 'epochs' is given twice \(lines \d+ and \d+\)"):
        read_config(path)


def test_a_batch_larger_than_the_training_split_is_warned_about(write_space, capsys) -> None:
    # The tiny space: 600 synthetic samples, 120 held out for test, 96 for validation.
    with pytest.warns(ActsearchWarning, match=r"train\.batch_size: 500 is more than the 384 "
                                              r"samples of the training split"):
        load_space(write_space({"train.batch_size": 500}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_space(write_space({"train.batch_size": 384}))
    assert main(["spaces", "--check", str(write_space({"train.batch_size": 500}))]) == 0
    err = capsys.readouterr().err
    assert err.startswith("actsearch: warning: ") and err.count("\n") == 1, err


def test_known_sample_counts_are_the_data_sets() -> None:
    from actsearch.training.data import load_data

    for name, n in KNOWN_SAMPLES.items():
        spec = DataSpec(name=name)
        data = load_data(spec, 0)
        from actsearch.schema.space import training_samples

        assert len(data.x_train) == training_samples(spec), name
        assert len(data.x_train) + len(data.x_val) + (
            0 if name == "mnist1d" else len(data.x_test)) == n, name


# ----------------------------------------------------------------------- files of before


@pytest.mark.parametrize("path", sorted((FIXTURES / "space-documents").glob("*.json")),
                         ids=lambda p: p.stem)
def test_stored_space_documents_read_and_write_back_unchanged(path: Path) -> None:
    stored = json.loads(path.read_text())
    space = parse_space(stored, "old")
    assert json.dumps(space_to_document(space)) == json.dumps(stored)  # key order too


@pytest.mark.parametrize("path", sorted((FIXTURES / "space-documents").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_unchanged_space_files_give_the_documents_studies_stored(path: Path) -> None:
    # Resuming compares the stored document with the file's: the files as they were shipped
    # when those studies ran must still give exactly what the studies stored.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about a space that worked
        document = space_to_document(load_space(path))
    stored = json.loads(path.with_suffix(".json").read_text())
    assert json.dumps(document) == json.dumps(stored)  # key order too


@pytest.mark.parametrize("path", sorted(p for p in (FIXTURES / "v1-configs").rglob("*")
                                        if p.suffix in (".yaml", ".json")),
                         ids=lambda p: p.name)
def test_v1_configs_still_load(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    config = read_config(path)
    arch = {k: v for k, v in document["architecture"].items()
            if k not in ("input_shape", "n_classes")}
    model = config.arch
    assert {"family": model.family, "width": model.width, "depth": model.depth,
            "norm": model.norm[0], "dropout": model.dropout,
            "kernel_size": model.kernel_size, "stride": model.stride,
            **({"padding": model.padding} if "padding" in arch else {})} == arch
    assert "padding" in arch or model.padding == "same"
    assert list(config.input_shape) == document["architecture"]["input_shape"]
    # A recipe's own loss and metric came later: None (not written) in these configs.
    assert {k: v for k, v in dataclasses.asdict(config.recipe).items()
            if k not in ("loss", "metric") or v is not None} == document["recipe"]
    assert [layer.activation for layer in config.layout.layers] == [
        entry["activation"] for entry in document["layers"]]
    assert (config.split_seed, config.fingerprint) == (document["data"]["split_seed"],
                                                       document["data"]["fingerprint"])
    assert config.provenance == document["provenance"]
    if "weights" in document:
        load_model(path)  # the hash and the shapes still check out


def test_the_old_study_still_opens() -> None:
    from actsearch.engine.storage import space_of_study

    study = optuna.load_study(study_name="old",
                              storage=f"sqlite:///{FIXTURES / 'v0.1-tiny' / 'study.db'}")
    assert space_of_study(study).name == "old"



def test_shipped_spaces_name_the_schema_in_their_first_line() -> None:
    # VS Code's YAML extension reads this line; the path is relative to the space file.
    for path in sorted((REPO / "actsearch" / "search_spaces").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        assert (path.parent / first[len(prefix):]).resolve() == SCHEMA_FILE, path
