"""The build checks the training data before training, profiles it into the build-info, reports
its drift against the release live in production (gated when configured), and the model server
takes its input schema from the profile.

Real commits of the tiny project go through the real pipeline to a real gateway on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from gitrepos import commit
from servers import free_port
from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.engine import Pipeline

from .conftest import write_project

TRAIN = "python -c \"import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('7')\""
DATA = """\
data:
  train: data/train.csv
  label: y
  rows: {{min: 50}}
  columns:
    x: {{dtype: float, min: 0, max: 1000, not_null: true}}
    colour: {{dtype: str, allowed: [red, green]}}
  drift: {{psi_max: 0.2, gate: {gate}}}
"""


def write_data(repo: Path, *, shift: float = 0.0, gate: bool = False, port: int) -> None:
    """The tiny project with a `data:` section and 200 rows of x around 50 (+ shift)."""
    write_project(repo, train=TRAIN)
    rng = np.random.default_rng(7)
    x = rng.normal(50 + shift, 10, 200)
    colours = rng.choice(["red", "green"], 200)
    lines = [
        "x,colour,y",
        *(f"{v:.3f},{c},{i % 2}" for i, (v, c) in enumerate(zip(x, colours, strict=True))),
    ]
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "train.csv").write_text("\n".join(lines) + "\n")
    config = (repo / "shipyard.yaml").read_text() + DATA.format(gate=str(gate).lower())
    (repo / "shipyard.yaml").write_text(f"{config}environments:\n  production:\n    port: {port}\n")


def run(repo: Path, adapters: Adapters, message: str) -> tuple[Status, int, str]:
    commit(repo, message)
    pipeline = Pipeline(adapters)
    queued = pipeline.queue(repo)
    return pipeline.execute(queued), queued.number, queued.version


def build_stage(adapters: Adapters, number: int) -> tuple[str, dict[str, object], str]:
    """The build stage's status, summary and log of run ``number``."""
    stage = adapters.store.get_run("tiny", number).stages[0]
    log = adapters.state.stage_log("tiny", number, "build").read_text()
    return stage.status, {**stage.summary, "message": stage.message}, log


@pytest.fixture
def production(adapters: Adapters) -> Iterator[Adapters]:
    yield adapters
    deploy.stop_all(adapters)


def test_a_bad_data_file_fails_the_build_before_the_environment_and_training(
    repo: Path, adapters: Adapters
) -> None:
    write_data(repo, port=free_port())
    rows = (repo / "data" / "train.csv").read_text().splitlines()
    rows[3] = "4200.0,red,1"
    (repo / "data" / "train.csv").write_text("\n".join(rows) + "\n")
    status, number, _version = run(repo, adapters, "a value out of range")
    assert status is Status.FAILED
    stage, summary, log = build_stage(adapters, number)
    assert stage == "failed"
    assert str(summary["message"]).startswith(
        "data/train.csv: column x: value 4200.0 is above max 1000 (row 3)"
    )
    assert "preparing the Python" not in log  # no environment, no training
    assert not (adapters.state.run_dir("tiny", number) / "model" / "answer.txt").exists()


def test_drift_against_the_live_release_is_reported_and_gated_when_configured(
    repo: Path, production: Adapters
) -> None:
    adapters, port = production, free_port()
    write_data(repo, port=port)
    status, first, first_version = run(repo, adapters, "first data")
    assert status is Status.PASSED
    _stage, summary, log = build_stage(adapters, first)
    assert "data: no live release to compare with" in log
    assert summary["data"] == {"rows": {"train": 200}, "against": None, "psi": {}}
    info = adapters.store.get_artifact("tiny", first_version).build_info["data"]
    assert set(info["files"]) == {"data/train.csv"}
    profile = info["profile"]["train"]
    assert profile["rows"] == 200 and set(profile["columns"]) == {"x", "colour", "y"}
    assert len(profile["columns"]["x"]["histogram"]["counts"]) == 10

    # The model names no inputs of its own: the server's metadata comes from the profile.
    metadata = httpx.get(f"http://127.0.0.1:{port}/v2/models/tiny", timeout=5).json()
    assert metadata["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1]},
        {"name": "colour", "datatype": "BYTES", "shape": [-1]},
    ]

    write_data(repo, shift=25, gate=True, port=port)
    status, gated, _version = run(repo, adapters, "shifted data, drift gated")
    assert status is Status.FAILED
    stage, summary, log = build_stage(adapters, gated)
    assert stage == "failed"
    message = str(summary["message"])
    assert message.startswith("data/train.csv: feature x: PSI ")
    assert "> max 0.2" in message and f"against the live release {first_version}" in message
    assert "colour" not in message  # only the drifted feature is named
    assert "preparing the Python" not in log

    write_data(repo, shift=25, gate=False, port=port)
    status, reported, _version = run(repo, adapters, "shifted data, drift reported")
    assert status is Status.PASSED
    _stage, summary, log = build_stage(adapters, reported)
    data = summary["data"]
    assert isinstance(data, dict)
    assert data["against"] == first_version
    assert data["psi"]["x"] > 0.2 > data["psi"]["colour"]
    assert f"data: drift of data/train.csv against the live release {first_version}:" in log
    assert "x: PSI" in log and "> max 0.2" in log
