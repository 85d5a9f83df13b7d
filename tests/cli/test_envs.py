"""`shipyard envs` reports what runs, asking the runtime rather than trusting stored rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shipyard.store import Store
from shipyard.store.models import Deployment

from .conftest import Cli


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def deployed(store: Store, version: str, role: str, weight: int, pid: int) -> None:
    artifact = store.add_artifact("iris", version, version * 64, 1234, {"run": 1}, None)
    row = Deployment(
        project="iris",
        environment="production",
        version=version,
        artifact_id=artifact.id,
        role=role,
        weight=weight,
        state="ready",
        endpoint="http://127.0.0.1:1",
        pid=pid,
    )
    store.save_deployment(row, "started")


def test_a_deployment_whose_server_died_is_shown_down(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("iris", "/repos/iris")
    deployed(store, "1", "stable", 100, exited_pid())
    deployed(store, "2", "standby", 0, os.getpid())  # alive: this process

    listed = cli("envs", "--json", "--state", state)
    assert listed.exit_code == 0, listed.output
    (production,) = json.loads(listed.stdout)  # the environments, as the API returns them
    states = {row["version"]: row["state"] for row in production["deployments"]}
    assert states == {"1": "down", "2": "ready"}

    shown = cli("envs", "--state", state)
    assert shown.exit_code == 0, shown.output
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in shown.stdout.splitlines()
        if "iris" in line and "│" in line
    ]
    assert {row[1]: row[3] for row in rows} == {"1": "down", "2": "ready"}, shown.stdout
