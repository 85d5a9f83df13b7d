"""input_schema.json (written at build from the training data's profile) completes a signature."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.runtime.serving.errors import LoadError
from shipyard.runtime.serving.loaders import SCHEMA_FILE, load_model
from shipyard.runtime.serving.signature import ANY, Column, Signature, completed

PROFILE = Signature.of_names(["a", "b"], {"a": "FP64", "b": "BYTES"})

MODEL = """\
class Model:
    def __init__(self, model_dir):
        pass

    def predict(self, records):
        return [len(r) for r in records]
"""


@pytest.fixture
def model_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "schema_model.py").write_text(MODEL)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("schema_model", None)


def test_a_model_that_names_no_inputs_takes_the_profiles() -> None:
    assert completed(None, PROFILE) == PROFILE


def test_the_models_own_datatypes_win_and_open_ones_are_filled() -> None:
    own = Signature((Column("b", ANY), Column("a", "INT64"), Column("c", ANY)), True)
    assert completed(own, PROFILE) == Signature(
        (Column("b", "BYTES"), Column("a", "INT64"), Column("c", ANY)), True
    )


def test_a_positional_model_keeps_its_signature() -> None:
    own = Signature.positional(2, "FP32", exact=True)
    assert completed(own, PROFILE) is own
    assert completed(None, None) is None


def test_the_schema_file_gives_a_class_its_inputs(model_dir: Path) -> None:
    (model_dir / SCHEMA_FILE).write_text(json.dumps({"a": "FP64", "b": "BYTES"}))
    model = load_model("schema_model:Model", model_dir, allow_pickle=False)
    assert model.signature is not None
    assert model.signature.metadata() == [
        {"name": "a", "datatype": "FP64", "shape": [-1]},
        {"name": "b", "datatype": "BYTES", "shape": [-1]},
    ]


def test_without_the_file_a_class_has_no_signature(model_dir: Path) -> None:
    assert load_model("schema_model:Model", model_dir, allow_pickle=False).signature is None


def test_a_broken_schema_file_stops_the_start(model_dir: Path) -> None:
    (model_dir / SCHEMA_FILE).write_text("{not json")
    with pytest.raises(LoadError, match=r"input_schema\.json is not valid JSON"):
        load_model("schema_model:Model", model_dir, allow_pickle=False)
