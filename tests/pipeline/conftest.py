"""A tiny real project in a real git repository, and a state directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import change_policy
from shipyard.wiring import open_adapters

CONFIG = """\
name: tiny
install: requirements.txt
build:
  train: {train}
  timeout: {timeout}
model:
  serve: tiny_model:Model
test:
  run: pytest -q tests
"""

MODEL = """\
class Model:
    def __init__(self, model_dir):
        self.answer = open(f"{model_dir}/answer.txt").read()

    def predict(self, records):
        return [self.answer for _ in records]
"""


def write_project(
    repo: Path,
    *,
    train: str = "python -c \"import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('42')\"",
    timeout: str = "60s",
    test_body: str = "assert 1 + 1 == 2",
) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "shipyard.yaml").write_text(
        CONFIG.format(train=f"'{train}'" if "'" not in train else train, timeout=timeout)
    )
    (repo / "requirements.txt").write_text("pytest\n")
    (repo / "tiny_model.py").write_text(MODEL)
    (repo / "tests").mkdir(exist_ok=True)
    (repo / "tests" / "test_tiny.py").write_text(
        f"def test_one():\n    {test_body}\n\n\ndef test_two():\n    assert True\n"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "tiny"
    write_project(path)
    git(path, "init", "-q", "-b", "main")
    commit(path, "first")
    return path


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    # The environment cache is shared by the session (tests/conftest.py sets $SHIPYARD_CACHE).
    a = open_adapters(tmp_path / "state")
    # The tiny project has no analyze, staging or qa: let `release` take it, explicitly.
    catalog = Catalog(a.store)
    loosened = change_policy(catalog.policy("release"), allow_skipped=["test", "analyze", "qa"])
    catalog.set_policy("release", loosened, "tiny test project: no analyze, staging or qa")
    yield a
    a.store.close()
