"""Fixtures for the local executor: a state dir per test, and one shared by env builds.

Environment tests share one state dir (and so one uv cache) per session, and make every lock
file's bytes unique, so each test still gets its own env while downloads happen once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.executor import LocalExecutor
from shipyard.paths import StateDir


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(StateDir(tmp_path / "state").ensure())


@pytest.fixture(scope="session")
def env_state(tmp_path_factory: pytest.TempPathFactory) -> StateDir:
    return StateDir(tmp_path_factory.mktemp("env-state")).ensure()


@pytest.fixture
def env_executor(env_state: StateDir) -> LocalExecutor:
    return LocalExecutor(env_state)


@pytest.fixture
def lock(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """An empty requirements file whose bytes are unique to the test."""
    path = tmp_path / "requirements.txt"
    path.write_text(f"# {request.node.nodeid}\n")
    return path
