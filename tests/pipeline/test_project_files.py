"""Files a deployment reads from the project: a symlink leading out of it is refused where used."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.adapters import Adapters
from shipyard.canary.rollout import probe_bodies
from shipyard.config import parse_config
from shipyard.errors import StageFailed
from shipyard.pipeline import deploy

CONFIG = """\
name: tiny
build: {train: x}
model: {serve: m:Model}
environments:
  staging: {config: conf/app.yaml}
qa:
  quality: {data: data/rows.csv, label: y}
canary:
  traffic: {rate: 5}
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A project whose config file and data file are symlinks to files outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("password: hunter2\n")
    (outside / "rows.csv").write_text("x,y\n1,a\n")
    code = tmp_path / "code"
    (code / "conf").mkdir(parents=True)
    (code / "data").mkdir()
    (code / "conf" / "app.yaml").symlink_to(outside / "secret.yaml")
    (code / "data" / "rows.csv").symlink_to(outside / "rows.csv")
    return code


def test_a_config_file_symlinked_out_of_the_project_is_not_copied(
    code: Path, adapters: Adapters
) -> None:
    with pytest.raises(StageFailed) as caught:
        deploy.prepare(adapters, parse_config(CONFIG), "staging", code, "1-abc", lambda _: None)
    assert caught.value.message == "'conf/app.yaml' points outside the project."
    copied = adapters.state.environment_dir("tiny", "staging") / "config"
    assert not copied.exists() or not any(copied.iterdir())


def test_probe_data_symlinked_out_of_the_project_is_not_read(code: Path) -> None:
    with pytest.raises(StageFailed, match=r"'data/rows\.csv' points outside the project"):
        probe_bodies(parse_config(CONFIG), code)


def test_the_same_files_inside_the_project_are_used(code: Path) -> None:
    rows = code / "data" / "rows.csv"
    rows.unlink()
    rows.write_text("x,y\n1,a\n2,b\n")
    bodies = probe_bodies(parse_config(CONFIG), code)
    assert [body["dataframe_split"]["data"] for body in bodies] == [[[1.0]], [[2.0]]]
