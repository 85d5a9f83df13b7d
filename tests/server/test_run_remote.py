"""`shipyard run --server`: the commit is pinned here, fetched and driven by the server, and
this process follows it with the foreground's output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gitrepos import git
from shipyard.adapters import Adapters
from shipyard.domain import TokenRole
from shipyard.pipeline.context import free_port
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.wiring import open_adapters

from .queue_projects import loosen_release_policy, wait_for, write_project


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    a = open_adapters(tmp_path / "state")
    loosen_release_policy(a)
    yield a
    a.store.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    return {**env, "SHIPYARD_CACHE": os.environ["SHIPYARD_CACHE"], "COLUMNS": "200", **extra}


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
    port = free_port()
    command = [sys.executable, "-m", "shipyard", "server", "--state", str(adapters.state.root)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), "the server to answer", 60)
        client = [sys.executable, "-m", "shipyard", "run", str(repo), "--server", url]
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
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
