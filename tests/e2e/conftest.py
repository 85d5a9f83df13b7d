"""End-to-end fixtures: the iris example in real git repositories, one shared state directory.

The state directory is shared by the e2e tests so that the example's Python environment is
built once (it is cached by the hash of its lock) and reused, as it would be on a real machine.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.examples import example_path
from shipyard.pipeline.context import free_port
from shipyard.wiring import open_adapters


def make_project(root: Path, name: str) -> tuple[Path, int]:
    """The iris example as project ``name`` with a free production port and short waits."""
    repo = root / name
    shutil.copytree(
        example_path("iris"), repo, ignore=shutil.ignore_patterns("__pycache__", ".shipyard")
    )
    port = free_port()
    text = (repo / "shipyard.yaml").read_text()
    text = text.replace("name: iris", f"name: {name}")
    text = re.sub(r"port: \d+", f"port: {port}", text)
    text = text.replace("interval: 3s", "interval: 2s").replace("duration: 3s", "duration: 2s")
    (repo / "shipyard.yaml").write_text(text)
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first model")
    return repo, port


@pytest.fixture(scope="session")
def e2e_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adapters]:
    adapters = open_adapters(tmp_path_factory.mktemp("state"))
    try:
        yield adapters
    finally:
        from shipyard.pipeline import deploy

        deploy.stop_all(adapters)
