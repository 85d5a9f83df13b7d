"""`--json` everywhere: every command that prints data can print it as one JSON document, the
read model the API returns, for scripts to parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from shipyard.cli.app import app
from shipyard.config.loader import parse_config
from shipyard.domain import Gate
from shipyard.pipeline.context import RunContext
from shipyard.services import Services
from shipyard.store import Store
from shipyard.store.models import Rollout
from shipyard.wiring import open_adapters

from .conftest import TINY_CONFIG, Cli, GitRepo, RealRun

# Commands that print no data to parse: a document of their own, a stream, or a process.
NOT_DATA = {
    "schema": "prints the JSON Schema itself",
    "logs": "streams the stages' log lines",
    "artifacts key": "prints the public key as PEM",
    "server": "runs until stopped",
    "up": "runs the controllers until stopped",
    "demo": "a walk-through for people",
    "init": "writes shipyard.yaml and says what it wrote",
}


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command by its full name (``artifacts key list``), groups that run alone too."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):  # a group (Typer's own click, not always click's)
            if command.invoke_without_command:
                found[full] = command
            found |= commands(command, f"{full} ")
        else:
            found[full] = command
    return found


def test_every_command_that_prints_data_takes_json() -> None:
    every = commands(typer.main.get_group(app))
    assert set(NOT_DATA) <= set(every)
    lacking = [
        name
        for name, command in sorted(every.items())
        if name not in NOT_DATA and not any("--json" in p.opts for p in command.params)
    ]
    assert lacking == []


def parsed(cli: Cli, *args: str | Path, exit_code: int = 0) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_the_commands_that_change_things_print_what_they_changed_as_json(
    cli: Cli, git_repo: GitRepo, state: Path
) -> None:
    at = ("--state", state)
    token = parsed(cli, "token", "create", "ci", "--role", "viewer", *at)
    assert token["token"]["name"] == "ci" and token["secret"]
    assert parsed(cli, "token", "revoke", "ci", *at)["revoked_at"]

    target = parsed(cli, "notify", "add", "https://hooks.example.com/x", *at)
    assert parsed(cli, "notify", "remove", str(target["id"]), *at)["url"] == target["url"]

    repo = git_repo("tiny", **{"shipyard.yaml": TINY_CONFIG, "requirements.txt": "", "m.py": ""})
    added = parsed(cli, "project", "add", "tiny", "--repo", repo, *at)
    assert added["project"]["name"] == "tiny" and added["webhook_secret"]
    queued = parsed(cli, "project", "run", "tiny", *at)
    assert (queued["number"], queued["status"]) == (1, "queued")
    assert parsed(cli, "cancel", "1", "--project", "tiny", *at)["number"] == 1
    assert parsed(cli, "project", "remove", "tiny", *at)["name"] == "tiny"
    assert parsed(cli, "hook", "install", repo, *at)["installed"] is True

    assert parsed(cli, "artifacts", "create-repo", "scratch", *at)["name"] == "scratch"
    policy = parsed(cli, "artifacts", "policy", "scratch", "--keep-last", "3", *at)
    assert policy["keep_last"] == 3
    assert parsed(cli, "artifacts", "key", "list", *at)["own"] is None
    assert parsed(cli, "down", *at) == {"deployments": 0, "environments": 0, "processes": []}


def test_the_rollout_commands_print_the_rollout_as_json(
    cli: Cli, store: Store, state: Path
) -> None:
    store.ensure_project("iris", "/repos/iris")
    steps = [{"weight": 20, "pause": "manual"}]
    row = Rollout(
        project="iris",
        environment="production",
        stable_version="1",
        canary_version="2",
        steps=steps,
        status="running",
    )
    store.save_rollout(row, "started")
    at = ("--state", state)
    assert parsed(cli, "rollout", "pause", *at)["status"] == "paused"
    assert parsed(cli, "rollout", "promote", *at)["status"] == "promoting"
    assert parsed(cli, "rollout", *at)["canary"] == "2"


def test_approve_and_reject_print_the_decision_as_json(cli: Cli, state: Path) -> None:
    adapters = open_adapters(state)
    try:
        found = Services(adapters)
        adapters.store.ensure_project("tiny", "/repos/tiny")
        config = parse_config(TINY_CONFIG + "release: {approval: manual}\n")
        for _ in range(2):
            run = adapters.store.create_run("tiny", "ab" * 20, "main")
            ctx = RunContext(adapters, "tiny", run.number, "ab" * 20, "main", Path("."), config)
            ctx.log_path("release").parent.mkdir(parents=True, exist_ok=True)
            waiting = found.approvals.gate(ctx, Gate.RELEASE)
            assert waiting is not None
            found.runs.park("tiny", run.number, Gate.RELEASE.value, waiting.message)
    finally:
        adapters.store.close()
    at = ("--project", "tiny", "--state", state)
    assert parsed(cli, "approve", "1", *at)["status"] == "approved"
    assert parsed(cli, "reject", "2", "--reason", "not this one", *at)["status"] == "rejected"


@pytest.fixture(scope="module")
def built(real_run: RealRun) -> RealRun:
    assert real_run.done.returncode == 0, real_run.done.stdout[-3000:]
    return real_run


def test_the_artifact_commands_print_json(cli: Cli, built: RealRun, tmp_path: Path) -> None:
    at = ("--state", built.state)
    (listed,) = parsed(cli, "artifacts", *at)
    ref = f"{listed['name']}:{listed['version']}"
    assert parsed(cli, "artifacts", "set", ref, "team=ml", *at)["set"] == {"team": "ml"}
    promoted = parsed(cli, "promote", ref, "--dry-run", *at)
    assert promoted["already"] is True and promoted["target"] == "release"
    pulled = parsed(cli, "artifacts", "pull", ref, "-o", tmp_path / "a.tar.gz", *at)
    assert pulled["digest"] == listed["digest"]
    pushed = parsed(cli, "artifacts", "push", tmp_path / "a.tar.gz", *at)
    assert (pushed["ref"], pushed["created"]) == (ref, False)  # the same bytes: known
    own = parsed(cli, "artifacts", "key", "list", *at)["own"]
    rotated = parsed(cli, "artifacts", "key", "rotate", *at)
    assert rotated["old"] == own and rotated["new"] != own and rotated["artifacts"] == 1
