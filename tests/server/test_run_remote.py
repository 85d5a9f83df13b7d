"""`shipyard run --server`: the commit is pinned here, fetched and driven by the server, and
this process follows it with the foreground's output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import git
from servers import ShipyardServer, clean_env
from shipyard.adapters import Adapters
from shipyard.domain import TokenRole
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.wiring import open_adapters

from .queue_projects import loosen_release_policy, write_project


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    a = open_adapters(tmp_path / "state")
    loosen_release_policy(a)
    yield a
    a.store.close()


def test_a_run_through_a_server_is_driven_there_and_followed_here(
    tmp_path: Path, adapters: Adapters
) -> None:
    services = Services(adapters)
    repo, remote = tmp_path / "tiny", tmp_path / "tiny.git"
    sha = write_project(repo, "tiny")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "push", "-q", str(remote), "main")
    with acting_as("root"):
        services.projects.add("tiny", str(remote))
        _, developer = services.tokens.create("dev", TokenRole.DEVELOPER)
    with ShipyardServer(adapters.state.root, workers=1) as server:
        client = [sys.executable, "-m", "shipyard", "run", str(repo), "--server", server.url]
        done = subprocess.run(
            client,
            env=clean_env(SHIPYARD_TOKEN=developer),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"tiny run #1 on the server at {sha[:12]}" in done.stdout
        assert "▶ build" in done.stdout and "build passed" in done.stdout
        assert "skipped" in done.stdout  # the stages this project leaves out, as locally
        run = services.runs.get("tiny", 1)
        assert (run.sha, run.status) == (sha, "passed")

        refused = subprocess.run(
            client,
            env=clean_env(SHIPYARD_TOKEN="shy_not-a-token-at-all-0123456789"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0 and "unknown or revoked" in refused.stderr
