"""After a real run from commit to live, the state holds nothing another user can read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit
from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default (0022), under which files come out readable by everyone."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def live_repo(repo: Path, adapters: Adapters) -> Iterator[Path]:
    """The tiny project with a production environment; its servers are stopped afterwards."""
    config = repo / "shipyard.yaml"
    (repo / "config").mkdir()
    (repo / "config" / "production.yaml").write_text("threshold: 0.5\n")
    config.write_text(
        config.read_text()
        + f"environments:\n  production:\n    port: {free_port()}\n"
        + "    config: config/production.yaml\n"
    )
    commit(repo, "go live")
    yield repo
    deploy.stop_all(adapters, "tiny")


@pytest.mark.usefixtures("usual_umask")
def test_a_run_to_live_leaves_the_state_private(live_repo: Path, adapters: Adapters) -> None:
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(live_repo)
    assert pipeline.execute(ctx) is Status.PASSED
    assert adapters.store.get_run("tiny", ctx.number).stages[-1].status == "passed"  # live
    state = adapters.state
    assert mode(state.root) == 0o700
    database = [state.database, *state.root.glob(f"{state.database.name}-*")]
    stage_logs = list((state.run_dir("tiny", ctx.number) / "logs").glob("*.log"))
    server_logs = list(state.environment_dir("tiny", "production").rglob("*.log"))
    configs = list(state.environment_dir("tiny", "production").glob("config/*.yaml"))
    assert len(stage_logs) >= 5 and server_logs  # build, test, publish, release, live...
    assert configs  # the environment's copy of config/production.yaml
    assert {mode(path) for path in database + stage_logs + server_logs + configs} == {0o600}
    tree = state.deployment_dir("tiny", "production", ctx.version)
    unpacked = [path for path in tree.rglob("*") if not path.is_symlink()]
    assert (tree / "code" / "tiny_model.py") in unpacked
    assert {mode(path) for path in unpacked if path.is_file()} == {0o600}
    assert {mode(path) for path in [tree, *unpacked] if path.is_dir()} == {0o700}
